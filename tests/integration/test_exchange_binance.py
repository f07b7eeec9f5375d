"""The Binance source end to end: a fake Binance over real WebSockets -> the producer -> real Kafka.

Each test runs the real source (its asyncio client in a thread) and the real producer into a
uuid-named topic of the session broker, drives the fake (drops, silence, shutdown notices,
malformed frames, refused handshakes, skipped trade ids) and checks what reached the topic, what
was counted and the statuses the producer published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopulse.config import BinanceSettings
from cryptopulse.schema import Tick, status_from_json, tick_to_json
from cryptopulse.sources.exchanges import StreamRules
from cryptopulse.sources.exchanges.binance import BinanceProtocol, subscribe_messages
from tests.exchange_run import Run, Runs, produce, records, silent_stream_is_reconnected
from tests.fakes.binance import FakeBinance
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

COINS = ["bitcoin", "ethereum", "solana"]
FAST = StreamRules(connect_timeout=2.0, silence_timeout=5.0, backoff_initial=0.2, backoff_max=1.0)
QUOTE = {
    "BTCUSDT": ("bitcoin", "btc"),
    "ETHUSDT": ("ethereum", "eth"),
    "SOLUSDT": ("solana", "sol"),
}


def expected_trade(payload: dict[str, Any]) -> dict[str, Any]:
    """The Tick (as JSON) a correct source publishes for one of the fake's trades."""
    coin, symbol = QUOTE[payload["s"]]
    tick = Tick(
        coin=coin,
        symbol=symbol,
        price=float(payload["p"]),
        size=float(payload["q"]),
        quote="USDT",
        timestamp=datetime.fromtimestamp(payload["T"] / 1000, UTC),
        source="binance",
    )
    value: dict[str, Any] = orjson.loads(tick_to_json(tick))
    return value


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(trade_interval=0.05, ticker_interval=0.5) as server:
        yield server


@pytest.fixture
def start(
    fake: FakeBinance, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> Iterator[Callable[..., Run]]:
    runs = Runs(kafka_bootstrap, new_topic)

    def run(
        rules: StreamRules = FAST,
        protocol: BinanceProtocol | None = None,
        rand: Callable[[], float] | None = None,
        **settings: Any,
    ) -> Run:
        proto = protocol or BinanceProtocol(COINS, BinanceSettings(ws_url=fake.url, **settings))
        return runs.start(proto, rules, **({"rand": rand} if rand is not None else {}))

    yield run
    runs.stop_all()


def test_trades_and_tickers_arrive_with_size_and_quote(fake: FakeBinance, start: Any) -> None:
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
    for coin in COINS:  # each coin's trades in the order they were made
        ours = [t["timestamp"] for t in trades if t["coin"] == coin]
        assert ours == sorted(ours)
    assert {t["coin"] for t in tickers} == set(COINS)
    assert all(t["quote"] == "USDT" and t["change_24h"] is not None for t in tickers)
    assert all(t["volume_24h"] > 0 for t in tickers)
    assert run.states == ["connecting", "live"]
    assert run.producer.metrics.skipped == {}
    [conn] = fake.connections
    assert conn.path == "/stream"
    assert [m for _, m in conn.subscribes] == [
        orjson.loads(m) for m in subscribe_messages(run.source.connections[0].subscriptions)
    ]


def test_a_dropped_connection_reconnects_resubscribes_and_the_status_recovers(
    fake: FakeBinance, start: Any
) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    fake.drop()
    wait_for(
        lambda: len(fake.connections) == 2 and fake.connections[1].streams, 10, "a resubscribe"
    )
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the reconnect")
    run.stop()
    first, second = fake.connections
    assert second.streams == first.streams == run.source.connections[0].subscriptions
    assert run.states == ["connecting", "live", "degraded", "live"]
    degraded = next(s for s in run.statuses if s.state == "degraded")
    assert "connection lost" in degraded.detail and degraded.last_good is not None
    assert run.producer.metrics.failed_cycles == {"connection_lost": 1}
    published = records(run)
    trades = [r for r in published if "size" in r]
    assert len({orjson.dumps(t) for t in trades}) == len(trades)


def test_a_silent_stream_is_reconnected_by_the_watchdog(fake: FakeBinance, start: Any) -> None:
    silent_stream_is_reconnected(fake, start)


def test_a_server_shutdown_notice_reconnects_at_once(fake: FakeBinance, start: Any) -> None:
    slow = StreamRules(
        connect_timeout=2.0, silence_timeout=5.0, backoff_initial=20.0, backoff_max=40.0
    )
    run = start(slow)
    wait_for(run.sent_more(0), 10, "ticks")
    fake.shutdown_notice()
    wait_for(
        lambda: len(fake.connections) == 2 and fake.connections[1].streams, 5, "a new connection"
    )
    first, second = fake.connections
    assert first.closed is not None and second.opened - first.closed < 2.0  # no 20 s backoff
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks on the new connection")
    run.stop()
    assert run.states == ["connecting", "live"]  # planned: never degraded
    assert run.source.connections[0].stats.endings == {"server_shutdown": 1}


def test_a_connection_is_retired_before_its_age_limit_and_replaced_at_once(
    fake: FakeBinance, start: Any
) -> None:
    """Binance closes connections at 24 h; we leave first (here after 1.5 s) and come back."""
    rules = StreamRules(connect_timeout=2.0, max_connection_age=1.5, backoff_initial=20.0)
    run = start(rules)
    wait_for(lambda: len(fake.connections) >= 3, 10, "two retirements")
    run.stop()
    first, second = fake.connections[:2]
    assert first.closed is not None and 1.4 <= first.closed - first.opened < 3.0
    assert second.opened - first.closed < 2.0 and second.streams == first.streams
    assert run.source.connections[0].stats.endings.get("max_age", 0) >= 2
    assert run.states == ["connecting", "live"]


def test_malformed_frames_are_counted_and_never_fatal(fake: FakeBinance, start: Any) -> None:
    run = start()
    wait_for(run.sent_more(0), 10, "ticks")
    bad_trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "NaN", "q": "1", "T": 1}
    fake.send_raw(
        "{not json",
        "[1, 2]",
        orjson.dumps({"stream": "btcusdt@trade", "data": bad_trade}),
        orjson.dumps({"e": "depthUpdate", "s": "BTCUSDT"}),
        orjson.dumps({"code": 2, "msg": "Invalid request"}),
        "x" * 100_000,  # over max_frame_bytes (64 KiB): that connection closes, counted
    )
    wait_for(lambda: len(fake.connections) >= 2 and fake.connections[-1].streams, 10, "reconnect")
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the bad frames")
    run.stop()
    assert run.producer.metrics.skipped == {
        "not_json": 1,
        "not_an_object": 1,
        "bad_price": 1,
        "unknown_event": 1,
        "error_reply": 1,
        "frame_too_large": 1,
    }
    assert run.producer.metrics.failed_cycles == {"frame_too_large": 1}
    assert all(r["price"] > 0 for r in records(run))


def test_refused_connections_back_off_and_the_source_is_unreachable_until_one_works(
    fake: FakeBinance, start: Any
) -> None:
    fake.refuse(3)
    rules = StreamRules(connect_timeout=2.0, backoff_initial=0.4, backoff_max=10.0)
    run = start(rules, rand=lambda: 1.0)  # the top of each jitter range: 0.4, 0.8, 1.6 s
    wait_for(run.sent_more(0), 20, "ticks once the fake accepts")
    run.stop()
    gaps = [b - a for a, b in zip(fake.refused_at, fake.refused_at[1:], strict=False)]
    assert len(fake.refused_at) == 3
    assert gaps[0] >= 0.4 and gaps[1] >= 0.8
    assert fake.connections[0].opened - fake.refused_at[-1] >= 1.6
    assert run.states == ["connecting", "unreachable", "live"]  # never live before a tick
    assert run.producer.metrics.failed_cycles == {"http_503": 3}


def test_a_skipped_trade_id_is_counted_as_a_gap(fake: FakeBinance, start: Any) -> None:
    run = start()
    wait_for(lambda: len(fake.trades_of("BTCUSDT")) >= 3, 10, "trades")
    fake.skip("BTCUSDT", 5)
    wait_for(lambda: run.producer.metrics.skipped.get("sequence_gap"), 10, "the gap counted")
    # ...and shown: the status the dashboard's badge tells it with.
    wait_for(lambda: any("5 messages missed" in s.detail for s in run.statuses), 10, "shown")
    run.stop()
    assert run.producer.metrics.skipped == {"sequence_gap": 5}


class OneStreamPerMessage(BinanceProtocol):
    def subscribe_messages(self, subscriptions: Sequence[str]) -> list[str]:
        return [m for s in subscriptions for m in subscribe_messages([s])]


def test_subscribing_stays_under_binance_5_messages_per_second(
    fake: FakeBinance, start: Any
) -> None:
    """Twelve SUBSCRIBE messages: the fake disconnects a client past 5 a second, as Binance does."""
    proto = OneStreamPerMessage(
        [*COINS, "cardano", "ripple", "dogecoin"], BinanceSettings(ws_url=fake.url)
    )
    run = start(protocol=proto)
    wait_for(
        lambda: fake.connections and len(fake.connections[0].subscribes) == 12, 10, "12 messages"
    )
    wait_for(run.sent_more(0), 10, "ticks")
    run.stop()
    conn = fake.connections[0]
    assert conn.close_reason == "" and len(fake.connections) == 1
    times = [t for t, _ in conn.subscribes]
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 4
    assert times[-1] - times[0] >= 2.0  # 12 messages at 4 a second


def test_streams_past_the_per_connection_limit_open_more_connections(
    fake: FakeBinance, start: Any
) -> None:
    run = start(max_streams_per_connection=2)
    wait_for(lambda: len(fake.open_connections) == 3 and len(fake.subscribed()) == 6, 10, "3 x 2")
    assert sorted(fake.subscribed()) == sorted(run.source.protocol.streams)  # type: ignore[attr-defined]
    wait_for(lambda: run.sent >= 30, 10, "ticks")
    run.stop()
    assert [len(c.streams) for c in fake.connections] == [2, 2, 2]
    assert {r["coin"] for r in records(run)} == set(COINS)


def test_cryptopulse_produce_source_binance_publishes_to_kafka(
    fake: FakeBinance, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """As a user runs it: `cryptopulse produce --source binance`, the URL from the environment."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    done = produce("binance", fake.url, kafka_bootstrap, topic, status_topic, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 Binance symbols" in done.stdout + done.stderr
    published = records_on(kafka_bootstrap, topic)
    assert len(published) == 40
    assert {r["coin"] for r in published} == {"bitcoin", "ethereum"}
    assert all(r["source"] == "binance" and r["quote"] == "USDT" for r in published)
    assert any("size" in r for r in published)
    states = [status_from_json(v).state for _, v in read_to_end(kafka_bootstrap, status_topic)]
    assert states[0] == "connecting" and "live" in states
    assert [c.streams for c in fake.connections] == [
        ["btcusdt@trade", "btcusdt@miniTicker", "ethusdt@trade", "ethusdt@miniTicker"]
    ]


def records_on(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in read_to_end(bootstrap, topic)]
