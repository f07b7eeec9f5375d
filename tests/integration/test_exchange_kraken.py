"""The Kraken source end to end: a fake Kraken over real WebSockets -> the producer -> real Kafka.

Each test runs the real source (its asyncio client in a thread) and the real producer into a
uuid-named topic of the session broker, drives the fake (drops, silence, system statuses,
malformed frames, skipped trade ids) and checks what reached the topic, what was counted and
the statuses the producer published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopulse.config import KrakenSettings
from cryptopulse.schema import Tick, status_from_json, tick_to_json
from cryptopulse.sources.exchanges import StreamRules
from cryptopulse.sources.exchanges.kraken import KrakenProtocol, subscribe_messages
from tests.exchange_run import Run, Runs, produce, records, silent_stream_is_reconnected
from tests.fakes.kraken import FakeKraken
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

COINS = ["bitcoin", "ethereum", "solana"]
FAST = StreamRules(connect_timeout=2.0, silence_timeout=5.0, backoff_initial=0.2, backoff_max=1.0)
COIN_OF = {
    "BTC/USD": ("bitcoin", "btc"),
    "ETH/USD": ("ethereum", "eth"),
    "SOL/USD": ("solana", "sol"),
}


def expected_trade(item: dict[str, Any]) -> dict[str, Any]:
    """The Tick (as JSON) a correct source publishes for one of the fake's trades."""
    coin, symbol = COIN_OF[item["symbol"]]
    tick = Tick(
        coin=coin,
        symbol=symbol,
        price=item["price"],
        size=item["qty"],
        quote="USD",
        timestamp=datetime.fromisoformat(item["timestamp"]),
        source="kraken",
    )
    value: dict[str, Any] = orjson.loads(tick_to_json(tick))
    return value


@pytest.fixture
def fake() -> Iterator[FakeKraken]:
    with FakeKraken(trade_interval=0.05, ticker_interval=0.5) as server:
        yield server


@pytest.fixture
def start(
    fake: FakeKraken, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> Iterator[Callable[..., Run]]:
    runs = Runs(kafka_bootstrap, new_topic)

    def run(rules: StreamRules = FAST, **settings: Any) -> Run:
        return runs.start(KrakenProtocol(COINS, KrakenSettings(ws_url=fake.url, **settings)), rules)

    yield run
    runs.stop_all()


def test_trades_and_tickers_arrive_with_size_and_quote(fake: FakeKraken, start: Any) -> None:
    run = start()
    wait_for(lambda: run.sent >= 60, 20, "60 ticks published")
    run.stop()
    published = records(run)
    trades = [r for r in published if "size" in r]
    tickers = [r for r in published if "size" not in r]
    sent = [expected_trade(t) for t in fake.trades_sent]
    assert len(trades) >= 40
    assert all(t in sent for t in trades)  # exactly the fake's trades, size and quote included
    assert len({orjson.dumps(t) for t in trades}) == len(trades)  # none twice
    for coin in COINS:
        ours = [t["timestamp"] for t in trades if t["coin"] == coin]
        assert ours == sorted(ours)
    assert {t["coin"] for t in tickers} == set(COINS)  # the ticker snapshots and updates
    assert all(t["quote"] == "USD" and t["change_24h"] is not None for t in tickers)
    assert all(t["volume_24h"] > 0 for t in tickers)
    assert run.states == ["connecting", "live"]
    assert run.producer.metrics.skipped == {}  # no trade snapshot asked for, none came
    [conn] = fake.connections
    assert [m for _, m in conn.requests] == [
        orjson.loads(m) for m in subscribe_messages(run.source.connections[0].subscriptions, 100)
    ]
    assert sorted(conn.trades) == sorted(conn.tickers) == ["BTC/USD", "ETH/USD", "SOL/USD"]


def test_a_dropped_connection_reconnects_resubscribes_and_the_status_recovers(
    fake: FakeKraken, start: Any
) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    fake.drop()
    wait_for(
        lambda: len(fake.connections) == 2 and len(fake.connections[1].tickers) == 3,
        10,
        "a resubscribe",
    )
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the reconnect")
    run.stop()
    first, second = fake.connections
    assert second.trades == first.trades and second.tickers == first.tickers
    assert run.states == ["connecting", "live", "degraded", "live"]
    degraded = next(s for s in run.statuses if s.state == "degraded")
    assert "connection lost" in degraded.detail and degraded.last_good is not None
    assert run.producer.metrics.failed_cycles == {"connection_lost": 1}
    trades = [r for r in records(run) if "size" in r]
    assert len({orjson.dumps(t) for t in trades}) == len(trades)


def test_a_silent_stream_is_reconnected_by_the_watchdog(fake: FakeKraken, start: Any) -> None:
    silent_stream_is_reconnected(fake, start)


def test_maintenance_turns_the_source_degraded_heartbeats_keep_it_connected(
    fake: FakeKraken, start: Any
) -> None:
    """No trades while Kraken is not online; its heartbeats feed the watchdog meanwhile."""
    rules = StreamRules(connect_timeout=2.0, silence_timeout=1.5, backoff_initial=0.2)
    run = start(rules)
    wait_for(run.sent_more(0), 10, "ticks")
    beats = fake.heartbeats_sent
    fake.set_system("maintenance")
    wait_for(lambda: "degraded" in run.states, 10, "degraded")
    wait_for(lambda: fake.heartbeats_sent >= beats + 3, 10, "3 s of heartbeats, past the watchdog")
    assert run.states == ["connecting", "live", "degraded"]
    fake.set_system("online")
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks once online")
    run.stop()
    assert run.states == ["connecting", "live", "degraded", "live"]
    degraded = next(s for s in run.statuses if s.state == "degraded")
    assert "exchange maintenance" in degraded.detail
    assert len(fake.connections) == 1  # never reconnected: heartbeats are traffic
    assert run.producer.metrics.failed_cycles == {"exchange_maintenance": 1}


def test_malformed_frames_are_counted_and_never_fatal(fake: FakeKraken, start: Any) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    bad_trade = {
        "symbol": "BTC/USD",
        "price": "NaN",
        "qty": 1.0,
        "trade_id": 1,
        "timestamp": "2026-11-26T12:00:00.000000Z",
    }
    fake.send_raw(
        "{not json",
        "[1, 2]",
        orjson.dumps({"channel": "trade", "type": "update", "data": [bad_trade]}),
        orjson.dumps({"channel": "trade", "type": "snapshot", "data": [bad_trade]}),
        orjson.dumps({"channel": "book", "type": "update", "data": []}),
        orjson.dumps({"method": "subscribe", "success": False, "error": "EGeneral:Invalid"}),
        "x" * 100_000,  # over max_frame_bytes (64 KiB): that connection closes, counted
    )
    wait_for(
        lambda: len(fake.connections) >= 2 and len(fake.connections[-1].tickers) == 3,
        10,
        "reconnect",
    )
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the bad frames")
    run.stop()
    assert run.producer.metrics.skipped == {
        "not_json": 1,
        "not_an_object": 1,
        "bad_price": 1,
        "trade_snapshot": 1,
        "unknown_channel": 1,
        "error_reply": 1,
        "frame_too_large": 1,
    }
    assert run.producer.metrics.failed_cycles == {"frame_too_large": 1}
    assert all(r["price"] > 0 for r in records(run))


def test_a_skipped_trade_id_is_counted_as_a_gap(fake: FakeKraken, start: Any) -> None:
    run = start()
    wait_for(lambda: len(fake.trades_of("BTC/USD")) >= 3, 10, "trades")
    fake.skip("BTC/USD", 5)
    wait_for(lambda: run.producer.metrics.skipped.get("sequence_gap"), 10, "the gap counted")
    run.stop()
    assert run.producer.metrics.skipped == {"sequence_gap": 5}


def test_symbols_past_the_per_connection_bound_open_more_connections(
    fake: FakeKraken, start: Any
) -> None:
    run = start(max_symbols_per_connection=1)
    wait_for(lambda: len(fake.open_connections) == 3, 10, "3 connections")
    wait_for(lambda: all(len(c.tickers) == 1 for c in fake.open_connections), 10, "subscribed")
    wait_for(lambda: run.sent >= 30, 10, "ticks")
    run.stop()
    assert sorted(c.trades[0] for c in fake.connections) == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert {r["coin"] for r in records(run)} == set(COINS)


def test_cryptopulse_produce_source_kraken_publishes_to_kafka(
    fake: FakeKraken, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """As a user runs it: `cryptopulse produce --source kraken`, the URL from the environment."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    done = produce("kraken", fake.url, kafka_bootstrap, topic, status_topic, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 Kraken symbols" in done.stdout + done.stderr
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert len(published) == 40
    assert {r["coin"] for r in published} == {"bitcoin", "ethereum"}
    assert all(r["source"] == "kraken" and r["quote"] == "USD" for r in published)
    assert any("size" in r for r in published)
    states = [status_from_json(v).state for _, v in read_to_end(kafka_bootstrap, status_topic)]
    assert states[0] == "connecting" and "live" in states
    assert [(c.trades, c.tickers) for c in fake.connections] == [
        (["BTC/USD", "ETH/USD"], ["BTC/USD", "ETH/USD"])
    ]
