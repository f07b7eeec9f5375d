"""The API server's bounds: fitting the connection limits to the process's open-files limit,
a token bucket for chatty WebSocket clients, a per-address count of WebSocket clients (pure:
the caller passes the time and the limit, so each is tested without a server), and the
ASGI middleware that caps HTTP requests handled at once.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from cryptopulse.config import ApiSettings

log = logging.getLogger(__name__)

RESERVED_FILES = 128
"""Descriptors kept for everything that is not a client: Kafka, logs, the dashboard's files."""


@dataclass(frozen=True)
class Limits:
    connections: int
    """Open connections (HTTP and WebSocket); a connection beyond it is closed at once."""
    clients: int
    """WebSocket clients; always below `connections`, leaving room for HTTP requests."""
    requests: int
    """HTTP requests handled at once; more get 503."""


def fit_limits(api: ApiSettings, open_files: int) -> Limits:
    """The settings' limits, lowered so that connections never run out of descriptors first."""
    connections = max(16, min(api.max_connections, open_files - RESERVED_FILES))
    requests = max(1, min(api.max_requests, connections // 2))
    # WebSocket clients leave room for as many HTTP requests as are served at once
    clients = max(1, min(api.max_clients, connections - requests))
    return Limits(connections=connections, clients=clients, requests=requests)


def open_files_limit() -> int:
    """The open-files limit of this process, raised to the hard limit when allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY:
        return hard
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def server_limits(api: ApiSettings) -> Limits:
    """`fit_limits` for this process, saying when a setting had to be lowered."""
    files = open_files_limit()
    limits = fit_limits(api, files)
    if limits.connections < api.max_connections or limits.clients < api.max_clients:
        log.info(
            "open-files limit %d: at most %d connections, %d WebSocket clients "
            "(raise `ulimit -n` for more)",
            files,
            limits.connections,
            limits.clients,
        )
    return limits


class TokenBucket:
    """`rate` events per second on average, bursts of up to `burst`."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token; False when none is left (the event is over the rate)."""
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class PerAddress:
    """How many places each address holds, at most `limit` each."""

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def take(self, address: str) -> bool:
        held = self._held.get(address, 0)
        if held >= self.limit:
            return False
        self._held[address] = held + 1
        return True

    def give_back(self, address: str) -> None:
        held = self._held.get(address, 0) - 1
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)

    def __len__(self) -> int:
        return len(self._held)


BUSY_BODY = b'{"detail":"server busy, try again shortly","reason":"busy"}'


class RequestLimit:
    """ASGI middleware: at most `limit` HTTP requests at once; more are answered 503 at once
    (WebSocket connections are counted by the hub, not here)."""

    def __init__(self, app: ASGIApp, limit: int, on_busy: Callable[[Scope], None]) -> None:
        self.app = app
        self.limit = limit
        self.on_busy = on_busy
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            self.on_busy(scope)
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"1"),
                        (b"content-length", str(len(BUSY_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": BUSY_BODY})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
