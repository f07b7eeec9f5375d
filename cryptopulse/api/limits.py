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

MAX_TRACKED_ADDRESSES = 10_000
"""Rate buckets kept before the refilled ones are forgotten (bounded under many addresses)."""

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

    def take(self, now: float, amount: float = 1.0) -> bool:
        """Spend `amount` tokens; False when fewer are left (the event is over the rate)."""
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True

    def full(self, now: float) -> bool:
        """True when the bucket has refilled completely (nothing to remember about it)."""
        return self._tokens + (now - self._stamp) * self.rate >= self.burst


class PerAddress:
    """How many places each address holds, at most `limit` each; and, with a `rate`, how fast
    it may take new ones (bursts of `burst`)."""

    __slots__ = ("_buckets", "_held", "burst", "limit", "rate")

    def __init__(self, limit: int, rate: float | None = None, burst: float = 1.0) -> None:
        self.limit = limit
        self.rate = rate
        self.burst = burst
        self._held: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, address: str, now: float = 0.0) -> str | None:
        """None when a place was taken, else why not: "per_address" (it holds its share) or
        "address_rate" (it opens them too fast)."""
        held = self._held.get(address, 0)
        if held >= self.limit:
            return "per_address"
        if self.rate is not None:
            bucket = self._buckets.get(address)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED_ADDRESSES:
                    self._forget_full(now)
                bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
            if not bucket.take(now):
                return "address_rate"
        self._held[address] = held + 1
        return None

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they would start full anyway."""
        for address in [a for a, b in self._buckets.items() if b.full(now)]:
            del self._buckets[address]
        while len(self._buckets) >= MAX_TRACKED_ADDRESSES:  # still full: the oldest go
            del self._buckets[next(iter(self._buckets))]

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
