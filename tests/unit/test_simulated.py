"""Simulated market: reproducible, realistic, every class shows up within minutes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from cryptopulse.classify import TREND_LABELS, VOLATILITY_LABELS, trend, volatility
from cryptopulse.config import DEFAULT_COINS, ProducerSettings
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources.base import FakeClock
from cryptopulse.sources.simulated import BACKFILL_MAX_POINTS, SimulatedMarket, SimulatedSource
from tests.unit.test_backfill import Collected

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


# -- backfill: the same walk over the last 24 h ------------------------------------------------


def _backfilled(
    seed: int = 42, coins: int = 10, rate: float = 1 / 30, ticks: int = 20
) -> tuple[Collected, list[Tick]]:
    """A source that backfilled into a sink, and its first live ticks."""
    market = SimulatedMarket(coins, seed=seed, rate=rate, start=START)
    source = SimulatedSource(market, paced=False, max_ticks=ticks, clock=FakeClock())
    sink = Collected()
    source.backfill_to(sink, window_seconds=30, retry=600)
    live = [t for batch in source for t in batch.ticks]
    return sink, live


def test_backfill_fills_24h_of_windows_per_coin_before_the_first_live_tick() -> None:
    sink, live = _backfilled()
    assert sink.rounds == [10]
    assert list(sink.windows) == list(DEFAULT_COINS)
    for coin, windows in sink.windows.items():
        assert len(windows) == 2880  # 24 h of 30 s windows, one tick each at the default rate
        assert windows[0].window_start == START - timedelta(days=1)
        assert windows[-1].window_end == START  # the window of the first live tick is live
        assert all(w.kind == "backfill" and w.final and w.coin == coin for w in windows)
        assert all(w.tick_count == 1 and w.avg_change_24h is not None for w in windows)
    assert live[0].timestamp == START  # live ticks keep their times


def test_backfill_is_deterministic_for_a_seed() -> None:
    a, live_a = _backfilled(seed=7, coins=3)
    b, live_b = _backfilled(seed=7, coins=3)
    assert a.windows == b.windows and _json(live_a) == _json(live_b)
    c, _ = _backfilled(seed=8, coins=3)
    assert a.windows["bitcoin"] != c.windows["bitcoin"]


def test_live_ticks_continue_the_backfilled_walk() -> None:
    """No jump at the live edge: with backfill, the live ticks are exactly the ticks that follow
    the backfilled 24 h in one walk started a day earlier, and each window holds that walk's
    price at its time."""
    sink, live = _backfilled(coins=3, ticks=30)
    walk = SimulatedMarket(3, seed=42, rate=1 / 30, start=START - timedelta(days=1))
    whole = walk.ticks(2880 * 3 + 30)
    assert _json(live) == _json(whole[2880 * 3 :])
    past = [t for t in whole[: 2880 * 3] if t.coin == "bitcoin"]
    assert [w.close for w in sink.windows["bitcoin"]] == [t.price for t in past]
    assert [w.avg_change_24h for w in sink.windows["bitcoin"]] == [t.change_24h for t in past]
    last, first = past[-1].price, live[0].price
    assert abs(first / last - 1) < 0.05  # one step of the walk, not a restart


def test_backfill_is_bounded_for_many_coins_or_fast_rates() -> None:
    many = SimulatedMarket(5000, seed=1, rate=1 / 30, start=START)
    rounds = many.backfill_rounds()
    assert rounds * 5000 <= BACKFILL_MAX_POINTS and rounds >= 1
    fast = SimulatedMarket(20, seed=1, rate=10.0, start=START)
    assert fast.backfill_rounds() * 20 <= BACKFILL_MAX_POINTS
    assert SimulatedMarket(10, rate=1 / 30, start=START).backfill_rounds() == 2880


def test_paced_live_ticks_start_at_once_after_the_backfill() -> None:
    clock = FakeClock(START.timestamp())
    settings = ProducerSettings(source="simulated", simulated_coins=2, simulated_rate=0.1, seed=1)
    source = SimulatedSource.from_settings(settings, clock=clock, max_ticks=20)
    sink = Collected()
    source.backfill_to(sink, window_seconds=30, retry=600)
    batches = list(source)
    assert sum(len(b.ticks) for b in batches) == 20  # max_ticks counts live ticks only
    assert batches[0].ticks[0].timestamp == START
    assert sum(clock.sleeps) == pytest.approx(95, abs=2)  # paced as without backfill
    # 0.1 ticks a second per coin: three ticks in each 30 s window of the last 24 h
    windows = [w for coin in sink.windows.values() for w in coin]
    assert len(windows) == 2 * 2880 and sum(w.tick_count for w in windows) == 2 * 8640
    assert max(w.window_end for w in windows) == START
    assert all(w.tick_count == 3 for w in windows)


def test_history_only_before_the_first_tick() -> None:
    market = SimulatedMarket(10, start=START)
    market.ticks(1)
    with pytest.raises(RuntimeError):
        market.history(10)
