"""The WebSocket hub: fans each message out to every connected client.

* A message is serialized once per broadcast (orjson), and its WebSocket frame is
  built once too; writing it to a client is then a plain socket write.
* Each client has a bounded queue. While a client keeps up its queue stays empty and
  the message is written straight away; a client whose socket buffer is full gets
  its messages queued and a writer task that waits for it. A client that cannot take
  a message within `send_timeout`, or whose queue overflows, is disconnected and
  counted. One slow client never delays the others.
* Broadcasts run in the hub's own task (started and stopped explicitly), so whoever
  publishes never waits for the fan-out. What waits for that task is coalesced: the
  newest record per window and the newest status list win, so a burst of publishes while
  a fan-out runs costs one message, not one per publish, and the backlog is bounded by
  the store. A large backlog goes out in messages of at most `max_message_records`.
* Every broadcast carries the store version it reflects; a client that joined later
  (its snapshot already contains that version) skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import orjson
from websockets.frames import Frame, Opcode

from cryptopulse.api.limits import PerAddress
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.schema import SourceStatusMessage, WindowAggregate

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013
"""Close code sent when the server is at its client limit (RFC 6455 registry: Try Again Later)."""
CLOSE_POLICY_VIOLATION = 1008

WindowKey = tuple[str, str, datetime]
"""(source, coin, window_start): one window; a newer record of it replaces an older one."""


FRAGMENT_BYTES = 64 * 1024
"""Largest frame payload: a bigger message goes out as fragments, one written whenever the
client's socket takes more, so a client that stops reading holds at most about one fragment
of the server's memory, not a whole snapshot."""


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked (server) WebSocket text frame carrying UTF-8 `payload`."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def text_frames(payload: bytes, size: int = FRAGMENT_BYTES) -> list[bytes]:
    """`payload` as one text message in frames of at most `size` bytes of payload (RFC 6455
    §5.4: a TEXT frame, then CONT frames, the last with FIN). Control frames, such as the
    server's pings, may legally come between them."""
    if len(payload) <= size:
        return [text_frame(payload)]
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    last = len(pieces) - 1
    return [
        Frame(Opcode.TEXT if i == 0 else Opcode.CONT, piece, fin=i == last).serialize(mask=False)
        for i, piece in enumerate(pieces)
    ]


def encode_record(record: WindowAggregate) -> bytes:
    """One window as JSON; timestamps as ISO 8601 with `Z`. Copied to a right-sized object:
    orjson's own result of a few hundred bytes holds an 8 KiB block, and the store keeps one
    per window (5,000 coins: 40 MB instead of 2)."""
    return memoryview(orjson.dumps(record.model_dump(), option=orjson.OPT_UTC_Z)).tobytes()


def envelope(kind: str, records: Iterable[bytes]) -> bytes:
    """`{"type": kind, "data": [...]}` around records already encoded by `encode_record`."""
    return b'{"type":' + orjson.dumps(kind) + b',"data":[' + b",".join(records) + b"]}"


def encode(kind: str, data: Sequence[WindowAggregate]) -> bytes:
    """`{"type": kind, "data": [...]}` as JSON; timestamps as ISO 8601 with `Z`."""
    return envelope(kind, map(encode_record, data))


def encode_status(status: SourceStatusMessage) -> bytes:
    return orjson.dumps(status.model_dump(), option=orjson.OPT_UTC_Z)


@dataclass(slots=True)
class Outgoing:
    """One serialized message; its text and frame forms are built at most once."""

    kind: str
    payload: bytes
    seq: int = 0
    _frames: list[bytes] | None = field(default=None, repr=False)
    _text: str | None = field(default=None, repr=False)

    @property
    def frames(self) -> list[bytes]:
        """The message's WebSocket frames: one, or fragments of at most FRAGMENT_BYTES."""
        if self._frames is None:
            self._frames = text_frames(self.payload)
        return self._frames

    @property
    def small(self) -> bool:
        """True when it is one frame (written at once to a client that keeps up)."""
        return len(self.frames) == 1

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text


class Channel(Protocol):
    """How the hub writes to one connected client."""

    def ready(self) -> bool:
        """True when a message can be written now without waiting."""

    def write_now(self, message: Outgoing) -> None:
        """Write without waiting; only called when `ready()`."""

    async def send(self, message: Outgoing) -> None:
        """Wait until the client can take the message, then write it."""

    def abort(self) -> None:
        """Drop the connection at once (the client is not reading, a close frame would not get through)."""

    @property
    def path(self) -> str:
        """How it writes: "direct" (frames to the socket) or "asgi" (ASGI sends)."""


class Client:
    """One connected client: its channel, bounded queue and (only while it lags) a writer task."""

    __slots__ = ("_writer", "channel", "closed", "hub", "id", "pending", "since")

    def __init__(self, hub: Hub, channel: Channel, client_id: int, since: int) -> None:
        self.hub = hub
        self.channel = channel
        self.id = client_id
        self.since = since
        self.pending: deque[Outgoing] = deque()
        self.closed = False
        self._writer: asyncio.Task[None] | None = None

    def offer(self, message: Outgoing) -> bool:
        """Hand a message over; False when the queue is full (the client is too far behind)."""
        if self.closed:
            return True
        if not self.pending and self._writer is None and message.small and self.channel.ready():
            try:
                self.channel.write_now(message)
            except Exception:  # a broken connection: its handler cleans up
                log.debug("client %d: write failed", self.id, exc_info=True)
                self.hub.drop(self, "error")
            return True
        if len(self.pending) >= self.hub.queue_size:
            return False
        self.pending.append(message)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self.pending and not self.closed:
                try:
                    async with asyncio.timeout(self.hub.send_timeout):
                        await self.channel.send(self.pending[0])
                except TimeoutError:
                    self.hub.drop(self, "slow")
                    return
                except Exception:
                    log.debug("client %d: send failed", self.id, exc_info=True)
                    self.hub.drop(self, "error")
                    return
                self.pending.popleft()
        finally:
            self._writer = None

    def stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()


class Hub:
    """Connected clients and the broadcast loop. `start()` before use, `stop()` at shutdown."""

    def __init__(
        self,
        *,
        metrics: ApiMetrics,
        send_timeout: float = 2.0,
        queue_size: int = 64,
        max_clients: int = 20_000,
        max_per_address: int = 20_000,
        connects_per_second: float | None = None,
        fanout_batch: int = 256,
        max_message_records: int = 5_000,
    ) -> None:
        self.metrics = metrics
        self.send_timeout = send_timeout
        self.queue_size = queue_size
        self.max_clients = max_clients
        self.fanout_batch = fanout_batch
        self.max_message_records = max_message_records
        self._clients: dict[int, Client] = {}
        self._admitted = 0
        self._per_address = PerAddress(
            max_per_address,
            connects_per_second,
            burst=max(1.0, 5 * connects_per_second) if connects_per_second else 1.0,
        )
        self._path: str | None = None
        self._next_id = 0
        # what waits for the broadcast task, coalesced (see the module's docstring)
        self._records: dict[WindowKey, WindowAggregate] = {}
        self._records_seq = 0
        self._status: tuple[int, SourceStatusMessage] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_broadcast_seconds = 0.0

    # lifecycle

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("hub already started")
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hub-broadcast")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(self._clients.values()):
            client.stop_writer()
            client.closed = True
        self._clients.clear()
        self.metrics.clients.set(0)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # clients

    def __len__(self) -> int:
        return len(self._clients)

    def admit(self, address: str = "") -> str | None:
        """Reserve a place for a client connecting from `address`; None when one was reserved,
        else why not: "full" (the server), "per_address" (that address holds its share) or
        "address_rate" (that address opens clients too fast)."""
        if self._admitted >= self.max_clients:
            return "full"
        refused = self._per_address.take(address, time.monotonic())
        if refused is not None:
            return refused
        self._admitted += 1
        return None

    def release(self, address: str = "") -> None:
        """Give back a place reserved with `admit()`."""
        self._admitted -= 1
        self._per_address.give_back(address)

    def register(self, channel: Channel, first: Sequence[Outgoing], since: int) -> Client:
        """Add a client and hand it `first` (its snapshot); it then gets broadcasts newer than `since`.

        Synchronous, so no broadcast can slip in between the snapshot and the registration.
        """
        self._next_id += 1
        self._note_path(channel.path)
        client = Client(self, channel, self._next_id, since)
        self._clients[client.id] = client
        self.metrics.clients.set(len(self._clients))
        for message in first:
            if not client.offer(message):
                self.drop(client, "queue_full")
                break
        return client

    def _note_path(self, path: str) -> None:
        self.metrics.ws_connections.labels(path).inc()
        if path != self._path:
            self._path = path
            if path == "direct":
                log.info("WebSocket clients are written to directly (one frame per broadcast)")
            else:
                log.warning(
                    "WebSocket clients are written through ASGI sends (%s): slower fan-out, "
                    "and stuck clients can only be closed, not aborted",
                    path,
                )

    def unregister(self, client: Client) -> None:
        """Forget a client whose connection has ended."""
        client.closed = True
        client.stop_writer()
        if self._clients.pop(client.id, None) is not None:
            self.metrics.clients.set(len(self._clients))

    def drop(self, client: Client, reason: str) -> None:
        """Disconnect a client that cannot keep up (or broke), and count it."""
        if client.closed:
            return
        log.info("dropping WebSocket client %d: %s", client.id, reason)
        self.metrics.dropped.labels(reason).inc()
        self.unregister(client)
        client.pending.clear()
        with contextlib.suppress(Exception):
            client.channel.abort()

    # broadcasting

    def publish(self, seq: int, records: Sequence[WindowAggregate]) -> None:
        """Queue a market update (store version `seq`) for every client; returns at once."""
        for record in records:
            self._records[(record.source, record.coin, record.window_start)] = record
        self._records_seq = max(self._records_seq, seq)
        self._kick()

    def publish_status(self, seq: int, status: SourceStatusMessage) -> None:
        """Queue the source status list (the whole list: a newer one replaces a waiting one)."""
        self._status = (seq, status)
        self._kick()

    @property
    def backlog(self) -> int:
        """Records waiting for the broadcast task."""
        return len(self._records)

    def _kick(self) -> None:
        if self._wake is None:
            raise RuntimeError("hub not started")
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            records, self._records = list(self._records.values()), {}
            seq = self._records_seq
            status, self._status = self._status, None
            try:
                step = self.max_message_records
                for start in range(0, len(records), step):
                    chunk = records[start : start + step]
                    await self._fan_out("market_update", encode("market_update", chunk), seq)
                if status is not None:
                    await self._fan_out("source_status", encode_status(status[1]), status[0])
            except Exception:  # never let one bad message stop the hub
                log.exception("broadcast failed")

    async def _fan_out(self, kind: str, payload: bytes, seq: int) -> None:
        started = time.perf_counter()
        message = Outgoing(kind, payload, seq)
        clients = list(self._clients.values())
        for i, client in enumerate(clients, 1):
            if client.since < seq and not client.offer(message):
                self.drop(client, "queue_full")
            if i % self.fanout_batch == 0:
                await asyncio.sleep(0)  # let requests and other connections through
        elapsed = time.perf_counter() - started
        self.last_broadcast_seconds = elapsed
        self.metrics.broadcasts.labels(kind).inc()
        self.metrics.broadcast_seconds.observe(elapsed)
