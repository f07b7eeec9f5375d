"""A local Coinbase Advanced Trade market data feed: real WebSockets on 127.0.0.1, speaking the
documented wire format.

Takes `{"type": "subscribe"|"unsubscribe", "channel", "product_ids"}` one channel per message
(`market_trades`, `ticker`, `ticker_batch`, `heartbeats`), answers each with a `subscriptions`
message listing every channel subscribed, and a bad request with `{"type": "error",
"message"}`. Every message it sends carries the connection's `sequence_num` (0, 1, 2, ... over
all channels). Subscribing to `market_trades` first sends a `snapshot` of recent trades (as
Coinbase does), then an `update` with a trade per product every `trade_interval`; `ticker` sends a
snapshot then updates every `ticker_interval`; `heartbeats` one a `heartbeat_interval` (1 s), in
the payload shapes of tests/fixtures/coinbase/. Coinbase's rules are enforced as Coinbase does: a
connection without a subscribe within `subscribe_deadline` (5 s) is closed, and so is a client
sending more than 8 messages in a second.

Switches for tests, callable from any thread: `drop()` (every connection cut, no close frame),
`silence(True)` (connections stay open, nothing is sent, heartbeats included), `skip(n)` (the next
message's sequence_num jumps by n: a gap), `send_raw()` (any frames, malformed ones included).
Every connection, message received and trade sent is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.fakes.ws_server import FakeWebSocketServer

SUBSCRIBE_DEADLINE = 5.0
MAX_MESSAGES_PER_SECOND = 8
CHANNELS = ("market_trades", "ticker", "ticker_batch", "heartbeats")

# product: (price, 24 h change percent, 24 h base volume) — the walk starts here
MARKETS: dict[str, tuple[float, float, float]] = {
    "BTC-USD": (97012.5, -1.84, 16038.28770938),
    "ETH-USD": (3398.12, 2.31, 152004.5),
    "SOL-USD": (241.77, -6.04, 2_100_450.0),
}


def rfc3339(at: float) -> str:
    """Coinbase's times: RFC 3339, UTC, with nanoseconds."""
    stamp = datetime.fromtimestamp(at, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}123Z"


@dataclass
class Connection:
    opened: float
    channels: dict[str, list[str]] = field(default_factory=dict)
    received: list[tuple[float, Any]] = field(default_factory=list)
    subscribed_at: float | None = None
    seq: int = 0
    closed: float | None = None
    close_reason: str = ""
    # Numbers are given and sent in one step, so they leave in order.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeCoinbase(FakeWebSocketServer["Connection"]):
    title = "fake Coinbase"

    def __init__(
        self,
        *,
        trade_interval: float = 0.05,
        ticker_interval: float = 0.5,
        heartbeat_interval: float = 1.0,
        subscribe_deadline: float = SUBSCRIBE_DEADLINE,
        markets: dict[str, tuple[float, float, float]] | None = None,
    ) -> None:
        super().__init__()
        self.trade_interval = trade_interval
        self.ticker_interval = ticker_interval
        self.heartbeat_interval = heartbeat_interval
        self.subscribe_deadline = subscribe_deadline
        self.markets = dict(markets or MARKETS)
        self.connections: list[Connection] = []
        self.trades_sent: list[dict[str, Any]] = []  # the updates' trades (snapshots apart)
        self._next_id = dict.fromkeys(self.markets, 5000)
        self._step = 0
        self._skip = 0
        self._lock = threading.Lock()

    # -- switches (and drop, silence, send_raw: FakeWebSocketServer) ----------------

    def skip(self, messages: int) -> None:
        """The next message of each connection is numbered `messages` further on: a gap."""
        with self._lock:
            self._skip = messages

    # -- what happened -------------------------------------------------------------------

    @property
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.closed is None]

    def trades_of(self, product: str) -> list[dict[str, Any]]:
        with self._lock:
            return [t for t in self.trades_sent if t["product_id"] == product]

    # -- the server ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(opened=time.monotonic())
        self.connections.append(conn)
        self._open[ws] = conn
        sender = asyncio.create_task(self._send_loop(ws, conn))
        try:
            async with asyncio.timeout(self.subscribe_deadline) as deadline:
                while conn.subscribed_at is None:
                    if not await self._on_message(ws, conn, await ws.recv()):
                        return
                deadline.reschedule(None)
            async for message in ws:
                if not await self._on_message(ws, conn, message):
                    break
        except TimeoutError:
            conn.close_reason = "no subscribe within the deadline"
            await ws.close(1008, "subscribe within 5 seconds")
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            self._open.pop(ws, None)
            conn.closed = time.monotonic()

    async def _send(
        self, ws: ServerConnection, conn: Connection, channel: str, events: Any
    ) -> None:
        async with conn.sending:
            with self._lock:
                conn.seq += self._skip
                self._skip = 0
                seq = conn.seq
                conn.seq += 1
            message = {
                "channel": channel,
                "client_id": "",
                "timestamp": rfc3339(time.time()),
                "sequence_num": seq,
                "events": events,
            }
            await ws.send(orjson.dumps(message))

    async def _error(self, ws: ServerConnection, message: str) -> None:
        await ws.send(orjson.dumps({"type": "error", "message": message}))

    async def _on_message(self, ws: ServerConnection, conn: Connection, message: Any) -> bool:
        now = time.monotonic()
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            request = message
        conn.received.append((now, request))
        if sum(1 for t, _ in conn.received if t > now - 1.0) > MAX_MESSAGES_PER_SECOND:
            conn.close_reason = "too many messages"
            await ws.close(1008, "rate limit exceeded")
            return False
        if type(request) is not dict or request.get("type") not in ("subscribe", "unsubscribe"):
            await self._error(ws, "malformed request")
            return True
        channel, products = request.get("channel"), request.get("product_ids", [])
        if channel not in CHANNELS or type(products) is not list:
            await self._error(ws, "failure to subscribe")  # one channel per message, known ones
            return True
        if channel != "heartbeats" and not products:
            await self._error(ws, "failure to subscribe: no product ids")
            return True
        if request["type"] == "subscribe":
            known = [p for p in products if p in self.markets]
            new = [p for p in known if p not in conn.channels.get(channel, [])]
            conn.channels.setdefault(channel, []).extend(new)
            conn.subscribed_at = conn.subscribed_at or now
            await self._subscribed(ws, conn)
            await self._snapshot(ws, conn, channel, new)
        else:
            gone = set(products) or set(conn.channels.get(channel, []))
            conn.channels[channel] = [p for p in conn.channels.get(channel, []) if p not in gone]
            await self._subscribed(ws, conn)
        return True

    async def _subscribed(self, ws: ServerConnection, conn: Connection) -> None:
        listed = {c: (p if c != "heartbeats" else ["heartbeats"]) for c, p in conn.channels.items()}
        await self._send(ws, conn, "subscriptions", [{"subscriptions": listed}])

    async def _snapshot(
        self, ws: ServerConnection, conn: Connection, channel: str, products: list[str]
    ) -> None:
        if not products:
            return
        if channel == "market_trades":
            # Recent trades, already sent to anyone listening: a client must not publish them.
            past = [self._trade(p, record=False) for p in products]
            await self._send(ws, conn, channel, [{"type": "snapshot", "trades": past}])
        elif channel in ("ticker", "ticker_batch"):
            tickers = [self._ticker(p) for p in products]
            await self._send(ws, conn, channel, [{"type": "snapshot", "tickers": tickers}])

    async def _send_loop(self, ws: ServerConnection, conn: Connection) -> None:
        last_ticker = last_beat = time.monotonic()
        beats = 0
        while True:
            await asyncio.sleep(self.trade_interval)
            if self._silent:
                continue
            now = time.monotonic()
            products = conn.channels.get("market_trades", [])
            if products:
                trades = [self._trade(p) for p in products]
                await self._send(ws, conn, "market_trades", [{"type": "update", "trades": trades}])
            ticker = "ticker" if "ticker" in conn.channels else "ticker_batch"
            if conn.channels.get(ticker) and now - last_ticker >= self.ticker_interval:
                last_ticker = now
                tickers = [self._ticker(p) for p in conn.channels[ticker]]
                await self._send(ws, conn, ticker, [{"type": "update", "tickers": tickers}])
            if "heartbeats" in conn.channels and now - last_beat >= self.heartbeat_interval:
                last_beat, beats = now, beats + 1
                at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")
                beat = {"current_time": f"{at} m=+{now:.9f}", "heartbeat_counter": str(beats)}
                await self._send(ws, conn, "heartbeats", [beat])

    def _trade(self, product: str, *, record: bool = True) -> dict[str, Any]:
        with self._lock:
            price, change, volume = self.markets[product]
            self._step += 1
            trade_id = self._next_id[product]
            self._next_id[product] = trade_id + 1
            price = round(price * (1 + 0.0001 * ((self._step % 7) - 3)), 2)
            self.markets[product] = (price, change, volume)
            trade = {
                "trade_id": str(trade_id),
                "product_id": product,
                "price": f"{price:.2f}",
                "size": f"{0.001 * (1 + self._step % 50):.8f}",
                "side": "BUY" if self._step % 2 else "SELL",
                "time": rfc3339(time.time()),
            }
            if record:
                self.trades_sent.append(trade)
        return trade

    def _ticker(self, product: str) -> dict[str, Any]:
        price, change, volume = self.markets[product]
        return {
            "type": "ticker",
            "product_id": product,
            "price": f"{price:.2f}",
            "volume_24_h": f"{volume:.8f}",
            "low_24_h": f"{price * 0.97:.2f}",
            "high_24_h": f"{price * 1.02:.2f}",
            "low_52_w": f"{price * 0.5:.2f}",
            "high_52_w": f"{price * 1.5:.2f}",
            "price_percent_chg_24_h": f"{change:.8f}",
            "best_bid": f"{price - 0.01:.2f}",
            "best_bid_quantity": "0.5",
            "best_ask": f"{price + 0.01:.2f}",
            "best_ask_quantity": "0.4",
        }
