from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cryptopulse.classify import trend, volatility
from cryptopulse.schema import WindowAggregate
from cryptopulse.stream.finals import FinalTracker, LiveWindow, as_final

WINDOW = 30_000
DELAY = 5_000


def live(
    coin: str, start_s: int, last_event_s: float, close: float, source: str = "sim"
) -> LiveWindow:
    start = start_s * 1000
    record = {
        "source": source,
        "coin": coin,
        "window_start": start,
        "close": close,
        "final": False,
    }
    return LiveWindow(
        source, coin, start, start + WINDOW, int(last_event_s * 1000), orjson.dumps(record)
    )


def decode(finals: list[tuple[str, bytes]]) -> list[tuple[str, int, float, bool]]:
    out = []
    for coin, raw in finals:
        r = orjson.loads(raw)
        out.append((coin, r["window_start"], r["close"], r["final"]))
    return out


def test_a_window_is_final_once_the_watermark_of_earlier_batches_passes_its_end() -> None:
    t = FinalTracker(DELAY)
    assert t.advance(0, [live("btc", 0, 10, 1.0), live("eth", 0, 12, 2.0)]).finals == []
    assert t.advance(1, [live("btc", 0, 29, 1.5)]).finals == []
    # Event time reaches 40 s: the watermark for the *next* batch becomes 35 s.
    assert t.advance(2, [live("btc", 30, 40, 3.0)]).finals == []
    finals = t.advance(3, []).finals  # Spark's no-data batch with the new watermark
    assert decode(finals) == [("btc", 0, 1.5, True), ("eth", 0, 2.0, True)]
    assert set(t.open) == {("sim", "btc", 30_000)}
    assert t.advance(4, []).finals == []  # never twice


def test_boundary_end_equal_to_watermark_is_final_like_spark() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 35, 1.0)])  # watermark for batch 1: 30 s == window end
    assert decode(t.advance(1, []).finals) == [("btc", 0, 1.0, True)]
    t2 = FinalTracker(DELAY)
    t2.advance(0, [live("btc", 0, 34.999, 1.0)])
    assert t2.advance(1, []).finals == []


def test_watermark_never_moves_back() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 60, 70, 1.0)])
    t.advance(1, [live("eth", 60, 61, 1.0)])  # older event time, same window
    assert t.max_event_ms == 70_000


def test_state_survives_a_restart_and_replayed_batches_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "sink-state.json"
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0)])
    t.advance(1, [live("btc", 30, 36, 2.0)])
    t.save(path)
    again = FinalTracker.load(path, DELAY)
    assert again.seen(1) and not again.seen(2)
    assert again.open == t.open and again.max_event_ms == t.max_event_ms
    assert decode(again.advance(2, []).finals) == [("btc", 0, 1.0, True)]
    assert FinalTracker.load(tmp_path / "missing.json", DELAY).batch_id == -1


def test_as_final_flips_only_the_flag() -> None:
    raw = b'{"coin":"a","symbol":"\\"final\\":false","final":false}'
    assert orjson.loads(as_final(raw)) == {"coin": "a", "symbol": '"final":false', "final": True}
    with pytest.raises(ValueError):
        as_final(b'{"final":true}')


def test_a_window_updated_and_closed_in_the_same_batch_is_final_with_that_update() -> None:
    # Spark filters batch b's rows with the previous watermark and evicts with the new one,
    # so the last update and the eviction can fall in one batch.
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 20, 1.0)])
    t.advance(1, [live("btc", 30, 36, 2.0)])  # watermark for batch 2: 31 s
    assert decode(t.advance(2, [live("btc", 0, 29, 1.7)]).finals) == [("btc", 0, 1.7, True)]


def test_unreadable_state_starts_fresh_instead_of_crashing(tmp_path: Path) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(b'{"batch_id": 3, "open": [')  # torn write
    assert FinalTracker.load(path, DELAY).batch_id == -1


def test_two_sources_of_one_coin_and_window_are_two_windows() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0, "coingecko"), live("btc", 0, 11, 2.0, "simulated")])
    assert set(t.open) == {("coingecko", "btc", 0), ("simulated", "btc", 0)}
    t.advance(1, [live("btc", 30, 40, 3.0, "coingecko")])
    finals = [orjson.loads(raw) for _, raw in t.advance(2, []).finals]
    assert sorted((f["source"], f["close"], f["final"]) for f in finals) == [
        ("coingecko", 1.0, True),
        ("simulated", 2.0, True),
    ]
    assert t.advance(3, []).finals == []


def test_state_of_the_version_without_source_starts_fresh_instead_of_crashing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sink-state.json"
    legacy = {
        "batch_id": 7,
        "max_event_ms": 40_000,
        "open": [["btc", 30_000, 60_000, '{"coin":"btc","final":false}']],
    }
    path.write_bytes(orjson.dumps(legacy))
    t = FinalTracker.load(path, DELAY)
    assert (t.batch_id, t.max_event_ms, t.open) == (-1, None, {})
    # The fresh state is saved in this version's format and read back.
    t.advance(8, [live("btc", 60, 70, 1.0)])
    t.save(path)
    assert FinalTracker.load(path, DELAY).open == t.open


@pytest.mark.parametrize(
    "content",
    [
        b"[]",
        b"null",
        b'{"version": 3}',
        b'{"version": 3, "batch_id": 1, "max_event_ms": null, "open": [["btc", 0, 1]]}',
        b'{"version": 3, "batch_id": 1, "max_event_ms": null, "open": [["s", "btc", 0, 1, []]]}',
        b'{"version": 3, "batch_id": "x", "max_event_ms": null, "open": []}',
        b"\xff\xfe",
    ],
)
def test_malformed_state_starts_fresh(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(content)
    assert FinalTracker.load(path, DELAY).batch_id == -1


def part(
    symbol: str,
    first_s: float,
    last_s: float,
    *,
    open_: float,
    close: float,
    high: float,
    low: float,
    avg: float,
    ticks: int,
    change: float | None,
    change_ticks: int,
    cap: float | None,
    cap_s: float | None,
    volume: float | None = None,
) -> LiveWindow:
    record = {
        "source": "sim",
        "coin": "btc",
        "symbol": symbol,
        "window_start": "1970-01-01T00:00:00.000Z",
        "window_end": "1970-01-01T00:00:30.000Z",
        "avg_price": avg,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "avg_change_24h": change,
        "max_volume_24h": volume,
        "market_cap": cap,
        "tick_count": ticks,
        "volatility": volatility(change),
        "trend": trend(change),
        "final": False,
        "kind": "live",
    }
    return LiveWindow(
        "sim",
        "btc",
        0,
        WINDOW,
        int(last_s * 1000),
        orjson.dumps(record),
        symbol,
        int(first_s * 1000),
        change_ticks,
        None if cap_s is None else int(cap_s * 1000),
    )


def test_rows_of_two_symbols_of_one_window_are_published_as_one_merged_record() -> None:
    # The coin's symbol changed at 12 s: Spark grouped BTC's and XBT's ticks apart.
    old = part(
        "BTC", 1, 11, open_=10, close=11, high=12, low=9, avg=10.5, ticks=3,
        change=6.0, change_ticks=2, cap=100.0, cap_s=11, volume=5.0,
    )  # fmt: skip
    new = part(
        "XBT", 12, 20, open_=20, close=21, high=22, low=19, avg=20.0, ticks=1,
        change=None, change_ticks=0, cap=None, cap_s=None, volume=7.0,
    )  # fmt: skip
    t = FinalTracker(DELAY)
    step = t.advance(0, [old, new])
    assert len(step.live) == 1  # one record per key, even within the batch
    merged = orjson.loads(step.live[0][1])
    assert merged["symbol"] == "XBT"  # of the latest tick, like max_by
    assert (merged["open"], merged["close"]) == (10, 21)
    assert (merged["high"], merged["low"]) == (22, 9)
    assert merged["avg_price"] == (10.5 * 3 + 20.0 * 1) / 4
    assert merged["tick_count"] == 4
    assert merged["avg_change_24h"] == 6.0  # only the ticks that had a change
    assert (merged["volatility"], merged["trend"]) == (volatility(6.0), trend(6.0))
    assert merged["market_cap"] == 100.0  # the latest known, though XBT's ticks had none
    assert merged["max_volume_24h"] == 7.0
    assert WindowAggregate.model_validate(merged).final is False

    t.advance(1, [live("btc", 30, 40, 1.0)])
    finals = t.advance(2, []).finals
    assert len(finals) == 1 and orjson.loads(finals[0][1]) == {**merged, "final": True}


def test_a_later_row_of_one_symbol_replaces_that_part_only(tmp_path: Path) -> None:
    def one(symbol: str, first: float, last: float, price: float, avg: float) -> LiveWindow:
        return part(
            symbol, first, last, open_=10 + first, close=price, high=12, low=9, avg=avg,
            ticks=1, change=1.0, change_ticks=1, cap=None, cap_s=None,
        )  # fmt: skip

    t = FinalTracker(DELAY)
    t.advance(0, [one("BTC", 1, 1, 10, 10)])
    t.advance(1, [one("XBT", 5, 5, 11, 11)])
    step = t.advance(2, [one("BTC", 1, 8, 12, 11)])
    merged = orjson.loads(step.live[0][1])
    assert (merged["symbol"], merged["close"], merged["tick_count"]) == ("BTC", 12, 2)
    # Both parts survive a restart.
    path = tmp_path / "sink-state.json"
    t.save(path)
    again = FinalTracker.load(path, DELAY)
    assert again.open == t.open
    assert again.open[("sim", "btc", 0)].record() == step.live[0][1]
