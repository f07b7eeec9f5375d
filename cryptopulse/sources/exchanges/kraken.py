"""Kraken Spot WebSocket API v2 public channels, as pure functions: which symbols, how to
subscribe, and each received message turned into Ticks or a reason.

From Kraken's "Spot WebSocket v2" documentation (the examples are kept as test fixtures under
tests/fixtures/kraken/):

- One endpoint (`wss://ws.kraken.com/v2`). Channels are subscribed with
  `{"method": "subscribe", "params": {"channel": ..., "symbol": [...]}, "req_id": n}` and
  acknowledged per symbol as `{"method": "subscribe", "result": {...}, "success": true}`, or
  `"success": false` with an `error`.
- `trade`: `{"channel": "trade", "type": "snapshot"|"update", "data": [...]}`, several trades per
  message, each `{symbol, side, price, qty, ord_type, trade_id, timestamp}` (numbers as JSON
  numbers, time RFC 3339). `trade_id` numbers a symbol's trades one by one, so a jump is a gap.
  We subscribe with `"snapshot": false`: the snapshot is the last trades before we connected,
  which were published already before a reconnect (twice-counted volume) or belong to windows
  already closed; a snapshot that comes anyway is skipped and counted (`trade_snapshot`).
- `ticker`: `{symbol, last, volume (base currency), vwap, change_pct, timestamp, ...}`, sent on
  each trade; its snapshot is the current figures and is used.
- `heartbeat` about once a second when nothing else was sent (feeds the watchdog); `status`
  (`system`: `online`, `maintenance`, `cancel_only`, `post_only`) on connect and on each change:
  anything but `online` means no matching, so the source reads `degraded`.

Trades become Ticks with `size` (base currency) and `quote` (USD); tickers become Ticks without
a size carrying `change_pct` and the 24 h volume in the quote currency (`volume` x `vwap`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from cryptopulse.config import KrakenSettings
from cryptopulse.sources.exchanges.markets import (
    Market,
    describe,
    listed,
    make_tick,
    split,
    subscribed,
)
from cryptopulse.sources.exchanges.protocol import ACK, IGNORE, Frame, reject

SOURCE: Final = "kraken"
CHANNELS: Final = ("trade", "ticker")
SYSTEM_STATES: Final = frozenset({"online", "maintenance", "cancel_only", "post_only"})
_MIN_TIME: Final = datetime(2009, 1, 1, tzinfo=UTC)
_MAX_TIME: Final = datetime(3000, 1, 1, tzinfo=UTC)
_MAX_TIME_CHARS: Final = 40


def markets_for(coins: Sequence[str]) -> dict[str, Market]:
    """The coins the table lists on this exchange, by the exchange's symbol."""
    return listed(SOURCE, coins)


def subscribe_messages(symbols: Sequence[str], chunk: int, first_id: int = 1) -> list[str]:
    """Per channel, the symbols in chunks of `chunk`; `req_id` rises from `first_id`."""
    messages: list[str] = []
    for channel in CHANNELS:
        for part in split(symbols, chunk):
            params: dict[str, Any] = {"channel": channel, "symbol": part}
            # Trades: no snapshot (past trades, see the module's docstring); ticker: the
            # snapshot is the current 24 h figures.
            params["snapshot"] = channel == "ticker"
            messages.append(
                orjson.dumps(
                    {"method": "subscribe", "params": params, "req_id": first_id + len(messages)}
                ).decode()
            )
    return messages


# -- parsing ------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A JSON number (not a bool) as a finite float, else None."""
    if type(value) not in (int, float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(value: Any) -> datetime | None:
    """An RFC 3339 UTC time between 2009 and 3000, else None."""
    if type(value) is not str or not 20 <= len(value) <= _MAX_TIME_CHARS or value[-1] != "Z":
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None or not _MIN_TIME <= at < _MAX_TIME:
        return None
    return at.astimezone(UTC)


def _market(item: dict[str, Any], markets: Mapping[str, Market]) -> Market | None:
    symbol = item.get("symbol")
    return markets.get(symbol) if type(symbol) is str else None


def _tick(market: Market, price: float, at: datetime, **figures: Any) -> Frame:
    tick = make_tick(SOURCE, market, price, at, **figures)
    return Frame("tick", tick) if tick is not None else reject("invalid_tick")


def parse_trade(item: Any, markets: Mapping[str, Market]) -> Frame:
    if type(item) is not dict:
        return reject("not_an_object")
    market = _market(item, markets)
    if market is None:
        return reject("unknown_symbol")
    price, size, at, trade_id = (
        _number(item.get("price")),
        _number(item.get("qty")),
        _time(item.get("timestamp")),
        item.get("trade_id"),
    )
    if price is None or price <= 0:
        return reject("bad_price")
    if size is None or size <= 0:
        return reject("bad_size")
    if at is None:
        return reject("bad_time")
    if type(trade_id) is not int or trade_id < 0:
        return reject("bad_trade_id")
    frame = _tick(market, price, at, size=size)
    if frame.tick is None:
        return frame
    return Frame("tick", frame.tick, seq_key=market.listing.symbol, seq=trade_id)


def parse_ticker(item: Any, markets: Mapping[str, Market]) -> Frame:
    if type(item) is not dict:
        return reject("not_an_object")
    market = _market(item, markets)
    if market is None:
        return reject("unknown_symbol")
    last, volume, vwap, change, at = (
        _number(item.get("last")),
        _number(item.get("volume")),
        _number(item.get("vwap")),
        _number(item.get("change_pct")),
        _time(item.get("timestamp")),
    )
    if last is None or last <= 0:
        return reject("bad_price")
    if volume is None or volume < 0:
        return reject("bad_volume")
    if vwap is None or vwap < 0:
        return reject("bad_vwap")
    if change is None:
        return reject("bad_change")
    if at is None:
        return reject("bad_time")
    # `volume` is in the base currency; the Tick's 24 h volume is in the quote currency, as
    # CoinGecko's and Binance's are.
    return _tick(market, last, at, change_24h=change, volume_24h=volume * vwap)


def parse_status(msg: dict[str, Any]) -> Frame:
    data = msg.get("data")
    if type(data) is not list or len(data) != 1 or type(data[0]) is not dict:
        return reject("bad_status")
    system = data[0].get("system")
    if system not in SYSTEM_STATES:
        return reject("bad_status")
    return IGNORE if system == "online" else Frame("halt", reason=f"exchange_{system}")


def parse_data(msg: dict[str, Any], markets: Mapping[str, Market]) -> Frame | list[Frame]:
    channel, data = msg.get("channel"), msg.get("data")
    if msg.get("type") not in ("snapshot", "update"):
        return reject("bad_type")
    if type(data) is not list or not data:
        return reject("bad_data")
    if channel == "trade":
        if msg["type"] == "snapshot":
            return reject("trade_snapshot")
        return [parse_trade(item, markets) for item in data]
    return [parse_ticker(item, markets) for item in data]


def parse_reply(msg: dict[str, Any]) -> Frame:
    """A method's answer: `success` true is an acknowledgement, false an error reply."""
    if msg.get("success") is True:
        return ACK
    return Frame(
        "error_reply", reason=f"{str(msg.get('method'))[:40]}: {str(msg.get('error'))[:200]}"
    )


def parse_frame(raw: str | bytes, markets: Mapping[str, Market]) -> Frame | list[Frame]:
    """One message from a v2 connection; never raises."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return reject("not_json")
    if type(msg) is not dict:
        return reject("not_an_object")
    channel = msg.get("channel")
    if channel in CHANNELS:
        return parse_data(msg, markets)
    if channel == "heartbeat":
        return IGNORE
    if channel == "status":
        return parse_status(msg)
    if "method" in msg and "success" in msg:
        return parse_reply(msg)
    return reject("unknown_channel")


class KrakenProtocol:
    """The `ExchangeProtocol` for Kraken's v2 public channels, configured from `producer.kraken`."""

    name = SOURCE

    def __init__(self, coins: Sequence[str], settings: KrakenSettings | None = None) -> None:
        self.settings = settings or KrakenSettings()
        self.markets, self.unlisted = subscribed(SOURCE, coins)
        self.messages_per_second = self.settings.messages_per_second
        self.connections_per_5_minutes = self.settings.connections_per_5_minutes
        self.symbols = list(self.markets)

    def connections(self) -> list[list[str]]:
        return split(self.symbols, self.settings.max_symbols_per_connection)

    def url(self, subscriptions: Sequence[str]) -> str:
        return self.settings.ws_url

    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        return subscribe_messages(subscriptions, self.settings.symbols_per_message)

    def parse(self, raw: str | bytes) -> Frame | list[Frame]:
        return parse_frame(raw, self.markets)

    def describe(self) -> str:
        return describe(
            SOURCE, "symbol", "trade + ticker", self.settings.ws_url, len(self.markets),
            len(self.connections()), self.unlisted,
        )  # fmt: skip
