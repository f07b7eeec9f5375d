"""A local Kraken: real WebSockets on 127.0.0.1, speaking the Spot WebSocket v2 wire format.

Serves `/v2`: on connect a `status` update (`system`), then `subscribe` requests
(`{"method", "params": {"channel", "symbol", "snapshot"}, "req_id"}`) answered per symbol as
`{"method": "subscribe", "result": {...}, "success": true, "time_in", "time_out", "req_id"}`, or
`"success": false` with an `error` for an unknown pair or channel. A subscribed `trade` symbol
gets a trade `update` every `trade_interval` seconds (trade ids rising by one per symbol, now and
then two trades in one message, as Kraken batches them) and, when asked for, the `snapshot` of
its last trades first; a `ticker` symbol its snapshot and then an update every
`ticker_interval`. A `heartbeat` goes out each second in which nothing else was sent. The shapes
are those of tests/fixtures/kraken/.

Switches for tests, callable from any thread: `drop()` (every connection cut, no close frame),
`silence(True)` (connections stay open, nothing at all is sent, heartbeats included),
`set_system(state)` (a `status` update to every connection; while not `online` no trades are
matched, so only heartbeats flow), `send_raw()` (any frames, malformed ones included),
`skip(symbol, n)` (the next trade id jumps: a gap). Connections, requests and trades sent are
recorded for assertions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes.ws_server import FakeWebSocketServer

# symbol: (price, 24 h change %, 24 h base volume) — the walk starts here
MARKETS: dict[str, tuple[float, float, float]] = {
    "BTC/USD": (97012.5, -1.84, 3120.5),
    "ETH/USD": (3398.12, 2.31, 41002.7),
    "SOL/USD": (241.77, -6.04, 812345.0),
}
SNAPSHOT_TRADES = 3


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Connection:
    path: str
    opened: float
    trades: list[str] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)
    requests: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed: float | None = None


def trade_item(symbol: str, trade_id: int, price: float, qty: float, at: float) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "side": "buy" if trade_id % 2 else "sell",
        "price": price,
        "qty": qty,
        "ord_type": "limit" if trade_id % 3 else "market",
        "trade_id": trade_id,
        "timestamp": rfc3339(at),
    }


def ticker_item(symbol: str, last: float, change_pct: float, volume: float) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "bid": round(last * 0.9999, 5),
        "bid_qty": 1.5,
        "ask": round(last * 1.0001, 5),
        "ask_qty": 2.25,
        "last": last,
        "volume": volume,
        "vwap": round(last * 0.999, 5),
        "low": round(last * 0.97, 5),
        "high": round(last * 1.02, 5),
        "change": round(last * change_pct / 100, 5),
        "change_pct": change_pct,
        "timestamp": rfc3339(time.time()),
    }


class FakeKraken(FakeWebSocketServer["Connection"]):
    title = "fake Kraken"
    path = "/v2"

    def __init__(
        self,
        *,
        trade_interval: float = 0.05,
        ticker_interval: float = 0.5,
        markets: dict[str, tuple[float, float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.trade_interval = trade_interval
        self.ticker_interval = ticker_interval
        self.markets = dict(markets or MARKETS)
        self.connections: list[Connection] = []
        self.trades_sent: list[dict[str, Any]] = []  # every trade item sent, snapshots included
        self.heartbeats_sent = 0
        self.system = "online"
        self._next_id = dict.fromkeys(self.markets, 5000)
        self._step = 0
        self._lock = threading.Lock()

    # -- switches (and drop, silence, send_raw: FakeWebSocketServer) ----------------

    def set_system(self, state: str) -> None:
        """The trading engine's status, announced on every open connection."""
        self.system = state
        self.send_raw(self.status_message())

    def skip(self, symbol: str, trades: int) -> None:
        with self._lock:
            self._next_id[symbol] += trades

    # -- what happened -------------------------------------------------------------------

    @property
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.closed is None]

    def trades_of(self, symbol: str) -> list[dict[str, Any]]:
        with self._lock:
            return [t for t in self.trades_sent if t["symbol"] == symbol]

    def status_message(self) -> bytes:
        return orjson.dumps(
            {
                "channel": "status",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": 12393906104898154338,
                        "system": self.system,
                        "version": "2.0.0",
                    }
                ],
                "type": "update",
            }
        )

    # -- the server ----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != "/v2":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(path=ws.request.path if ws.request else "", opened=time.monotonic())
        self.connections.append(conn)
        self._open[ws] = conn
        await ws.send(self.status_message())
        sender = asyncio.create_task(self._send_loop(ws, conn))
        try:
            async for message in ws:
                await self._on_message(ws, conn, message)
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            self._open.pop(ws, None)
            conn.closed = time.monotonic()

    async def _on_message(self, ws: ServerConnection, conn: Connection, message: Any) -> None:
        time_in = rfc3339(time.time())
        try:
            request = orjson.loads(message)
            method, params = request["method"], request.get("params", {})
            channel, symbols = params["channel"], params["symbol"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await ws.send(
                orjson.dumps({"error": "Malformed request", "method": "error", "success": False})
            )
            return
        conn.requests.append((time.monotonic(), request))
        snapshot = params.get("snapshot", True)
        for symbol in symbols:
            reply: dict[str, Any] = {"method": method, "time_in": time_in}
            if method != "subscribe" or channel not in ("trade", "ticker"):
                reply.update(success=False, error=f"Channel or method not supported: {channel}")
            elif symbol not in self.markets:
                reply.update(success=False, error=f"Currency pair not supported {symbol}")
                reply["symbol"] = symbol
            else:
                reply.update(
                    success=True,
                    result={"channel": channel, "snapshot": snapshot, "symbol": symbol},
                )
            if "req_id" in request:
                reply["req_id"] = request["req_id"]
            reply["time_out"] = rfc3339(time.time())
            await ws.send(orjson.dumps(reply))
            if reply["success"]:
                await self._subscribed(ws, conn, channel, symbol, snapshot)

    async def _subscribed(
        self, ws: ServerConnection, conn: Connection, channel: str, symbol: str, snapshot: bool
    ) -> None:
        if channel == "trade":
            conn.trades.append(symbol)
            if snapshot:
                items = self._past_trades(symbol)
                await ws.send(orjson.dumps({"channel": "trade", "type": "snapshot", "data": items}))
        else:
            conn.tickers.append(symbol)
            if snapshot:
                await ws.send(self._ticker("snapshot", symbol))

    def _past_trades(self, symbol: str) -> list[dict[str, Any]]:
        price, _, _ = self.markets[symbol]
        with self._lock:
            first = self._next_id[symbol] - SNAPSHOT_TRADES
            items = [
                trade_item(symbol, first + i, price, 0.01, time.time() - 60 + i)
                for i in range(SNAPSHOT_TRADES)
            ]
            self.trades_sent.extend(items)
        return items

    def _ticker(self, kind: str, symbol: str) -> bytes:
        price, change, volume = self.markets[symbol]
        return orjson.dumps(
            {
                "channel": "ticker",
                "type": kind,
                "data": [ticker_item(symbol, price, change, volume)],
            }
        )

    def _trade(self, symbol: str) -> bytes:
        with self._lock:
            self._step += 1
            price, change, volume = self.markets[symbol]
            items = []
            for _ in range(2 if self._step % 5 == 0 else 1):  # Kraken batches trades
                trade_id = self._next_id[symbol]
                self._next_id[symbol] = trade_id + 1
                price = round(price * (1 + 0.0001 * ((self._step % 7) - 3)), 2)
                qty = round(0.001 * (1 + self._step % 50), 8)
                items.append(trade_item(symbol, trade_id, price, qty, time.time()))
            self.markets[symbol] = (price, change, volume)
            self.trades_sent.extend(items)
        return orjson.dumps({"channel": "trade", "type": "update", "data": items})

    async def _send_loop(self, ws: ServerConnection, conn: Connection) -> None:
        now = time.monotonic()
        last_ticker = last_sent = now
        while True:
            await asyncio.sleep(self.trade_interval)
            if self._silent:
                continue
            now = time.monotonic()
            frames: list[bytes] = []
            if self.system == "online":  # no matching otherwise: no trades, no ticker updates
                frames.extend(self._trade(s) for s in list(conn.trades))
                if now - last_ticker >= self.ticker_interval:
                    last_ticker = now
                    frames.extend(self._ticker("update", s) for s in list(conn.tickers))
            if not frames and now - last_sent >= 1.0 and (conn.trades or conn.tickers):
                frames.append(b'{"channel":"heartbeat"}')
                self.heartbeats_sent += 1
            for frame in frames:
                await ws.send(frame)
            if frames:
                last_sent = now
