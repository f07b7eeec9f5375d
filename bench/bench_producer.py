"""Benchmark: sustained ticks/s of the simulated producer into a local Kafka broker.

    .venv/bin/python bench/bench_producer.py                 # starts its own broker on free ports
    .venv/bin/python bench/bench_producer.py --bootstrap 127.0.0.1:9092

Bounded: each run sends a fixed number of ticks (default 200,000) on loopback. A run's rate is
ticks acknowledged by the broker (acks=all, idempotent, lz4) divided by the time from the
first send until the final flush returns, so queued-but-unsent ticks never count. Reports the
median of the runs, plus the source alone (generate + serialize + schema check, no Kafka) to
show where the time goes, and a paced run checking a target rate is held.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptopulse.config import load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port
from cryptopulse.producer import Runner, TickProducer
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources.simulated import SimulatedMarket, SimulatedSource


def source_only(coins: int, count: int) -> float:
    """Ticks/s of generation + JSON + schema validation, without Kafka."""
    source = SimulatedSource(SimulatedMarket(coins, seed=1), paced=False, max_ticks=count)

    def sink(ticks: Sequence[Tick]) -> int:
        for tick in ticks:
            tick_from_json(tick_to_json(tick))
        return len(ticks)

    started = time.perf_counter()
    result = Runner(source, sink, log_interval=3600).run()
    return result.sent / (time.perf_counter() - started)


def unpaced_run(bootstrap: str, topic: str, coins: int, count: int, seed: int) -> dict[str, float]:
    source = SimulatedSource(SimulatedMarket(coins, seed=seed), paced=False, max_ticks=count)
    producer = TickProducer(bootstrap, topic)
    producer.start()
    started = time.perf_counter()
    Runner(source, producer.publish, log_interval=3600).run()
    sent_at = time.perf_counter()
    undelivered = producer.stop()
    elapsed = time.perf_counter() - started
    stats = producer.metrics
    if undelivered or stats.failed or stats.delivered != count:
        raise SystemExit(f"run lost ticks: {stats.summary()}")
    return {
        "ticks": float(stats.delivered),
        "seconds": elapsed,
        "ticks_per_s": stats.delivered / elapsed,
        "flush_s": elapsed - (sent_at - started),
    }


def paced_run(
    bootstrap: str, topic: str, coins: int, rate: float, seconds: float
) -> dict[str, float]:
    """Hold `coins * rate` ticks/s for `seconds`: achieved rate and how far sending lagged."""
    source = SimulatedSource(SimulatedMarket(coins, seed=3, rate=rate), paced=True)
    producer = TickProducer(bootstrap, topic)
    producer.start()
    started = time.perf_counter()
    result = Runner(source, producer.publish, duration=seconds, log_interval=3600).run()
    elapsed = time.perf_counter() - started
    producer.stop()
    target = coins * rate
    expected = target * elapsed
    return {
        "target_ticks_per_s": target,
        "achieved_ticks_per_s": producer.metrics.delivered / elapsed,
        "behind_schedule_ticks": max(0.0, expected - result.sent),
        "failed": float(producer.metrics.failed),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        mem = "?"
    return f"{os.cpu_count()} cores ({cpu}), {mem}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--coins", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=200_000, help="per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--paced-rate", type=float, default=20_000, help="ticks/s; 0 = skip")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        broker: LocalKafka | None = None
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-kafka-")))
            settings = load_settings(data_dir=data)
            broker = LocalKafka.from_settings(
                settings, port=free_port(), controller_port=free_port(), topic_names=()
            )
            print(f"starting a local broker on {broker.bootstrap} ...", file=sys.stderr)
            broker.start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        broker or LocalKafka.from_settings(load_settings())

        def topic(name: str) -> str:
            full = f"bench-{name}-{int(time.time() * 1000)}"
            if broker is not None:
                broker.create_topics([full], partitions=3)
            else:
                admin_topic(bootstrap, full)
            return full

        gen = source_only(args.coins, args.ticks)
        print(f"source only (generate + JSON + schema check): {gen:,.0f} ticks/s", file=sys.stderr)
        runs = []
        for i in range(args.runs):
            run = unpaced_run(bootstrap, topic(f"unpaced{i}"), args.coins, args.ticks, seed=i)
            runs.append(run)
            print(
                f"run {i + 1}: {run['ticks']:,.0f} ticks in {run['seconds']:.2f} s = "
                f"{run['ticks_per_s']:,.0f} ticks/s (final flush {run['flush_s']:.2f} s)",
                file=sys.stderr,
            )
        paced = None
        if args.paced_rate > 0:
            coins = max(args.coins, 1)
            paced = paced_run(
                bootstrap, topic("paced"), coins, args.paced_rate / coins, args.paced_seconds
            )
            print(
                f"paced at {paced['target_ticks_per_s']:,.0f} ticks/s for {args.paced_seconds:g} s: "
                f"achieved {paced['achieved_ticks_per_s']:,.0f} ticks/s, "
                f"{paced['behind_schedule_ticks']:,.0f} ticks behind schedule at the end",
                file=sys.stderr,
            )

    rates = [r["ticks_per_s"] for r in runs]
    results = {
        "machine": machine(),
        "coins": args.coins,
        "ticks_per_run": args.ticks,
        "runs": args.runs,
        "median_ticks_per_s": statistics.median(rates),
        "min_ticks_per_s": min(rates),
        "max_ticks_per_s": max(rates),
        "source_only_ticks_per_s": gen,
        "paced": paced,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def admin_topic(bootstrap: str, name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.create_topics([NewTopic(name, num_partitions=3)]).values():
        future.result(30)


if __name__ == "__main__":
    main()
