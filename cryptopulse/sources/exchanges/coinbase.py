"""Coinbase Advanced Trade public market data, as pure functions: which products, how to
subscribe, and each received message turned into Ticks or reasons.

From Coinbase's "Advanced Trade WebSocket" documentation (Overview, Channels, Rate Limits; the
payloads are kept as test fixtures under tests/fixtures/coinbase/):

- One endpoint (`wss://advanced-trade-ws.coinbase.com`); `market_trades`, `ticker` and
  `heartbeats` need no key. A client must send a `subscribe` within 5 s of connecting or it is
  disconnected, one channel per message:
  `{"type": "subscribe", "product_ids": [...], "channel": "..."}`; the server answers with a
  `subscriptions` message. Errors are `{"type": "error", "message": ...}`.
- Every message is `{"channel", "client_id", "timestamp", "sequence_num", "events": [...]}`;
  `sequence_num` numbers all the messages of one connection, so a jump is a gap (counted).
- `market_trades`: events `{"type": "snapshot"|"update", "trades": [{trade_id, product_id,
  price, size, side, time}]}`, the trades of the last 250 ms batched into one update.
- `ticker`: events `{"type", "tickers": [{product_id, price, volume_24_h (base currency),
  price_percent_chg_24_h, ...}]}`, without a time of their own: the message's `timestamp`.
- `heartbeats`: every second, keeps the subscriptions open (most channels close after 60-90 s
  without updates otherwise).
- Numbers are decimal strings. Rate limits: 8 unauthenticated messages a second per IP, 750
  connections a second per IP.

Trades become Ticks with `size` (base currency) and `quote` (USD). A snapshot's trades are the
recent past, sent again on every (re)connection, so only updates are published (a reconnect
never publishes a trade twice). Tickers become Ticks without a size carrying the 24 h change in
percent and the 24 h volume in the quote currency (the base volume times the price), as
CoinGecko's volume is in USD.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from cryptopulse.config import CoinbaseSettings
from cryptopulse.schema import Tick
from cryptopulse.sources.exchanges.markets import (
    Market,
    describe,
    listed,
    make_tick,
    split,
    subscribed,
)
from cryptopulse.sources.exchanges.protocol import Frame, reject

SOURCE: Final = "coinbase"
SEQ_KEY: Final = "connection"  # sequence_num counts every message of the connection
# Plain digits and one point (float() would also take "nan", "1e400", "1_0").
_DECIMAL = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?")
# RFC 3339 in UTC as Coinbase writes it: up to nanoseconds, "Z".
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
_TRADE_ID = re.compile(r"\d{1,30}")
_MIN_YEAR, _MAX_YEAR = 2009, 2999
MAX_ITEMS: Final = 1000  # trades or tickers in one message; more is not a market data message


def markets_for(coins: Sequence[str]) -> dict[str, Market]:
    """The coins the table lists on this exchange, by the exchange's symbol."""
    return listed(SOURCE, coins)


def subscribe_messages(products: Sequence[str], ticker: str = "ticker") -> list[str]:
    """One message per channel (Coinbase takes one channel per subscribe); heartbeats first,
    so the connection is kept open whatever the markets do."""
    messages: list[dict[str, Any]] = [{"type": "subscribe", "channel": "heartbeats"}]
    messages += [
        {"type": "subscribe", "product_ids": list(products), "channel": channel}
        for channel in ("market_trades", ticker)
    ]
    return [orjson.dumps(m).decode() for m in messages]


# -- parsing ------------------------------------------------------------------------------


def _decimal(value: Any) -> float | None:
    """A Coinbase decimal string as a finite float, else None."""
    if type(value) is not str or _DECIMAL.fullmatch(value) is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(value: Any) -> datetime | None:
    if type(value) is not str or (m := _TIME.fullmatch(value)) is None:
        return None
    year, month, day, hour, minute, second, fraction = m.groups()
    if not _MIN_YEAR <= int(year) <= _MAX_YEAR:
        return None
    try:
        at = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    micros = int((fraction or "0").ljust(9, "0")[:6])
    return at.replace(microsecond=micros)


def _tick(market: Market, price: float, at: datetime, **figures: Any) -> Tick | str:
    return make_tick(SOURCE, market, price, at, **figures) or "invalid_tick"


def parse_trade(trade: Any, markets: Mapping[str, Market]) -> Tick | str:
    """One entry of a `market_trades` update: a Tick, or why not."""
    if type(trade) is not dict:
        return "not_an_object"
    product = trade.get("product_id")
    market = markets.get(product) if type(product) is str else None
    if market is None:
        return "unknown_product"
    price, size, at = (
        _decimal(trade.get("price")),
        _decimal(trade.get("size")),
        _time(trade.get("time")),
    )
    if price is None or price <= 0:
        return "bad_price"
    if size is None or size <= 0:
        return "bad_size"
    if at is None:
        return "bad_time"
    trade_id = trade.get("trade_id")
    if type(trade_id) is not str or _TRADE_ID.fullmatch(trade_id) is None:
        return "bad_trade_id"
    return _tick(market, price, at, size=size)


def parse_ticker(ticker: Any, markets: Mapping[str, Market], at: datetime) -> Tick | str:
    """One entry of a `ticker` event, observed at the message's `timestamp`."""
    if type(ticker) is not dict:
        return "not_an_object"
    product = ticker.get("product_id")
    market = markets.get(product) if type(product) is str else None
    if market is None:
        return "unknown_product"
    price, volume = _decimal(ticker.get("price")), _decimal(ticker.get("volume_24_h"))
    change = _decimal(ticker.get("price_percent_chg_24_h"))
    if price is None or price <= 0:
        return "bad_price"
    if volume is None or volume < 0:
        return "bad_volume"
    if change is None:
        return "bad_change"
    return _tick(market, price, at, change_24h=change, volume_24h=volume * price)


def _items(events: Any, key: str) -> list[tuple[str, Any]] | str:
    """(event type, item) for every item of every event, or why the events are malformed."""
    if type(events) is not list:
        return "bad_events"
    out: list[tuple[str, Any]] = []
    for event in events:
        if type(event) is not dict or type(event.get(key)) is not list:
            return "bad_events"
        kind = event.get("type")
        if kind not in ("snapshot", "update"):
            return "bad_event_type"
        out.extend((kind, item) for item in event[key])
        if len(out) > MAX_ITEMS:
            return "too_many_items"
    return out


def _frame(results: list[Tick | str], seq: int) -> Frame:
    ticks = tuple(r for r in results if isinstance(r, Tick))
    reasons = tuple(r for r in results if isinstance(r, str))
    if ticks:
        return Frame("tick", ticks[0], seq_key=SEQ_KEY, seq=seq, ticks=ticks, skipped=reasons)
    if reasons:
        return Frame("reject", reason=reasons[0], seq_key=SEQ_KEY, seq=seq, skipped=reasons[1:])
    return Frame("ignore", seq_key=SEQ_KEY, seq=seq)  # e.g. a snapshot of past trades


def parse_message(msg: dict[str, Any], markets: Mapping[str, Market], seq: int) -> Frame:
    channel = msg.get("channel")
    if channel == "market_trades":
        items = _items(msg.get("events"), "trades")
        if isinstance(items, str):
            return Frame("reject", reason=items, seq_key=SEQ_KEY, seq=seq)
        # A snapshot's trades were sent before (or before we started): never published twice.
        return _frame([parse_trade(t, markets) for kind, t in items if kind == "update"], seq)
    if channel in ("ticker", "ticker_batch"):
        at = _time(msg.get("timestamp"))
        if at is None:
            return Frame("reject", reason="bad_time", seq_key=SEQ_KEY, seq=seq)
        items = _items(msg.get("events"), "tickers")
        if isinstance(items, str):
            return Frame("reject", reason=items, seq_key=SEQ_KEY, seq=seq)
        return _frame([parse_ticker(t, markets, at) for _, t in items], seq)
    if channel == "heartbeats":
        return Frame("ignore", seq_key=SEQ_KEY, seq=seq)
    if channel == "subscriptions":
        return Frame("ack", seq_key=SEQ_KEY, seq=seq)
    return Frame("reject", reason="unknown_channel", seq_key=SEQ_KEY, seq=seq)


def parse_frame(raw: str | bytes, markets: Mapping[str, Market]) -> Frame:
    """One message from an Advanced Trade connection; never raises."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return reject("not_json")
    if type(msg) is not dict:
        return reject("not_an_object")
    if msg.get("type") == "error":
        return Frame("error_reply", reason=str(msg.get("message"))[:200])
    seq = msg.get("sequence_num")
    if type(seq) is not int or seq < 0:
        return reject("bad_sequence")
    return parse_message(msg, markets, seq)


class CoinbaseProtocol:
    """The `ExchangeProtocol` for Coinbase Advanced Trade, configured from `producer.coinbase`."""

    name = SOURCE

    def __init__(self, coins: Sequence[str], settings: CoinbaseSettings | None = None) -> None:
        self.settings = settings or CoinbaseSettings()
        self.markets, self.unlisted = subscribed(SOURCE, coins)
        self.messages_per_second = self.settings.messages_per_second
        self.connections_per_5_minutes = self.settings.connections_per_5_minutes
        self.products = list(self.markets)

    def connections(self) -> list[list[str]]:
        return split(self.products, self.settings.max_products_per_connection)

    def url(self, subscriptions: Sequence[str]) -> str:
        return self.settings.ws_url

    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        return subscribe_messages(subscriptions, self.settings.ticker)

    def parse(self, raw: str | bytes) -> Frame:
        return parse_frame(raw, self.markets)

    def describe(self) -> str:
        return describe(
            SOURCE, "product", f"market_trades + {self.settings.ticker} + heartbeats", self.settings.ws_url, len(self.markets),
            len(self.connections()), self.unlisted,
        )  # fmt: skip


__all__ = ["CoinbaseProtocol", "markets_for", "parse_frame", "subscribe_messages"]
