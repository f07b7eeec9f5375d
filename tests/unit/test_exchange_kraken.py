"""Kraken's v2 protocol as pure functions (no server, no sleeps): the documented messages
(tests/fixtures/kraken/) -> Ticks exactly; every malformed message rejected with its reason;
subscribe messages; trade-id gaps; system statuses turning the source degraded."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.config import KrakenSettings, ProducerSettings
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources import open_source
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.kraken import (
    KrakenProtocol,
    markets_for,
    parse_frame,
    subscribe_messages,
)
from cryptopulse.sources.exchanges.pacing import SlidingLimit
from cryptopulse.sources.exchanges.protocol import ACK, IGNORE, Frame
from cryptopulse.sources.exchanges.stream import StreamConnection, StreamRules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kraken"
MARKETS = markets_for(["bitcoin", "ethereum", "solana"])


def fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return payload


def message(name: str, **changes: Any) -> dict[str, Any]:
    """A documented data message, its first item changed (e.g. to a symbol we follow)."""
    msg = fixture(name)
    msg["data"] = [{**msg["data"][0], **changes}, *msg["data"][1:]]
    return msg


def parse(payload: Any) -> Frame | list[Frame]:
    return parse_frame(orjson.dumps(payload), MARKETS)


def one(payload: Any) -> Frame:
    parsed = parse(payload)
    if isinstance(parsed, list):
        assert len(parsed) == 1, parsed
        return parsed[0]
    return parsed


def rejected(payload: Any) -> str:
    frame = one(payload)
    assert frame.kind == "reject" and frame.tick is None, frame
    return frame.reason


# -- the documented messages -> Ticks -----------------------------------------------------


def test_a_trade_update_becomes_a_tick_with_size_quote_and_trade_time() -> None:
    frame = one(message("trade_update", symbol="BTC/USD"))
    assert frame.kind == "tick"
    assert frame.tick == Tick(
        coin="bitcoin",
        symbol="btc",
        price=0.5117,
        size=40.0,
        quote="USD",
        timestamp=datetime(2023, 9, 25, 7, 49, 37, 708706, tzinfo=UTC),
        source="kraken",
    )
    assert (frame.seq_key, frame.seq) == ("BTC/USD", 4665906)  # trade_id numbers the book
    assert tick_from_json(tick_to_json(frame.tick)) == frame.tick


def test_several_trades_in_one_message_are_several_ticks_in_order() -> None:
    msg = fixture("trade_snapshot")
    msg["type"] = "update"
    msg["data"] = [{**item, "symbol": "ETH/USD"} for item in msg["data"]]
    frames = parse(msg)
    assert isinstance(frames, list)
    assert [(f.kind, f.seq) for f in frames] == [("tick", 4665846), ("tick", 4665847)]
    assert [f.tick.size for f in frames if f.tick] == [6423.46326, 1136.19677815]


def test_the_trade_snapshot_is_skipped_and_counted_not_published() -> None:
    """Past trades: published already before a reconnect, or in windows already closed."""
    msg = fixture("trade_snapshot")
    msg["data"] = [{**item, "symbol": "BTC/USD"} for item in msg["data"]]
    assert rejected(msg) == "trade_snapshot"


def test_the_ticker_gives_change_percent_and_the_volume_in_the_quote_currency() -> None:
    frame = one(message("ticker", symbol="SOL/USD"))
    assert frame.kind == "tick" and frame.seq is None
    assert frame.tick == Tick(
        coin="solana",
        symbol="sol",
        price=0.10035,  # last
        change_24h=-0.17,
        volume_24h=997038.98383185 * 0.10148,  # base volume x vwap
        quote="USD",
        timestamp=datetime(2023, 9, 25, 9, 4, 31, 742648, tzinfo=UTC),
        source="kraken",
    )
    assert frame.tick.size is None


def test_control_messages() -> None:
    assert one(fixture("subscribe_ack")) == ACK
    assert one(fixture("heartbeat")) == IGNORE
    assert one(fixture("status")) == IGNORE  # online
    error = one(fixture("subscribe_error"))
    assert error.kind == "error_reply" and "Currency pair not supported XBT/USD" in error.reason
    limited = one({"method": "subscribe", "success": False, "error": "EAPI:Rate limit exceeded"})
    assert limited.kind == "error_reply" and "Rate limit" in limited.reason


@pytest.mark.parametrize("system", ["maintenance", "cancel_only", "post_only"])
def test_a_status_other_than_online_halts(system: str) -> None:
    msg = fixture("status")
    msg["data"][0]["system"] = system
    assert one(msg) == Frame("halt", reason=f"exchange_{system}")


def test_the_documented_symbols_are_not_ours_and_are_rejected() -> None:
    assert rejected(fixture("trade_update")) == "unknown_symbol"  # MATIC/USD
    assert rejected(fixture("ticker")) == "unknown_symbol"  # ALGO/USD


# -- malformed messages: a reason each, never an exception --------------------------------

TRADE = fixture("trade_update")["data"][0] | {"symbol": "BTC/USD"}
TICKER = fixture("ticker")["data"][0] | {"symbol": "BTC/USD"}


def trade(**changes: Any) -> dict[str, Any]:
    return {"channel": "trade", "type": "update", "data": [{**TRADE, **changes}]}


def ticker(**changes: Any) -> dict[str, Any]:
    return {"channel": "ticker", "type": "update", "data": [{**TICKER, **changes}]}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (trade(symbol=["BTC/USD"]), "unknown_symbol"),
        (trade(symbol="XBT/USD"), "unknown_symbol"),  # v1's name
        (trade(price="0.5"), "bad_price"),  # documented as a number
        (trade(price=True), "bad_price"),
        (trade(price=0), "bad_price"),
        (trade(price=-1.5), "bad_price"),
        (trade(price=None), "bad_price"),
        (trade(qty=0), "bad_size"),
        (trade(qty="1"), "bad_size"),
        (trade(timestamp="2023-09-25 07:49:37"), "bad_time"),
        (trade(timestamp="2023-09-25T07:49:37.708706+02:00"), "bad_time"),
        (trade(timestamp="1970-01-01T00:00:00Z"), "bad_time"),
        (trade(timestamp="3001-01-01T00:00:00Z"), "bad_time"),
        (trade(timestamp="2023-13-25T07:49:37Z"), "bad_time"),
        (trade(timestamp=1695628177), "bad_time"),
        (trade(timestamp="2" * 400 + "Z"), "bad_time"),
        (trade(trade_id="4665906"), "bad_trade_id"),
        (trade(trade_id=-1), "bad_trade_id"),
        (trade(trade_id=1.0), "bad_trade_id"),
        (ticker(last=0), "bad_price"),
        (ticker(volume=-1), "bad_volume"),
        (ticker(vwap=None), "bad_vwap"),
        (ticker(change_pct="-0.17"), "bad_change"),
        (ticker(timestamp=None), "bad_time"),
        ({"channel": "trade", "type": "update", "data": [1]}, "not_an_object"),
        ({"channel": "trade", "type": "update", "data": []}, "bad_data"),
        ({"channel": "trade", "type": "update", "data": {"symbol": "BTC/USD"}}, "bad_data"),
        ({"channel": "trade", "type": "delta", "data": [TRADE]}, "bad_type"),
        ({"channel": "status", "type": "update", "data": []}, "bad_status"),
        ({"channel": "status", "type": "update", "data": [{"system": "on fire"}]}, "bad_status"),
        ({"channel": "book", "type": "update", "data": []}, "unknown_channel"),
        ({"hello": "world"}, "unknown_channel"),
        ([TRADE], "not_an_object"),
        ("trade", "not_an_object"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload: Any, reason: str) -> None:
    assert rejected(payload) == reason


def test_one_bad_trade_in_a_message_costs_only_itself() -> None:
    msg = {"channel": "trade", "type": "update", "data": [TRADE, {**TRADE, "price": "x"}]}
    frames = parse(msg)
    assert isinstance(frames, list)
    assert [(f.kind, f.reason) for f in frames] == [("tick", ""), ("reject", "bad_price")]


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"channel": "trade"'])
def test_messages_that_are_not_json_are_rejected(raw: bytes) -> None:
    assert parse_frame(raw, MARKETS) == Frame("reject", reason="not_json")


def test_no_message_raises() -> None:
    rng = random.Random(14)
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x", "1.0", [], {}, 2**63, "9" * 400]
    for _ in range(3000):
        item = dict(rng.choice([TRADE, TICKER]))
        for key in rng.sample(sorted(item), rng.randint(1, 3)):
            if rng.random() < 0.3:
                del item[key]
            else:
                item[key] = rng.choice(values)
        msg: dict[str, Any] = {
            "channel": rng.choice(["trade", "ticker", "status", "heartbeat", 7]),
            "type": rng.choice(["update", "snapshot", None]),
            "data": rng.choice([[item], item, [item, item], None]),
        }
        parsed = parse(msg)
        for frame in parsed if isinstance(parsed, list) else [parsed]:
            assert frame.kind in ("tick", "reject", "ignore", "ack", "error_reply", "halt")
            if frame.tick is not None:
                assert frame.tick.price > 0
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        assert not isinstance(parse_frame(raw, MARKETS), list)


# -- subscribing ---------------------------------------------------------------------------


def test_subscribe_messages_per_channel_in_chunks_with_rising_req_ids() -> None:
    symbols = [f"S{i}/USD" for i in range(250)]
    messages = [orjson.loads(m) for m in subscribe_messages(symbols, 100)]
    assert [m["req_id"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m["params"]["channel"] for m in messages] == ["trade"] * 3 + ["ticker"] * 3
    assert [len(m["params"]["symbol"]) for m in messages] == [100, 100, 50] * 2
    assert [m["params"]["snapshot"] for m in messages] == [False] * 3 + [True] * 3
    documented = fixture("subscribe_request")
    assert messages[0]["method"] == documented["method"]
    assert set(messages[0]["params"]) == set(documented["params"])


def test_the_protocol_subscribes_each_listed_coin() -> None:
    proto = KrakenProtocol(
        ["bitcoin", "binancecoin", "ethereum"], KrakenSettings(ws_url="ws://h:1/")
    )
    assert proto.symbols == ["BTC/USD", "ETH/USD"]
    assert proto.unlisted == ["binancecoin"]  # the table has no Kraken listing for it
    assert proto.url(proto.symbols) == "ws://h:1"
    assert (
        "2 Kraken symbols" in proto.describe() and "not on Kraken: binancecoin" in proto.describe()
    )
    small = KrakenProtocol(
        ["bitcoin", "ethereum", "solana"], KrakenSettings(max_symbols_per_connection=2)
    )
    assert small.connections() == [["BTC/USD", "ETH/USD"], ["SOL/USD"]]
    with pytest.raises(ValueError, match="listed on Kraken"):
        KrakenProtocol(["binancecoin"])
    with pytest.raises(ValidationError):
        KrakenSettings(connections_per_5_minutes=76)  # past Kraken's connection rate


# -- through a connection: gaps and statuses ------------------------------------------------


class _Proto:
    name = "kraken"
    messages_per_second = 4.0
    connections_per_5_minutes = 75


def test_a_connection_counts_trade_id_gaps_and_a_halt_reads_as_a_failure() -> None:
    inbox = Inbox(100)
    conn = StreamConnection(
        _Proto(),  # type: ignore[arg-type]
        ["BTC/USD"],
        StreamRules(),
        inbox,
        SlidingLimit(75, 300.0),
    )
    for n in (10, 11, 15, 15):
        assert conn.take(one(trade(trade_id=n))) is None
    halted = fixture("status")
    halted["data"][0]["system"] = "maintenance"
    assert conn.take(one(halted)) is None  # not the connection's end
    first, failure = inbox.take(0)
    assert len(first.ticks) == 3 and first.error is None
    assert first.skipped == {"sequence_gap": 3, "sequence_repeat": 1}
    assert failure.error == "exchange_maintenance" and failure.ticks == []


def test_open_source_builds_the_kraken_source_from_the_settings() -> None:
    settings = ProducerSettings(
        source="kraken",
        coins=["bitcoin", "solana"],
        kraken=KrakenSettings(ws_url="ws://127.0.0.1:9/v2"),
    )
    source = open_source(settings)
    assert isinstance(source, ExchangeSource)
    assert source.name == "kraken"
    assert [c.subscriptions for c in source.connections] == [["BTC/USD", "SOL/USD"]]
    assert source.connections[0].protocol.url([]) == "ws://127.0.0.1:9/v2"
    source.close()
