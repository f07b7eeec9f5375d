"""Benchmark: the Spark streaming job's sustained throughput and tick-to-/ingest latency.

    .venv/bin/python bench/bench_stream.py                  # all levels (about 10 minutes)
    .venv/bin/python bench/bench_stream.py --coins 5000 --rate 50000
    .venv/bin/python bench/bench_stream.py --coins 5000 --rate 60000 80000 --trigger 2 --no-latency

Starts its own broker on free ports (temp folder). Two measurements:

1. Throughput. The ticks topic is filled first with `rate` ticks per second of event time
   (the Simulated market's realistic figures, `coins` coins round-robin), then the job runs
   with a `--trigger` (1 s) trigger and `maxOffsetsPerTrigger = rate * trigger`, so each
   micro-batch takes exactly one trigger's worth of ticks. The job keeps up with `rate` when
   its batch duration stays under the trigger. Filling first keeps the Python producer off
   the two cores while Spark is measured. Each level records the load average around it.
2. Latency. Ticks are produced live (wall-clock event times) at a moderate rate and every
   0.5 s a probe tick for a coin seen nowhere else is sent; its latency is the time from
   its produce call until the first aggregate naming that coin reaches /ingest (a real HTTP
   receiver on loopback). Reports median and p95.

Bounded in count and time, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import psutil
from confluent_kafka import Producer

from bench.cpu import cpu_seconds
from cryptopulse.config import Settings, load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port
from cryptopulse.platform.spark import spark_session
from cryptopulse.sources.simulated import SimulatedMarket
from cryptopulse.stream.job import LIVE, StreamJob
from tests.fakes.receiver import Receiver

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fill(bootstrap: str, topic: str, coins: int, rate: int, seconds: int) -> int:
    """`seconds` of event time at `rate` ticks/s, with realistic per-coin figures."""
    market = SimulatedMarket(coins, seed=7)
    templates = [t.model_dump(mode="json") for t in market.ticks(coins)]
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    total = rate * seconds
    for i in range(total):
        t = templates[i % coins]
        t["timestamp"] = (T0 + timedelta(seconds=i / rate)).isoformat().replace("+00:00", "Z")
        t["price"] = t["price"] * (1 + ((i * 7919) % 200 - 100) / 1e5)
        while True:
            try:
                producer.produce(topic, key=t["coin"], value=orjson.dumps(t))
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return total


def job_settings(
    base: Settings, data_dir: Path, topic: str, receiver: Receiver, **spark: Any
) -> Settings:
    settings = base.model_copy(deep=True)
    settings.data_dir = data_dir
    settings.kafka.topic_ticks = topic
    settings.spark.starting_offsets = "earliest"
    settings.spark.trigger_seconds = 1.0
    settings.spark.log_level = "ERROR"
    for key, value in spark.items():
        setattr(settings.spark, key, value)
    settings.api.ingest_url = receiver.url
    return settings


def summarize(progress: list[dict[str, Any]]) -> dict[str, Any]:
    busy = [p for p in progress if p["numInputRows"] > 0]
    durations = sorted(p["batchDuration"] for p in busy)
    if not durations:
        return {}
    return {
        "batches": len(busy),
        "batch_ms": [p["batchDuration"] for p in busy],
        "median_batch_ms": statistics.median(durations),
        "p95_batch_ms": durations[int(0.95 * (len(durations) - 1))],
        "median_rows_per_batch": statistics.median(p["numInputRows"] for p in busy),
        # Where a batch's time goes, as Spark reports it (medians per phase, ms).
        "phases_ms": {
            phase: statistics.median(p["durationMs"].get(phase, 0) for p in busy)
            for phase in sorted({k for p in busy for k in p["durationMs"]} - {"triggerExecution"})
        },
    }


WARM_UP = 5
"""Batches left out of the figures: JIT warm-up, the Kafka consumers' first fetches."""


class CpuMeter:
    """CPU time used by the Spark JVM, the broker and this process (the job's Python side)
    from now on: on a shared machine, wall time varies with the load, CPU time much less."""

    def __init__(self, spark: Any, broker: LocalKafka) -> None:
        gateway = spark.sparkContext._gateway.proc  # the JVM that spark-submit launched
        self.procs = {
            "spark_jvm": psutil.Process(gateway.pid),
            "broker": psutil.Process(broker.pid()),
            "python": psutil.Process(),
        }
        self.jvm = spark.sparkContext._jvm
        self.start = self._now()

    def _jvm_counters(self) -> dict[str, float]:
        """Where JVM time goes besides tasks: classes Spark generates (Janino), the JIT, GC."""
        jvm = self.jvm
        codegen = jvm.org.apache.spark.metrics.source.CodegenMetrics
        management = jvm.java.lang.management.ManagementFactory
        return {
            "codegen_classes": float(codegen.METRIC_COMPILATION_TIME().getCount()),
            "jit_compile": float(management.getCompilationMXBean().getTotalCompilationTime()),
            "gc": float(
                sum(b.getCollectionTime() for b in management.getGarbageCollectorMXBeans())
            ),
        }

    def _now(self) -> dict[str, float]:
        times = self._jvm_counters()
        for name, proc in self.procs.items():
            times[name] = cpu_seconds(proc, children=name == "spark_jvm")
        return times

    def per_batch(self, batches: int) -> dict[str, float]:
        now = self._now()
        # Process times are in s, the JVM's counters in ms (codegen_classes: a count).
        scale = {name: 1000.0 for name in self.procs}
        return {
            name: round((now[name] - self.start[name]) * scale.get(name, 1.0) / max(batches, 1), 1)
            for name in now
        }


def progress_batch(query: Any) -> int:
    """The query's latest batch id (0 before its first progress)."""
    progress = query.lastProgress
    return int(progress["batchId"]) if progress else 0


def throughput(
    base: Settings,
    broker: LocalKafka,
    coins: int,
    rate: int,
    seconds: int,
    work: Path,
    trigger: float = 1.0,
    warm_up: int = WARM_UP,
) -> dict[str, Any]:
    """`seconds / trigger` measured batches after `warm_up` batches (the JIT still compiles
    the hot paths for minutes on two busy cores: a long warm-up measures the job as it runs
    for days, a short one as it starts)."""
    topic = f"bench-ticks-{coins}-{rate}-{trigger:g}"
    broker.create_topics([topic], partitions=base.kafka.partitions)
    measured = int(seconds / trigger)
    started = time.monotonic()
    total = fill(broker.bootstrap, topic, coins, rate, int((warm_up + measured + 1) * trigger))
    print(f"  filled {total:,} ticks in {time.monotonic() - started:.0f} s", flush=True)
    receiver = Receiver().start()
    settings = job_settings(
        base,
        work / f"tp-{coins}-{rate}-{trigger:g}",
        topic,
        receiver,
        trigger_seconds=trigger,
        max_offsets_per_trigger=int(rate * trigger),
    )
    spark = spark_session(settings, "bench-stream")
    # Keep every measured batch's progress (Spark keeps the last 100 by default).
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", str(warm_up + measured + 10))
    job = StreamJob(settings, spark)
    load_before = os.getloadavg()[0]
    job.start()
    try:
        # Generous: a contended machine runs far slower than the trigger.
        deadline = time.monotonic() + (warm_up + measured) * trigger * 5 + 120
        live = next(q for q in job.queries if q.name == LIVE)
        while time.monotonic() < deadline and progress_batch(live) < warm_up:
            time.sleep(0.2)
        cpu = CpuMeter(spark, broker)
        first = progress_batch(live)
        while time.monotonic() < deadline and progress_batch(live) < first + measured:
            time.sleep(0.5)
        cpu_per_batch = cpu.per_batch(progress_batch(live) - first)
        results = {
            name: summarize(
                [
                    p
                    for p in (
                        json.loads(p.json) if hasattr(p, "json") else p for p in q.recentProgress
                    )
                    if first < p["batchId"] <= first + measured
                ]
            )
            for q in job.queries
            for name in [q.name]
        }
    finally:
        job.stop()
        receiver.stop()
    live_p95 = results.get(LIVE, {}).get("p95_batch_ms")
    return {
        "coins": coins,
        "rate": rate,
        "trigger_s": trigger,
        "queries": results,
        "keeps_up": live_p95 is not None and live_p95 <= trigger * 1000,
        "cpu_ms_per_batch": cpu_per_batch,
        "windows_posted": len(receiver.records),
        "dead_letters": job.dead_lettered,
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def latency(
    base: Settings, broker: LocalKafka, coins: int, rate: int, seconds: int, work: Path
) -> dict[str, Any]:
    topic = f"bench-live-{coins}-{rate}"
    broker.create_topics([topic], partitions=base.kafka.partitions)
    receiver = Receiver().start()
    settings = job_settings(
        base,
        work / f"lat-{coins}-{rate}",
        topic,
        receiver,
        starting_offsets="latest",
        watermark_seconds=2,
    )
    spark = spark_session(settings, "bench-stream")
    job = StreamJob(settings, spark)
    job.start()
    time.sleep(8)  # let the first (empty) batches run
    market = SimulatedMarket(coins, seed=11)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "compression.type": "lz4"}
    )
    probes: dict[str, float] = {}
    stop = threading.Event()

    def load() -> None:
        per_step = max(1, rate // 20)
        next_at = time.monotonic()
        while not stop.is_set():
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            for t in market.ticks(per_step):
                d = t.model_dump(mode="json")
                d["timestamp"] = now
                producer.produce(topic, key=d["coin"], value=orjson.dumps(d))
            producer.poll(0)
            next_at += 0.05
            time.sleep(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        for i in range(int(seconds / 0.5)):
            coin = f"probe-{i}"
            d = market.ticks(1)[0].model_dump(mode="json")
            d.update(
                coin=coin,
                symbol="prb",
                timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            )
            probes[coin] = time.monotonic()
            producer.produce(topic, key=coin, value=orjson.dumps(d))
            producer.poll(0)
            time.sleep(0.5)
        time.sleep(5)
    finally:
        stop.set()
        thread.join()
        producer.flush(30)
        job.stop()
        receiver.stop()
    arrivals: dict[str, float] = {}
    for when, body in zip(receiver.arrivals, receiver.bodies, strict=True):
        for record in body["data"]:
            if record["coin"] in probes and record["coin"] not in arrivals:
                arrivals[record["coin"]] = when
    lat = sorted(arrivals[c] - probes[c] for c in arrivals)
    return {
        "coins": coins,
        "rate": rate,
        "probes": len(probes),
        "arrived": len(lat),
        "median_s": statistics.median(lat) if lat else None,
        "p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else None,
        # In the order the probes were sent: a slow start shows first, a periodic stall
        # (e.g. the batches that close windows) at its period.
        "probe_latencies_s": [round(arrivals[c] - probes[c], 3) for c in probes if c in arrivals],
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, nargs="*", default=[10, 1000, 5000])
    parser.add_argument("--rate", type=int, nargs="*", default=[10_000, 25_000, 50_000])
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--latency-rate", type=int, default=5000)
    parser.add_argument("--warm-up", type=int, default=WARM_UP, help="batches run before measuring")
    parser.add_argument("--trigger", type=float, default=1.0, help="throughput trigger (s)")
    parser.add_argument("--no-latency", action="store_true", help="throughput levels only")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--master", default=None, help="Spark master (default: the setting's)")
    parser.add_argument("--shuffle-partitions", type=int, default=None)
    parser.add_argument("--topic-partitions", type=int, default=4)
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    base = load_settings(data_dir=work)
    base.kafka.port, base.kafka.controller_port = free_port(), free_port()
    base.kafka.partitions = args.topic_partitions
    if args.master:
        base.spark.master = args.master
    if args.shuffle_partitions:
        base.spark.shuffle_partitions = args.shuffle_partitions
    base.spark.conf = dict(item.split("=", 1) for item in args.conf)
    broker = LocalKafka.from_settings(base, heap="1g")
    broker.start()
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "spark": {
            "master": base.spark.master,
            "shuffle_partitions": base.spark.shuffle_partitions,
            "topic_partitions": base.kafka.partitions,
            "conf": base.spark.conf,
        },
        "throughput": [],
        "latency": [],
    }
    try:
        for coins in args.coins:
            for rate in args.rate:
                print(f"throughput: {coins} coins at {rate:,} ticks/s", flush=True)
                result = throughput(
                    base,
                    broker,
                    coins,
                    rate,
                    args.seconds,
                    work,
                    trigger=args.trigger,
                    warm_up=args.warm_up,
                )
                print("  ", json.dumps(result), flush=True)
                report["throughput"].append(result)
        for coins in [] if args.no_latency else args.coins:
            rate = min(args.latency_rate, coins * 10)
            print(f"latency: {coins} coins at {rate:,} ticks/s", flush=True)
            result = latency(base, broker, coins, rate, args.seconds, work)
            print("  ", json.dumps(result), flush=True)
            report["latency"].append(result)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)  # the broker's log: gigabytes at high rates
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
