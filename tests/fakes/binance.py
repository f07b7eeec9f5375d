"""A local Binance: real WebSockets on 127.0.0.1, speaking the spot streams' documented wire format.

Serves combined streams (`/stream?streams=a/b`, or `/stream` then `SUBSCRIBE`) and raw streams
(`/ws/<name>`, or `/ws` then `SUBSCRIBE`), answering `SUBSCRIBE`, `UNSUBSCRIBE` and
`LIST_SUBSCRIPTIONS` with `{"result", "id"}` and bad requests with `{"code", "msg"}`. Each
subscribed `<symbol>@trade` / `@aggTrade` gets a trade every `trade_interval` seconds (ids rising by
one per symbol, prices on a small walk) and each `@miniTicker` / `@ticker` its 24 h figures every
`ticker_interval` seconds, in the payload shapes of tests/fixtures/binance/. Binance's limits are
enforced as Binance does: a client that sends more than 5 messages in a second, or subscribes to
more than 1,024 streams, is disconnected.

For load (bench/bench_exchange.py: 5,000 trades/s over 100 symbols), `trade_rate` gives each
trade stream that many trades a second, paced by the clock rather than by sleeps (a late tick
sends what fell due), and `markets_for(symbols)` makes markets for any Binance symbols from
rough late-2024 prices. Each tick of a connection's loop writes all its frames at once (one
socket write, one drain), and the trades' times are kept compactly per symbol (`trade_times`,
8 bytes a trade; `keep_trades=False` drops the full payloads that tests inspect).

Switches for tests, callable from any thread: `drop()` (every connection cut, no close frame),
`silence(True)` (connections stay open, nothing is sent), `shutdown_notice()` (a
`serverShutdown` event; the connection stays open, as Binance's does for a while), `send_raw()`
(any frames, malformed ones included), `refuse(n)` (the next n handshakes get HTTP 503),
`skip(symbol, n)` (the next trade id jumps: a gap). Every connection, subscribe message and trade
sent is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from array import array
from collections.abc import Iterable
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


# Rough late-2024 prices (USD) of the coin table's other Binance symbols; the defaults' come
# from cryptopulse/coins.py. Only for plausible figures in load runs.
START_PRICES: dict[str, float] = {
    "USDCUSDT": 1.0, "TRXUSDT": 0.25, "LTCUSDT": 100.0, "SHIBUSDT": 0.000022, "BCHUSDT": 450.0,
    "XLMUSDT": 0.40, "UNIUSDT": 13.0, "NEARUSDT": 5.5, "POLUSDT": 0.50, "ICPUSDT": 10.0,
    "TONUSDT": 5.5, "ATOMUSDT": 6.5, "ETCUSDT": 27.0, "APTUSDT": 10.0, "SUIUSDT": 4.0,
    "VETUSDT": 0.045, "THETAUSDT": 2.0, "NEOUSDT": 14.0, "IOTAUSDT": 0.30, "EGLDUSDT": 35.0,
    "HBARUSDT": 0.28, "FILUSDT": 5.5, "ALGOUSDT": 0.40, "AAVEUSDT": 340.0, "MKRUSDT": 1600.0,
    "GRTUSDT": 0.22, "XTZUSDT": 1.3, "SANDUSDT": 0.60, "MANAUSDT": 0.55, "AXSUSDT": 7.0,
    "CHZUSDT": 0.10, "QNTUSDT": 110.0, "FLOWUSDT": 0.80, "ZECUSDT": 55.0, "DASHUSDT": 40.0,
    "CRVUSDT": 0.90, "LDOUSDT": 1.8, "ARBUSDT": 0.80, "OPUSDT": 2.0, "INJUSDT": 25.0,
    "RENDERUSDT": 7.5, "STXUSDT": 1.8, "IMXUSDT": 1.3, "PEPEUSDT": 0.000018, "BONKUSDT": 0.00003,
    "FLOKIUSDT": 0.00017, "WIFUSDT": 2.2, "ENAUSDT": 1.0, "TIAUSDT": 5.5, "SEIUSDT": 0.45,
    "JUPUSDT": 0.85, "PYTHUSDT": 0.35, "WLDUSDT": 2.3, "FETUSDT": 1.3, "RUNEUSDT": 5.0,
    "GALAUSDT": 0.035, "ENJUSDT": 0.25, "BATUSDT": 0.25, "1INCHUSDT": 0.40, "COMPUSDT": 80.0,
    "YFIUSDT": 8000.0, "SUSHIUSDT": 1.3, "SNXUSDT": 2.2, "ZILUSDT": 0.022, "KSMUSDT": 30.0,
    "QTUMUSDT": 3.0, "ICXUSDT": 0.17, "ONTUSDT": 0.22, "RVNUSDT": 0.020, "ONEUSDT": 0.025,
    "ANKRUSDT": 0.035, "IOTXUSDT": 0.045, "HOTUSDT": 0.0025, "CKBUSDT": 0.011, "CELOUSDT": 0.75,
    "KAVAUSDT": 0.45, "CAKEUSDT": 2.5, "TWTUSDT": 1.2, "CFXUSDT": 0.17, "APEUSDT": 1.3,
    "GMXUSDT": 27.0, "BLURUSDT": 0.30, "MASKUSDT": 2.8, "RPLUSDT": 12.0, "SSVUSDT": 25.0,
    "WOOUSDT": 0.22, "JASMYUSDT": 0.035, "COTIUSDT": 0.12, "STORJUSDT": 0.55, "SKLUSDT": 0.05,
    "ARUSDT": 18.0, "MINAUSDT": 0.65, "ASTRUSDT": 0.065, "ZKUSDT": 0.20, "STRKUSDT": 0.50,
    "NOTUSDT": 0.007, "TAOUSDT": 480.0, "ENSUSDT": 40.0, "LRCUSDT": 0.20, "ZENUSDT": 15.0,
    "BANDUSDT": 1.4, "API3USDT": 1.6, "UMAUSDT": 3.0, "KNCUSDT": 0.55, "LPTUSDT": 15.0,
    "LUNAUSDT": 0.45, "LUNCUSDT": 0.00012, "WUSDT": 0.28, "PENDLEUSDT": 5.0, "PAXGUSDT": 2650.0,
    "AXLUSDT": 0.85, "ARKMUSDT": 1.8, "BOMEUSDT": 0.008, "EIGENUSDT": 3.5, "JTOUSDT": 3.0,
    "ALTUSDT": 0.15, "MANTAUSDT": 0.90, "DYMUSDT": 1.5, "RONUSDT": 2.3, "RLCUSDT": 2.2,
    "ZRXUSDT": 0.55,
}  # fmt: skip


def markets_for(symbols: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Markets for these Binance symbols: (price, 24 h open, 24 h quote volume), the price from
    the coin table's defaults or START_PRICES (1.0 when unknown), the 24 h change spread over
    -6 %..+6 % and the volume over 10-100 M so that windows differ from coin to coin."""
    from cryptopulse.coins import COINS

    known = {
        c.listings["binance"].symbol: c.market.price
        for c in COINS
        if c.market is not None and "binance" in c.listings
    }
    found: dict[str, tuple[float, float, float]] = {}
    for i, symbol in enumerate(symbols):
        price = MARKETS[symbol][0] if symbol in MARKETS else known.get(symbol)
        price = price or START_PRICES.get(symbol, 1.0)
        found[symbol] = (price, price / (1 + ((i * 37) % 13 - 6) / 100), 1e7 * (1 + (i * 7) % 10))
    return found


def _walk(price: float, step: int) -> float:
    """The next price of the walk, kept to a few significant digits (2 decimals from 100 up, as
    before; more below, so that a price of 0.00002 never rounds to 0)."""
    moved = price * (1 + 0.0001 * ((step % 7) - 3))
    return round(moved, 2 if price >= 100 else min(8, 4 - math.floor(math.log10(price))))


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
        trade_rate: float | None = None,
        tick: float = 0.01,
        keep_trades: bool = True,
    ) -> None:
        """`trade_rate`: trades a second per trade stream, paced by the clock every `tick`
        seconds (None: one trade per stream every `trade_interval`). `keep_trades=False`: only
        `trade_times` is kept, not every payload (a load run would hold hundreds of MB)."""
        super().__init__()
        self.trade_interval = trade_interval
        self.ticker_interval = ticker_interval
        self.trade_rate = trade_rate
        self.tick = tick
        self.keep_trades = keep_trades
        self.markets = dict(markets or MARKETS)
        self.connections: list[Connection] = []
        self.trades_sent: list[dict[str, Any]] = []
        self.trade_times: dict[str, array[int]] = {s: array("q") for s in self.markets}
        self.frames_sent = 0
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
            await self._reply(ws, orjson.dumps({"code": 3, "msg": "Invalid JSON: expected value"}))
            return True
        conn.subscribes.append((now, request))
        params = request.get("params", [])
        if method == "SUBSCRIBE":
            conn.streams.extend(p for p in params if p not in conn.streams)
            if len(conn.streams) > MAX_STREAMS:
                conn.close_reason = "too many streams"
                await ws.close(1008, "Too many streams")
                return False
            await self._reply(ws, orjson.dumps({"result": None, "id": request_id}))
        elif method == "UNSUBSCRIBE":
            conn.streams = [s for s in conn.streams if s not in params]
            await self._reply(ws, orjson.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await self._reply(ws, orjson.dumps({"result": conn.streams, "id": request_id}))
        else:
            unknown = {"code": 2, "msg": f"Invalid request: unknown variant {method}"}
            await self._reply(ws, orjson.dumps(unknown))
        return True

    async def _reply(self, ws: ServerConnection, data: bytes) -> None:
        await ws.send(data, text=True)  # Binance's frames are text

    async def _send_loop(self, ws: ServerConnection, conn: Connection) -> None:
        last_ticker = 0.0
        started = time.monotonic()
        due_sent = 0  # trades per trade stream sent so far (rate mode)
        while True:
            await asyncio.sleep(self.tick if self.trade_rate else self.trade_interval)
            now = time.monotonic()
            trades = 1
            if self.trade_rate:  # what fell due since the start, so sleeps never slow the rate
                if not conn.streams:  # counted from the first subscription, not the handshake
                    started = now
                due = int((now - started) * self.trade_rate)
                trades, due_sent = due - due_sent, due
            if self._silent:  # what falls due while silent is never sent
                continue
            tickers = now - last_ticker >= self.ticker_interval
            if tickers:
                last_ticker = now
            frames = self._frames(conn, trades, tickers)
            if frames:
                await self._send_all(ws, frames)

    def _frames(self, conn: Connection, trades: int, tickers: bool) -> list[bytes]:
        """This tick's frames: `trades` per trade stream, a ticker per ticker stream if due."""
        frames: list[bytes] = []
        at_ms = int(time.time() * 1000)
        with self._lock:
            for stream in list(conn.streams):
                is_trade = stream.partition("@")[2] in ("trade", "aggTrade")
                for _ in range(trades if is_trade else 1):
                    payload = self._payload(stream, tickers, at_ms)
                    if payload is None:
                        break
                    data = {"stream": stream, "data": payload} if conn.combined else payload
                    frames.append(orjson.dumps(data))
        return frames

    async def _send_all(self, ws: ServerConnection, frames: list[bytes]) -> None:
        """All of a tick's frames, as text frames (Binance's), in one write and one drain."""
        try:
            async with ws.send_context():
                for frame in frames:
                    ws.protocol.send_text(frame)
        except ConnectionClosed:
            return
        self.frames_sent += len(frames)

    def _payload(self, stream: str, tickers: bool, at_ms: int) -> dict[str, Any] | None:
        """One event for `stream` (None: none due); called with the lock held."""
        name, _, kind = stream.partition("@")
        symbol = name.upper()
        if symbol not in self.markets:
            return None
        price, open_, volume = self.markets[symbol]
        if kind in ("trade", "aggTrade"):
            self._step += 1
            trade_id = self._next_id[symbol]
            self._next_id[symbol] = trade_id + 1
            price = _walk(price, self._step)
            self.markets[symbol] = (price, open_, volume)
            qty = f"{0.001 * (1 + self._step % 50):.8f}"
            payload = trade_payload(kind, symbol, trade_id, f"{price:.8f}", qty, at_ms)
            self.trade_times[symbol].append(at_ms)
            if self.keep_trades:
                self.trades_sent.append(payload)
            return payload
        if kind in ("miniTicker", "ticker") and tickers:
            return ticker_payload(
                kind, symbol, f"{price:.8f}", f"{open_:.8f}", f"{volume:.8f}", at_ms
            )
        return None
