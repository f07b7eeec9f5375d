from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cryptopulse.stream.finals import FinalTracker, Partial
from tests.factories import T, one_tick_state

WINDOW = 30_000
DELAY = 5_000


def live(
    coin: str, start_s: int, last_event_s: float, close: float, source: str = "sim"
) -> Partial:
    """One batch's partial of a window: one tick at `last_event_s` priced `close`."""
    start = start_s * 1000
    state = one_tick_state(T(close, int(last_event_s * 1_000_000)), start + WINDOW)
    return (source, coin, start, state)


def start_ms(record: dict[str, object]) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(str(record["window_start"])).timestamp() * 1000)


def decode(finals: list[tuple[str, bytes]]) -> list[tuple[str, int, float, bool]]:
    out = []
    for coin, raw in finals:
        r = orjson.loads(raw)
        out.append((coin, start_ms(r) // 1000, r["close"], r["final"]))
    return out


def test_a_window_is_final_once_the_watermark_passes_its_end() -> None:
    t = FinalTracker(DELAY)
    assert t.advance(0, [live("btc", 0, 10, 1.0), live("eth", 0, 12, 2.0)]).finals == []
    assert t.advance(1, [live("btc", 0, 29, 1.5)]).finals == []
    # Event time reaches 40 s: the watermark becomes 35 s, past both windows' end.
    change = t.advance(2, [live("btc", 30, 40, 3.0)])
    assert decode(change.live) == [("btc", 30, 3.0, False)]
    assert decode(change.finals) == [("btc", 0, 1.5, True), ("eth", 0, 2.0, True)]
    assert set(t.open) == {("sim", "btc", 30_000)}
    assert t.advance(3, []).finals == []  # never twice


def test_live_records_carry_the_windows_aggregate_so_far() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0)])
    [(coin, raw)] = t.advance(1, [live("btc", 0, 20, 3.0)]).live
    record = orjson.loads(raw)
    assert (coin, record["open"], record["close"], record["tick_count"]) == ("btc", 1.0, 3.0, 2)
    assert (record["avg_price"], record["final"]) == (2.0, False)


def test_boundary_end_equal_to_watermark_is_final_like_spark() -> None:
    t = FinalTracker(DELAY)
    # watermark 30 s == window end
    assert decode(t.advance(0, [live("btc", 0, 35, 1.0)]).finals) == [("btc", 0, 1.0, True)]
    t2 = FinalTracker(DELAY)
    assert t2.advance(0, [live("btc", 0, 34.999, 1.0)]).finals == []


def test_ticks_of_a_closed_window_are_late_dropped_and_counted() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0), live("btc", 30, 36, 2.0)])  # closes [0, 30)
    change = t.advance(1, [live("btc", 0, 29, 9.0), live("btc", 30, 37, 2.5)])
    assert change.late_ticks == 1
    assert decode(change.live) == [("btc", 30, 2.5, False)]
    assert ("sim", "btc", 0) not in t.open


def test_a_tick_less_than_the_delay_behind_the_latest_is_never_late() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 30, 34.9, 1.0)])  # watermark 29.9 s: [0, 30) still open
    change = t.advance(1, [live("btc", 0, 29.95, 2.0)])
    assert change.late_ticks == 0
    assert decode(change.live) == [("btc", 0, 2.0, False)]


def test_watermark_never_moves_back() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 60, 70, 1.0)])
    t.advance(1, [live("eth", 60, 61, 1.0)])  # older event time, same window
    assert t.max_event_ms == 70_000


def test_state_survives_a_restart_and_replayed_batches_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "sink-state.json"
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0)])
    t.advance(1, [live("btc", 30, 33, 2.0)])
    t.save(path)
    again = FinalTracker.load(path, DELAY)
    assert again.seen(1) and not again.seen(2)
    assert again.open == t.open and again.max_event_ms == t.max_event_ms
    # The window goes on from its saved aggregate.
    change = again.advance(2, [live("btc", 0, 20, 1.4), live("btc", 30, 36, 2.5)])
    assert decode(change.finals) == [("btc", 0, 1.4, True)]
    assert orjson.loads(change.finals[0][1])["tick_count"] == 2
    assert FinalTracker.load(tmp_path / "missing.json", DELAY).batch_id == -1


def test_a_window_updated_and_closed_in_the_same_batch_is_final_with_that_update() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 20, 1.0)])
    change = t.advance(1, [live("btc", 0, 29, 1.7), live("btc", 30, 36, 2.0)])
    assert decode(change.finals) == [("btc", 0, 1.7, True)]
    assert ("btc", 0, 1.7, False) in decode(change.live)


def test_unreadable_state_starts_fresh_instead_of_crashing(tmp_path: Path) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(b'{"batch_id": 3, "open": [')  # torn write
    assert FinalTracker.load(path, DELAY).batch_id == -1


def test_two_sources_of_one_coin_and_window_are_two_windows() -> None:
    t = FinalTracker(DELAY)
    t.advance(0, [live("btc", 0, 10, 1.0, "coingecko"), live("btc", 0, 11, 2.0, "simulated")])
    assert set(t.open) == {("coingecko", "btc", 0), ("simulated", "btc", 0)}
    finals = [orjson.loads(raw) for _, raw in t.advance(1, [live("btc", 30, 40, 3.0)]).finals]
    assert sorted((f["source"], f["close"], f["final"]) for f in finals) == [
        ("coingecko", 1.0, True),
        ("simulated", 2.0, True),
    ]
    assert t.advance(2, []).finals == []


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
    assert t.open
    assert FinalTracker.load(path, DELAY).open == t.open


@pytest.mark.parametrize(
    "content",
    [
        b"[]",
        b"null",
        b'{"version": 3}',
        b'{"version": 3, "batch_id": 1, "max_event_ms": null, "open": [["btc", 0, 1]]}',
        b'{"version": 3, "batch_id": "x", "max_event_ms": null, "open": []}',
        # an aggregate with a field of the wrong type
        b'{"version": 3, "batch_id": 1, "max_event_ms": 9, "open": [["s", "btc", 0, 30000, "btc",'
        b' 9, null, null, null, null, "x", 1, 1.0, 1, 1.0, 1, 1.0, 1.0, null, null, null, null,'
        b" null, 0, null, 0, null]]}",
        # the previous version's: each open window's last record, no aggregate
        b'{"version": 2, "batch_id": 1, "max_event_ms": 9, "open": [["s", "btc", 0, 30000, "{}"]]}',
        b"\xff\xfe",
    ],
)
def test_malformed_state_starts_fresh(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sink-state.json"
    path.write_bytes(content)
    assert FinalTracker.load(path, DELAY).batch_id == -1
