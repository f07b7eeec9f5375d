"""An offline market: seeded, reproducible, realistic enough to exercise every dashboard state.

Each coin starts from a realistic price, supply and volume with its own volatility. Its state
is the log 24 h return `x = ln(1 + change_24h / 100)`, which follows a mean-reverting random
walk toward a *regime* target; regimes switch now and then, and occasional jumps add shocks.
A move of `x` is split between the price (a random-walk return) and the price 24 h ago
(the reference sliding forward), so `price / reference - 1 == change_24h` always holds.

Regime targets come from a ladder that spans every volatility and trend class
(-26 % .. +26 %), dealt out so that any ten coins cover all classes from the start, and
switching keeps each coin travelling between classes within a few minutes.

Time is simulated: coin `i` ticks at `start + (k + i / n) / rate` (staggered), so the
sequence depends only on (seed, coins, rate, start) — not on how fast it is consumed.
`SimulatedSource` paces the sequence to the wall clock (or not, for benchmarks).

Backfill: the same walk starts 24 h earlier and its first 24 h are generated at once (as
points, aggregated to `backfill` windows by `cryptopulse.backfill`); the live ticks continue
from where that walk ends, so there is no jump at the live edge. At most `BACKFILL_MAX_POINTS`
points in all: with many coins or a high rate the backfill covers less than 24 h.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptopulse.backfill import DAY, Point, to_windows
from cryptopulse.coins import COINS
from cryptopulse.config import ProducerSettings
from cryptopulse.schema import Tick
from cryptopulse.sources.base import BackfillSink, Batch, Clock, SystemClock

log = logging.getLogger("cryptopulse.sources.simulated")

SOURCE_NAME: Final = "simulated"

# Regime targets for the 24 h change, in percent: every volatility and trend class.
REGIME_LADDER: Final = (-26.0, -13.0, -7.0, -3.5, -1.0, 0.5, 3.0, 7.0, 14.0, 26.0)
MEAN_REVERSION: Final = 1 / 45  # per second: the change closes most of the gap in ~1.5 min
REGIME_SECONDS: Final = 90.0  # mean time between regime switches per coin
JUMP_SECONDS: Final = 240.0  # mean time between jumps per coin
PRICE_SHARE: Final = 0.5  # fraction of a 24 h change move carried by the price itself
_MIN_X: Final = math.log1p(-0.40)  # the 24 h change stays within -40 % .. +50 %
_MAX_X: Final = math.log1p(0.50)
BACKFILL_MAX_POINTS: Final = 100_000  # 10 coins x 24 h at one tick per 30 s is 28,800


@dataclass(frozen=True)
class CoinSpec:
    coin: str
    symbol: str
    price: float  # starting price, USD
    supply: float  # circulating supply
    volume: float  # typical 24 h volume, USD
    volatility: float  # daily volatility of returns (0.03 = 3 %)


# The default coins, from their approximate late-2024 figures.
KNOWN_COINS: Final[tuple[CoinSpec, ...]] = tuple(
    CoinSpec(c.id, c.symbol, m.price, m.supply, m.volume, m.volatility)
    for c in COINS
    if (m := c.market) is not None
)


def coin_specs(count: int, seed: int) -> list[CoinSpec]:
    """The default coins first, then generated ones (`sim-0011`...) with plausible figures."""
    specs = list(KNOWN_COINS[:count])
    rng = random.Random(f"coins-{seed}")
    for i in range(len(specs), count):
        price = 10 ** rng.uniform(-4, 3.5)
        market_cap = 10 ** rng.uniform(7, 10.5)
        specs.append(
            CoinSpec(
                coin=f"sim-{i + 1:04d}",
                symbol=f"s{i + 1:04d}",
                price=price,
                supply=market_cap / price,
                volume=market_cap * rng.uniform(0.02, 0.3),
                volatility=rng.uniform(0.04, 0.12),
            )
        )
    return specs


class _CoinState:
    __slots__ = ("change_x", "price", "spec", "target_x", "volume")

    def __init__(self, spec: CoinSpec, target: float, start_change: float) -> None:
        self.spec = spec
        self.target_x = math.log1p(target / 100)
        self.change_x = math.log1p(start_change / 100)
        self.price = spec.price
        self.volume = spec.volume


class SimulatedMarket:
    """The deterministic market model: `ticks(n)` returns the next n ticks of the sequence."""

    def __init__(
        self,
        coins: int | Sequence[CoinSpec] = 10,
        *,
        seed: int = 42,
        rate: float = 1 / 30,
        start: datetime | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (ticks per coin per second)")
        self.specs = coin_specs(coins, seed) if isinstance(coins, int) else list(coins)
        if not self.specs:
            raise ValueError("at least one coin")
        self.rate = rate
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self._start_epoch = self.start.timestamp()
        self._rng = random.Random(seed)
        rng = self._rng
        ladder = list(REGIME_LADDER)
        rng.shuffle(ladder)
        self._coins: list[_CoinState] = []
        for i, spec in enumerate(self.specs):
            # any ten consecutive coins get the whole ladder, so every class shows at once
            target = ladder[i % len(ladder)] if i < len(ladder) else rng.choice(REGIME_LADDER)
            self._coins.append(_CoinState(spec, target, target * rng.uniform(0.8, 1.1)))
        self._n = len(self._coins)
        self._dt = 1 / rate  # simulated seconds between two ticks of one coin
        self.emitted = 0  # ticks produced so far (position in the sequence)
        # per-tick probabilities and scales, the same for every tick of a coin
        self._p_regime = 1 - math.exp(-self._dt / REGIME_SECONDS)
        self._p_jump = 1 - math.exp(-self._dt / JUMP_SECONDS)
        self._reversion = 1 - math.exp(-MEAN_REVERSION * self._dt)

    @property
    def coin_count(self) -> int:
        return self._n

    @property
    def ticks_per_second(self) -> float:
        return self._n * self.rate

    def offset_of(self, index: int) -> float:
        """Simulated seconds from `start` to tick number `index` of the sequence."""
        rnd, i = divmod(index, self._n)
        return (rnd + i / self._n) * self._dt

    def ticks(self, count: int) -> list[Tick]:
        return [self._next() for _ in range(count)]

    def backfill_rounds(self, seconds: float = DAY) -> int:
        """Rounds (one tick per coin each) of a backfill over `seconds`, within the point cap."""
        span = min(seconds, BACKFILL_MAX_POINTS / self.ticks_per_second)
        return math.floor(span * self.rate)

    def history(self, rounds: int) -> list[list[Point]]:
        """Run the walk `rounds` rounds back in time: `start` moves back by that much, so the
        ticks after them begin at the old start, continuing from the walk's end state. Each
        coin's points, in time order. Only before the first tick."""
        if self.emitted:
            raise RuntimeError("history() comes before the first tick")
        self.start = datetime.fromtimestamp(self._start_epoch - rounds * self._dt, UTC)
        self._start_epoch = self.start.timestamp()
        out: list[list[Point]] = [[] for _ in self._coins]
        for _ in range(rounds * self._n):
            index = self.emitted
            self.emitted += 1
            coin = self._advance(index)
            price, change, volume, cap = self._figures(coin)
            at = self._start_epoch + self.offset_of(index)
            out[index % self._n].append(Point(at, price, change, volume, cap))
        return out

    def _next(self) -> Tick:
        index = self.emitted
        self.emitted += 1
        return self._tick(self._advance(index), index)

    def _advance(self, index: int) -> _CoinState:
        """The state of the coin whose tick `index` is, moved one step (not its first)."""
        coin = self._coins[index % self._n]
        spec = coin.spec
        rng = self._rng
        dt = self._dt
        if index < self._n:  # each coin's first tick shows its starting state
            return coin
        if rng.random() < self._p_regime:
            coin.target_x = math.log1p(rng.choice(REGIME_LADDER) / 100)
        # demo-speed volatility: a coin's daily figure per minute of simulated time
        sigma = spec.volatility * math.sqrt(min(dt, 600.0) / 60.0)
        move = (coin.target_x - coin.change_x) * self._reversion + rng.gauss(0.0, sigma * 0.5)
        if rng.random() < self._p_jump:
            move += rng.gauss(0.0, 2 * spec.volatility)
        new_x = min(max(coin.change_x + move, _MIN_X), _MAX_X)  # keep the 24 h change sane
        move = new_x - coin.change_x
        coin.change_x = new_x
        # the price carries part of the move plus its own noise; the 24 h reference the rest
        coin.price *= math.exp(PRICE_SHARE * move + rng.gauss(0.0, sigma * 0.2))
        change = math.expm1(coin.change_x) * 100
        surge = 1 + abs(change) / 10
        coin.volume += (spec.volume * surge * rng.lognormvariate(0, 0.1) - coin.volume) * 0.2
        return coin

    @staticmethod
    def _figures(coin: _CoinState) -> tuple[float, float, float, float]:
        """Price, 24 h change, 24 h volume and market cap as published (rounded)."""
        change = math.expm1(coin.change_x) * 100
        return (
            round(coin.price, 10) or 1e-10,
            round(change, 4),
            round(coin.volume, 2),
            round(coin.price * coin.spec.supply, 2),
        )

    def _tick(self, coin: _CoinState, index: int) -> Tick:
        price, change, volume, cap = self._figures(coin)
        timestamp = datetime.fromtimestamp(self._start_epoch + self.offset_of(index), UTC)
        # validated here (cheaper than model_construct) and again as JSON by the producer
        return Tick(
            coin=coin.spec.coin,
            symbol=coin.spec.symbol,
            price=price,
            change_24h=change,
            volume_24h=volume,
            market_cap=cap,
            timestamp=timestamp,
            source=SOURCE_NAME,
        )


class SimulatedSource:
    """Yields the simulated market, paced to the wall clock (or as fast as possible)."""

    name = SOURCE_NAME

    def __init__(
        self,
        market: SimulatedMarket,
        *,
        paced: bool = True,
        max_batch: int = 5000,
        max_ticks: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.market = market
        self.paced = paced
        self.max_batch = max_batch
        self.max_ticks = max_ticks
        self.clock: Clock = clock or SystemClock()
        self._backfill_to: tuple[BackfillSink, float] | None = None

    def backfill_to(self, sink: BackfillSink, *, window_seconds: float, retry: float) -> None:
        """Before the first tick, generate the last 24 h into `sink` (`retry` is unused: the
        simulator cannot fail)."""
        self._backfill_to = (sink, window_seconds)

    def run_backfill(self, sink: BackfillSink, window_seconds: float) -> int:
        """The walk's last 24 h (or less, see `BACKFILL_MAX_POINTS`) as backfill windows to
        `sink`, per coin; the number of windows. Live ticks continue from the walk's end."""
        market = self.market
        started = time.perf_counter()
        until = market.start.timestamp()  # the first live tick: its window is live
        history = market.history(market.backfill_rounds())
        count = 0
        for spec, points in zip(market.specs, history, strict=True):
            made = to_windows(
                points,
                source=SOURCE_NAME,
                coin=spec.coin,
                symbol=spec.symbol,
                window_seconds=window_seconds,
                until=until,
            )
            count += sink.publish(spec.coin, made.windows)
        sink.round_done(len(history), time.perf_counter() - started)
        return count

    @classmethod
    def from_settings(
        cls,
        settings: ProducerSettings,
        *,
        paced: bool = True,
        max_ticks: int | None = None,
        clock: Clock | None = None,
        start: datetime | None = None,
    ) -> SimulatedSource:
        clock = clock or SystemClock()
        market = SimulatedMarket(
            settings.simulated_coins,
            seed=settings.seed,
            rate=settings.simulated_rate,
            start=start or datetime.fromtimestamp(clock.time(), UTC),
        )
        return cls(market, paced=paced, max_ticks=max_ticks, clock=clock)

    def describe(self) -> str:
        m = self.market
        pace = f"{m.ticks_per_second:,.4g} ticks/s" if self.paced else "as fast as possible"
        return f"{m.coin_count} simulated coins, {m.rate:.4g} ticks/coin/s ({pace})"

    def stop(self) -> None:
        self.clock.stop()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Batch]:
        market = self.market
        origin = self.clock.monotonic()
        if self._backfill_to is not None and market.emitted == 0:
            self.run_backfill(*self._backfill_to)
        first = market.emitted  # the backfill's ticks are past, not live
        lead = market.offset_of(first)
        cycle = 0
        while not self.clock.stopped:
            taken = market.emitted - first
            remaining = None if self.max_ticks is None else self.max_ticks - taken
            if remaining is not None and remaining <= 0:
                return
            if self.paced:
                elapsed = lead + self.clock.monotonic() - origin
                due = math.floor(elapsed * market.ticks_per_second) + 1 - market.emitted
                if due <= 0:
                    wait = market.offset_of(market.emitted) - elapsed
                    if self.clock.sleep(max(wait, 0.001)):
                        return
                    continue
            else:
                due = self.max_batch
            count = min(due, self.max_batch, remaining if remaining is not None else due)
            cycle += 1
            yield Batch(market.ticks(count), cycle=cycle)
