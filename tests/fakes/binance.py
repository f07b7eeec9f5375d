"""A local Binance: real WebSockets on 127.0.0.1, speaking the spot streams' documented wire format.

Serves combined streams (`/stream?streams=a/b`, or `/stream` then `SUBSCRIBE`) and raw streams
(`/ws/<name>`, or `/ws` then `SUBSCRIBE`), answering `SUBSCRIBE`, `UNSUBSCRIBE` and
`LIST_SUBSCRIPTIONS` with `{"result", "id"}` and bad requests with `{"code", "msg"}`. Each
subscribed `<symbol>@trade` / `@aggTrade` gets a trade every `trade_interval` seconds (ids rising by
one per symbol, prices on a small walk) and each `@miniTicker` / `@ticker` its 24 h figures every
`ticker_interval` seconds, in the payload shapes of tests/fixtures/binance/. Binance's limits are
enforced as Binance does: a client that sends more than 5 messages in a second, or subscribes to
more than 1,024 streams, is disconnected.

Switches for tests, callable from any thread: `drop()` (every connection cut, no close frame),
`silence(True)` (connections stay open, nothing is sent), `shutdown_notice()` (a
`serverShutdown` event; the connection stays open, as Binance's does for a while), `send_raw()`
(any frames, malformed ones included), `refuse(n)` (the next n handshakes get HTTP 503),
`skip(symbol, n)` (the next trade id jumps: a gap). Every connection, subscribe message and trade
sent is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes.ws_server import FakeWebSocketServer

MAX_STREAMS = 1024
MAX_MESSAGES_PER_SECOND = 5

# symbol: (price, 24 h open, 24 h quote volume) — the walk starts here
MARKETS: dict[str, tuple[float, float, float]] = {
    "BTCUSDT": (97012.5, 98830.0, 3.1e9),
    "ETHUSDT": (3398.12, 3321.4, 1.9e9),
    "SOLUSDT": (241.77, 257.3, 6.2e8),
}


@dataclass
class Connection:
    path: str
    opened: float
    combined: bool
    streams: list[str] = field(default_factory=list)
    subscribes: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    received: list[float] = field(default_factory=list)
    closed: float | None = None
    close_reason: str = ""


def trade_payload(
    kind: str, symbol: str, trade_id: int, price: str, qty: str, at_ms: int
) -> dict[str, Any]:
    """A `trade` or `aggTrade` event, fields as in the documentation's payloads."""
    if kind == "aggTrade":
        return {
            "e": "aggTrade",
            "E": at_ms + 1,
            "s": symbol,
            "a": trade_id,
            "p": price,
            "q": qty,
            "f": trade_id * 3,
            "l": trade_id * 3 + 2,
            "T": at_ms,
            "m": trade_id % 2 == 0,
            "M": True,
        }
    return {
        "e": "trade",
        "E": at_ms + 1,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": qty,
        "b": trade_id * 7,
        "a": trade_id * 7 + 3,
        "T": at_ms,
        "m": trade_id % 2 == 0,
        "M": True,
    }


def ticker_payload(
    kind: str, symbol: str, close: str, open_: str, quote_volume: str, at_ms: int
) -> dict[str, Any]:
    if kind == "ticker":
        change = float(close) - float(open_)
        return {
            "e": "24hrTicker",
            "E": at_ms,
            "s": symbol,
            "p": f"{change:.8f}",
            "P": f"{change / float(open_) * 100:.2f}",
            "w": close,
            "x": open_,
            "c": close,
            "Q": "0.01000000",
            "b": close,
            "B": "1.00000000",
            "a": close,
            "A": "1.00000000",
            "o": open_,
            "h": close,
            "l": open_,
            "v": "1000.00000000",
            "q": quote_volume,
            "O": at_ms - 86_400_000,
            "C": at_ms,
            "F": 0,
            "L": 18150,
            "n": 18151,
        }
    return {
        "e": "24hrMiniTicker",
        "E": at_ms,
        "s": symbol,
        "c": close,
        "o": open_,
        "h": close,
        "l": open_,
        "v": "1000.00000000",
        "q": quote_volume,
    }


class FakeBinance(FakeWebSocketServer["Connection"]):
    title = "fake Binance"

    def __init__(
        self,
        *,
        trade_interval: float = 0.05,
        ticker_interval: float = 1.0,
        markets: dict[str, tuple[float, float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.trade_interval = trade_interval
        self.ticker_interval = ticker_interval
        self.markets = dict(markets or MARKETS)
        self.connections: list[Connection] = []
        self.trades_sent: list[dict[str, Any]] = []
        self._next_id = dict.fromkeys(self.markets, 1000)
        self._step = 0
        self._refuse = 0
        self.refused_at: list[float] = []  # when each refused handshake came
        self._lock = threading.Lock()

    # -- switches (and drop, silence, send_raw: FakeWebSocketServer) ----------------

    def shutdown_notice(self) -> None:
        self.send_raw(orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)}))

    def refuse(self, handshakes: int) -> None:
        with self._lock:
            self._refuse = handshakes

    def skip(self, symbol: str, trades: int) -> None:
        with self._lock:
            self._next_id[symbol] += trades

    # -- what happened -------------------------------------------------------------------

    @property
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.closed is None]

    def subscribed(self) -> list[str]:
        """Streams of the open connections."""
        return [s for c in self.open_connections for s in c.streams]

    def trades_of(self, symbol: str) -> list[dict[str, Any]]:
        with self._lock:
            return [t for t in self.trades_sent if t["s"] == symbol]

    # -- the server ----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                self.refused_at.append(time.monotonic())
                body = b"Service Unavailable"
                headers = Headers([("Content-Type", "text/plain"), ("Content-Length", "19")])
                return Response(
                    HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable", headers, body
                )
        path = urlsplit(request.path).path
        if path not in ("/ws", "/stream") and not path.startswith("/ws/"):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        parts = urlsplit(ws.request.path if ws.request else "/")
        conn = Connection(
            path=parts.path, opened=time.monotonic(), combined=parts.path == "/stream"
        )
        if parts.path.startswith("/ws/"):
            conn.streams.append(parts.path[4:])
        for names in parse_qs(parts.query).get("streams", []):
            conn.streams.extend(n for n in names.split("/") if n)
        self.connections.append(conn)
        self._open[ws] = conn
        sender = asyncio.create_task(self._send_loop(ws, conn))
        try:
            async for message in ws:
                if not await self._on_message(ws, conn, message):
                    break
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            self._open.pop(ws, None)
            conn.closed = time.monotonic()

    async def _on_message(self, ws: ServerConnection, conn: Connection, message: Any) -> bool:
        now = time.monotonic()
        conn.received.append(now)
        if sum(1 for t in conn.received if t > now - 1.0) > MAX_MESSAGES_PER_SECOND:
            conn.close_reason = "too many messages"
            await ws.close(1008, "Too many requests")
            return False
        try:
            request = orjson.loads(message)
            method, request_id = request["method"], request["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await ws.send(orjson.dumps({"code": 3, "msg": "Invalid JSON: expected value"}))
            return True
        conn.subscribes.append((now, request))
        params = request.get("params", [])
        if method == "SUBSCRIBE":
            conn.streams.extend(p for p in params if p not in conn.streams)
            if len(conn.streams) > MAX_STREAMS:
                conn.close_reason = "too many streams"
                await ws.close(1008, "Too many streams")
                return False
            await ws.send(orjson.dumps({"result": None, "id": request_id}))
        elif method == "UNSUBSCRIBE":
            conn.streams = [s for s in conn.streams if s not in params]
            await ws.send(orjson.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await ws.send(orjson.dumps({"result": conn.streams, "id": request_id}))
        else:
            await ws.send(
                orjson.dumps({"code": 2, "msg": f"Invalid request: unknown variant {method}"})
            )
        return True

    async def _send_loop(self, ws: ServerConnection, conn: Connection) -> None:
        last_ticker = 0.0
        while True:
            await asyncio.sleep(self.trade_interval)
            if self._silent:
                continue
            frames: list[bytes] = []
            now = time.monotonic()
            tickers = now - last_ticker >= self.ticker_interval
            if tickers:
                last_ticker = now
            for stream in list(conn.streams):
                payload = self._payload(stream, tickers)
                if payload is not None:
                    data = {"stream": stream, "data": payload} if conn.combined else payload
                    frames.append(orjson.dumps(data))
            for frame in frames:
                await ws.send(frame)

    def _payload(self, stream: str, tickers: bool) -> dict[str, Any] | None:
        name, _, kind = stream.partition("@")
        symbol = name.upper()
        if symbol not in self.markets:
            return None
        price, open_, volume = self.markets[symbol]
        at_ms = int(time.time() * 1000)
        if kind in ("trade", "aggTrade"):
            with self._lock:
                self._step += 1
                trade_id = self._next_id[symbol]
                self._next_id[symbol] = trade_id + 1
                price = round(price * (1 + 0.0001 * ((self._step % 7) - 3)), 2)
                self.markets[symbol] = (price, open_, volume)
                qty = f"{0.001 * (1 + self._step % 50):.8f}"
                payload = trade_payload(kind, symbol, trade_id, f"{price:.8f}", qty, at_ms)
                self.trades_sent.append(payload)
            return payload
        if kind in ("miniTicker", "ticker") and tickers:
            return ticker_payload(
                kind, symbol, f"{price:.8f}", f"{open_:.8f}", f"{volume:.8f}", at_ms
            )
        return None
