"""Benchmark: the live sink's publishing per batch, the Kafka transaction then the POST to a
real API's /ingest (`WindowSink.publish`).

    .venv/bin/python bench/bench_sink.py                    # 5,000 windows a batch, 40 batches
    .venv/bin/python bench/bench_sink.py --windows 100 --rounds 60 --json out.json

Starts its own broker and a real `cryptopulse serve` (own process group, free ports, temp
folders), so the API validates and stores the POSTs in another process, as in production;
bench_stream.py's receiver only parses them, inside the job's process. Each batch holds
`--windows` live window records (every window's close moves a little each batch, so the API
stores each update). Reports the median (p50), p95, p99 and max of the whole, the transaction and the POST.

Bounded in count and time, loopback only.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_hostile import start_server, stop_server
from bench.stats import summary
from cryptopulse.config import load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port
from cryptopulse.stream.merge import window_record
from cryptopulse.stream.publish import BatchPublisher, sink_id
from cryptopulse.stream.sinks import IngestPoster
from tests.factories import T, one_tick_state

START_MS = 1_795_000_000_000  # a window start (epoch ms), 30 s windows
TOKEN = "bench-sink-token"


Batch = list[tuple[str, bytes]]


def records(windows: int, batch_id: int) -> Batch:
    """`windows` live records, as the sink writes them; the close moves with the batch."""
    end_ms, at_us = START_MS + 30_000, (START_MS + 29_000) * 1000
    out = []
    for i in range(windows):
        tick = T(price=100.0 + i + batch_id * 0.01, at_us=at_us, change=1.5, volume=3e7, cap=1e9)
        coin = f"coin-{i}"
        state = one_tick_state(tick, end_ms)
        out.append((coin, window_record("simulated", coin, START_MS, state, final=False)))
    return out


def publish(
    publisher: BatchPublisher, poster: IngestPoster, batch_id: int, batch: Batch
) -> tuple[float, float]:
    """As WindowSink.publish: the transaction, then the POST; their times (ms)."""
    started = time.perf_counter()
    publisher.publish(batch_id, batch)
    committed = time.perf_counter()
    if not poster.post([value for _, value in batch]):
        raise SystemExit("the API refused a batch")
    return (committed - started) * 1000, (time.perf_counter() - committed) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=5000, help="window records per batch")
    parser.add_argument("--rounds", type=int, default=40, help="measured batches")
    parser.add_argument("--warm-up", type=int, default=5, help="batches not measured")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    settings = load_settings(data_dir=work / "kafka")
    settings.kafka.port, settings.kafka.controller_port = free_port(), free_port()
    broker = LocalKafka.from_settings(settings, heap="1g")
    broker.start()
    topic = "bench-windows"
    broker.create_topics([topic], partitions=3)
    port = free_port()
    (work / "api").mkdir()
    server = start_server(port, TOKEN, work / "api", work / "api.log", None)
    publisher = BatchPublisher(broker.bootstrap, topic, sink_id(str(work)))
    poster = IngestPoster(
        f"http://127.0.0.1:{port}/ingest",
        TOKEN,
        retry_seconds=10,
        max_body_bytes=settings.api.max_body_bytes,
    )
    times: dict[str, list[float]] = {"publish": [], "kafka": [], "post": []}
    try:
        publisher.start()
        for batch_id in range(args.warm_up + args.rounds):
            batch = records(args.windows, batch_id)
            kafka, post = publish(publisher, poster, batch_id, batch)
            if batch_id >= args.warm_up:
                times["publish"].append(kafka + post)
                times["kafka"].append(kafka)
                times["post"].append(post)
    finally:
        poster.close()
        publisher.close()
        stop_server(server)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "windows_per_batch": args.windows,
        "batches": args.rounds,
        **{name: summary(values) for name, values in times.items()},
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
