"""Binance spot public market streams, as pure functions: which streams, how to subscribe, and
each received frame turned into a Tick or a reason.

From Binance's "WebSocket Streams" documentation (the payloads are kept as test fixtures under
tests/fixtures/binance/):

- Combined streams at `<ws_url>/stream`: every event arrives wrapped as
  `{"stream": "<name>", "data": <payload>}`. Streams are added with
  `{"method": "SUBSCRIBE", "params": [...], "id": n}`, answered `{"result": null, "id": n}`;
  an error is `{"code": ..., "msg": ...}`.
- `<symbol>@trade` (`e: trade`, trade id `t`) or `<symbol>@aggTrade` (`e: aggTrade`, id `a`):
  price `p` and quantity `q` as decimal strings, trade time `T` in ms. A symbol's trade ids
  rise by one per trade (aggregate ids likewise), so a jump is a gap (counted).
- `<symbol>@miniTicker` (`e: 24hrMiniTicker`: close `c`, open `o`, quote volume `q`, event time
  `E`) or `<symbol>@ticker` (`e: 24hrTicker`, also the change in percent `P`): the 24 h figures.
- `serverShutdown` (`{"e": "serverShutdown", "E": ...}`, also seen wrapped in `"event"` on the
  WebSocket API): reconnect at once.
- Limits: 5 incoming messages a second per connection (pings and pongs included), 1,024 streams
  per connection, 300 connection attempts per 5 minutes per address, 24 h per connection; the
  server pings every 20 s and websockets answers.

Trades become Ticks with `size` (base currency) and `quote`; ticker events become Ticks without
a size carrying the 24 h change (from open to close, or `P`) and the quote currency's volume.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from cryptopulse.config import BinanceSettings
from cryptopulse.sources.exchanges.markets import (
    Market,
    describe,
    listed,
    make_tick,
    split,
    subscribed,
)
from cryptopulse.sources.exchanges.protocol import ACK, SHUTDOWN, Frame, reject

SOURCE: Final = "binance"
SUBSCRIBE_CHUNK: Final = 200  # streams per SUBSCRIBE message (keeps each message small)
# Binance's decimals: plain digits and one point (float() would also take "nan", "1e400", "1_0").
_DECIMAL = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?")
_MIN_MS: Final = 1_230_768_000_000  # 2009-01-01: older times are not market data
_MAX_MS: Final = 32_503_680_000_000  # 3000-01-01


def markets_for(coins: Sequence[str]) -> dict[str, Market]:
    """The coins the table lists on this exchange, by the exchange's symbol."""
    return listed(SOURCE, coins)


def stream_names(markets: Mapping[str, Market], trades: str, ticker: str) -> list[str]:
    return [f"{sym.lower()}@{kind}" for sym in markets for kind in (trades, ticker)]


def subscribe_messages(streams: Sequence[str], first_id: int = 1) -> list[str]:
    return [
        orjson.dumps({"method": "SUBSCRIBE", "params": chunk, "id": first_id + i}).decode()
        for i, chunk in enumerate(split(streams, SUBSCRIBE_CHUNK))
    ]


# -- parsing ------------------------------------------------------------------------------


def _decimal(value: Any) -> float | None:
    """A Binance decimal string as a finite float, else None."""
    if type(value) is not str or _DECIMAL.fullmatch(value) is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _millis(value: Any) -> datetime | None:
    if type(value) is not int or not _MIN_MS <= value <= _MAX_MS:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def _market(msg: dict[str, Any], markets: Mapping[str, Market]) -> Market | None:
    symbol = msg.get("s")
    return markets.get(symbol) if type(symbol) is str else None


def _tick(market: Market, price: float, at: datetime, **figures: Any) -> Frame:
    tick = make_tick(SOURCE, market, price, at, **figures)
    return Frame("tick", tick) if tick is not None else reject("invalid_tick")


def parse_trade(msg: dict[str, Any], markets: Mapping[str, Market], id_key: str) -> Frame:
    market = _market(msg, markets)
    if market is None:
        return reject("unknown_symbol")
    price, size, at, trade_id = (
        _decimal(msg.get("p")),
        _decimal(msg.get("q")),
        _millis(msg.get("T")),
        msg.get(id_key),
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


def parse_ticker(msg: dict[str, Any], markets: Mapping[str, Market], full: bool) -> Frame:
    """`24hrMiniTicker` (change from open `o` to close `c`) or `24hrTicker` (change `P`)."""
    market = _market(msg, markets)
    if market is None:
        return reject("unknown_symbol")
    close, volume, at = _decimal(msg.get("c")), _decimal(msg.get("q")), _millis(msg.get("E"))
    if close is None or close <= 0:
        return reject("bad_price")
    if volume is None or volume < 0:
        return reject("bad_volume")
    if at is None:
        return reject("bad_time")
    if full:
        change = _decimal(msg.get("P"))
        if change is None:
            return reject("bad_change")
    else:
        open_ = _decimal(msg.get("o"))
        if open_ is None or open_ <= 0:
            return reject("bad_open")
        change = (close - open_) / open_ * 100.0
    return _tick(market, close, at, change_24h=change, volume_24h=volume)


def parse_frame(raw: str | bytes, markets: Mapping[str, Market]) -> Frame:
    """One frame from a combined-streams connection; never raises."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return reject("not_json")
    if type(msg) is not dict:
        return reject("not_an_object")
    if "data" in msg and "stream" in msg:
        msg = msg["data"]
    elif type(msg.get("event")) is dict:
        msg = msg["event"]
    if type(msg) is not dict:
        return reject("not_an_object")
    event = msg.get("e")
    if event == "trade":
        return parse_trade(msg, markets, "t")
    if event == "aggTrade":
        return parse_trade(msg, markets, "a")
    if event == "24hrMiniTicker":
        return parse_ticker(msg, markets, full=False)
    if event == "24hrTicker":
        return parse_ticker(msg, markets, full=True)
    if event == "serverShutdown":
        return SHUTDOWN
    if "id" in msg and "result" in msg:
        return ACK
    if "code" in msg and "msg" in msg:
        return Frame("error_reply", reason=f"code {msg['code']!r}: {str(msg['msg'])[:200]}")
    return reject("unknown_event")


class BinanceProtocol:
    """The `ExchangeProtocol` for Binance spot, configured from `producer.binance`."""

    name = SOURCE

    def __init__(self, coins: Sequence[str], settings: BinanceSettings | None = None) -> None:
        self.settings = settings or BinanceSettings()
        self.markets, self.unlisted = subscribed(SOURCE, coins)
        self.messages_per_second = self.settings.messages_per_second
        self.connections_per_5_minutes = self.settings.connections_per_5_minutes
        self.streams = stream_names(self.markets, self.settings.trades, self.settings.ticker)

    def connections(self) -> list[list[str]]:
        return split(self.streams, self.settings.max_streams_per_connection)

    def url(self, subscriptions: Sequence[str]) -> str:
        return f"{self.settings.ws_url}/stream"

    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        return subscribe_messages(subscriptions)

    def parse(self, raw: str | bytes) -> Frame:
        return parse_frame(raw, self.markets)

    def describe(self) -> str:
        return describe(
            SOURCE, "symbol", f"{self.settings.trades} + {self.settings.ticker}", self.settings.ws_url, len(self.markets),
            len(self.connections()), self.unlisted,
        )  # fmt: skip
