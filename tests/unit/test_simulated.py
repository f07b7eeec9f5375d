"""Simulated market: reproducible, realistic, every class shows up within minutes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from cryptopulse.classify import TREND_LABELS, VOLATILITY_LABELS, trend, volatility
from cryptopulse.config import DEFAULT_COINS, ProducerSettings
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources.base import FakeClock
from cryptopulse.sources.simulated import SimulatedMarket, SimulatedSource

START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def _json(ticks: list[Tick]) -> list[bytes]:
    return [tick_to_json(t) for t in ticks]


def test_same_seed_same_market() -> None:
    a = SimulatedMarket(50, seed=7, rate=0.5, start=START).ticks(2000)
    b = SimulatedMarket(50, seed=7, rate=0.5, start=START).ticks(2000)
    assert _json(a) == _json(b)
    c = SimulatedMarket(50, seed=8, rate=0.5, start=START).ticks(2000)
    assert _json(a) != _json(c)


def test_sequence_does_not_depend_on_batching() -> None:
    one = SimulatedMarket(10, seed=1, start=START).ticks(300)
    market = SimulatedMarket(10, seed=1, start=START)
    pieces = market.ticks(7) + market.ticks(100) + market.ticks(193)
    assert _json(one) == _json(pieces)


def test_every_tick_is_valid_and_realistic() -> None:
    market = SimulatedMarket(10, seed=3, rate=1 / 30, start=START)
    ticks = market.ticks(10 * 120)  # an hour of simulated time
    assert [t.coin for t in ticks[:10]] == list(DEFAULT_COINS)
    assert ticks[0].symbol == "btc" and 50_000 < ticks[0].price < 150_000
    for tick in ticks:
        assert tick_from_json(tick_to_json(tick)) == tick  # passes the schema
        assert tick.source == "simulated"
        assert tick.change_24h is not None and -40.0 <= tick.change_24h <= 50.0
        assert tick.volume_24h is not None and tick.volume_24h > 0
        assert tick.market_cap is not None and tick.market_cap > 0
    # market cap follows the price (fixed supply)
    btc = [t for t in ticks if t.coin == "bitcoin"]
    supplies = {round((t.market_cap or 0) / t.price, -3) for t in btc}
    assert len(supplies) == 1


def test_ticks_are_staggered_on_simulated_time() -> None:
    market = SimulatedMarket(10, seed=1, rate=1 / 30, start=START)
    ticks = market.ticks(21)
    offsets = [(t.timestamp - START).total_seconds() for t in ticks]
    assert offsets[:3] == [0.0, 3.0, 6.0]  # ten coins over a 30 s round
    assert offsets[10] == 30.0 and offsets[20] == 60.0


@pytest.mark.parametrize("seed", range(20))
def test_every_class_appears_within_a_few_minutes(seed: int) -> None:
    """Default rate (one tick per coin per 30 s), ten coins, five minutes."""
    market = SimulatedMarket(10, seed=seed, rate=1 / 30, start=START)
    ticks = market.ticks(10 * 10)
    changes = [t.change_24h for t in ticks]
    assert {volatility(c) for c in changes} == set(VOLATILITY_LABELS)
    assert {trend(c) for c in changes} == set(TREND_LABELS)
    assert min(c or 0 for c in changes) <= -20 and max(c or 0 for c in changes) >= 20


def test_classes_of_window_averages_and_coins_move_between_classes() -> None:
    """What the dashboard sees: 30 s window averages at one tick per coin per second."""
    market = SimulatedMarket(10, seed=42, rate=1.0, start=START)
    windows: dict[tuple[str, int], list[float]] = defaultdict(list)
    for tick in market.ticks(10 * 300):  # five minutes
        bucket = int((tick.timestamp - START).total_seconds() // 30)
        windows[(tick.coin, bucket)].append(tick.change_24h or 0.0)
    averages = {key: sum(v) / len(v) for key, v in windows.items()}
    assert {volatility(a) for a in averages.values()} == set(VOLATILITY_LABELS)
    assert {trend(a) for a in averages.values()} == set(TREND_LABELS)
    per_coin: dict[str, set[str]] = defaultdict(set)
    for (coin, _), avg in averages.items():
        per_coin[coin].add(volatility(avg))
    assert sum(len(classes) > 1 for classes in per_coin.values()) >= 5


def test_many_coins() -> None:
    market = SimulatedMarket(5000, seed=1, rate=10.0, start=START)
    ticks = market.ticks(5000)
    assert len({t.coin for t in ticks}) == 5000
    assert ticks[10].coin == "sim-0011"
    for tick in ticks[::97]:
        tick_from_json(tick_to_json(tick))
    assert market.ticks_per_second == 50_000


def test_paced_source_follows_the_clock() -> None:
    clock = FakeClock(START.timestamp())
    settings = ProducerSettings(source="simulated", simulated_coins=10, simulated_rate=1.0, seed=1)
    source = SimulatedSource.from_settings(settings, clock=clock, max_ticks=100)
    batches = list(source)
    assert sum(len(b.ticks) for b in batches) == 100
    assert batches[0].ticks[0].timestamp == START  # event time starts at the clock's now
    # ten ticks per second: 100 ticks need ~10 s of (fake) waiting
    assert sum(clock.sleeps) == pytest.approx(9.9, abs=0.2)
    last = batches[-1].ticks[-1]
    assert (last.timestamp - START).total_seconds() == pytest.approx(9.9)


def test_unpaced_source_does_not_wait() -> None:
    clock = FakeClock()
    market = SimulatedMarket(100, seed=1, rate=1 / 30, start=START)
    source = SimulatedSource(market, paced=False, max_batch=1000, max_ticks=2500, clock=clock)
    sizes = [len(b.ticks) for b in source]
    assert sizes == [1000, 1000, 500]
    assert clock.sleeps == []


def test_stop() -> None:
    clock = FakeClock()
    source = SimulatedSource(SimulatedMarket(10, start=START), paced=False, clock=clock)
    count = 0
    for _ in source:
        count += 1
        source.stop()
    assert count == 1


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SimulatedMarket(10, rate=0)
