"""The in-memory market store: keyed by (source, coin, window_start), bounded per series."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cryptopulse.api.store import MAX_SOURCES, MarketStore
from cryptopulse.schema import WindowAggregate
from tests.factories import T0, status, window

SIM = "simulated"
NOW = T0 + timedelta(hours=1)


def test_a_later_record_replaces_the_same_window() -> None:
    store = MarketStore(10)
    store.apply([window(i=0, price=1.0, final=False)], NOW)
    store.apply([window(i=0, price=2.0, final=True)], NOW)
    history = store.history(SIM, "bitcoin")
    assert history is not None and len(history) == 1
    assert history[0].avg_price == 2.0 and history[0].final


def test_the_same_record_twice_is_no_change() -> None:
    """A window arrives by POST and again from the windows topic: broadcast once."""
    store = MarketStore(10)
    assert len(store.apply([window(i=0)], NOW).changed) == 1
    version = store.version
    assert store.apply([window(i=0)], NOW).changed == []
    assert store.version == version


def test_two_sources_never_share_a_series() -> None:
    store = MarketStore(10)
    store.apply([window(i=0, price=1.0, source="coingecko"), window(i=0, price=2.0)], NOW)
    assert [w.avg_price for w in store.history("coingecko", "bitcoin") or []] == [1.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [2.0]
    assert [w.source for w in store.latest("coingecko")] == ["coingecko"]
    assert store.sources == ["coingecko", SIM]
    assert len(store.snapshot(5)) == 2


def test_latest_is_the_newest_window_even_when_an_older_one_arrives_late() -> None:
    store = MarketStore(10)
    store.apply([window(i=1, price=11.0, final=False)], NOW)
    store.apply([window(i=0, price=10.0, final=True)], NOW)  # the final of the previous window
    assert [w.avg_price for w in store.latest(SIM)] == [11.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [10.0, 11.0]


def test_history_is_bounded_and_oldest_first() -> None:
    store = MarketStore(3)
    store.apply([window(i=i, price=float(i + 1)) for i in range(5)], NOW)
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [3.0, 4.0, 5.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin", 2) or []] == [4.0, 5.0]
    # older than everything kept: not stored, no version change
    version = store.version
    assert store.apply([window(i=0)], NOW).changed == []
    assert store.version == version


def test_latest_and_snapshot_cover_every_coin() -> None:
    store = MarketStore(5)
    for coin in ("solana", "bitcoin"):
        store.apply([window(coin, i) for i in range(4)], NOW)
    assert [w.coin for w in store.latest(SIM)] == ["bitcoin", "solana"]
    snapshot = store.snapshot(2)
    assert [(w.coin, w.window_start) for w in snapshot] == [
        ("bitcoin", T0 + timedelta(seconds=60)),
        ("bitcoin", T0 + timedelta(seconds=90)),
        ("solana", T0 + timedelta(seconds=60)),
        ("solana", T0 + timedelta(seconds=90)),
    ]
    assert len(store) == 8
    assert store.history(SIM, "dogecoin") is None


def test_statuses_keep_the_newest_per_source_and_bump_the_version() -> None:
    store = MarketStore(5)
    assert store.version == 0
    store.apply([window()], NOW)
    assert store.set_status(status("coingecko", "degraded", detail="HTTP 429"))
    assert store.version == 2
    assert not store.set_status(status("coingecko", "degraded", detail="HTTP 429"))
    older = status("coingecko", "live", at=T0 - timedelta(seconds=10))
    assert not store.set_status(older)  # a stale record (replayed topic) never wins
    assert store.statuses["coingecko"].state == "degraded"
    assert store.version == 2


def test_the_default_source_is_the_running_one() -> None:
    store = MarketStore(5)
    assert store.default_source() is None
    store.apply([window(i=5, source="coingecko"), window(i=0, source=SIM)], NOW)
    assert store.default_source() == "coingecko"  # no status yet: the newest window's source
    store.set_status(status("coingecko", "live", at=T0))  # an earlier run's, on the topic
    store.set_status(status(SIM, "simulated", at=T0 + timedelta(minutes=5)))
    assert store.default_source() == SIM  # the heartbeat that is newest


def test_several_running_sources_do_not_take_turns_as_the_default() -> None:
    store = MarketStore(5)
    store.set_status(status("kraken", "live", at=T0 - timedelta(minutes=10)))  # stopped since
    store.set_status(status("coinbase", "live", at=T0))
    assert store.default_source() == "coinbase"
    for second in range(1, 40, 10):  # one producer repeats both statuses, in turn
        at = T0 + timedelta(seconds=second)
        store.set_status(status("binance", "live", at=at))
        assert store.default_source() == "binance"
        store.set_status(status("coinbase", "live", at=at + timedelta(seconds=5)))
        assert store.default_source() == "binance"


def test_history_per_coin_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarketStore(0)


def test_new_coins_beyond_the_limit_are_refused_and_the_known_ones_still_update() -> None:
    store = MarketStore(5, max_series=3)
    applied = store.apply([window(f"coin-{i}", 0) for i in range(5)], NOW)
    assert len(applied.changed) == 3 and applied.refused == 2
    assert store.coins(SIM) == ["coin-0", "coin-1", "coin-2"]
    again = store.apply([window("coin-1", 1), window("coin-9", 1)], NOW)
    assert [w.coin for w in again.changed] == ["coin-1"] and again.refused == 1
    assert store.series_count == 3


def test_idle_series_are_evicted_to_make_room_by_event_time() -> None:
    store = MarketStore(5, max_series=2, idle=timedelta(hours=1))
    store.apply([window("old", 0), window("busy", 0)], NOW)
    # two hours of data later (event time) only "busy" has kept up
    store.apply([window("busy", i) for i in range(1, 241)], NOW)
    applied = store.apply([window("new", 240)], NOW + timedelta(seconds=2))
    assert applied.refused == 0 and store.coins(SIM) == ["busy", "new"]
    assert store.evicted == 1 and store.history(SIM, "old") is None


def test_a_replay_of_old_data_is_not_evicted_by_the_wall_clock() -> None:
    store = MarketStore(5, max_series=10, idle=timedelta(hours=1))
    store.apply([window(f"coin-{i}", 0) for i in range(3)], NOW + timedelta(days=30))
    store.apply([window("coin-0", 1)], NOW + timedelta(days=30, minutes=5))  # a routine sweep
    assert store.series_count == 3 and store.evicted == 0


def test_the_snapshot_is_bounded_history_first_then_the_least_recent_series() -> None:
    store = MarketStore(10)
    for n, coin in enumerate(("a", "b", "c", "d")):
        store.apply([window(coin, i) for i in range(n, n + 5)], NOW)
    assert len(store.snapshot(5)) == 20
    cut = store.snapshot(5, max_records=8)  # two windows per coin fit
    assert len(cut) == 8 and {w.coin for w in cut} == {"a", "b", "c", "d"}
    newest_two = store.snapshot(5, max_records=2)  # one window each for the two freshest
    assert [(w.coin, w.window_start) for w in newest_two] == [
        ("c", T0 + timedelta(seconds=6 * 30)),
        ("d", T0 + timedelta(seconds=7 * 30)),
    ]


def test_statuses_are_bounded() -> None:
    store = MarketStore(5)
    for i in range(MAX_SOURCES):
        assert store.set_status(status(f"source-{i}", "live"))
    assert not store.set_status(status("one-too-many", "live"))
    assert store.set_status(status("source-0", "degraded", at=T0 + timedelta(seconds=1)))


def test_the_snapshot_json_is_made_once_per_window_and_follows_changes() -> None:
    from cryptopulse.api.hub import encode_record

    calls: list[WindowAggregate] = []

    def counting(record: WindowAggregate) -> bytes:
        calls.append(record)
        return encode_record(record)

    store = MarketStore(2)
    store.apply([window(i=i) for i in range(3)], NOW)
    first = store.snapshot_json(5, counting, None)
    assert first == [encode_record(w) for w in store.snapshot(5)] and len(calls) == 2
    assert store.snapshot_json(5, counting, None) == first and len(calls) == 2  # cached
    store.apply([window(i=2, price=7.0)], NOW)  # the newest window changes
    again = store.snapshot_json(5, counting, None)
    assert again[1] == encode_record(window(i=2, price=7.0)) and len(calls) == 3
