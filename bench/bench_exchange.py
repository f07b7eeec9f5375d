"""Benchmark: exchange streams (issue #14), per message and end to end.

    .venv/bin/python bench/bench_exchange.py                        # both parts (about 4 minutes)
    .venv/bin/python bench/bench_exchange.py parse --frames 20000 --runs 9
    .venv/bin/python bench/bench_exchange.py e2e --symbols 100 --rate 50 --seconds 60

1. `parse`: the cost per message of each exchange's parser (Binance, Coinbase, Kraken: trade
   frames shaped like the documented fixtures in tests/fixtures/, one trade each, ids rising,
   over 100 symbols; `protocol.parse`, what the stream calls) and of the whole source path in
   one thread: frame -> Tick (parse) -> the connection's hand-over (sequence check, inbox) ->
   the batch -> `TickProducer.publish` (JSON, schema check, librdkafka) into a real broker.
   Median of `runs` runs of `frames` frames each, wall time per frame (librdkafka's own
   threads compress and send in the background; the end-to-end part gives CPU per process).
2. `e2e`: the fake Binance (tests/fakes/binance.py, its own process) sends `rate` trades/s on
   each of `symbols` symbols (100 x 50 = 5,000 trades/s) plus a miniTicker a second per symbol
   -> `cryptopulse produce --source binance` (its own process, the WebSocket URL setting
   pointed at the fake) -> a real Kafka broker -> the real Spark job (1 s trigger, in this
   process) -> a receiver standing in for /ingest (tests/fakes/receiver.py). After a warm-up,
   `seconds` are measured:
   - tick-to-/ingest latency of every trade made in the measured interval: from the trade's
     time at the fake (its `T`, stamped as the frame is built and sent) until the first window
     that includes it reaches the receiver (a window of that coin and 30 s whose `trade_count`
     has reached the trade's place among the window's trades; one coin's trades stay in order
     through one connection, one Kafka partition and the job). As bench_stream.py and
     bench_pipeline.py do, it ends at /ingest's receipt (here: the receiver's), and starts at
     the earliest moment the system could know of the tick;
   - the Spark live batches' durations (median, p95) against the 1 s trigger;
   - trades/s sent by the fake and ticks/s published (the ticks topic's end offsets);
   - CPU of each process (fake, producer, broker, Spark JVM, this process: the Spark driver's
     Python side and the receiver), in % of one core, and the `uptime` load.

Starts its own broker on free ports in a temp folder; loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import psutil
from confluent_kafka import Consumer, TopicPartition

from bench.cpu import cpu_seconds
from cryptopulse.coins import COINS
from cryptopulse.config import Settings, load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port
from cryptopulse.producer import TickProducer
from cryptopulse.sources.exchanges.binance import BinanceProtocol
from cryptopulse.sources.exchanges.coinbase import CoinbaseProtocol
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.kraken import KrakenProtocol
from cryptopulse.sources.exchanges.pacing import SlidingLimit
from cryptopulse.sources.exchanges.protocol import ExchangeProtocol
from cryptopulse.sources.exchanges.stream import StreamConnection, StreamRules

WINDOW_MS = 30_000
T0_MS = 1_764_000_000_000  # trade times in the per-message frames (2025-11)


def binance_coins(count: int) -> list[str]:
    """The first `count` coins of the table listed on Binance (the defaults first)."""
    coins = [c.id for c in COINS if "binance" in c.listings]
    if len(coins) < count:
        raise SystemExit(f"the coin table lists only {len(coins)} coins on Binance")
    return coins[:count]


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


# -- 1. per message ----------------------------------------------------------------------------


def binance_frames(protocol: BinanceProtocol, n: int) -> list[str]:
    """Combined-stream trade frames, fields as tests/fixtures/binance/trade.json."""
    symbols = list(protocol.markets)
    frames = []
    for i in range(n):
        symbol, trade_id, at = symbols[i % len(symbols)], 1000 + i // len(symbols), T0_MS + i
        data = {"e": "trade", "E": at + 1, "s": symbol, "t": trade_id, "p": "97012.51000000",
                "q": "0.00120000", "b": trade_id * 7, "a": trade_id * 7 + 3, "T": at,
                "m": True, "M": True}  # fmt: skip
        frames.append(orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).decode())
    return frames


def coinbase_frames(protocol: CoinbaseProtocol, n: int) -> list[str]:
    """`market_trades` updates of one trade each, as tests/fixtures/coinbase/market_trades.json
    (an update: the snapshot is skipped by design)."""
    products = list(protocol.markets)
    frames = []
    for i in range(n):
        at = datetime.fromtimestamp((T0_MS + i) / 1000, UTC).isoformat().replace("+00:00", "Z")
        trade = {"trade_id": str(1000 + i), "product_id": products[i % len(products)],
                 "price": "97012.51", "size": "0.0012", "side": "BUY", "time": at}  # fmt: skip
        message = {"channel": "market_trades", "client_id": "", "timestamp": at,
                   "sequence_num": i, "events": [{"type": "update", "trades": [trade]}]}  # fmt: skip
        frames.append(orjson.dumps(message).decode())
    return frames


def kraken_frames(protocol: KrakenProtocol, n: int) -> list[str]:
    """v2 `trade` updates of one trade each, as tests/fixtures/kraken/trade_update.json."""
    symbols = list(protocol.markets)
    frames = []
    for i in range(n):
        at = datetime.fromtimestamp((T0_MS + i) / 1000, UTC).isoformat().replace("+00:00", "Z")
        trade = {"symbol": symbols[i % len(symbols)], "side": "sell", "price": 97012.51,
                 "qty": 0.0012, "ord_type": "market", "trade_id": 1000 + i // len(symbols),
                 "timestamp": at}  # fmt: skip
        frames.append(
            orjson.dumps({"channel": "trade", "type": "update", "data": [trade]}).decode()
        )
    return frames


def time_parse(protocol: ExchangeProtocol, frames: list[str], runs: int) -> dict[str, Any]:
    """µs per frame of `protocol.parse`; every frame must give a tick (else the figure lies)."""
    parse = protocol.parse
    first = parse(frames[0])
    assert getattr(first, "kind", None) == "tick" or (
        isinstance(first, list) and first[0].kind == "tick"
    ), first
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.thread_time()
        for raw in frames:
            parse(raw)
        cpu.append((time.thread_time() - cpu_started) / len(frames) * 1e6)
        wall.append((time.perf_counter() - started) / len(frames) * 1e6)
    return summary(cpu, wall)


def summary(cpu: list[float], wall: list[float]) -> dict[str, Any]:
    """Medians in µs per frame: CPU time (the figure; a busy machine inflates wall time)."""
    return {
        "cpu_median_us": round(statistics.median(cpu), 2),
        "cpu_runs_us": [round(t, 2) for t in cpu],
        "wall_median_us": round(statistics.median(wall), 2),
    }


def time_source_path(
    base: Settings, bootstrap: str, topic: str, protocol: BinanceProtocol, frames: list[str],
    runs: int,
) -> dict[str, Any]:  # fmt: skip
    """µs per frame of what the source does with a Binance trade frame until Kafka has it:
    parse, the connection's `take` (trade-id sequence, inbox), the batches every 1,000 frames
    (the stream hands over every 0.25 s: ~1,250 at 5,000/s), `TickProducer.publish` (JSON,
    schema check, produce), and the final flush. CPU of the whole process (librdkafka's threads
    compress and send in the background), so it includes the client's network work. Each run
    gets fresh sequences, so no frame counts as a repeat."""
    wall: list[float] = []
    cpu: list[float] = []
    python: list[float] = []
    for _ in range(runs):
        inbox = Inbox(100_000)
        conn = StreamConnection(protocol, [], StreamRules(), inbox, SlidingLimit(300, 300.0))
        producer = TickProducer.from_settings(base, topic=topic, bootstrap=bootstrap)
        producer.start()
        published = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        thread_started = time.thread_time()
        for i, raw in enumerate(frames):
            conn.take(protocol.parse(raw))
            if i % 1000 == 999 or i == len(frames) - 1:
                for batch in inbox.take(0):
                    published += producer.publish(batch.ticks)
        python.append((time.thread_time() - thread_started) / len(frames) * 1e6)
        producer.stop()  # flushes: every tick acknowledged by the broker
        cpu.append((time.process_time() - cpu_started) / len(frames) * 1e6)
        wall.append((time.perf_counter() - started) / len(frames) * 1e6)
        assert published == len(frames), (published, len(frames))
    return {
        **summary(cpu, wall),
        "python_thread_cpu_median_us": round(statistics.median(python), 2),
        "parse_and_take_cpu_median_us": round(
            statistics.median(time_take(protocol, frames) for _ in range(runs)), 2
        ),
    }


def time_take(protocol: BinanceProtocol, frames: list[str]) -> float:
    """µs of CPU per frame of parse + the connection's `take`, without the producer."""
    inbox = Inbox(len(frames) + 1)
    conn = StreamConnection(protocol, [], StreamRules(), inbox, SlidingLimit(300, 300.0))
    started = time.thread_time()
    for raw in frames:
        conn.take(protocol.parse(raw))
    return (time.thread_time() - started) / len(frames) * 1e6


def per_message(broker: LocalKafka, base: Settings, frames: int, runs: int) -> dict[str, Any]:
    coins = binance_coins(100)
    binance = BinanceProtocol(coins)
    coinbase, kraken = CoinbaseProtocol(coins), KrakenProtocol(coins)
    result: dict[str, Any] = {"frames_per_run": frames, "runs": runs}
    cases: list[tuple[str, ExchangeProtocol, list[str]]] = [
        ("binance", binance, binance_frames(binance, frames)),
        ("coinbase", coinbase, coinbase_frames(coinbase, frames)),
        ("kraken", kraken, kraken_frames(kraken, frames)),
    ]
    for name, protocol, made in cases:
        result[name] = time_parse(protocol, made, runs)
        result[name]["symbols"] = len(getattr(protocol, "markets", ()))
        print(f"  {name} parse: {result[name]['cpu_median_us']} µs CPU/frame", flush=True)
    topic = "bench-exchange-path"
    broker.create_topics([topic], partitions=base.kafka.partitions)
    result["binance_source_path"] = time_source_path(
        base, broker.bootstrap, topic, binance, binance_frames(binance, frames), runs
    )
    print(f"  source path: {result['binance_source_path']}", flush=True)
    return result


# -- 2. end to end -----------------------------------------------------------------------------


def serve_fake(symbols: int, rate: float, log_path: Path) -> None:
    """The fake Binance in this process until stdin closes; then its trade times to `log_path`."""
    from tests.fakes.binance import FakeBinance, markets_for

    markets = markets_for(BinanceProtocol(binance_coins(symbols)).markets)
    fake = FakeBinance(
        markets=markets, trade_rate=rate, tick=0.01, ticker_interval=1.0, keep_trades=False
    ).start()
    print(fake.url, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    fake.stop()
    times = {s: list(t) for s, t in fake.trade_times.items()}
    log_path.write_bytes(orjson.dumps({"frames_sent": fake.frames_sent, "trade_times": times}))


class Process:
    """A child in its own process group, stopped by its PID (group)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, stdin: int | None) -> None:
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv, env=env, stdin=stdin, stdout=subprocess.PIPE if stdin else self.log,
            stderr=self.log, start_new_session=True,
        )  # fmt: skip
        self.ps = psutil.Process(self.popen.pid)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self.log.close()
        return self.popen.returncode


def end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-exchange-offsets"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


def trade_latencies(
    windows: list[tuple[float, dict[str, Any]]],
    trade_times: dict[str, list[int]],
    symbol_of_coin: dict[str, str],
    interval: tuple[float, float],
) -> tuple[list[float], int]:
    """(latency in s of each trade made within `interval` (wall-clock s) and included in a
    window received, trades of the interval never seen in one). A window (coin, start) with
    `trade_count` n includes that window's first n trades, in the order the fake made them."""
    by_window: dict[tuple[str, int], list[int]] = {}
    for symbol, times in trade_times.items():
        for t in times:
            by_window.setdefault((symbol, t - t % WINDOW_MS), []).append(t)
    credited: dict[tuple[str, int], int] = {}
    lo, hi = interval[0] * 1000, interval[1] * 1000
    latencies: list[float] = []
    for arrived, record in sorted(windows, key=lambda w: w[0]):
        count = record.get("trade_count") or 0
        start = int(datetime.fromisoformat(record["window_start"]).timestamp() * 1000)
        key = (symbol_of_coin.get(record["coin"], ""), start)
        trades, done = by_window.get(key, []), credited.get(key, 0)
        for t in trades[done:count]:
            if lo <= t < hi:
                latencies.append(arrived - t / 1000)
        credited[key] = max(done, min(count, len(trades)))
    made = sum(1 for ts in by_window.values() for t in ts if lo <= t < hi)
    return latencies, made - len(latencies)


def producer_summary(log: Path) -> dict[str, Any]:
    """What the producer said: ticks skipped (by its per-10 s lines) and its exit summary."""
    lines = log.read_text(errors="replace").splitlines()
    skipped = sum(int(m.group(1)) for line in lines if (m := re.search(r"skipped (\d+)", line)))
    done = next((line for line in reversed(lines) if line.startswith("Done in")), "")
    return {"skipped": skipped, "summary": done}


def spark_settings(base: Settings, work: Path, url: str) -> Settings:
    settings = base.model_copy(deep=True)
    settings.data_dir = work / "spark"
    settings.spark.starting_offsets = "latest"
    settings.spark.trigger_seconds = 1.0
    settings.spark.log_level = "ERROR"
    settings.api.ingest_url = url
    return settings


def _started(progress: dict[str, Any]) -> float:
    return datetime.fromisoformat(progress["timestamp"]).timestamp()


WARM_UP = 5  # batches with input left out after the first windows: JIT, first Kafka fetches


class Sampler:
    """Every 0.5 s: the live query's progress (kept by batch id) and the load average."""

    def __init__(self, query: Any) -> None:
        self.query = query
        self.progress: dict[int, dict[str, Any]] = {}
        self.loads: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            p = self.query.lastProgress
            if p:
                p = json.loads(p.json) if hasattr(p, "json") else p
                self.progress[int(p["batchId"])] = p
            self.loads.append((time.time(), os.getloadavg()[0]))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def last_start(self) -> float:
        """When the latest finished batch started (wall-clock s; 0 before any)."""
        return max((_started(p) for p in list(self.progress.values())), default=0.0)

    def idle(self) -> bool:
        """The latest finished batch read nothing: the job has caught up."""
        latest = max(self.progress, default=None)
        return latest is not None and self.progress[latest]["numInputRows"] == 0

    def batches(self, interval: tuple[float, float]) -> list[int]:
        """Durations (ms) of the batches that had input and started within `interval`."""
        return [
            p["batchDuration"]
            for p in self.progress.values()
            if p["numInputRows"] > 0 and interval[0] <= _started(p) < interval[1]
        ]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def end_to_end(
    broker: LocalKafka, base: Settings, work: Path, symbols: int, rate: float, seconds: float,
    warmup: float,
) -> dict[str, Any]:  # fmt: skip
    from cryptopulse.platform.spark import spark_session
    from cryptopulse.stream.job import LIVE, StreamJob
    from tests.fakes.receiver import Receiver

    coins = binance_coins(symbols)
    protocol = BinanceProtocol(coins)
    symbol_of_coin = {m.coin: s for s, m in protocol.markets.items()}
    topic = base.kafka.topic_ticks
    receiver = Receiver().start()
    spark = spark_session(spark_settings(base, work, receiver.url), "bench-exchange")
    job = StreamJob(spark_settings(base, work, receiver.url), spark)
    job.start()
    live = next(q for q in job.queries if q.name == LIVE)
    sampler = Sampler(live).start()
    env = {**os.environ, "CRYPTOPULSE_DATA_DIR": str(work / "producer")}
    fake = Process(
        [sys.executable, __file__, "fake", "--symbols", str(symbols), "--rate", str(rate),
         "--log", str(work / "fake-trades.json")],
        env, work / "fake.log", stdin=subprocess.PIPE,
    )  # fmt: skip
    assert fake.popen.stdout is not None
    url = fake.popen.stdout.readline().decode().strip()
    env["CRYPTOPULSE_PRODUCER__BINANCE__WS_URL"] = url
    producer = Process(
        [sys.executable, "-m", "cryptopulse.cli", "produce", "--source", "binance",
         "--coins", ",".join(coins), "--no-backfill", "--bootstrap", broker.bootstrap,
         "--topic", topic],
        env, work / "producer.log", stdin=None,
    )  # fmt: skip
    gateway: Any = spark.sparkContext._gateway  # the JVM that spark-submit launched
    procs = {"fake": fake.ps, "producer": producer.ps, "broker": psutil.Process(broker.pid()),
             "spark_jvm": psutil.Process(gateway.proc.pid),
             "bench (spark driver python, receiver)": psutil.Process()}  # fmt: skip
    try:
        wait_until(
            lambda: (
                len({r["coin"] for r in receiver.records if r.get("trade_count")}) >= 0.9 * symbols
            ),
            180,
            "windows with trades for most coins",
        )
        first = len(sampler.progress)  # then warm-up batches (JIT, first fetches), at least
        wait_until(lambda: len(sampler.progress) >= first + WARM_UP, 300, "warm-up batches")
        time.sleep(warmup)
        load_before = os.getloadavg()
        offsets0, cpu0 = (
            end_offsets(broker.bootstrap, topic, base.kafka.partitions),
            {n: cpu_seconds(p, n == "spark_jvm") for n, p in procs.items()},
        )
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
        offsets1 = end_offsets(broker.bootstrap, topic, base.kafka.partitions)
        cpu1 = {n: cpu_seconds(p, n == "spark_jvm") for n, p in procs.items()}
        # The windows holding the interval's last trades: a batch started after they reached
        # Kafka (flushed within 0.25 s + linger) has finished. Then the input runs out, so
        # that stopping never interrupts a batch.
        wait_until(lambda: sampler.last_start() > t1 + 1.0, 120, "the interval's last batch")
    finally:
        producer_rc = producer.stop(signal.SIGINT)
        with contextlib.suppress(SystemExit):
            wait_until(lambda: sampler.idle(), 120, "the job to catch up")
        failed = None if live.isActive else str(live.exception())[:3000]
        assert fake.popen.stdin is not None
        fake.popen.stdin.close()
        fake.popen.wait(60)
        fake.stop()
        sampler.stop()
        job.stop()
        receiver.stop()
    offset = time.time() - time.monotonic()  # the receiver stamps arrivals on the monotonic clock
    windows = [
        (when + offset, record)
        for when, body in zip(receiver.arrivals, receiver.bodies, strict=True)
        for record in body["data"]
    ]
    log = orjson.loads((work / "fake-trades.json").read_bytes())
    trade_times: dict[str, list[int]] = log["trade_times"]
    latencies, missing = trade_latencies(windows, trade_times, symbol_of_coin, (t0, t1))
    made = sum(1 for ts in trade_times.values() for t in ts if t0 * 1000 <= t < t1 * 1000)
    batches = sampler.batches((t0, t1))
    loads = [load for at, load in sampler.loads if t0 <= at <= t1]
    return {
        "symbols": symbols,
        "trades_per_symbol_per_s": rate,
        "measured_s": round(t1 - t0, 1),
        "trades_per_s_made": round(made / (t1 - t0), 1),
        "ticks_per_s_published": round((offsets1 - offsets0) / (t1 - t0), 1),
        "latency_trades": len(latencies),
        "latency_missing": missing,
        "latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(quantile(latencies, 0.95), 3) if latencies else None,
        "latency_p99_s": round(quantile(latencies, 0.99), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "spark_batches": len(batches),
        "spark_batch_median_ms": statistics.median(batches) if batches else None,
        "spark_batch_p95_ms": quantile(batches, 0.95) if batches else None,
        "spark_batch_max_ms": max(batches) if batches else None,
        "cpu_percent_of_a_core": {
            n: round((cpu1[n] - cpu0[n]) / (t1 - t0) * 100, 1) for n in procs
        },
        "producer_cpu_us_per_tick": round(
            (cpu1["producer"] - cpu0["producer"]) / max(offsets1 - offsets0, 1) * 1e6, 1
        ),
        "load_1min_before": round(load_before[0], 2),
        "load_1min_during": [round(min(loads), 2), round(max(loads), 2)] if loads else None,
        "producer_exit": producer_rc,
        "producer": producer_summary(work / "producer.log"),
        "spark_failed": failed,
        "spark_progress_seen": len(sampler.progress),
        "windows_received": len(windows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", default="all", choices=["all", "parse", "e2e", "fake"])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="trades/s per symbol")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--log", type=Path, default=None, help="(fake) where its trades go")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.part == "fake":
        serve_fake(args.symbols, args.rate, args.log)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    base = load_settings(data_dir=work)
    base.kafka.port, base.kafka.controller_port = free_port(), free_port()
    broker = LocalKafka.from_settings(base, heap="1g")
    broker.start()
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "work": str(work)}
    try:
        if args.part in ("all", "parse"):
            print("per message", flush=True)
            report["per_message"] = per_message(broker, base, args.frames, args.runs)
        if args.part in ("all", "e2e"):
            print(f"end to end: {args.symbols} symbols x {args.rate:g} trades/s", flush=True)
            report["end_to_end"] = end_to_end(
                broker, base, work, args.symbols, args.rate, args.seconds, args.warmup
            )
    finally:
        broker.stop()
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
