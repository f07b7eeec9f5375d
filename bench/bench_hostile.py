"""Hostile-load benchmark of the API server (issue #11), on loopback only, bounded in time.

One real `cryptopulse serve` process (own process group, free port, temp data dir, a token).
A normal client is connected first; then, for --duration seconds, these attackers run at once,
each pattern in its own process (plain asyncio, raw sockets), all from 127.0.0.1:

* half-open HTTP: a third send a partial request line and headers, a third a POST /ingest
  (with the token) whose body stops short of its Content-Length, a third trickle one header
  byte per --trickle-interval seconds and never end the headers (slowloris);
* idle sockets: TCP connect, then send nothing;
* never-reading WebSocket clients: the upgrade written by hand, the handshake read, then the
  socket is never read again (the server's broadcasts pile up against it);
* chatty WebSocket clients: masked text frames as fast as the socket takes them (they do
  read, and answer pings, so only their sending is hostile);
* a coin flood: --coins distinct coins POSTed to /ingest with the token, --coin-batch a POST.

A connection that the server closes is opened again after --reconnect-delay seconds, so each
pattern keeps up its pressure for the whole run. The attacker processes run at niceness
--attacker-nice (10): they share the server's cores here, which a remote attacker would not,
and the run reports how long the server's event loop waited for a CPU. Per pattern the bench counts what the server
did: connections refused or closed (and after how long), HTTP status codes, WebSocket close
codes, the /ingest answers (stored, rejected, reasons).

Meanwhile a normal client (its own process, the `websockets` library) stays connected to /ws
and a feeder (another process) POSTs one window for each of --normal-coins coins every
--feed-interval seconds; every record's delay is the time from just before its POST to its
arrival on the WebSocket (CLOCK_MONOTONIC, shared by all processes). The server's RSS and
open descriptors are sampled every 250 ms for the whole run.

Verdict: peak RSS at most --ceiling-mib, every posted record delivered, max delay at most
--max-delay-ms. Safety: the server is killed if its RSS passes --kill-rss-mib or the machine
has less than 2 GiB available (reported as such).

    .venv/bin/python bench/bench_hostile.py                        # 60 s, ~2,000 connections
    .venv/bin/python bench/bench_hostile.py --duration 20 --json out.json
    git archive <commit> cryptopulse | tar -x -C /tmp/old   # another version of the server:
    .venv/bin/python bench/bench_hostile.py --server-src /tmp/old

Results and their reading: docs/PERFORMANCE.md, "Hostile load (issue #11)".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import summary  # noqa: E402

HOST = "127.0.0.1"
WINDOW = timedelta(seconds=30)  # spark.window_seconds: /ingest rejects other lengths
CYCLE = 200  # windows the feeder cycles through (each post: a window of its own)
SEED_SEQ = 10**9  # tick_count of the windows written before the normal client connects
SOURCE = "simulated"
NORMAL_PREFIX = "normal-"
FLOOD_PREFIX = "hostile-"
TCP_ESTABLISHED = 1
PATTERNS = ("half_open", "idle", "ws_never_reading", "ws_chatty", "coin_flood")


def base_start() -> datetime:
    """The start of the oldest window the bench writes: CYCLE + 1 windows before now, aligned,
    so every window it writes starts in the past (the server rejects future ones)."""
    now = datetime.now(UTC).replace(microsecond=0)
    aligned = now - timedelta(seconds=now.second % 30)
    return aligned - WINDOW * (CYCLE + 1)


def window_record(coin: str, start: datetime, price: float, seq: int) -> dict[str, Any]:
    """A valid WindowAggregate (as tests/factories.py `window()`), `seq` in tick_count."""
    stamp = start.isoformat().replace("+00:00", "Z")
    end = (start + WINDOW).isoformat().replace("+00:00", "Z")
    return {
        "source": SOURCE,
        "coin": coin,
        "symbol": coin[-8:],
        "window_start": stamp,
        "window_end": end,
        "avg_price": price,
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "avg_change_24h": 0.5,
        "max_volume_24h": 1.0,
        "market_cap": 2.0,
        "tick_count": seq,
        "volatility": "Stable",
        "trend": "➡️ Stable",
        "final": False,
    }


def normal_batch(coins: list[str], base: datetime, seq: int) -> bytes:
    start = base + WINDOW * (seq % CYCLE)
    price = 100.0 + seq % 97
    return orjson.dumps({"data": [window_record(c, start, price, seq) for c in coins]})


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------- attackers


@dataclass
class PatternStats:
    pattern: str
    size: int
    attempts: int = 0
    connected: int = 0
    connect_errors: Counter[str] = field(default_factory=Counter)
    admitted: int = 0  # WebSocket: handshake 101 and a first data frame (the snapshot)
    refused: Counter[str] = field(default_factory=Counter)  # "http 503", "close 1013", ...
    closed_by_server: int = 0
    close_after_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # HTTP status lines received
    close_codes: Counter[str] = field(default_factory=Counter)  # WebSocket close frames
    open_at_end: int = 0
    max_open: int = 0
    frames_sent: int = 0
    frames_before_close: list[int] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)
    open_now: int = 0

    def opened(self) -> None:
        self.connected += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)

    def report(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("open_now")
        out["close_after_s"] = summary(self.close_after_s)
        out["frames_before_close"] = summary([float(f) for f in self.frames_before_close], 0)
        for key in ("connect_errors", "refused", "statuses", "close_codes"):
            out[key] = dict(getattr(self, key))
        return out


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (RFC 6455 §5.3: clients mask), payload < 64 KiB."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = (
        struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        if n < 126
        else struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    )
    return head + mask + body


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def server_owned_ports(server_port: int) -> set[int]:
    """Remote (client) ports of the loopback connections to `server_port` whose server-side
    socket is owned by a process (/proc/net/tcp: inode not 0)."""
    held: set[int] = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == server_port and inode != "0":
                held.add(int(remote.rsplit(":", 1)[1], 16))
    return held


class Conn(asyncio.Protocol):
    """One attacking connection. mode: "http" (notes the status line of any answer),
    "ws" (handshake, then frames parsed: pings answered, close code noted) or "ws-noread"
    (handshake, then reading stops at the first data frame's header)."""

    def __init__(self, mode: str) -> None:
        loop = asyncio.get_running_loop()
        self.mode = mode
        self.closed: asyncio.Future[None] = loop.create_future()
        self.handshake: asyncio.Future[int] = loop.create_future()
        self.first_frame: asyncio.Future[int] = loop.create_future()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.transport: asyncio.Transport | None = None
        self.status: int | None = None
        self.head = bytearray()
        self.hdr = bytearray()
        self.remaining = 0
        self.opcode = 0
        self.collect = False
        self.body = bytearray()
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.can_write.set()
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.handshake.done():
            self.handshake.set_result(0)
        if not self.first_frame.done():
            self.first_frame.set_result(-1)

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        if self.status is None:
            self.head += data
            if self.mode == "http":
                line_end = self.head.find(b"\r\n")
                if line_end < 0:
                    return
                self._set_status(bytes(self.head[:line_end]))
                self.head.clear()
                return
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self._set_status(bytes(self.head[: self.head.find(b"\r\n")]))
            data = bytes(self.head[end + 4 :])
            self.head.clear()
        if self.mode == "http" or self.status != 101:
            return
        self._frames(data)

    def _set_status(self, line: bytes) -> None:
        parts = line.split()
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if not self.handshake.done():
            self.handshake.set_result(self.status)

    def _frames(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.remaining:
                take = min(self.remaining, n - i)
                if self.collect:
                    self.body += data[i : i + take]
                self.remaining -= take
                i += take
                if not self.remaining:
                    self._frame_done()
                continue
            self.hdr.append(data[i])
            i += 1
            if len(self.hdr) < 2:
                continue
            size = self.hdr[1] & 0x7F
            need = 2 + (2 if size == 126 else 8 if size == 127 else 0)
            if len(self.hdr) < need:
                continue
            if size == 126:
                (size,) = struct.unpack_from("!H", self.hdr, 2)
            elif size == 127:
                (size,) = struct.unpack_from("!Q", self.hdr, 2)
            self.opcode = self.hdr[0] & 0x0F
            self.hdr.clear()
            self.collect = self.opcode >= 0x8
            self.body.clear()
            if self.opcode != 0x8 and not self.first_frame.done():
                self.first_frame.set_result(self.opcode)
                if self.mode == "ws-noread" and self.transport is not None:
                    self.transport.pause_reading()  # from here on, never read again
                    return
            self.remaining = size
            if not size:
                self._frame_done()

    def _frame_done(self) -> None:
        if self.opcode == 0x8:
            code = struct.unpack_from("!H", self.body)[0] if len(self.body) >= 2 else 1005
            self.close_code = code
            if not self.first_frame.done():
                self.first_frame.set_result(0x8)
        elif self.opcode == 0x9 and self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(0xA, bytes(self.body)))


class Attacker:
    def __init__(
        self,
        pattern: str,
        port: int,
        size: int,
        deadline: float,
        opts: dict[str, Any],
        halt: Any = None,
    ) -> None:
        self.halt = halt  # a multiprocessing Event: the server is gone, stop now
        self.pattern = pattern
        self.port = port
        self.deadline = deadline
        self.opts = opts
        self.stats = PatternStats(pattern, size)
        payload = b'{"type":"hello","pad":"' + b"x" * max(0, opts["chatty_bytes"] - 24) + b'"}'
        self.chatty_burst = masked_frame(0x1, payload) * 16
        self.server_held: set[int] = set()
        self.held_at = 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    async def connect(self, mode: str) -> Conn | None:
        loop = asyncio.get_running_loop()
        self.stats.attempts += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Conn(mode), HOST, self.port),
                timeout=min(5.0, max(0.1, self.left())),
            )
        except TimeoutError:
            self.stats.connect_errors["timeout"] += 1
            return None
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            self.stats.connect_errors[name] += 1
            return None
        self.stats.opened()
        return conn

    async def until_closed(self, conn: Conn, started: float) -> bool:
        """Wait until the server closes `conn` (True) or the run ends (False: counted open)."""
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed), max(0.0, self.left()))
        except TimeoutError:
            self.stats.open_at_end += 1
            return False
        self.server_closed(started)
        return True

    def server_closed(self, started: float) -> None:
        self.stats.closed_by_server += 1
        self.stats.close_after_s.append(time.monotonic() - started)

    def finish(self, conn: Conn) -> None:
        if conn.status is not None and conn.mode == "http":
            self.stats.statuses[str(conn.status)] += 1
        if conn.close_code is not None:
            self.stats.close_codes[str(conn.close_code)] += 1
        if conn.transport is not None:
            conn.transport.abort()
        if self.stats.open_now > 0:
            self.stats.open_now -= 1

    async def slot(self, index: int) -> None:
        await asyncio.sleep(index * self.opts["ramp"] / max(1, self.stats.size))
        while self.left() > 0.5:
            keep_going = await self.one(index)
            if not keep_going or self.left() <= 0.5:
                return
            await asyncio.sleep(self.opts["reconnect_delay"])

    async def one(self, index: int) -> bool:
        if self.pattern == "half_open":
            return await self.half_open(index)
        if self.pattern == "idle":
            return await self.idle()
        return await self.websocket(chatty=self.pattern == "ws_chatty")

    async def half_open(self, index: int) -> bool:
        conn = await self.connect("http")
        if conn is None or conn.transport is None:
            return True
        started = time.monotonic()
        host = f"Host: {HOST}:{self.port}\r\n"
        variant = index % 3
        if variant == 0:  # request line and part of the headers, then nothing
            conn.transport.write(f"GET /api/coins HTTP/1.1\r\n{host}User-Agent: half".encode())
        elif variant == 1:  # complete headers, a body that stops short of Content-Length
            conn.transport.write(
                (
                    f"POST /ingest HTTP/1.1\r\n{host}Authorization: Bearer {self.opts['token']}"
                    "\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n"
                    '{"data": [{"source": "simulated", "coin": '
                ).encode()
            )
        else:  # slowloris: one byte of an endless header every trickle_interval seconds
            conn.transport.write(f"GET /healthz HTTP/1.1\r\n{host}X-Slow: ".encode())
            while not conn.closed.done() and self.left() > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(conn.closed),
                        min(self.opts["trickle_interval"], max(0.0, self.left())),
                    )
                if not conn.closed.done() and self.left() > 0:
                    conn.transport.write(b"a")
        closed = await self.until_closed(conn, started)
        self.finish(conn)
        return closed

    async def idle(self) -> bool:
        conn = await self.connect("http")
        if conn is None:
            return True
        started = time.monotonic()
        closed = await self.until_closed(conn, started)
        self.finish(conn)
        return closed

    async def websocket(self, *, chatty: bool) -> bool:
        conn = await self.connect("ws" if chatty else "ws-noread")
        if conn is None or conn.transport is None:
            return True
        started = time.monotonic()
        conn.transport.write(upgrade_request(self.port))
        try:
            status = await asyncio.wait_for(
                asyncio.shield(conn.handshake), min(10.0, max(0.1, self.left()))
            )
            first = await asyncio.wait_for(
                asyncio.shield(conn.first_frame), min(10.0, max(0.1, self.left()))
            )
        except TimeoutError:
            self.stats.refused["no answer in 10 s"] += 1
            if self.left() <= 0:
                self.stats.open_at_end += 1
            self.finish(conn)
            return self.left() > 0
        if status != 101:
            self.stats.refused[f"http {status}" if status else "closed before answering"] += 1
            self.finish(conn)
            return True
        if first == 0x8 or first == -1:
            self.stats.refused[
                f"close {conn.close_code}" if conn.close_code else "closed after 101"
            ] += 1
            self.finish(conn)
            return True
        self.stats.admitted += 1
        if chatty:
            closed = await self.chatter(conn, started)
        else:
            closed = await self.never_read(conn, started)
        self.finish(conn)
        return closed

    async def chatter(self, conn: Conn, started: float) -> bool:
        assert conn.transport is not None
        sent = 0
        rate = self.opts["chatty_rate"]
        while not conn.closed.done() and self.left() > 0:
            if not conn.can_write.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.can_write.wait(), max(0.01, self.left()))
                continue
            conn.transport.write(self.chatty_burst)
            sent += 16
            self.stats.frames_sent += 16
            await asyncio.sleep(16 / rate if rate > 0 else 0)
        if conn.closed.done():
            self.server_closed(started)
            self.stats.frames_before_close.append(sent)
            return True
        self.stats.open_at_end += 1
        return False

    async def never_read(self, conn: Conn, started: float) -> bool:
        """Reading is paused, so a close is not seen by reading. A server that aborts a
        connection with unsent data leaves an orphan socket that keeps offering that data to
        our zero window: our side stays ESTABLISHED. So the server's side is looked up in
        /proc/net/tcp instead: closed once no process owns it (inode 0) or it is gone; our
        own TCP state is checked too (CLOSE_WAIT after a FIN, CLOSE after a RST)."""
        assert conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        port = int(conn.transport.get_extra_info("sockname")[1])
        ready = time.monotonic()  # accepted by now: only a later look at the table counts
        while self.left() > 0:
            if conn.closed.done() or (self.held_at > ready and port not in self.server_held):
                break
            try:
                state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            except OSError:
                break
            if state != TCP_ESTABLISHED:
                break
            await asyncio.sleep(min(1.0, max(0.0, self.left())))
        if self.left() > 0:
            self.server_closed(started)
            return True
        self.stats.open_at_end += 1
        return False

    async def watch_server_sockets(self) -> None:
        """Every second: the client ports whose server-side socket a process still owns."""
        while self.left() > 0:
            self.server_held = server_owned_ports(self.port)
            self.held_at = time.monotonic()
            await asyncio.sleep(1.0)

    async def flood(self) -> None:
        """--coins distinct coins to /ingest, --coin-batch per POST, one keep-alive connection."""
        coins, batch = self.stats.size, self.opts["coin_batch"]
        start = self.opts["base"] + WINDOW * CYCLE
        statuses: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        stored = rejected = posted = 0
        post_ms: list[float] = []
        errors: Counter[str] = Counter()
        began = time.monotonic()
        headers = {
            "Authorization": f"Bearer {self.opts['token']}",
            "Content-Type": "application/json",
        }
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{self.port}", headers=headers, timeout=30
        ) as http:
            for first in range(0, coins, batch):
                if self.left() <= 0:
                    break
                records = [
                    window_record(f"{FLOOD_PREFIX}{i:06d}", start, 50.0 + i % 1000, 1)
                    for i in range(first, min(coins, first + batch))
                ]
                body = orjson.dumps({"data": records})
                self.stats.attempts += 1
                t = time.perf_counter()
                try:
                    response = await http.post("/ingest", content=body)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                post_ms.append((time.perf_counter() - t) * 1000)
                posted += len(records)
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    answer = response.json()
                    stored += answer["stored"]
                    rejected += answer["rejected"]
                    reasons.update(answer["reasons"])
                else:
                    with contextlib.suppress(ValueError):
                        reason = response.json().get("reason")
                        if reason:
                            reasons[f"whole batch: {reason}"] += len(records)
        self.stats.ingest = {
            "coins_posted": posted,
            "posts": sum(statuses.values()),
            "seconds": round(time.monotonic() - began, 1),
            "statuses": dict(statuses),
            "errors": dict(errors),
            "stored": stored,
            "rejected": rejected,
            "reasons": dict(reasons),
            "post_ms": summary(post_ms),
        }

    async def watch_halt(self) -> None:
        while self.left() > 0:
            if self.halt is not None and self.halt.is_set():
                self.deadline = time.monotonic()
                return
            await asyncio.sleep(0.25)

    async def run(self) -> dict[str, Any]:
        halting = asyncio.get_running_loop().create_task(self.watch_halt())
        try:
            return await self.attack()
        finally:
            halting.cancel()

    async def attack(self) -> dict[str, Any]:
        if self.pattern == "coin_flood":
            await self.flood()
        else:
            if self.pattern == "ws_never_reading":
                watcher = asyncio.get_running_loop().create_task(self.watch_server_sockets())
            await asyncio.gather(*(self.slot(i) for i in range(self.stats.size)))
            if self.pattern == "ws_never_reading":
                watcher.cancel()
        return self.stats.report()


def attacker_process(
    pipe: Connection,
    pattern: str,
    port: int,
    size: int,
    deadline: float,
    opts: dict[str, Any],
    halt: Any,
) -> None:
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if opts["nice"] > 0:  # the attackers share this machine's cores; a real one would not
        os.nice(opts["nice"])
    try:
        result = asyncio.run(Attacker(pattern, port, size, deadline, opts, halt).run())
    except Exception as exc:
        result = {"pattern": pattern, "size": size, "error": repr(exc)}
    pipe.send(result)


# ---------------------------------------------------------------- the normal client


async def normal_main(pipe: Connection, port: int, coins: list[str]) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    loop = asyncio.get_running_loop()
    wanted = set(coins)
    arrivals: dict[str, float] = {}  # "seq coin" -> first arrival (monotonic)
    events: list[str] = []
    stop = asyncio.Event()
    ready = False
    marker = f'"coin":"{NORMAL_PREFIX}'

    async def receive() -> None:
        nonlocal ready
        while not stop.is_set():
            try:
                async with connect(
                    f"ws://{HOST}:{port}/ws", max_size=None, open_timeout=10, close_timeout=2
                ) as ws:
                    async for message in ws:
                        now = time.monotonic()
                        text = message if isinstance(message, str) else message.decode()
                        if not ready and text.startswith('{"type":"snapshot"'):
                            ready = True
                            pipe.send(("ready",))
                            continue
                        if marker not in text:
                            continue
                        body = orjson.loads(text)
                        if body.get("type") != "market_update":
                            continue
                        for record in body["data"]:
                            if record["coin"] in wanted:
                                arrivals.setdefault(f"{record['tick_count']} {record['coin']}", now)
                    events.append(f"closed by server: {ws.close_code} {ws.close_reason}")
            except (OSError, WebSocketException, TimeoutError) as exc:
                events.append(f"{time.monotonic():.1f} {type(exc).__name__}: {exc}"[:200])
                if not ready:
                    pipe.send(("failed", events[-1]))
                    return
            if not stop.is_set():
                await asyncio.sleep(0.5)

    task = loop.create_task(receive())
    command = await loop.run_in_executor(None, pipe.recv)
    assert command == "stop"
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    pipe.send(("result", arrivals, events))


def normal_process(pipe: Connection, port: int, coins: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(normal_main(pipe, port, coins))


def feeder_process(
    pipe: Connection, port: int, token: str, coins: list[str], interval: float, base: datetime
) -> None:
    """POSTs one window per coin every `interval` s until told to stop; reports each POST."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    posts: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as http:
        seq = 0
        next_at = time.monotonic()
        while not pipe.poll(max(0.0, next_at - time.monotonic())):
            seq += 1
            body = normal_batch(coins, base, seq)
            sent = time.monotonic()
            post: dict[str, Any] = {"seq": seq, "sent": sent}
            try:
                response = http.post("/ingest", content=body)
                post["status"] = response.status_code
                if response.status_code == 200:
                    post["stored"] = response.json()["stored"]
            except httpx.HTTPError as exc:
                post["error"] = type(exc).__name__
            post["ms"] = (time.monotonic() - sent) * 1000
            posts.append(post)
            next_at = max(next_at + interval, time.monotonic())
    pipe.recv()
    pipe.send(posts)


# ---------------------------------------------------------------- the server and its memory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the process, seconds (/proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def available_mib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


class Sampler(threading.Thread):
    """RSS and open descriptors of the server every `every` s; kills the server's process
    group if its RSS passes `kill_mib` or the machine runs low on memory."""

    def __init__(self, pid: int, every: float, kill_mib: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.kill_mib = pid, every, kill_mib
        self.samples: list[tuple[float, float, int]] = []
        self.cpu: list[tuple[float, float]] = []  # (monotonic, server CPU seconds)
        self.killed: str | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            rss, fds = rss_mib(self.pid), fd_count(self.pid)
            if rss is None or fds is None:
                continue
            self.samples.append((time.monotonic(), rss, fds))
            cpu = cpu_seconds(self.pid)
            if cpu is not None:
                self.cpu.append((time.monotonic(), cpu))
            low = available_mib() < 2048
            if (rss > self.kill_mib or low) and self.killed is None:
                self.killed = (
                    f"RSS {rss:.0f} MiB > {self.kill_mib:.0f} MiB"
                    if not low
                    else f"machine below 2 GiB available (server RSS {rss:.0f} MiB)"
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)

    def now(self) -> tuple[float, int]:
        return (self.samples[-1][1], self.samples[-1][2]) if self.samples else (0.0, 0)

    def between(self, t0: float, t1: float) -> list[tuple[float, float, int]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def busiest_second(self, t0: float, t1: float) -> float | None:
        """The server's highest CPU use over any 1 s between t0 and t1, percent of one core."""
        points = [c for c in self.cpu if t0 <= c[0] <= t1]
        best: float | None = None
        j = 0
        for t, cpu in points:
            while j < len(points) and points[j][0] < t + 1.0:
                j += 1
            if j == len(points):
                break
            dt = points[j][0] - t
            share = (points[j][1] - cpu) / dt * 100
            best = share if best is None else max(best, share)
        return None if best is None else round(best)


def runqueue_wait_s(pid: int) -> float | None:
    """Seconds the process's main thread (the event loop) has waited for a CPU while runnable
    (/proc/<pid>/schedstat): high when the machine, not the server, is the bottleneck."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def start_server(
    port: int, token: str, data_dir: Path, log: Path, src: Path | None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    if src is not None:  # another version of the code, e.g. `git archive <commit>` unpacked
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(":")
    env.update(
        CRYPTOPULSE_API__TOKEN=token,
        CRYPTOPULSE_API__HOST=HOST,
        CRYPTOPULSE_API__PORT=str(port),
        CRYPTOPULSE_DATA_DIR=str(data_dir),
        CRYPTOPULSE_CONFIG=str(data_dir / "none.toml"),  # no settings file
        CRYPTOPULSE_LOG_LEVEL="WARNING",
    )
    script = Path(sys.executable).with_name("cryptopulse")
    command = (
        [str(script)]
        if script.exists() and src is None
        else [sys.executable, "-m", "cryptopulse.cli"]
    )
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "serve", "--host", HOST, "--port", str(port)],
            cwd=data_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def counters(text: str) -> dict[str, float]:
    """The server's Prometheus counters about refusals, drops, rejections and limits."""
    words = ("refused", "dropped", "rejected", "closed", "timeout", "limit", "connections")
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("cryptopulse_") and any(w in line.split(" ")[0] for w in words):
            name, _, value = line.rpartition(" ")
            if name.endswith("_created") or "_created{" in name:
                continue
            with contextlib.suppress(ValueError):
                if float(value):
                    out[name] = float(value)
    return out


# ---------------------------------------------------------------- the run


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total = int(meminfo.readline().split()[1]) / 2**20
    return f"{os.cpu_count()} cores ({model}), {total:.0f} GiB, Python {platform.python_version()}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = {
        "half_open": args.half_open,
        "idle": args.idle,
        "ws_never_reading": args.never_reading,
        "ws_chatty": args.chatty,
        "coin_flood": args.coins,
    }
    sockets = sum(v for k, v in sizes.items() if k != "coin_flood")
    limit = raise_fd_limit()
    if sockets + 200 > limit:
        raise SystemExit(f"{sockets} connections do not fit the open-files limit ({limit})")
    ctx = mp.get_context("spawn")
    token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    log = tmp / "server.log"
    coins = [f"{NORMAL_PREFIX}{i}" for i in range(args.normal_coins)]
    base = base_start()
    server = start_server(port, token, tmp, log, args.server_src)
    sampler = Sampler(server.pid, 0.25, args.kill_rss_mib)
    sampler.start()
    children: list[Any] = []
    result: dict[str, Any] = {"machine": machine(), "sizes": sizes, "args": vars(args).copy()}
    result["args"].pop("json", None)
    try:
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=10) as http:
            seed = http.post("/ingest", content=normal_batch(coins, base, SEED_SEQ), headers=auth)
            if seed.status_code != 200 or seed.json()["stored"] != len(coins):
                raise SystemExit(f"seed POST refused: {seed.status_code} {seed.text[:300]}")
        time.sleep(1.0)
        rss0, fds0 = sampler.now()
        load_before = os.getloadavg()[0]

        normal_pipe, child = ctx.Pipe()
        normal = ctx.Process(target=normal_process, args=(child, port, coins), daemon=True)
        normal.start()
        children.append(normal)
        if not normal_pipe.poll(20):
            raise SystemExit("the normal client did not connect in 20 s")
        answer = normal_pipe.recv()
        if answer[0] != "ready":
            raise SystemExit(f"the normal client could not connect: {answer}")
        feeder_pipe, child = ctx.Pipe()
        feeder = ctx.Process(
            target=feeder_process,
            args=(child, port, token, coins, args.feed_interval, base),
            daemon=True,
        )
        feeder.start()
        children.append(feeder)
        time.sleep(args.quiet)

        attack_start = time.monotonic()
        cpu0 = cpu_seconds(server.pid) or 0.0
        wait0 = runqueue_wait_s(server.pid)
        deadline = attack_start + args.duration
        opts = {
            "token": token,
            "ramp": args.ramp,
            "reconnect_delay": args.reconnect_delay,
            "trickle_interval": args.trickle_interval,
            "chatty_bytes": args.chatty_bytes,
            "chatty_rate": args.chatty_rate,
            "coin_batch": args.coin_batch,
            "nice": args.attacker_nice,
            "base": base,
        }
        pipes: dict[str, Connection] = {}
        halt = ctx.Event()
        for pattern, size in sizes.items():
            if size <= 0:
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=attacker_process,
                args=(child, pattern, port, size, deadline, opts, halt),
                daemon=True,
            )
            proc.start()
            children.append(proc)
            pipes[pattern] = parent
        print(
            f"attack: {', '.join(f'{k} {v:,}' for k, v in sizes.items())} for {args.duration:.0f} s",
            flush=True,
        )
        next_report = attack_start + 10
        while time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.25)
            if time.monotonic() >= next_report:
                next_report += 10
                rss, fds = sampler.now()
                print(
                    f"  t+{time.monotonic() - attack_start:4.0f} s  RSS {rss:6.1f} MiB  fds {fds}",
                    flush=True,
                )
        attack_end = time.monotonic()
        cpu1 = cpu_seconds(server.pid)
        wait1 = runqueue_wait_s(server.pid)
        load_end = os.getloadavg()[0]
        died_at = None if server.poll() is None else round(attack_end - attack_start, 1)
        halt.set()
        rss_end, fds_end = sampler.now()
        feeder_pipe.send("stop")
        attackers: dict[str, Any] = {}
        for pattern, pipe in pipes.items():
            attackers[pattern] = (
                pipe.recv() if pipe.poll(60) else {"pattern": pattern, "error": "no report"}
            )
        posts: list[dict[str, Any]] = feeder_pipe.recv() if feeder_pipe.poll(30) else []
        time.sleep(args.grace)
        normal_pipe.send("stop")
        arrivals: dict[str, float] = {}
        events: list[str] = []
        if normal_pipe.poll(30):
            _, arrivals, events = normal_pipe.recv()
        time.sleep(2.0)  # attackers gone: what the server gives back
        rss_after, fds_after = sampler.now()
        alive = server.poll() is None
        metrics: dict[str, float] = {}
        health: Any = None
        if alive:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                metrics = counters(httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text)
                health = httpx.get(f"http://{HOST}:{port}/healthz", timeout=10).json()
    finally:
        sampler.halt.set()
        stop_server(server)
        for proc in children:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        log_text = log.read_text(errors="replace") if log.exists() else ""
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    # the normal client's deliveries
    delays: list[float] = []
    quiet: list[float] = []
    under_attack: list[float] = []
    worst: list[tuple[int, float]] = []  # (delay ms, sent at t+ s)
    missing = refused_posts = 0
    for post in posts:
        if post.get("status") != 200 or post.get("stored") != len(coins):
            refused_posts += 1
            continue
        for coin in coins:
            arrived = arrivals.get(f"{post['seq']} {coin}")
            if arrived is None:
                missing += 1
                continue
            delay = (arrived - post["sent"]) * 1000
            delays.append(delay)
            (quiet if post["sent"] < attack_start else under_attack).append(delay)
            worst.append((round(delay), round(post["sent"] - attack_start, 1)))
    during = sampler.between(attack_start, attack_end)
    peak = max(sampler.samples, key=lambda s: s[1]) if sampler.samples else (0.0, 0.0, 0)
    result.update(
        {
            "server_alive_at_end": alive,
            "server_cpu_percent_during_attack": (
                round((cpu1 - cpu0) / (attack_end - attack_start) * 100) if cpu1 else None
            ),
            "server_cpu_percent_busiest_second": sampler.busiest_second(attack_start, attack_end),
            "server_runqueue_wait_s_during_attack": (
                round(wait1 - wait0, 1) if wait0 is not None and wait1 is not None else None
            ),
            "load_average_1min": {"before": load_before, "end_of_attack": load_end},
            "killed_by_bench": sampler.killed,
            "server_died_at_s": died_at,
            "rss_mib": {
                "baseline": round(rss0, 1),
                "peak": round(peak[1], 1),
                "peak_at_s": round(peak[0] - attack_start, 1),
                "end_of_attack": round(rss_end, 1),
                "after_attackers_left": round(rss_after, 1),
                "ceiling": args.ceiling_mib,
            },
            "fds": {
                "baseline": fds0,
                "peak": max((s[2] for s in during), default=0),
                "end_of_attack": fds_end,
                "after_attackers_left": fds_after,
            },
            "attackers": attackers,
            "normal": {
                "coins": len(coins),
                "posts": len(posts),
                "records_expected": sum(
                    len(coins)
                    for p in posts
                    if p.get("status") == 200 and p.get("stored") == len(coins)
                ),
                "posts_refused_or_failed": refused_posts,
                "post_statuses": dict(Counter(str(p.get("status", p.get("error"))) for p in posts)),
                "post_ms": summary([p["ms"] for p in posts]),
                "delivered": len(delays),
                "missing": missing,
                "delay_ms": summary(delays),
                "delay_ms_quiet": summary(quiet),
                "delay_ms_under_attack": summary(under_attack),
                "worst_delays_ms_at_s": sorted(worst, reverse=True)[:8],
                "events": len(events),
                "first_events": events[:5],
            },
            "server_counters": metrics,
            "healthz_at_end": health,
            "server_log_errors": sum(
                1 for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line
            ),
            "server_log_tail": log_text.splitlines()[-15:],
        }
    )
    return result


def verdict(result: dict[str, Any], args: argparse.Namespace) -> tuple[bool, list[str]]:
    rss = result["rss_mib"]
    normal = result["normal"]
    delay = normal["delay_ms"]
    lines = []
    memory_ok = rss["peak"] <= args.ceiling_mib and not result["killed_by_bench"]
    lines.append(
        f"memory: peak RSS {rss['peak']:.0f} MiB {'<=' if memory_ok else '>'} ceiling "
        f"{args.ceiling_mib:.0f} MiB"
        + (f" (killed: {result['killed_by_bench']})" if result["killed_by_bench"] else "")
    )
    delay_ok = bool(delay) and delay["max"] <= args.max_delay_ms
    lines.append(
        f"normal client: max delay {delay.get('max', float('nan')):.0f} ms, p99 "
        f"{delay.get('p99', float('nan')):.0f} ms {'<=' if delay_ok else 'NOT <='} "
        f"{args.max_delay_ms:.0f} ms"
    )
    complete = (
        normal["missing"] == 0
        and normal["posts_refused_or_failed"] == 0
        and normal["records_expected"] > 0
    )
    lines.append(
        f"normal client: {normal['delivered']:,} of {normal['records_expected']:,} records "
        f"delivered, {normal['missing']} missing, {normal['posts_refused_or_failed']} POSTs "
        "refused or failed"
    )
    return memory_ok and delay_ok and complete and result["server_alive_at_end"], lines


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nmachine: {result['machine']}")
    print(
        "\n| pattern | size | attempts | connect errors | admitted | refused | "
        "closed by server (p50 / max s) | open at end | answers |"
    )
    print("|---|---:|---:|---|---:|---|---|---:|---|")
    for pattern in PATTERNS:
        a = result["attackers"].get(pattern)
        if a is None:
            continue
        if "error" in a:
            print(f"| {pattern} | {a.get('size', '')} | error: {a['error']} |||||||")
            continue
        if pattern == "coin_flood":
            ing = a["ingest"]
            answers = (
                f"HTTP {ing['statuses']}, stored {ing['stored']:,}, rejected {ing['rejected']:,} "
                f"{ing['reasons']}; {ing['posts']} POSTs in {ing['seconds']} s, "
                f"p50 {ing['post_ms'].get('p50')} ms, max {ing['post_ms'].get('max')} ms"
                + (f", errors {ing['errors']}" if ing["errors"] else "")
            )
            print(
                f"| {pattern} | {a['size']:,} coins | {a['attempts']} POSTs | | | | | | {answers} |"
            )
            continue
        closes = a["close_after_s"]
        closed = (
            f"{a['closed_by_server']:,} ({closes.get('p50')} / {closes.get('max')})"
            if a["closed_by_server"]
            else "0"
        )
        notes: list[str] = []
        if a["statuses"]:
            notes.append(f"HTTP {a['statuses']}")
        if a["close_codes"]:
            notes.append(f"close codes {a['close_codes']}")
        if a["frames_sent"]:
            fb = a["frames_before_close"]
            notes.append(
                f"{a['frames_sent']:,} frames sent"
                + (f", {fb.get('p50'):.0f} before close (p50)" if fb else "")
            )
        admitted = a["admitted"] if pattern.startswith("ws_") else "-"
        print(
            f"| {pattern} | {a['size']:,} | {a['attempts']:,} | {a['connect_errors'] or '-'} "
            f"| {admitted} | {a['refused'] or '-'} | {closed} | {a['open_at_end']:,} "
            f"| {'; '.join(notes) or '-'} |"
        )
    rss, fds = result["rss_mib"], result["fds"]
    print(
        f"\nserver RSS: baseline {rss['baseline']} MiB, peak {rss['peak']} MiB "
        f"(t+{rss['peak_at_s']} s), end of attack {rss['end_of_attack']} MiB, "
        f"after the attackers left {rss['after_attackers_left']} MiB; ceiling {rss['ceiling']} MiB"
    )
    print(
        f"server fds: baseline {fds['baseline']}, peak {fds['peak']}, end of attack "
        f"{fds['end_of_attack']}, after {fds['after_attackers_left']}"
    )
    print(
        f"server CPU during the attack: {result['server_cpu_percent_during_attack']} % of one "
        f"core (busiest second {result['server_cpu_percent_busiest_second']} %), its event loop "
        f"waited {result['server_runqueue_wait_s_during_attack']} s for a CPU; 1-min load average {result['load_average_1min']['before']:.1f} before, "
        f"{result['load_average_1min']['end_of_attack']:.1f} at the end"
    )
    if result["server_died_at_s"] is not None:
        print(
            f"SERVER GONE at t+{result['server_died_at_s']} s"
            + (
                f" (killed by the bench: {result['killed_by_bench']})"
                if result["killed_by_bench"]
                else ""
            )
            + ": the figures after that are its last sample"
        )
    n = result["normal"]
    print(
        f"normal client: {n['posts']} POSTs x {n['coins']} coins (statuses {n['post_statuses']}, "
        f"POST p50 {n['post_ms'].get('p50')} ms, max {n['post_ms'].get('max')} ms)"
    )
    for label, key in (
        ("all", "delay_ms"),
        ("quiet", "delay_ms_quiet"),
        ("under attack", "delay_ms_under_attack"),
    ):
        d = n[key]
        if d:
            print(
                f"  delay {label:>12}: n {d['n']:,}  p50 {d['p50']} ms  p95 {d['p95']} ms  "
                f"p99 {d['p99']} ms  max {d['max']} ms"
            )
    print(f"  worst delays (ms, sent at t+ s): {n['worst_delays_ms_at_s']}")
    if n["events"]:
        print(f"  connection events ({n['events']}), first: {n['first_events']}")
    if result["server_counters"]:
        print("server counters (non-zero):")
        for name, value in sorted(result["server_counters"].items()):
            print(f"  {name} {value:g}")
    print(f"server log: {result['server_log_errors']} ERROR/Traceback lines")
    ok, lines = verdict(result, args)
    print()
    for line in lines:
        print(line)
    print(f"VERDICT: {'PASS' if ok else 'FAIL'}")
    result["verdict"] = {"pass": ok, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of attack")
    parser.add_argument("--half-open", type=int, default=600, help="half-open HTTP connections")
    parser.add_argument("--idle", type=int, default=600, help="idle TCP connections")
    parser.add_argument(
        "--never-reading", type=int, default=600, help="WebSocket clients that never read"
    )
    parser.add_argument("--chatty", type=int, default=200, help="WebSocket clients that flood")
    parser.add_argument("--coins", type=int, default=100_000, help="distinct coins POSTed")
    parser.add_argument("--coin-batch", type=int, default=1000, help="records per flood POST")
    parser.add_argument("--chatty-bytes", type=int, default=32, help="payload of a chatty frame")
    parser.add_argument(
        "--chatty-rate", type=float, default=0.0, help="frames/s per chatty client (0: unpaced)"
    )
    parser.add_argument("--trickle-interval", type=float, default=1.0, help="slowloris period")
    parser.add_argument("--reconnect-delay", type=float, default=2.0)
    parser.add_argument(
        "--attacker-nice",
        type=int,
        default=10,
        help="niceness of the attacker processes (0: same priority as the server)",
    )
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds to open each pattern")
    parser.add_argument("--normal-coins", type=int, default=3)
    parser.add_argument("--feed-interval", type=float, default=0.2)
    parser.add_argument("--quiet", type=float, default=5.0, help="normal-only seconds first")
    parser.add_argument("--grace", type=float, default=3.0, help="seconds for the last updates")
    parser.add_argument("--ceiling-mib", type=float, default=400.0)
    parser.add_argument("--max-delay-ms", type=float, default=500.0)
    parser.add_argument("--kill-rss-mib", type=float, default=4096.0, help="safety limit")
    parser.add_argument(
        "--server-src",
        type=Path,
        help="run the server from this source tree (default: this checkout), e.g. an older "
        "commit: git archive <commit> cryptopulse | tar -x -C DIR",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    show(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
