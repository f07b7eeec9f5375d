from __future__ import annotations

from pathlib import Path

import orjson
import pytest

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
    assert t.advance(0, [live("btc", 0, 10, 1.0), live("eth", 0, 12, 2.0)]) == []
    assert t.advance(1, [live("btc", 0, 29, 1.5)]) == []
    # Event time reaches 40 s: the watermark for the *next* batch becomes 35 s.
    assert t.advance(2, [live("btc", 30, 40, 3.0)]) == []
    finals = t.advance(3, [])  # Spark's no-data batch with the new watermark
    assert decode(finals) == [("btc", 0, 1.5, True), ("eth", 0, 2.0, True)]
    assert set(t.open) == {("sim", "btc", 30_000)}
    assert t.advance(4, []) == []  # never twice


def test_boundary_end_equal_to_watermark_is_final_like_spark() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 35, 1.0)])  # watermark for batch 1: 30 s == window end
    assert decode(t.advance(1, [])) == [("btc", 0, 1.0, True)]
    t2 = FinalTracker(DELAY)
    t2.advance(0, [live("btc", 0, 34.999, 1.0)])
    assert t2.advance(1, []) == []


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
    assert decode(again.advance(2, [])) == [("btc", 0, 1.0, True)]
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
    assert decode(t.advance(2, [live("btc", 0, 29, 1.7)])) == [("btc", 0, 1.7, True)]


def test_unreadable_state_starts_fresh_instead_of_crashing(tmp_path: Path) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(b'{"batch_id": 3, "open": [')  # torn write
    assert FinalTracker.load(path, DELAY).batch_id == -1


def test_two_sources_of_one_coin_and_window_are_two_windows() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0, "coingecko"), live("btc", 0, 11, 2.0, "simulated")])
    assert set(t.open) == {("coingecko", "btc", 0), ("simulated", "btc", 0)}
    t.advance(1, [live("btc", 30, 40, 3.0, "coingecko")])
    finals = [orjson.loads(raw) for _, raw in t.advance(2, [])]
    assert sorted((f["source"], f["close"], f["final"]) for f in finals) == [
        ("coingecko", 1.0, True),
        ("simulated", 2.0, True),
    ]
    assert [coin for coin, _ in t.advance(3, [])] == []


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
        b'{"version": 2}',
        b'{"version": 2, "batch_id": 1, "max_event_ms": null, "open": [["btc", 0, 1]]}',
        b'{"version": 2, "batch_id": "x", "max_event_ms": null, "open": []}',
        b"\xff\xfe",
    ],
)
def test_malformed_state_starts_fresh(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(content)
    assert FinalTracker.load(path, DELAY).batch_id == -1
