"""The in-memory market store: keyed by (coin, window_start), bounded per coin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cryptopulse.api.store import MarketStore
from cryptopulse.schema import SourceStatusMessage, WindowAggregate

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def window(
    coin: str = "bitcoin", i: int = 0, *, price: float = 100.0, final: bool = True
) -> WindowAggregate:
    start = T0 + timedelta(seconds=30 * i)
    return WindowAggregate(
        coin=coin,
        symbol=coin[:3],
        window_start=start,
        window_end=start + timedelta(seconds=30),
        avg_price=price,
        open=price,
        high=price,
        low=price,
        close=price,
        avg_change_24h=0.5,
        max_volume_24h=1.0,
        market_cap=2.0,
        tick_count=3,
        volatility="Stable",
        trend="➡️ Stable",
        final=final,
    )


def test_a_later_record_replaces_the_same_window() -> None:
    store = MarketStore(10)
    store.apply([window(i=0, price=1.0, final=False)])
    store.apply([window(i=0, price=2.0, final=True)])
    history = store.history("bitcoin")
    assert history is not None and len(history) == 1
    assert history[0].avg_price == 2.0 and history[0].final


def test_latest_is_the_newest_window_even_when_an_older_one_arrives_late() -> None:
    store = MarketStore(10)
    store.apply([window(i=1, price=11.0, final=False)])
    store.apply([window(i=0, price=10.0, final=True)])  # the final of the previous window
    assert [w.avg_price for w in store.latest()] == [11.0]
    assert [w.avg_price for w in store.history("bitcoin") or []] == [10.0, 11.0]


def test_history_is_bounded_and_oldest_first() -> None:
    store = MarketStore(3)
    store.apply([window(i=i, price=float(i + 1)) for i in range(5)])
    assert [w.avg_price for w in store.history("bitcoin") or []] == [3.0, 4.0, 5.0]
    assert [w.avg_price for w in store.history("bitcoin", 2) or []] == [4.0, 5.0]
    # older than everything kept: not stored, no version change
    version = store.version
    assert store.apply([window(i=0)]) == 0
    assert store.version == version


def test_latest_and_snapshot_cover_every_coin() -> None:
    store = MarketStore(5)
    for coin in ("solana", "bitcoin"):
        store.apply([window(coin, i) for i in range(4)])
    assert [w.coin for w in store.latest()] == ["bitcoin", "solana"]
    snapshot = store.snapshot(2)
    assert [(w.coin, w.window_start) for w in snapshot] == [
        ("bitcoin", T0 + timedelta(seconds=60)),
        ("bitcoin", T0 + timedelta(seconds=90)),
        ("solana", T0 + timedelta(seconds=60)),
        ("solana", T0 + timedelta(seconds=90)),
    ]
    assert len(store) == 8
    assert store.history("dogecoin") is None


def test_every_change_bumps_the_version() -> None:
    store = MarketStore(5)
    assert store.version == 0
    store.apply([window()])
    store.set_source_status(SourceStatusMessage(source="coingecko", live=False, detail="HTTP 429"))
    assert store.version == 2
    assert store.source_status is not None and not store.source_status.live


def test_history_per_coin_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarketStore(0)
