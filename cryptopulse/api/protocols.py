"""uvicorn's HTTP and WebSocket protocols, bounded against clients that hold resources.

HTTP (`GuardedHttpProtocol`, on uvicorn's httptools protocol):
* a connection beyond `Limits.connections` is closed as soon as it is accepted, so
  connections never use up the process's descriptors;
* a request's line and headers must arrive within `header_timeout` (an idle or
  half-sent request is answered 408 and closed) and be at most `max_header_bytes` (431);
* a request's body must arrive within `body_timeout` of its headers, else the
  connection is dropped.

WebSocket (`HubWebSocketProtocol`, on uvicorn's sans-I/O websockets protocol):
* the hub writes frames built once per broadcast straight to the socket (`DirectChannel`,
  handed to the app in the scope's `extensions`);
* a client that sends more than `ws_messages_per_second` frames (bursts of four seconds'
  worth), or more bytes than that many small messages plus one of the largest allowed, is
  disconnected: clients have nothing to say. Bytes are counted before they are parsed, so a
  flood costs the server one read, not the parsing of thousands of frames;
* a client that does not answer a ping within `ping_timeout` is dropped at once: uvicorn
  only closes, which waits for a stuck client's unsent buffer to drain.

uvicorn builds protocols itself, so the limits and the metrics are class attributes of a
subclass made per server by `http_protocol()` / `websocket_protocol()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from cryptopulse.api.limits import Limits, TokenBucket
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.transport import EXTENSION, DirectChannel
from cryptopulse.config import ApiSettings

BURST_SECONDS = 4.0
"""A WebSocket client may send this many seconds' worth of its rate at once."""
BYTES_PER_MESSAGE = 256
"""What a client's small messages (pongs, closes) average, for its byte allowance."""


def _reply(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a connection limit, header size and header/body deadlines."""

    limits: ClassVar[Limits]
    metrics: ClassVar[ApiMetrics]
    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]
    max_header_bytes: ClassVar[int]

    _deadline: asyncio.TimerHandle | None = None
    _head_bytes: int = 0
    _reading_head: bool = False

    def _refuse(self, reason: str) -> None:
        self.metrics.connections_refused.labels(reason).inc()

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self._refuse(reason)
        if reason == "header_timeout":  # nothing was answered yet: say why, then close
            self.transport.write(_reply(b"408 Request Timeout", b"request headers too slow\n"))
            self.transport.close()
        else:  # the app is handling the request: drop the connection under it
            self.transport.abort()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.connections:
            self._refuse("max_connections")
            transport.abort()
            return
        self._reading_head = True
        self._head_bytes = 0
        self._arm(self.header_timeout, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._reading_head
            and self._head_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._disarm()
            self._refuse("header_too_large")
            self.transport.write(
                _reply(b"431 Request Header Fields Too Large", b"headers too large\n")
            )
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the next request on a kept-alive connection
            self._reading_head = True
            self._head_bytes = 0
            self._arm(self.header_timeout, "header_timeout")

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._arm(self.body_timeout, "body_timeout")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol: exposes a `DirectChannel` to the app, limits what a client
    may send, and drops a client that misses a ping."""

    metrics: ClassVar[ApiMetrics | None] = None
    messages_per_second: ClassVar[float] = 10.0

    drop_reason: str | None = None
    """Why the server dropped this client (a metric label), once it has."""
    _bucket: TokenBucket
    _bytes: TokenBucket

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        rate, now = self.messages_per_second, self.loop.time()
        self._bucket = TokenBucket(rate, max(1.0, rate * BURST_SECONDS), now)
        largest = (self.config.ws_max_size or 0) + 14  # a frame's header is at most 14 bytes
        byte_rate = rate * BYTES_PER_MESSAGE
        self._bytes = TokenBucket(byte_rate, byte_rate * BURST_SECONDS + largest, now)

    def data_received(self, data: bytes) -> None:
        if self.drop_reason is not None:
            return
        # after the handshake, a client's bytes are all frames it sent: count before parsing
        if self.handshake_complete and not self._bytes.take(self.loop.time(), len(data)):
            self.drop("flood", 1008, "too much data")
            return
        super().data_received(data)

    async def run_asgi(self) -> None:
        # The app's coroutine: the scope is complete and none of the app has run yet.
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[EXTENSION] = DirectChannel(self)
        await super().run_asgi()

    def drop(self, reason: str, code: int, text: str) -> None:
        """Close with `code` if the frame gets through at once, and drop the connection anyway."""
        if self.drop_reason is not None:
            return
        self.drop_reason = reason
        if self.metrics is not None:
            self.metrics.dropped.labels(reason).inc()
        with contextlib.suppress(Exception):
            self.conn.fail(code, text)
            self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.abort()

    def _allowed(self) -> bool:
        if self.drop_reason is not None:
            return False
        if self._bucket.take(self.loop.time()):
            return True
        self.drop("chatty", 1008, f"more than {self.messages_per_second:g} messages per second")
        return False

    def handle_text(self, event: Frame) -> None:
        if self._allowed():
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if self._allowed():
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if self._allowed():
            super().handle_cont(event)

    def handle_ping(self) -> None:
        if self._allowed():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._allowed():
            super().handle_pong(event)

    def keepalive_timeout(self) -> None:
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.drop("ping_timeout", 1011, "keepalive ping timeout")


def http_protocol(api: ApiSettings, limits: Limits, metrics: ApiMetrics) -> type[HttpToolsProtocol]:
    """The HTTP protocol class of one server."""
    return type(
        "ServerHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "limits": limits,
            "metrics": metrics,
            "header_timeout": api.header_timeout,
            "body_timeout": api.body_timeout,
            "max_header_bytes": api.max_header_bytes,
        },
    )


def websocket_protocol(api: ApiSettings, metrics: ApiMetrics) -> type[WebSocketsSansIOProtocol]:
    """The WebSocket protocol class of one server."""
    return type(
        "ServerWebSocketProtocol",
        (HubWebSocketProtocol,),
        {"metrics": metrics, "messages_per_second": api.ws_messages_per_second},
    )
