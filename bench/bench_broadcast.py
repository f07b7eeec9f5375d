"""Broadcast benchmark of the API server, on loopback only, bounded in clients, rounds and time.

One real server process (`cryptopulse serve`), N WebSocket clients spread over a few client
processes, for N in --levels (default 100, 1,000, 10,000). At each level:

* delivery latency: --rounds POSTs of a 10-coin update; for every client and round, the
  time from the start of the POST to the moment the client has the whole message
  (CLOCK_MONOTONIC is shared by all processes on the machine);
* the server's resident memory (RSS) after the clients connected, and after the rounds;
* `/ingest` latency under load: --ingest-requests POSTs at --ingest-rate per second,
  each broadcast to all N clients.

The history database's cost: with --finals-per-30s N, a feeder POSTs N final windows every
30 s (in chunks of 500) all through each level; run once with the history on (the default)
and once with --no-history-db, and compare the delivery p99. The feeder's windows are of kind
`backfill`, which the server stores but never broadcasts: the clients get the same messages
in both runs, so the difference is the storing alone (a live final is broadcast anyway,
stored or not). The server's data folder is a fresh temporary one.

The clients are a minimal asyncio WebSocket reader (handshake, unmasked server frames,
pongs), so that on a 2-core machine the clients cost as little CPU as possible next to
the server they measure. Run: `.venv/bin/python bench/bench_broadcast.py [--levels 100 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import summary  # noqa: E402

COINS = [f"coin-{i}" for i in range(10)]
PER_PROCESS = 2500
T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def record(coin: str, window: int, seq: int) -> dict[str, Any]:
    start = T0 + timedelta(seconds=30 * window)
    price = 100.0 + window
    return {
        "source": "simulated",
        "coin": coin,
        "symbol": coin[-3:],
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": (start + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
        "avg_price": price,
        "open": price,
        "high": price + 1,
        "low": price - 1,
        "close": price,
        "avg_change_24h": 1.5,
        "max_volume_24h": 31250000000.0,
        "market_cap": 1920000000000.0,
        "tick_count": seq,  # identifies the round on the client side
        "volatility": "Stable",
        "trend": "➡️ Stable",
        "final": False,
    }


def update(seq: int, window: int) -> bytes:
    return orjson.dumps({"data": [record(c, window, seq) for c in COINS]})


class FinalsFeeder:
    """POSTs `per_30s` final backfill windows every 30 s, in chunks of 500, from a thread."""

    CHUNK = 500

    def __init__(self, base_url: str, per_30s: int) -> None:
        self.base_url, self.per_30s = base_url, per_30s
        self.coins = [f"hist-{i:05d}" for i in range(per_30s)]
        self.posted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="finals-feeder", daemon=True)

    def _body(self, window: int, coins: list[str]) -> bytes:
        records = []
        for coin in coins:
            r = record(coin, window, 1)
            r.update(final=True, kind="backfill")
            records.append(r)
        return orjson.dumps({"data": records})

    def _run(self) -> None:
        chunks = [self.coins[i : i + self.CHUNK] for i in range(0, len(self.coins), self.CHUNK)]
        gap = 30.0 / len(chunks)
        window = 0
        next_at = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self._stop.is_set():
                for chunk in chunks:
                    http.post(
                        "/ingest",
                        content=self._body(window, chunk),
                        headers={"Content-Type": "application/json"},
                    ).raise_for_status()
                    self.posted += len(chunk)
                    next_at += gap
                    if self._stop.wait(max(0.0, next_at - time.monotonic())):
                        return
                window += 1

    def start(self) -> None:
        if self.per_30s:
            self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)
        return self.posted


# ---------------------------------------------------------------- client processes


class Reader(asyncio.Protocol):
    """A minimal WebSocket client: handshake, then time every text message it receives."""

    def __init__(self, host: str, port: int, received: list[tuple[int, float]]) -> None:
        self.host, self.port = host, port
        self.received = received
        self.buffer = bytearray()
        self.open = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during handshake"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buffer
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(bytes(buf[:end]).decode()))
                return
            del buf[: end + 4]
            self.open = True
        while len(buf) >= 2:
            opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                (length,) = struct.unpack_from("!H", buf, 2)
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                (length,) = struct.unpack_from("!Q", buf, 2)
                offset = 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            self.on_frame(opcode, payload, now)

    def on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1:
            if payload.startswith(b'{"type":"snapshot"'):
                if not self.ready.done():
                    self.ready.set_result(None)
                return
            message = orjson.loads(payload)
            if message["type"] == "market_update":
                self.received.append((message["data"][0]["tick_count"], now))
        elif opcode == 0x9 and self.transport is not None:  # ping: answer with a masked pong
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
        elif opcode == 0x8 and self.transport is not None:
            self.transport.close()


async def client_main(pipe: Connection, host: str, port: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    received: list[tuple[int, float]] = []
    readers: list[Reader] = []
    failures = 0

    async def open_one() -> None:
        nonlocal failures
        try:
            _, reader = await loop.create_connection(
                lambda: Reader(host, port, received), host, port
            )
            await asyncio.wait_for(reader.ready, 60)
            readers.append(reader)
        except (OSError, ConnectionError, TimeoutError):
            failures += 1

    for start in range(0, count, 250):
        await asyncio.gather(*(open_one() for _ in range(min(250, count - start))))
    pipe.send(("connected", len(readers), failures))
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "report":
            pipe.send(("report", received[:], sum(r.closed for r in readers)))
            received.clear()
        elif command == "close":
            for reader in readers:
                if reader.transport is not None:
                    reader.transport.abort()
            pipe.send(("closed",))
            return


def client_process(pipe: Connection, host: str, port: int, count: int) -> None:
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.run(client_main(pipe, host, port, count))
    except ImportError:
        asyncio.run(client_main(pipe, host, port, count))


# ---------------------------------------------------------------- coordinator


@dataclass
class Level:
    clients: int
    connected: int
    connect_failures: int
    connect_seconds: float
    rss_idle_mb: float
    rss_connected_mb: float
    rss_after_mb: float
    deliveries: int
    expected: int
    latency_ms: dict[str, float]
    ingest_ms: dict[str, float]
    ingest_samples: int
    dropped: float
    broadcast_ms: float
    finals_posted: int = 0
    finals_stored: float = 0.0


def start_server(
    port: int, max_clients: int, writes: str = "direct", history_db: bool = True
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CRYPTOPULSE_DATA_DIR": tempfile.mkdtemp(prefix="bench-broadcast-"),
        "CRYPTOPULSE_HISTORY__ENABLED": "true" if history_db else "false",
        "CRYPTOPULSE_API__WEBSOCKET_WRITES": writes,
        "CRYPTOPULSE_API__PORT": str(port),
        "CRYPTOPULSE_API__MAX_CLIENTS": str(max_clients),
        # every simulated client comes from 127.0.0.1
        "CRYPTOPULSE_API__MAX_CLIENTS_PER_ADDRESS": str(max_clients),
        "CRYPTOPULSE_API__WS_CONNECTS_PER_SECOND_PER_ADDRESS": str(max_clients),
        "CRYPTOPULSE_API__TOKEN": "",
        "CRYPTOPULSE_LOG_LEVEL": "WARNING",
    }
    env.pop("CRYPTOPULSE_API__TOKEN")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cryptopulse.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def metric(http: httpx.Client, name: str) -> float:
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_level(
    http: httpx.Client, server: psutil.Process, port: int, clients: int, args: argparse.Namespace
) -> Level:
    ctx = mp.get_context("spawn")
    rss_idle = server.memory_info().rss / 2**20
    procs: list[tuple[Any, Connection]] = []
    started = time.monotonic()
    remaining = clients
    while remaining:
        n = min(PER_PROCESS, remaining)
        remaining -= n
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(child, "127.0.0.1", port, n), daemon=True)
        proc.start()
        procs.append((proc, parent))
    connected = failures = 0
    for _, pipe in procs:
        if not pipe.poll(args.timeout):
            raise SystemExit("clients did not connect in time")
        _, ok, bad = pipe.recv()
        connected, failures = connected + ok, failures + bad
    connect_seconds = time.monotonic() - started
    time.sleep(1.0)
    rss_connected = server.memory_info().rss / 2**20
    dropped_before = metric(http, "cryptopulse_api_ws_dropped_total")
    stored_before = metric(http, "cryptopulse_history_windows_stored_total")
    feeder = FinalsFeeder(f"http://127.0.0.1:{port}", args.finals_per_30s)
    feeder.start()

    # delivery latency
    gap = args.gap if clients < 5000 else max(args.gap, 2.0)
    sent: dict[int, float] = {}
    post_ms: list[float] = []
    broadcast_before = metric(http, "cryptopulse_api_broadcast_seconds_sum")
    for i in range(args.rounds):
        seq = 1_000_000 * clients + i + 1
        body = update(seq, 100 + i)
        sent[seq] = time.monotonic()
        started_post = time.perf_counter()
        http.post("/ingest", content=body, headers={"Content-Type": "application/json"})
        post_ms.append((time.perf_counter() - started_post) * 1000)
        time.sleep(gap)
    broadcast_ms = (
        (metric(http, "cryptopulse_api_broadcast_seconds_sum") - broadcast_before)
        / args.rounds
        * 1000
    )
    latencies: list[float] = []
    for _, pipe in procs:
        pipe.send("report")
    for _, pipe in procs:
        _, received, _closed = pipe.recv()
        latencies.extend((t - sent[s]) * 1000 for s, t in received if s in sent)

    # /ingest under load
    rate = args.ingest_rate if clients <= 1000 else max(1.0, args.ingest_rate / 10)
    requests = args.ingest_requests if clients <= 1000 else args.ingest_requests // 5
    ingest_ms: list[float] = []
    next_at = time.perf_counter()
    for i in range(requests):
        body = update(2_000_000_000 + i, 1000 + i % 50)
        started_post = time.perf_counter()
        response = http.post("/ingest", content=body, headers={"Content-Type": "application/json"})
        ingest_ms.append((time.perf_counter() - started_post) * 1000)
        response.raise_for_status()
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.perf_counter()))
    time.sleep(gap)
    finals_posted = feeder.stop()
    rss_after = server.memory_info().rss / 2**20
    dropped = metric(http, "cryptopulse_api_ws_dropped_total") - dropped_before
    for _, pipe in procs:
        pipe.send("close")
    for proc, pipe in procs:
        pipe.poll(30)
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    deadline = time.monotonic() + 30
    while http.get("/healthz").json()["clients"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return Level(
        clients=clients,
        connected=connected,
        connect_failures=failures,
        connect_seconds=round(connect_seconds, 1),
        rss_idle_mb=round(rss_idle, 1),
        rss_connected_mb=round(rss_connected, 1),
        rss_after_mb=round(rss_after, 1),
        deliveries=len(latencies),
        expected=connected * args.rounds,
        latency_ms=summary(latencies),
        ingest_ms=summary(ingest_ms),
        ingest_samples=len(ingest_ms),
        dropped=dropped,
        broadcast_ms=round(broadcast_ms, 2),
        finals_posted=finals_posted,
        finals_stored=metric(http, "cryptopulse_history_windows_stored_total") - stored_before,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--rounds", type=int, default=20, help="broadcasts timed per level")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between timed broadcasts")
    parser.add_argument("--ingest-requests", type=int, default=300)
    parser.add_argument("--ingest-rate", type=float, default=10.0, help="POSTs per second")
    parser.add_argument(
        "--history", type=int, default=10, help="windows per coin before clients join"
    )
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to connect")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--finals-per-30s",
        type=int,
        default=0,
        help="final windows POSTed every 30 s during each level (stored, not broadcast)",
    )
    parser.add_argument(
        "--no-history-db",
        dest="history_db",
        action="store_false",
        help="run the server with history.enabled = false",
    )
    parser.add_argument(
        "--websocket-writes",
        choices=["direct", "asgi"],
        default="direct",
        help="the server's api.websocket_writes: frames straight to sockets, or ASGI sends",
    )
    args = parser.parse_args()
    if max(args.levels) > 15000:
        raise SystemExit("at most 15,000 clients: the fd limit and two cores bound this benchmark")
    hard = raise_fd_limit()
    if hard < max(args.levels) + 1000:
        raise SystemExit(
            f"the open-files hard limit ({hard}) is too low for {max(args.levels)} clients"
        )

    proc = start_server(
        args.port, max(args.levels) + 100, args.websocket_writes, history_db=args.history_db
    )
    results: list[Level] = []
    try:
        server = psutil.Process(proc.pid)
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as http:
            for w in range(args.history):  # history, so snapshots are realistic
                http.post(
                    "/ingest", content=update(0, w), headers={"Content-Type": "application/json"}
                )
            for clients in args.levels:
                level = run_level(http, server, args.port, clients, args)
                results.append(level)
                print(json.dumps(level.__dict__), flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    machine = f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    print(f"\nmachine: {machine}, Python {platform.python_version()}\n")
    print(
        "| clients | delivery median | delivery p99 | max | delivered | server RSS (connected / after) "
        "| /ingest median | /ingest p99 | dropped |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.clients:,} | {r.latency_ms.get('p50')} ms | {r.latency_ms.get('p99')} ms "
            f"| {r.latency_ms.get('max')} ms | {r.deliveries:,}/{r.expected:,} "
            f"| {r.rss_connected_mb:.0f} / {r.rss_after_mb:.0f} MiB "
            f"| {r.ingest_ms.get('p50')} ms | {r.ingest_ms.get('p99')} ms | {r.dropped:.0f} |"
        )
    if args.finals_per_30s:
        print(
            f"\nfinals: {args.finals_per_30s:,} per 30 s, history database "
            f"{'on' if args.history_db else 'off'}; posted / stored per level: "
            + ", ".join(f"{r.finals_posted:,} / {r.finals_stored:,.0f}" for r in results)
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "levels": [r.__dict__ for r in results]}, indent=2)
        )


if __name__ == "__main__":
    main()
