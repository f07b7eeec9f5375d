"""Benchmark: what running sources together costs the producer (`--source a,b`), without Kafka.

    .venv/bin/python bench/bench_sources_combined.py [--ticks 200000] [--batch 250] [--runs 5]

Four bounded runs, each into a sink that only counts, timed by the producing process's CPU time
(`time.process_time()`, every thread) and wall time, median of `--runs`:

- `alone`: an unpaced simulated source, batches of `--batch` ticks (an exchange hands over a
  batch every 0.25 s: 250 ticks is 1,000 trades/s);
- `combined, one`: the same source behind a `CombinedSource` (its thread and the batch queue);
- `combined, two`: that source and a replay (as fast as possible) of a capture of the same
  number of exchange-like trades, both at once;
- `market cap fill`: `MarketCaps.fill` on exchange trades whose coin has a CoinGecko cap (every
  tick copied with its cap), per tick.

The difference between the first two is the hand-over's cost per tick.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptopulse.producer import Runner
from cryptopulse.schema import Tick
from cryptopulse.sources.base import Source
from cryptopulse.sources.combined import CombinedSource
from cryptopulse.sources.market_caps import MarketCaps
from cryptopulse.sources.replay import CaptureWriter, ReplaySource
from cryptopulse.sources.simulated import SimulatedMarket, SimulatedSource

START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
COINS = ("bitcoin", "ethereum", "solana", "cardano", "ripple")


def simulated(count: int, batch: int) -> SimulatedSource:
    return SimulatedSource(
        SimulatedMarket(10, seed=1, start=START), paced=False, max_ticks=count, max_batch=batch
    )


def trades(count: int) -> list[Tick]:
    return [
        Tick(
            coin=COINS[i % len(COINS)],
            symbol=COINS[i % len(COINS)][:3],
            price=100.0 + i % 7,
            size=0.5,
            quote="USDT",
            timestamp=START + timedelta(milliseconds=i),
            source="binance",
        )
        for i in range(count)
    ]


def timed(make: Callable[[], Source]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, ticks) of one run into a counting sink."""
    source = make()
    cpu, wall = time.process_time(), time.perf_counter()
    metrics = Runner(source, lambda ticks: len(ticks), log_interval=3600).run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    source.close()
    return cpu, wall, metrics.sent


def report(name: str, runs: Sequence[tuple[float, float, int]]) -> float:
    ticks = runs[0][2]
    cpu = statistics.median(r[0] for r in runs) / ticks * 1e6
    wall = statistics.median(r[1] for r in runs)
    print(f"{name:<16} {ticks:>9,} ticks  {cpu:6.2f} µs CPU/tick  {ticks / wall:>10,.0f} ticks/s")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, batch = args.ticks, args.batch
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "trades.jsonl"
        with CaptureWriter(capture) as writer:
            writer.write(trades(n))

        def replay() -> ReplaySource:
            return ReplaySource(capture, speed=0, retime=False, max_batch=batch)

        alone = [timed(lambda: simulated(n, batch)) for _ in range(args.runs)]
        one = [timed(lambda: CombinedSource([simulated(n, batch)])) for _ in range(args.runs)]
        two = [
            timed(lambda: CombinedSource([simulated(n, batch), replay()])) for _ in range(args.runs)
        ]
        base = report("alone", alone)
        combined_one = report("combined, one", one)
        combined_two = report("combined, two", two)
        replay_alone = report("replay alone", [timed(replay) for _ in range(args.runs)])
        print(f"hand-over: {combined_one - base:+.2f} µs CPU/tick (combined, one - alone)")
        pair = combined_two * 2 - base - replay_alone
        print(f"two at once against each alone: {pair:+.2f} µs CPU per pair of ticks")
    caps = MarketCaps()
    caps.caps = {coin: 1e9 for coin in COINS}
    given = trades(n)
    fills = []
    for _ in range(args.runs):
        started = time.process_time()
        caps.fill(given)
        fills.append((time.process_time() - started) / n * 1e6)
    print(f"market cap fill  {statistics.median(fills):.2f} µs CPU/tick (every tick copied)")


if __name__ == "__main__":
    main()
