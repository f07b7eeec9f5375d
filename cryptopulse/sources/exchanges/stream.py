"""One exchange connection's life: connect, subscribe, receive, and start again.

`StreamConnection.run` loops until stopped: it waits for the connection budget (Binance: 300
attempts per 5 minutes), connects to the protocol's URL, sends the subscribe messages at most
`messages_per_second`, then hands every frame to the protocol's `parse` and the result to the
`Inbox`. A connection ends when the server closes or drops it, when nothing arrived for
`silence_timeout` (the watchdog), when the server says it is shutting down, or when it reaches
`max_connection_age` (Binance closes connections at 24 h; we leave first). Planned endings
(shutdown notice, age) reconnect at once; the others report a failure (the source's status
turns `degraded`) and reconnect after a jittered exponential backoff, reset once a connection
delivers ticks. Nothing a server sends is fatal: a bad frame is a counted rejection, a frame
over `max_frame_bytes` closes that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from cryptopulse.config import ExchangeStreamSettings
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.pacing import Backoff, SlidingLimit
from cryptopulse.sources.exchanges.protocol import ExchangeProtocol, Frame, Sequences
from cryptopulse.status import SEQUENCE_GAP

log = logging.getLogger("cryptopulse.sources.exchanges")

# Endings that are not failures: reconnect at once, the status stays as it is.
PLANNED: Final = frozenset({"server_shutdown", "max_age"})
TOO_BIG: Final = 1009  # the WebSocket close code for a frame over the size limit


@dataclass(frozen=True)
class StreamRules:
    connect_timeout: float = 10.0
    silence_timeout: float = 30.0
    max_connection_age: float = 23.5 * 3600
    max_frame_bytes: int = 64 * 1024
    backoff_initial: float = 1.0
    backoff_max: float = 60.0

    @classmethod
    def from_settings(cls, s: ExchangeStreamSettings) -> StreamRules:
        return cls(
            connect_timeout=s.connect_timeout,
            silence_timeout=s.silence_timeout,
            max_connection_age=s.max_connection_age,
            max_frame_bytes=s.max_frame_bytes,
            backoff_initial=s.backoff_initial,
            backoff_max=s.backoff_max,
        )


@dataclass
class ConnectionStats:
    """What one connection slot went through, for logs and tests."""

    connects: int = 0
    endings: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    subscribe_sent: int = 0


def closed_reason(exc: ConnectionClosed) -> str:
    if (exc.sent is not None and exc.sent.code == TOO_BIG) or (
        exc.rcvd is not None and exc.rcvd.code == TOO_BIG
    ):
        return "frame_too_large"
    return "connection_lost"


class StreamConnection:
    """One connection slot: its subscriptions, kept alive across reconnects."""

    def __init__(
        self,
        protocol: ExchangeProtocol,
        subscriptions: Sequence[str],
        rules: StreamRules,
        inbox: Inbox,
        budget: SlidingLimit,
        *,
        label: str = "",
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.protocol = protocol
        self.subscriptions = list(subscriptions)
        self.rules = rules
        self.inbox = inbox
        self.budget = budget
        self.label = label or protocol.name
        self.backoff = Backoff(rules.backoff_initial, rules.backoff_max, rand)
        self.sequences = Sequences()
        self.stats = ConnectionStats()
        self._good = False  # this connection delivered a tick
        self._logged: set[str] = set()

    async def run(self) -> None:
        """Connect, receive, reconnect, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.budget.wait(loop.time())
            if wait > 0:
                log.warning("%s: connection budget spent; next attempt in %.1f s", self.label, wait)
                await asyncio.sleep(wait)
                continue
            self.budget.record(loop.time())
            ending = await self._session()
            self.stats.endings[ending] = self.stats.endings.get(ending, 0) + 1
            if self._good:
                self.backoff.reset()
            if ending in PLANNED:
                log.info("%s: reconnecting (%s)", self.label, ending.replace("_", " "))
                continue
            self.inbox.failure(ending)
            delay = self.backoff.next()
            log.warning(
                "%s: %s; reconnecting in %.1f s", self.label, ending.replace("_", " "), delay
            )
            await asyncio.sleep(delay)

    async def _session(self) -> str:
        """One connection, from connect to its end; why it ended."""
        self._good = False
        self.stats.connects += 1
        url = self.protocol.url(self.subscriptions)
        try:
            async with connect(
                url,
                open_timeout=self.rules.connect_timeout,
                max_size=self.rules.max_frame_bytes,
                ping_interval=None,  # the server pings (websockets answers); silence is watched
                close_timeout=1.0,
            ) as ws:
                self.sequences.reset()
                await self._subscribe(ws)
                log.info(
                    "%s: connected to %s, %d subscriptions",
                    self.label,
                    url,
                    len(self.subscriptions),
                )
                return await self._receive(ws)
        except ConnectionClosed as exc:
            reason = closed_reason(exc)
            if reason == "frame_too_large":
                self.inbox.count(reason)
            return reason
        except InvalidStatus as exc:
            return f"http_{exc.response.status_code}"
        except (OSError, TimeoutError, WebSocketException):
            return "connect_failed"

    async def _subscribe(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        limit = SlidingLimit(int(self.protocol.messages_per_second), 1.0)
        for message in self.protocol.subscribe_messages(self.subscriptions):
            wait = limit.wait(loop.time())
            if wait > 0:
                await asyncio.sleep(wait)
            limit.record(loop.time())
            await ws.send(message)
            self.stats.subscribe_sent += 1

    async def _receive(self, ws: ClientConnection) -> str:
        loop = asyncio.get_running_loop()
        retire_at = loop.time() + self.rules.max_connection_age
        while True:
            timeout = min(self.rules.silence_timeout, retire_at - loop.time())
            if timeout <= 0:
                return "max_age"
            try:
                async with asyncio.timeout(timeout):
                    raw = await ws.recv()
            except TimeoutError:
                return "max_age" if loop.time() >= retire_at else "silent"
            self.stats.frames += 1
            parsed = self.protocol.parse(raw)
            for frame in parsed if isinstance(parsed, list) else (parsed,):
                ending = self.take(frame)
                if ending is not None:
                    return ending

    def take(self, frame: Frame) -> str | None:
        """Hand one understood frame on; the connection's ending when it says to end."""
        kind = frame.kind
        if frame.seq is not None:
            skipped = self.sequences.see(frame.seq_key, frame.seq)
            if skipped < 0:
                self.inbox.count("sequence_repeat")
                return None
            if skipped:
                self.inbox.count(SEQUENCE_GAP, skipped)
        for reason in frame.skipped:
            self.inbox.count(reason)
            self._log_once(reason, reason)
        if kind == "tick":
            for tick in frame.ticks or (frame.tick,):
                assert tick is not None
                self.inbox.tick(tick)
            self._good = True
        elif kind == "reject" or kind == "error_reply":
            reason = frame.reason if kind == "reject" else "error_reply"
            self.inbox.count(reason)
            self._log_once(reason, frame.reason)
        elif kind == "shutdown":
            return "server_shutdown"
        elif kind == "halt":
            # Not a connection failure, but no live market either: the status turns degraded
            # (the reason says why) until ticks come again.
            self.inbox.failure(frame.reason)
            log.warning("%s: the exchange reports %s", self.label, frame.reason.replace("_", " "))
        return None

    def _log_once(self, reason: str, detail: str) -> None:
        if reason not in self._logged:
            self._logged.add(reason)
            # The detail may quote the server (an error reply): bounded and quoted.
            log.warning(
                "%s: frame rejected (%r); further ones are counted", self.label, detail[:200]
            )
