"""The CoinGecko path end to end: a fake CoinGecko over real HTTP -> producer -> real Kafka.

Each test reads the topic back and checks it holds exactly the good Ticks.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from cryptopulse.producer import TickProducer, publish_source
from cryptopulse.sources.coingecko import CoinGeckoSource
from tests.fakes.coingecko import (
    FakeCoinGecko,
    garbage,
    hang,
    html_page,
    many_coins,
    rate_limited,
    server_error,
)

pytestmark = pytest.mark.integration

FAST_BACKOFF = (0.2, 0.4, 0.8)


def read_back(bootstrap: str, topic: str, group: str, expected: int) -> list[dict[str, Any]]:
    """Every record on `topic`: waits for `expected`, then makes sure no more arrive."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    quiet = 0
    try:
        for _ in range(240):
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            for msg in batch:
                assert msg.error() is None, msg.error()
                raw, key = msg.value(), msg.key()
                assert raw is not None and key is not None
                value = orjson.loads(raw)
                assert key.decode() == value["coin"]
                records.append(value)
            if len(records) >= expected:
                quiet = quiet + 1 if not batch else 0
                if quiet >= 3:  # 1.5 s with nothing more
                    break
    finally:
        consumer.close()
    return records


@pytest.fixture
def fake() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as server:
        yield server


@pytest.fixture
def publish(
    kafka_bootstrap: str, new_topic: Callable[..., str], group_id: str
) -> Callable[..., tuple[TickProducer, list[dict[str, Any]]]]:
    """Run a source into a fresh topic, then read the topic back."""

    def run(source: CoinGeckoSource, expected: int) -> tuple[TickProducer, list[dict[str, Any]]]:
        topic = new_topic("ticks")
        producer = TickProducer(kafka_bootstrap, topic, linger_ms=5)
        producer.start()
        try:
            publish_source(source, producer).run()
        finally:
            source.close()
            assert producer.stop() == 0
        assert producer.stats.failed == 0
        return producer, read_back(kafka_bootstrap, topic, group_id, expected)

    return run


def source_for(fake: FakeCoinGecko, **kwargs: Any) -> CoinGeckoSource:
    kwargs.setdefault("poll_interval", 0.5)
    kwargs.setdefault("max_cycles", 1)
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("calls_per_minute", 6000.0)
    kwargs.setdefault("backoff", FAST_BACKOFF)
    coins = kwargs.pop("coins", list(fake.quotes))
    return CoinGeckoSource(coins, base_url=fake.url, **kwargs)


def by_coin(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["coin"]: r for r in records}


def test_publishes_exactly_the_quotes(fake: FakeCoinGecko, publish: Any) -> None:
    _, records = publish(source_for(fake), 10)
    assert len(records) == 10
    assert by_coin(records) == {coin: fake.expected_tick(coin) for coin in fake.quotes}


def test_bad_coins_skipped_the_rest_published(fake: FakeCoinGecko, publish: Any) -> None:
    fake.corrupt("bitcoin", {"usd": None, "last_updated_at": 1732485600})
    fake.corrupt("ethereum", {"usd": 3400.0, "usd_24h_vol": -5.0})
    fake.corrupt("cardano", "not an object")
    fake.corrupt("dogecoin", {"usd": "0.40"})
    fake.hidden.add("solana")
    fake.extra_ids["not-requested"] = {"usd": 1.0}
    source = source_for(fake)
    producer, records = publish(source, 5)
    good = ["binancecoin", "ripple", "polkadot", "avalanche-2", "chainlink"]
    assert by_coin(records) == {coin: fake.expected_tick(coin) for coin in good}
    assert len(records) == 5
    assert producer.stats.skipped == {
        "null_price": 1,
        "negative_volume": 1,
        "malformed_quote": 1,
        "bad_price": 1,
        "missing_coin": 1,
        "unknown_id": 1,
    }


def test_429_with_retry_after_seconds_and_http_date(fake: FakeCoinGecko, publish: Any) -> None:
    wall, mono = time.time(), time.monotonic()
    not_before = int(wall) + 3  # HTTP dates have whole seconds
    fake.respond(rate_limited("1"), rate_limited(email.utils.formatdate(not_before, usegmt=True)))
    source = source_for(fake)
    _, records = publish(source, 10)
    assert len(records) == 10
    calls = fake.requests_to("/simple/price")
    assert len(calls) == 3
    assert calls[1].at - calls[0].at >= 1.0  # waited as told, not the 0.2 s back-off
    assert calls[2].at >= mono + (not_before - wall) - 0.05  # not before the date
    assert source.stats.retries == 2


def test_429_without_retry_after_uses_the_5_s_back_off(fake: FakeCoinGecko, publish: Any) -> None:
    fake.respond(rate_limited())
    source = source_for(fake, backoff=(5.0, 10.0, 20.0))
    _, records = publish(source, 10)
    assert len(records) == 10
    first, second = fake.requests_to("/simple/price")
    assert second.at - first.at >= 5.0


def test_500_and_a_hang_past_the_timeout_are_retried(fake: FakeCoinGecko, publish: Any) -> None:
    fake.respond(server_error(500), hang(10), server_error(502))
    source = source_for(fake, timeout=0.5)
    _, records = publish(source, 10)
    assert by_coin(records) == {coin: fake.expected_tick(coin) for coin in fake.quotes}
    assert len(records) == 10
    assert source.stats.retries == 3
    assert len(fake.requests_to("/simple/price")) == 4


def test_failed_cycles_never_crash_and_the_next_cycle_publishes(
    fake: FakeCoinGecko, publish: Any
) -> None:
    fake.respond(*[server_error(503)] * 4)  # cycle 1: all retries fail
    fake.respond(garbage())  # cycle 2: truncated JSON
    fake.respond(html_page())  # cycle 3: the CDN's HTML page
    source = source_for(fake, max_cycles=4, poll_interval=0.3)
    producer, records = publish(source, 10)
    assert len(records) == 10
    assert producer.stats.failed_cycles == {
        "http_503": 1,
        "malformed_json": 1,
        "html_error_page": 1,
    }


def test_unchanged_quotes_are_published_once(fake: FakeCoinGecko, publish: Any) -> None:
    source = source_for(fake, max_cycles=3, poll_interval=0.3)
    before = {coin: fake.expected_tick(coin) for coin in fake.quotes}
    original = source.poll_once

    def poll_and_move() -> Any:
        batch = original()
        if batch.cycle == 2:
            fake.advance(60)  # CoinGecko refreshed its cache
        return batch

    source.poll_once = poll_and_move  # type: ignore[method-assign]
    producer, records = publish(source, 20)
    after = {coin: fake.expected_tick(coin) for coin in fake.quotes}
    assert len(records) == 20
    assert sorted(records, key=lambda r: (r["timestamp"], r["coin"])) == sorted(
        [*before.values(), *after.values()], key=lambda r: (r["timestamp"], r["coin"])
    )
    assert producer.stats.unchanged == 10


def test_key_error_reported_once(publish: Any, caplog: pytest.LogCaptureFixture) -> None:
    with FakeCoinGecko(api_key="CG-right-key") as fake:
        caplog.set_level(logging.INFO)
        wrong = source_for(fake, api_key="CG-wrong-key", max_cycles=3, poll_interval=0.2)
        producer, records = publish(wrong, 0)
        assert records == []
        assert producer.stats.failed_cycles == {"key_error": 3}
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "COINGECKO_API_KEY" in errors[0]
        assert "CG-wrong-key" not in caplog.text

        right = source_for(fake, api_key="CG-right-key")
        _, records = publish(right, 10)
        assert len(records) == 10
        assert fake.requests[-1].headers["x-cg-demo-api-key"] == "CG-right-key"


def test_many_coins_via_coins_markets(publish: Any) -> None:
    with FakeCoinGecko(many_coins(600)) as fake:
        source = source_for(fake)
        assert source.use_markets
        _, records = publish(source, 600)
        assert len(records) == 600
        assert len(fake.requests_to("/coins/markets")) == 3
        got = by_coin(records)
        for coin, quote in fake.quotes.items():
            assert got[coin]["price"] == quote.price
            assert got[coin]["symbol"] == quote.symbol
            assert got[coin]["change_24h"] == quote.change
