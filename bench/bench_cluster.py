"""Benchmark: the local cluster (#15) against the single-node setup, on the same machine.

    .venv/bin/python bench/bench_cluster.py                 # about 15 minutes
    .venv/bin/python bench/bench_cluster.py --runs 3 --coins 1000 --rate 10000 25000

Starts, on free ports in a temp folder, one broker (the single-node setup) and the cluster's
3 brokers and Spark master with 2 workers (1 core each). Two measurements:

1. Kafka: the real TickProducer (idempotent, acks=all, lz4), unpaced, into a 3-partition topic
   on the single broker (replication factor 1) and on the cluster (replication factor 3,
   min.insync.replicas 2): ticks acknowledged per second (bench_producer's run), median of runs.
2. Spark: the streaming job's throughput level of bench_stream (the topic filled first, then
   one trigger's worth of ticks per batch) with `local[*]` and with `spark://` on the 2
   workers, both reading the single broker so that only Spark differs: median and p95 batch
   times. The CPU figures cover only the driver's JVM on the cluster (executors run under the
   workers), so they are left out.

Bounded in count and time, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_producer import machine, unpaced_run
from bench.bench_stream import WARM_UP, throughput
from cryptopulse.config import Settings, load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.kafka_cluster import LocalKafkaCluster
from cryptopulse.platform.ports import free_port
from cryptopulse.platform.spark_cluster import LocalSparkCluster


def settings_on_free_ports(work: Path) -> Settings:
    settings = load_settings(data_dir=work)
    settings.kafka.port, settings.kafka.controller_port = free_port(), free_port()
    c = settings.cluster
    c.kafka_ports = (free_port(), free_port(), free_port())
    c.kafka_controller_ports = (free_port(), free_port(), free_port())
    c.spark_master_port, c.spark_master_ui_port = free_port(), free_port()
    c.spark_worker_ui_ports = (free_port(), free_port())
    return settings


def kafka_report(
    broker: LocalKafka, kafka: LocalKafkaCluster, args: argparse.Namespace
) -> dict[str, Any]:
    """Runs on the single broker and on the cluster taken in turn, so that a busy moment of
    the machine falls on both alike."""
    setups = {
        "single broker (RF 1)": (broker.bootstrap, broker.create_topics),
        "3 brokers (RF 3, min ISR 2)": (kafka.bootstrap, kafka.create_topics),
    }
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for i in range(args.runs):
        for n, (name, (bootstrap, create)) in enumerate(setups.items()):
            topic = f"bench-{n}-{i}"
            create([topic])
            run = unpaced_run(bootstrap, topic, 1000, args.ticks, seed=i)
            rates[name].append(run["ticks_per_s"])
            print(f"  {name}, run {i + 1}: {run['ticks_per_s']:,.0f} ticks/s", flush=True)
    return {
        name: {"median_ticks_per_s": statistics.median(r), "runs": r} for name, r in rates.items()
    }


def spark_levels(
    base: Settings,
    broker: LocalKafka,
    master: str,
    levels: list[tuple[int, int]],
    args: argparse.Namespace,
    work: Path,
) -> list[dict[str, Any]]:
    settings = base.model_copy(deep=True)
    settings.spark.master = master
    out = []
    for coins, rate in levels:
        print(f"spark {master}: {coins} coins at {rate:,} ticks/s", flush=True)
        result = throughput(
            settings,
            broker,
            coins,
            rate,
            args.seconds,
            work / master.replace("/", "_"),
            warm_up=args.warm_up,
        )
        live = result["queries"].get("windows-live", {})
        row = {
            "coins": coins,
            "rate": rate,
            "median_batch_ms": live.get("median_batch_ms"),
            "p95_batch_ms": live.get("p95_batch_ms"),
            "keeps_up": result["keeps_up"],
            "load_1min": result["load_1min"],
        }
        print("  ", json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Kafka runs per setup")
    parser.add_argument("--ticks", type=int, default=200_000, help="per Kafka run")
    parser.add_argument("--coins", type=int, nargs="*", default=[1000])
    parser.add_argument("--rate", type=int, nargs="*", default=[10_000, 25_000])
    parser.add_argument("--seconds", type=int, default=30, help="measured Spark batches (1 s)")
    parser.add_argument("--warm-up", type=int, default=WARM_UP * 6)
    parser.add_argument(
        "--parts", nargs="*", choices=["kafka", "spark"], default=["kafka", "spark"]
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    base = settings_on_free_ports(work)
    broker = LocalKafka.from_settings(base, heap="1g")  # with the job's topics
    kafka = LocalKafkaCluster.from_settings(base, topic_names=())
    spark = LocalSparkCluster.from_settings(base)
    report: dict[str, Any] = {"machine": machine(), "load_1min_start": os.getloadavg()[0]}
    try:
        print("starting a broker, a 3-broker cluster and a Spark master with 2 workers ...")
        broker.start()
        kafka.up()
        spark.up()
        if "kafka" in args.parts:
            report["kafka"] = kafka_report(broker, kafka, args)
        if "spark" in args.parts:
            report["spark"] = spark_report(base, broker, spark, args, work)
    finally:
        spark.down()
        kafka.down()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    report["load_1min_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def spark_report(
    base: Settings,
    broker: LocalKafka,
    spark: LocalSparkCluster,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    levels = [(c, r) for c in args.coins for r in args.rate]
    return {
        "local[*]": spark_levels(base, broker, "local[*]", levels, args, work),
        "standalone, 2 workers x 1 core": spark_levels(
            base, broker, spark.master_url, levels, args, work
        ),
    }


if __name__ == "__main__":
    main()
