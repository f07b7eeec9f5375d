"""Coinbase Advanced Trade's protocol as pure functions (no server, no sleeps): the documented
payloads (tests/fixtures/coinbase/) -> Ticks exactly; every malformed message rejected with its
reason; the subscribe messages; sequence gaps over the whole connection."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.config import CoinbaseSettings, ProducerSettings
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources import open_source
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.sources.exchanges.coinbase import (
    CoinbaseProtocol,
    markets_for,
    parse_frame,
    subscribe_messages,
)
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.pacing import SlidingLimit
from cryptopulse.sources.exchanges.protocol import Frame
from cryptopulse.sources.exchanges.stream import StreamConnection, StreamRules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "coinbase"
MARKETS = markets_for(["bitcoin", "ethereum", "solana"])


def fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return payload


def trades_update(**changes: Any) -> dict[str, Any]:
    """The documented market_trades message as an update (its snapshot is not published)."""
    msg = fixture("market_trades")
    msg["events"][0]["type"] = "update"
    msg["events"][0]["trades"][0].update(changes)
    return msg


def ticker(**changes: Any) -> dict[str, Any]:
    msg = fixture("ticker")
    msg["events"][0]["tickers"][0].update(changes)
    return msg


def parse(payload: Any) -> Frame:
    return parse_frame(orjson.dumps(payload), MARKETS)


def rejected(payload: Any) -> str:
    frame = parse(payload)
    assert frame.kind == "reject" and frame.tick is None and not frame.ticks, frame
    return frame.reason


# -- the documented payloads -> Ticks ------------------------------------------------------


def test_a_trade_becomes_a_tick_with_its_size_quote_and_trade_time() -> None:
    frame = parse(trades_update())
    assert frame.kind == "tick"
    expected = Tick(
        coin="ethereum",
        symbol="eth",
        price=1260.01,
        size=0.3,
        quote="USD",
        timestamp=datetime(2019, 8, 14, 20, 42, 27, 265000, UTC),
        source="coinbase",
    )
    assert frame.ticks == (expected,) and frame.tick == expected
    assert (frame.seq_key, frame.seq) == ("connection", 0)  # sequence_num, per connection
    assert tick_from_json(tick_to_json(expected)) == expected
    assert orjson.loads(tick_to_json(expected))["quote"] == "USD"


def test_a_snapshot_of_past_trades_is_not_published_but_numbered() -> None:
    frame = parse(fixture("market_trades"))
    assert (frame.kind, frame.ticks, frame.seq) == ("ignore", (), 0)


def test_one_update_carries_many_trades_and_a_bad_one_is_counted_apart() -> None:
    msg = trades_update()
    good = msg["events"][0]["trades"][0]
    msg["events"][0]["trades"] = [
        good,
        {**good, "product_id": "BTC-USD", "price": "97000.5", "trade_id": "1"},
        {**good, "price": "NaN"},
        {**good, "product_id": "DOGE-EUR"},
    ]
    frame = parse(msg)
    assert frame.kind == "tick"
    assert [(t.coin, t.price) for t in frame.ticks] == [("ethereum", 1260.01), ("bitcoin", 97000.5)]
    assert frame.skipped == ("bad_price", "unknown_product")


def test_the_ticker_gives_the_24h_change_and_the_volume_in_the_quote_currency() -> None:
    frame = parse(fixture("ticker"))
    assert frame.kind == "tick" and frame.seq == 0
    assert frame.ticks == (
        Tick(
            coin="bitcoin",
            symbol="btc",
            price=21932.98,
            change_24h=-4.15775596190603,
            volume_24h=16038.28770938 * 21932.98,  # base volume x price: USD, as CoinGecko's
            quote="USD",
            timestamp=datetime(2023, 2, 9, 20, 30, 37, 167359, UTC),  # the message's time
            source="coinbase",
        ),
    )
    assert frame.ticks[0].size is None  # a quote, not a trade
    batch = {**fixture("ticker"), "channel": "ticker_batch"}
    assert parse(batch).ticks == frame.ticks


def test_control_messages() -> None:
    heartbeat = parse(fixture("heartbeats"))
    assert (heartbeat.kind, heartbeat.seq_key, heartbeat.seq) == ("ignore", "connection", 0)
    ack = parse(fixture("subscriptions"))
    assert (ack.kind, ack.seq) == ("ack", 0)
    error = parse(fixture("error"))
    assert (error.kind, error.reason) == ("error_reply", "failure to subscribe")


# -- malformed messages: a reason each, never an exception ---------------------------------

TRADE = trades_update()["events"][0]["trades"][0]


def with_trade(**changes: Any) -> dict[str, Any]:
    return trades_update(**changes)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (with_trade(product_id="eth-usd"), "unknown_product"),
        (with_trade(product_id=["ETH-USD"]), "unknown_product"),  # unhashable: no TypeError
        (with_trade(price=1260.01), "bad_price"),  # documented as a string
        (with_trade(price="NaN"), "bad_price"),
        (with_trade(price="1e400"), "bad_price"),
        (with_trade(price="1_000"), "bad_price"),
        (with_trade(price="0"), "bad_price"),
        (with_trade(price="-5"), "bad_price"),
        (with_trade(size="0"), "bad_size"),
        (with_trade(size=None), "bad_size"),
        (with_trade(time="2019-08-14 20:42:27Z"), "bad_time"),
        (with_trade(time="2019-08-14T20:42:27.265+02:00"), "bad_time"),
        (with_trade(time="2019-02-30T20:42:27Z"), "bad_time"),
        (with_trade(time="1970-01-01T00:00:00Z"), "bad_time"),
        (with_trade(time=1565815347), "bad_time"),
        (with_trade(trade_id=12), "bad_trade_id"),
        (with_trade(trade_id="abc"), "bad_trade_id"),
        (ticker(price="0"), "bad_price"),
        (ticker(volume_24_h="-1"), "bad_volume"),
        (ticker(price_percent_chg_24_h="a lot"), "bad_change"),
        ({**fixture("ticker"), "timestamp": "yesterday"}, "bad_time"),
        ({**fixture("ticker"), "events": {"type": "update"}}, "bad_events"),
        ({**fixture("ticker"), "events": [{"type": "update", "tickers": {}}]}, "bad_events"),
        ({**fixture("ticker"), "events": [{"type": "delta", "tickers": []}]}, "bad_event_type"),
        (
            {**trades_update(), "events": [{"type": "update", "trades": [TRADE] * 1001}]},
            "too_many_items",
        ),
        ({**trades_update(), "events": [{"type": "update", "trades": [[1]]}]}, "not_an_object"),
        ({**fixture("heartbeats"), "sequence_num": "3"}, "bad_sequence"),
        ({**fixture("heartbeats"), "sequence_num": -1}, "bad_sequence"),
        ({k: v for k, v in fixture("ticker").items() if k != "sequence_num"}, "bad_sequence"),
        ({**fixture("heartbeats"), "channel": "l2_data"}, "unknown_channel"),
        ([TRADE], "not_an_object"),
        ("trade", "not_an_object"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload: Any, reason: str) -> None:
    assert rejected(payload) == reason


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"channel": "ticker"'])
def test_frames_that_are_not_json_are_rejected(raw: bytes) -> None:
    frame = parse_frame(raw, MARKETS)
    assert (frame.kind, frame.reason) == ("reject", "not_json")


def test_no_message_raises() -> None:
    """Random mutations of every documented payload: ticks, controls or reasons, never raises."""
    rng = random.Random(14)
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x", "1.0", [], {}, 2**63, "9" * 400]
    for _ in range(3000):
        msg = rng.choice([trades_update(), ticker(), fixture("heartbeats")])
        target = msg if rng.random() < 0.3 else next(iter(msg["events"][0].values()), msg)
        if isinstance(target, list):
            target = target[0] if target else msg
        if isinstance(target, str):
            target = msg
        for key in rng.sample(sorted(target), min(len(target), rng.randint(1, 3))):
            if rng.random() < 0.3:
                del target[key]
            else:
                target[key] = rng.choice(values)
        frame = parse(msg)
        assert frame.kind in ("tick", "reject", "ignore", "ack", "error_reply")
        assert all(t.price > 0 for t in frame.ticks)
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        assert parse_frame(raw, MARKETS).kind == "reject"


# -- subscribing ---------------------------------------------------------------------------


def test_subscribe_messages_one_channel_each_heartbeats_first() -> None:
    messages = [orjson.loads(m) for m in subscribe_messages(["BTC-USD", "ETH-USD"])]
    assert messages == [
        {"type": "subscribe", "channel": "heartbeats"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "ticker"},
    ]
    documented = fixture("subscribe_request")
    assert {k for k in documented if k != "jwt"} == set(messages[1])  # no key: no jwt
    assert set(fixture("heartbeats_subscribe_request")) - {"jwt"} == set(messages[0])


def test_the_protocol_subscribes_the_listed_products() -> None:
    settings = CoinbaseSettings(ws_url="ws://h:1/", ticker="ticker_batch")
    proto = CoinbaseProtocol(["bitcoin", "binancecoin", "ethereum"], settings)
    assert proto.products == ["BTC-USD", "ETH-USD"]
    assert proto.unlisted == ["binancecoin"]  # BNB is not on Coinbase in the coin table
    assert proto.url(proto.products) == "ws://h:1"
    assert "not on Coinbase: binancecoin" in proto.describe()
    assert orjson.loads(proto.subscribe_messages(proto.products)[2])["channel"] == "ticker_batch"
    many = CoinbaseProtocol(
        ["bitcoin", "ethereum", "solana"], CoinbaseSettings(max_products_per_connection=2)
    )
    assert many.connections() == [["BTC-USD", "ETH-USD"], ["SOL-USD"]]
    with pytest.raises(ValueError, match="listed on Coinbase"):
        CoinbaseProtocol(["binancecoin"])
    with pytest.raises(ValidationError):
        CoinbaseSettings(messages_per_second=9)  # Coinbase: 8 a second per IP


# -- sequence gaps over the connection -------------------------------------------------------


class _Proto:
    name = "coinbase"
    messages_per_second = 4.0
    connections_per_5_minutes = 300


def numbered(msg: dict[str, Any], seq: int) -> Frame:
    return parse({**msg, "sequence_num": seq})


def test_gaps_are_counted_across_every_channel_and_repeats_dropped() -> None:
    inbox = Inbox(100)
    conn = StreamConnection(
        _Proto(),  # type: ignore[arg-type]
        ["ETH-USD"],
        StreamRules(),
        inbox,
        SlidingLimit(300, 300.0),
    )
    beat, trade = fixture("heartbeats"), trades_update()
    # 0 ack, 1 heartbeat, 2 trade, (3, 4 lost), 5 heartbeat, 5 again (repeat), 6 trade
    frames = [
        numbered(fixture("subscriptions"), 0),
        numbered(beat, 1),
        numbered(trade, 2),
        numbered(beat, 5),
        numbered(trade, 5),
        numbered(trade, 6),
    ]
    for frame in frames:
        assert conn.take(frame) is None
    [batch] = inbox.take(0)
    assert len(batch.ticks) == 2  # the repeated trade is not published
    assert batch.skipped == {"sequence_gap": 2, "sequence_repeat": 1}


def test_open_source_builds_the_coinbase_source_from_the_settings() -> None:
    settings = ProducerSettings(
        source="coinbase",
        coins=["bitcoin", "solana"],
        coinbase=CoinbaseSettings(ws_url="ws://127.0.0.1:9/"),
    )
    source = open_source(settings)
    assert isinstance(source, ExchangeSource)
    assert source.name == "coinbase"
    assert [c.subscriptions for c in source.connections] == [["BTC-USD", "SOL-USD"]]
    assert source.connections[0].protocol.url([]) == "ws://127.0.0.1:9"
    source.close()
