"""The in-memory market store: keyed by (source, coin, window_start), bounded per series."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cryptopulse.api.store import MarketStore
from tests.factories import T0, status, window

SIM = "simulated"


def test_a_later_record_replaces_the_same_window() -> None:
    store = MarketStore(10)
    store.apply([window(i=0, price=1.0, final=False)])
    store.apply([window(i=0, price=2.0, final=True)])
    history = store.history(SIM, "bitcoin")
    assert history is not None and len(history) == 1
    assert history[0].avg_price == 2.0 and history[0].final


def test_the_same_record_twice_is_no_change() -> None:
    """A window arrives by POST and again from the windows topic: broadcast once."""
    store = MarketStore(10)
    assert len(store.apply([window(i=0)])) == 1
    version = store.version
    assert store.apply([window(i=0)]) == []
    assert store.version == version


def test_two_sources_never_share_a_series() -> None:
    store = MarketStore(10)
    store.apply([window(i=0, price=1.0, source="coingecko"), window(i=0, price=2.0)])
    assert [w.avg_price for w in store.history("coingecko", "bitcoin") or []] == [1.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [2.0]
    assert [w.source for w in store.latest("coingecko")] == ["coingecko"]
    assert store.sources == ["coingecko", SIM]
    assert len(store.snapshot(5)) == 2


def test_latest_is_the_newest_window_even_when_an_older_one_arrives_late() -> None:
    store = MarketStore(10)
    store.apply([window(i=1, price=11.0, final=False)])
    store.apply([window(i=0, price=10.0, final=True)])  # the final of the previous window
    assert [w.avg_price for w in store.latest(SIM)] == [11.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [10.0, 11.0]


def test_history_is_bounded_and_oldest_first() -> None:
    store = MarketStore(3)
    store.apply([window(i=i, price=float(i + 1)) for i in range(5)])
    assert [w.avg_price for w in store.history(SIM, "bitcoin") or []] == [3.0, 4.0, 5.0]
    assert [w.avg_price for w in store.history(SIM, "bitcoin", 2) or []] == [4.0, 5.0]
    # older than everything kept: not stored, no version change
    version = store.version
    assert store.apply([window(i=0)]) == []
    assert store.version == version


def test_latest_and_snapshot_cover_every_coin() -> None:
    store = MarketStore(5)
    for coin in ("solana", "bitcoin"):
        store.apply([window(coin, i) for i in range(4)])
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
    store.apply([window()])
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
    store.apply([window(i=5, source="coingecko"), window(i=0, source=SIM)])
    assert store.default_source() == "coingecko"  # no status yet: the newest window's source
    store.set_status(status("coingecko", "live", at=T0))
    store.set_status(status(SIM, "simulated", at=T0 + timedelta(seconds=5)))
    assert store.default_source() == SIM  # the heartbeat that is newest


def test_history_per_coin_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarketStore(0)
