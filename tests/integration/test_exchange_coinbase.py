"""The Coinbase source end to end: a fake Coinbase over real WebSockets -> the producer -> real Kafka.

Each test runs the real source (its asyncio client in a thread) and the real producer into a
uuid-named topic of the session broker, drives the fake (drops, silence, skipped sequence
numbers, malformed frames, the 5 s subscribe rule) and checks what reached the topic, what was
counted and the statuses the producer published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopulse.config import CoinbaseSettings
from cryptopulse.schema import Tick, status_from_json, tick_to_json
from cryptopulse.sources.exchanges import ExchangeSource, StreamRules
from cryptopulse.sources.exchanges.coinbase import CoinbaseProtocol, subscribe_messages
from tests.exchange_run import Run, Runs, produce, records, silent_stream_is_reconnected
from tests.fakes.coinbase import FakeCoinbase
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

COINS = ["bitcoin", "ethereum", "solana"]
FAST = StreamRules(connect_timeout=2.0, silence_timeout=5.0, backoff_initial=0.2, backoff_max=1.0)
PRODUCTS = {
    "BTC-USD": ("bitcoin", "btc"),
    "ETH-USD": ("ethereum", "eth"),
    "SOL-USD": ("solana", "sol"),
}


def expected_trade(trade: dict[str, Any]) -> dict[str, Any]:
    """The Tick (as JSON) a correct source publishes for one of the fake's trades."""
    coin, symbol = PRODUCTS[trade["product_id"]]
    tick = Tick(
        coin=coin,
        symbol=symbol,
        price=float(trade["price"]),
        size=float(trade["size"]),
        quote="USD",
        timestamp=datetime.fromisoformat(trade["time"][:26] + "+00:00"),
        source="coinbase",
    )
    value: dict[str, Any] = orjson.loads(tick_to_json(tick))
    return value


@pytest.fixture
def fake() -> Iterator[FakeCoinbase]:
    with FakeCoinbase(trade_interval=0.05, ticker_interval=0.5, heartbeat_interval=0.5) as server:
        yield server


@pytest.fixture
def start(
    fake: FakeCoinbase, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> Iterator[Callable[..., Run]]:
    runs = Runs(kafka_bootstrap, new_topic)

    def run(
        rules: StreamRules = FAST, protocol: CoinbaseProtocol | None = None, **settings: Any
    ) -> Run:
        proto = protocol or CoinbaseProtocol(COINS, CoinbaseSettings(ws_url=fake.url, **settings))
        return runs.start(proto, rules)

    yield run
    runs.stop_all()


def test_trades_and_tickers_arrive_with_size_and_quote(fake: FakeCoinbase, start: Any) -> None:
    run = start()
    wait_for(lambda: run.sent >= 60, 20, "60 ticks published")
    run.stop()
    published = records(run)
    trades = [r for r in published if "size" in r]
    tickers = [r for r in published if "size" not in r]
    sent = [expected_trade(t) for t in fake.trades_sent]
    assert len(trades) >= 40
    assert all(t in sent for t in trades)  # exactly the fake's updates: no snapshot trade
    assert len({orjson.dumps(t) for t in trades}) == len(trades)  # none twice
    for coin in COINS:
        ours = [t["timestamp"] for t in trades if t["coin"] == coin]
        assert ours == sorted(ours)
    assert {t["coin"] for t in tickers} == set(COINS)
    assert all(t["quote"] == "USD" and t["change_24h"] is not None for t in tickers)
    assert all(t["volume_24h"] > 0 for t in tickers)
    assert run.states == ["connecting", "live"]
    assert run.producer.metrics.skipped == {}  # heartbeats and acks numbered in: no gap
    [conn] = fake.connections
    assert conn.close_reason == ""
    assert conn.subscribed_at is not None and conn.subscribed_at - conn.opened < 1.0  # < 5 s
    assert [m for _, m in conn.received] == [
        orjson.loads(m) for m in subscribe_messages(run.source.connections[0].subscriptions)
    ]
    assert conn.channels == {
        "heartbeats": [],
        "market_trades": ["BTC-USD", "ETH-USD", "SOL-USD"],
        "ticker": ["BTC-USD", "ETH-USD", "SOL-USD"],
    }


def test_a_dropped_connection_reconnects_resubscribes_and_publishes_no_trade_twice(
    fake: FakeCoinbase, start: Any
) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    fake.drop()
    wait_for(
        lambda: len(fake.connections) == 2 and len(fake.connections[1].channels) == 3,
        10,
        "a resubscribe",
    )
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the reconnect")
    run.stop()
    first, second = fake.connections
    assert second.channels == first.channels
    assert run.states == ["connecting", "live", "degraded", "live"]
    assert run.producer.metrics.failed_cycles == {"connection_lost": 1}
    trades = [r for r in records(run) if "size" in r]
    assert len({orjson.dumps(t) for t in trades}) == len(trades)  # the new snapshot not again
    assert all(t in [expected_trade(s) for s in fake.trades_sent] for t in trades)


def test_a_silent_stream_is_reconnected_by_the_watchdog(fake: FakeCoinbase, start: Any) -> None:
    silent_stream_is_reconnected(fake, start)


def test_a_skipped_sequence_number_is_counted_as_a_gap(fake: FakeCoinbase, start: Any) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    fake.skip(4)
    wait_for(lambda: run.producer.metrics.skipped.get("sequence_gap"), 10, "the gap counted")
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the gap")
    run.stop()
    assert run.producer.metrics.skipped == {"sequence_gap": 4}
    assert run.states == ["connecting", "live"]  # a gap is counted, not a failure


def test_malformed_frames_are_counted_and_never_fatal(fake: FakeCoinbase, start: Any) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    fake.send_raw(
        "{not json",
        "[1, 2]",
        orjson.dumps({"channel": "ticker", "events": []}),  # no sequence_num
        orjson.dumps({"type": "error", "message": "failure to subscribe"}),
        "x" * 100_000,  # over max_frame_bytes (64 KiB): that connection closes, counted
    )
    wait_for(
        lambda: len(fake.connections) >= 2 and len(fake.connections[-1].channels) == 3,
        10,
        "reconnect",
    )
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the bad frames")
    run.stop()
    assert run.producer.metrics.skipped == {
        "not_json": 1,
        "not_an_object": 1,
        "bad_sequence": 1,
        "error_reply": 1,
        "frame_too_large": 1,
    }
    assert run.producer.metrics.failed_cycles == {"frame_too_large": 1}
    assert all(r["price"] > 0 for r in records(run))


class NeverSubscribes(CoinbaseProtocol):
    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        return []


def test_coinbase_closes_a_connection_without_a_subscribe_within_the_deadline() -> None:
    """The fake keeps Coinbase's rule (5 s; 0.5 s here): our source subscribes at once, a
    client that does not is cut, and the source reconnects."""
    with FakeCoinbase(subscribe_deadline=0.5) as server:
        lazy = NeverSubscribes(COINS, CoinbaseSettings(ws_url=server.url))
        source = ExchangeSource(lazy, FAST, flush_interval=0.1)
        source.start()
        try:
            wait_for(lambda: len(server.connections) >= 2, 10, "cut and reconnected")
        finally:
            source.close()
        first = server.connections[0]
        assert first.close_reason == "no subscribe within the deadline"
        assert first.closed is not None and 0.4 <= first.closed - first.opened < 2.0
        assert source.connections[0].stats.endings.get("connection_lost", 0) >= 1


def test_cryptopulse_produce_source_coinbase_publishes_to_kafka(
    fake: FakeCoinbase, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """As a user runs it: `cryptopulse produce --source coinbase`, the URL from the environment."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    done = produce("coinbase", fake.url, kafka_bootstrap, topic, status_topic, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 Coinbase products" in done.stdout + done.stderr
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert len(published) == 40
    assert {r["coin"] for r in published} == {"bitcoin", "ethereum"}
    assert all(r["source"] == "coinbase" and r["quote"] == "USD" for r in published)
    assert any("size" in r for r in published)
    states = [status_from_json(v).state for _, v in read_to_end(kafka_bootstrap, status_topic)]
    assert states[0] == "connecting" and "live" in states
    assert [c.channels for c in fake.connections] == [
        {
            "heartbeats": [],
            "market_trades": ["BTC-USD", "ETH-USD"],
            "ticker": ["BTC-USD", "ETH-USD"],
        }
    ]
