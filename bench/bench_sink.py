"""Benchmark: the live sink's publishing, the Kafka transaction and the POST to /ingest, in
turn or overlapped (the POST on the poster's thread while the transaction commits).

    .venv/bin/python bench/bench_sink.py                    # 5,000 windows a batch, 40 rounds each
    .venv/bin/python bench/bench_sink.py --windows 100 --rounds 60 --json out.json

Starts its own broker and a real `cryptopulse serve` (own process group, free ports, temp
folders), so the API parses the POSTs in another process, as in production; bench_stream.py's
receiver runs inside the job's process and shares its interpreter lock. Each round publishes
one batch of `--windows` live window records (every window's close moves a little each round,
so the API stores each update), the two ways alternated round by round. Reports the medians
and p95 of each way's time per batch, and of the transaction and the POST alone.

Bounded in count and time, loopback only.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_hostile import start_server, stop_server
from cryptopulse.config import load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port
from cryptopulse.stream.merge import WindowState, window_record
from cryptopulse.stream.publish import BatchPublisher, sink_id
from cryptopulse.stream.sinks import IngestPoster

START_MS = 1_795_000_000_000  # a window start (epoch ms), 30 s windows
TOKEN = "bench-sink-token"


Batch = list[tuple[str, bytes]]


def records(windows: int, round_: int) -> Batch:
    """`windows` live records, as the sink writes them; the close moves with the round."""
    out = []
    for i in range(windows):
        price = 100.0 + i + round_ * 0.01
        # WindowState's fields in order: end, symbol, last event, quote, market cap, open,
        # close, sums, count, extremes, no trades, 24 h change and volume.
        values = [START_MS + 30_000, f"c{i}", (START_MS + 29_000) * 1000, None, None, 1e9, 1]
        values += [price, 1, price, 2, price * 10, 10, price + 1, price - 1]
        values += [None, None, None, None, None, 0, 1.5, 10, 3e7]
        state = WindowState.of(values)
        coin = f"coin-{i}"
        out.append((coin, window_record("simulated", coin, START_MS, state, final=False)))
    return out


def post_alone(poster: IngestPoster, batch: Batch) -> float:
    """The POST by itself (ms)."""
    values = [value for _, value in batch]
    started = time.perf_counter()
    if not poster.post(values):
        raise SystemExit("the API refused a batch")
    return (time.perf_counter() - started) * 1000


def in_turn(publisher: BatchPublisher, poster: IngestPoster, batch_id: int, batch: Batch) -> float:
    """The transaction, then the POST (as before); returns the transaction's time (ms)."""
    kafka = timed(lambda: publisher.publish(batch_id, batch))
    if not poster.post([value for _, value in batch]):
        raise SystemExit("the API refused a batch")
    return kafka


def overlapped(
    publisher: BatchPublisher, poster: IngestPoster, batch_id: int, batch: Batch
) -> None:
    """The POST on the poster's thread while the transaction commits (WindowSink.publish)."""
    posting = poster.post_soon([value for _, value in batch])
    publisher.publish(batch_id, batch)
    if not posting.result():
        raise SystemExit("the API refused a batch")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=5000, help="window records per batch")
    parser.add_argument("--rounds", type=int, default=40, help="measured batches per way")
    parser.add_argument("--warm-up", type=int, default=5, help="batches per way not measured")
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
    times: dict[str, list[float]] = {"in_turn": [], "overlapped": [], "kafka": [], "post": []}
    batch_id = 0
    try:
        publisher.start()
        for round_ in range(args.warm_up + args.rounds):
            measured = round_ >= args.warm_up
            # Each POST carries new figures (a record equal to the stored one is no change).
            post = post_alone(poster, records(args.windows, 3 * round_))
            # Alternated, each way first every other round: the machine's noise hits both.
            ways = ["in_turn", "overlapped"] if round_ % 2 == 0 else ["overlapped", "in_turn"]
            for step, way in enumerate(ways, start=1):
                batch_id += 1
                batch = records(args.windows, 3 * round_ + step)
                started = time.perf_counter()
                if way == "in_turn":
                    kafka = in_turn(publisher, poster, batch_id, batch)
                else:
                    overlapped(publisher, poster, batch_id, batch)
                elapsed = (time.perf_counter() - started) * 1000
                if measured:
                    times[way].append(elapsed)
                    if way == "in_turn":
                        times["kafka"].append(kafka)
            if measured:
                times["post"].append(post)
    finally:
        poster.close()
        publisher.close()
        stop_server(server)
        broker.stop()
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "windows_per_batch": args.windows,
        "rounds": args.rounds,
        **{name: summary(values) for name, values in times.items()},
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
