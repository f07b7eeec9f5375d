"""Binance's protocol as pure functions, and the stream framework's pure parts (no server, no
sleeps): the documented payloads (tests/fixtures/binance/) -> Ticks exactly; every malformed
frame rejected with its reason; subscribe messages, stream splitting, the 5 messages/s and
connection limits, jittered backoff, sequence gaps, the hand-over to the producer."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.config import BinanceSettings, ProducerSettings
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources import open_source
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.sources.exchanges.binance import (
    SUBSCRIBE_CHUNK,
    BinanceProtocol,
    markets_for,
    parse_frame,
    subscribe_messages,
)
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.pacing import Backoff, SlidingLimit
from cryptopulse.sources.exchanges.protocol import ACK, SHUTDOWN, Frame, Sequences
from cryptopulse.sources.exchanges.stream import StreamConnection, StreamRules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
MARKETS = markets_for(["bitcoin", "ethereum", "solana"])
AT = datetime.fromtimestamp(1672515782.136, UTC)


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    payload.update(changes)
    return payload


def parse(payload: Any) -> Frame:
    return parse_frame(orjson.dumps(payload), MARKETS)


def rejected(payload: Any) -> str:
    frame = parse(payload)
    assert frame.kind == "reject" and frame.tick is None, frame
    return frame.reason


# -- the documented payloads -> Ticks ------------------------------------------------------


def test_a_trade_becomes_a_tick_with_its_size_quote_and_trade_time() -> None:
    frame = parse(fixture("trade", s="BTCUSDT"))
    assert frame.kind == "tick"
    assert frame.tick == Tick(
        coin="bitcoin",
        symbol="btc",
        price=0.001,
        size=100.0,
        quote="USDT",
        timestamp=AT,
        source="binance",
    )
    assert (frame.seq_key, frame.seq) == ("BTCUSDT", 12345)  # the trade id `t`
    # On the wire the trade's figures are all there, and read back the same.
    assert tick_from_json(tick_to_json(frame.tick)) == frame.tick
    assert orjson.loads(tick_to_json(frame.tick))["quote"] == "USDT"


def test_an_aggregate_trade_is_numbered_by_its_aggregate_id() -> None:
    frame = parse(fixture("aggTrade", s="ETHUSDT"))
    assert frame.tick is not None
    assert (frame.tick.coin, frame.tick.price, frame.tick.size) == ("ethereum", 0.001, 100.0)
    assert (frame.seq_key, frame.seq) == ("ETHUSDT", 12345)  # `a`, not the first trade id `f`


def test_a_combined_stream_frame_is_unwrapped() -> None:
    wrapped = {"stream": "btcusdt@trade", "data": fixture("trade", s="BTCUSDT")}
    assert parse(wrapped) == parse(fixture("trade", s="BTCUSDT"))


def test_the_mini_ticker_gives_the_24h_change_from_open_to_close_and_the_quote_volume() -> None:
    frame = parse(fixture("miniTicker", s="SOLUSDT"))
    assert frame.kind == "tick" and frame.seq is None
    assert frame.tick == Tick(
        coin="solana",
        symbol="sol",
        price=0.0025,
        change_24h=(0.0025 - 0.0010) / 0.0010 * 100,
        volume_24h=18.0,  # `q`: in the quote currency, as CoinGecko's volume is in USD
        quote="USDT",
        timestamp=AT,  # the event time `E`
        source="binance",
    )
    assert frame.tick.size is None  # a quote, not a trade


def test_the_full_ticker_gives_the_published_change_percent() -> None:
    frame = parse(fixture("ticker", s="BTCUSDT"))
    assert frame.tick is not None
    assert (frame.tick.price, frame.tick.change_24h, frame.tick.volume_24h) == (0.0025, 250.0, 18.0)
    assert frame.tick.size is None and frame.tick.quote == "USDT"


def test_control_frames() -> None:
    assert parse(fixture("subscribe_response")) == ACK
    assert parse({"result": ["btcusdt@trade"], "id": 3}) == ACK  # LIST_SUBSCRIPTIONS
    assert parse(fixture("server_shutdown")) == SHUTDOWN
    assert parse(fixture("server_shutdown_event")) == SHUTDOWN
    assert parse({"stream": "x", "data": fixture("server_shutdown")}) == SHUTDOWN
    error = parse(fixture("error_response"))
    assert error.kind == "error_reply" and "request ID must be an unsigned integer" in error.reason


def test_the_documented_symbol_is_not_ours_and_is_rejected() -> None:
    """The docs' examples trade BNBBTC: priced in BTC, not a market in the coin table."""
    for name in ("trade", "aggTrade", "miniTicker", "ticker"):
        assert rejected(fixture(name)) == "unknown_symbol"


# -- malformed frames: a reason each, never an exception -----------------------------------

TRADE = fixture("trade", s="BTCUSDT")
MINI = fixture("miniTicker", s="BTCUSDT")
TICKER = fixture("ticker", s="BTCUSDT")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**TRADE, "s": ["BTCUSDT"]}, "unknown_symbol"),  # unhashable: no TypeError
        ({**TRADE, "s": "btcusdt"}, "unknown_symbol"),
        ({k: v for k, v in TRADE.items() if k != "p"}, "bad_price"),
        ({**TRADE, "p": 97000.5}, "bad_price"),  # documented as a string
        ({**TRADE, "p": "NaN"}, "bad_price"),
        ({**TRADE, "p": "inf"}, "bad_price"),
        ({**TRADE, "p": "1e400"}, "bad_price"),
        ({**TRADE, "p": "1_000"}, "bad_price"),
        ({**TRADE, "p": " 1"}, "bad_price"),
        ({**TRADE, "p": "0.00000000"}, "bad_price"),
        ({**TRADE, "p": "-5"}, "bad_price"),
        ({**TRADE, "p": "9" * 31}, "bad_price"),
        ({**TRADE, "q": "0"}, "bad_size"),
        ({**TRADE, "q": None}, "bad_size"),
        ({**TRADE, "q": "-1.5"}, "bad_size"),
        ({**TRADE, "T": "1672515782136"}, "bad_time"),
        ({**TRADE, "T": 1672515782.5}, "bad_time"),
        ({**TRADE, "T": True}, "bad_time"),
        ({**TRADE, "T": 12}, "bad_time"),  # 1970
        ({**TRADE, "T": 10**17}, "bad_time"),  # past the year 3000
        ({**TRADE, "t": "12345"}, "bad_trade_id"),
        ({**TRADE, "t": -1}, "bad_trade_id"),
        ({**MINI, "c": "0"}, "bad_price"),
        ({**MINI, "q": "-1"}, "bad_volume"),
        ({**MINI, "o": "0"}, "bad_open"),
        ({**MINI, "E": None}, "bad_time"),
        ({**TICKER, "P": "a lot"}, "bad_change"),
        ({**TRADE, "e": "depthUpdate"}, "unknown_event"),
        ({"hello": "world"}, "unknown_event"),
        ([TRADE], "not_an_object"),
        ("trade", "not_an_object"),
        ({"stream": "btcusdt@trade", "data": [TRADE]}, "not_an_object"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(payload: Any, reason: str) -> None:
    assert rejected(payload) == reason


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"null]", b'{"e": "trade"'])
def test_frames_that_are_not_json_are_rejected(raw: bytes) -> None:
    frame = parse_frame(raw, MARKETS)
    assert (frame.kind, frame.reason) == ("reject", "not_json")


def test_no_frame_raises() -> None:
    """Random mutations of every documented payload: each is a tick, a control or a reason."""
    rng = random.Random(14)
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x", "1.0", [], {}, 2**63, "9" * 400]
    for _ in range(3000):
        payload = dict(rng.choice([TRADE, MINI, TICKER, fixture("aggTrade", s="SOLUSDT")]))
        for key in rng.sample(sorted(payload), rng.randint(1, 3)):
            if rng.random() < 0.3:
                del payload[key]
            else:
                payload[key] = rng.choice(values)
        frame = parse(payload)
        assert frame.kind in ("tick", "reject", "ignore", "ack", "error_reply", "shutdown")
        if frame.kind == "tick":
            assert frame.tick is not None and frame.tick.price > 0
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        assert parse_frame(raw, MARKETS).kind == "reject"
    huge = b'{"e":"trade","s":"BTCUSDT","p":"1","q":"1","T":' + b"9" * 40 + b',"t":1}'
    assert parse_frame(huge, MARKETS).kind == "reject"  # an integer past 64 bits


# -- subscribing within Binance's limits ---------------------------------------------------


def test_subscribe_messages_carry_the_streams_in_chunks_with_rising_ids() -> None:
    streams = [f"s{i}usdt@trade" for i in range(450)]
    messages = [orjson.loads(m) for m in subscribe_messages(streams)]
    assert [m["id"] for m in messages] == [1, 2, 3]
    assert [len(m["params"]) for m in messages] == [SUBSCRIBE_CHUNK, SUBSCRIBE_CHUNK, 50]
    assert [p for m in messages for p in m["params"]] == streams
    documented = fixture("subscribe_request")
    assert {k: type(v) for k, v in messages[0].items()} == {
        k: type(v) for k, v in documented.items()
    }
    assert messages[0]["method"] == documented["method"]


def test_the_protocol_subscribes_trades_and_ticker_per_listed_coin() -> None:
    proto = BinanceProtocol(["bitcoin", "tether", "ethereum"], BinanceSettings(ws_url="ws://h:1/"))
    assert proto.streams == [
        "btcusdt@trade",
        "btcusdt@miniTicker",
        "ethusdt@trade",
        "ethusdt@miniTicker",
    ]
    assert proto.unlisted == ["tether"]
    assert proto.url(proto.streams) == "ws://h:1/stream"  # combined: each frame names its stream
    assert "not on Binance: tether" in proto.describe()
    agg = BinanceProtocol(["bitcoin"], BinanceSettings(trades="aggTrade", ticker="ticker"))
    assert agg.streams == ["btcusdt@aggTrade", "btcusdt@ticker"]


def test_more_streams_than_a_connection_may_carry_open_more_connections() -> None:
    settings = BinanceSettings(max_streams_per_connection=3)
    proto = BinanceProtocol(["bitcoin", "ethereum", "solana"], settings)
    groups = proto.connections()
    assert [len(g) for g in groups] == [3, 3]
    assert [s for g in groups for s in g] == proto.streams
    assert len(BinanceProtocol(["bitcoin"]).connections()) == 1
    with pytest.raises(ValidationError):
        BinanceSettings(max_streams_per_connection=1025)  # Binance's limit is 1,024
    with pytest.raises(ValidationError):
        BinanceSettings(messages_per_second=6)  # and 5 messages a second
    with pytest.raises(ValidationError):
        BinanceSettings(messages_per_second=0.5)  # whole messages per second


def test_no_listed_coin_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="listed on Binance"):
        BinanceProtocol(["tether", "no-such-coin"])


def test_sends_stay_within_the_messages_per_second_limit() -> None:
    """Sending 20 messages as fast as the limit allows, on a fake clock."""
    limit = SlidingLimit(4, 1.0)
    now, sent = 100.0, []
    for _ in range(20):
        now += limit.wait(now)
        limit.record(now)
        sent.append(now)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u < t + 1.0) <= 4  # any 1 s window
    assert sent[-1] - sent[0] == pytest.approx(4.0)  # and no slower than that
    # Binance's 300 connection attempts per 5 minutes, the same way.
    budget = SlidingLimit(300, 300.0)
    for _ in range(300):
        assert budget.wait(0.0) == 0.0
        budget.record(0.0)
    assert budget.wait(10.0) == pytest.approx(290.0)
    assert budget.wait(300.0) == 0.0


# -- reconnect pacing ----------------------------------------------------------------------


def test_backoff_doubles_with_jitter_between_half_and_all_of_its_ceiling() -> None:
    low = Backoff(1.0, 60.0, rand=lambda: 0.0)
    high = Backoff(1.0, 60.0, rand=lambda: 1.0)
    assert [low.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [high.next() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    rng = random.Random(7)
    jittered = Backoff(0.5, 20.0, rand=rng.random)
    delays = []
    for _ in range(200):
        ceiling = jittered.ceiling()
        delay = jittered.next()
        assert ceiling / 2 <= delay <= ceiling
        delays.append(delay)
    assert len({round(d, 6) for d in delays[-50:]}) > 40  # jittered, not one fixed delay
    jittered.reset()
    assert jittered.ceiling() == 0.5
    many = Backoff(1.0, 60.0, rand=lambda: 0.5)
    for _ in range(10_000):  # no overflow after a long outage
        assert many.next() <= 60.0


# -- sequence gaps and the hand-over -------------------------------------------------------


def test_sequences_count_gaps_and_repeats_per_key() -> None:
    seq = Sequences()
    assert [seq.see("BTCUSDT", n) for n in (10, 11, 14, 14, 13, 15)] == [0, 0, 2, -1, -1, 0]
    assert seq.see("ETHUSDT", 3) == 0  # keys are apart
    seq.reset()  # a new connection: what was missed meanwhile is not a gap
    assert seq.see("BTCUSDT", 100) == 0


class _Proto:
    name = "binance"
    messages_per_second = 4.0
    connections_per_5_minutes = 300


def trade(trade_id: int) -> Frame:
    return parse(fixture("trade", s="BTCUSDT", t=trade_id))


def test_a_connection_counts_gaps_drops_repeats_and_ends_on_a_shutdown_notice() -> None:
    inbox = Inbox(100)
    conn = StreamConnection(
        _Proto(),  # type: ignore[arg-type]
        ["btcusdt@trade"],
        StreamRules(),
        inbox,
        SlidingLimit(300, 300.0),
    )
    for n in (1, 2, 5, 5, 6):
        assert conn.take(trade(n)) is None
    assert conn.take(parse({"e": "trade"})) is None
    assert conn.take(ACK) is None
    assert conn.take(SHUTDOWN) == "server_shutdown"
    [batch] = inbox.take(0)
    assert [t.timestamp for t in batch.ticks] == [AT] * 4  # 1, 2, 5, 6: the repeat is dropped
    assert batch.skipped == {"sequence_gap": 2, "sequence_repeat": 1, "unknown_symbol": 1}
    assert batch.error is None


def test_the_inbox_keeps_order_bounds_ticks_and_never_reports_skips_as_good() -> None:
    tick = parse(fixture("trade", s="BTCUSDT")).tick
    assert tick is not None
    inbox = Inbox(max_ticks=3)
    inbox.count("not_json")
    assert inbox.take(0) == []  # skips alone wait: a batch without an error reads as good
    for _ in range(5):
        inbox.tick(tick)
    inbox.failure("connection_lost")
    inbox.count("bad_price")
    inbox.failure("connect_failed")
    first, lost, refused = inbox.take(0)
    assert (len(first.ticks), first.error) == (3, None)
    assert first.skipped == {"not_json": 1, "queue_full": 2}  # nothing dropped unnoticed
    assert (lost.ticks, lost.error) == ([], "connection_lost")
    assert (refused.error, refused.skipped) == ("connect_failed", {"bad_price": 1})
    inbox.tick(tick)  # room again once taken
    [again] = inbox.take(0)
    assert (len(again.ticks), again.error, again.skipped) == (1, None, {})


# -- settings and opening the source ---------------------------------------------------------


def test_open_source_builds_the_binance_source_from_the_settings() -> None:
    settings = ProducerSettings(
        source="binance",
        coins=["bitcoin", "solana"],
        binance=BinanceSettings(ws_url="ws://127.0.0.1:9/"),
    )
    source = open_source(settings)
    assert isinstance(source, ExchangeSource)
    assert source.name == "binance"
    assert [c.subscriptions for c in source.connections] == [
        ["btcusdt@trade", "btcusdt@miniTicker", "solusdt@trade", "solusdt@miniTicker"]
    ]
    assert source.connections[0].protocol.url([]) == "ws://127.0.0.1:9/stream"
    assert source.rules.silence_timeout == settings.exchange.silence_timeout
    source.close()  # never started: nothing to wait for


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "stream.binance.com:9443", "wss://"])
def test_the_websocket_url_must_be_one(url: str) -> None:
    with pytest.raises(ValidationError, match="WebSocket URL"):
        BinanceSettings(ws_url=url)
