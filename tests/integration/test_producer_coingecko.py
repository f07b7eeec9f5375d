"""The CoinGecko path end to end: a fake CoinGecko over real HTTP -> producer -> real Kafka.

Each test reads the topic back and checks it holds exactly the good Ticks. The hostile-server
tests at the end (redirects, gzip bombs, endless drips, a key echoed back) poll the source
directly and need no broker.
"""

from __future__ import annotations

import email.utils
import logging
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cryptopulse.producer import TickProducer, publish_source
from cryptopulse.producer_metrics import ProducerMetrics
from cryptopulse.sources.coingecko import CoinGeckoSource
from tests.fakes.coingecko import (
    FakeCoinGecko,
    Reply,
    drip,
    garbage,
    gzip_bomb,
    hang,
    html_page,
    many_coins,
    rate_limited,
    redirect,
    server_error,
)
from tests.kafka_helpers import read_to_end

pytestmark = pytest.mark.integration

FAST_BACKOFF = (0.2, 0.4, 0.8)


def read_back(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record on `topic`, read to its end (call it once the writers have flushed), each
    keyed by its coin."""
    records: list[dict[str, Any]] = []
    for key, raw in read_to_end(bootstrap, topic):
        value = orjson.loads(raw)
        assert key is not None and key.decode() == value["coin"]
        records.append(value)
    return records


@pytest.fixture
def fake() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as server:
        yield server


@pytest.fixture
def publish(
    kafka_bootstrap: str, new_topic: Callable[..., str]
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
        assert producer.metrics.failed == 0
        records = read_back(kafka_bootstrap, topic)
        assert len(records) == expected
        return producer, records

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
    assert producer.metrics.skipped == {
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
    producer, records = publish(source, 10)
    assert len(records) == 10
    calls = fake.requests_to("/simple/price")
    assert len(calls) == 3
    assert calls[1].at - calls[0].at >= 1.0  # waited as told, not the 0.2 s back-off
    assert calls[2].at >= mono + (not_before - wall) - 0.05  # not before the date
    assert producer.metrics.retries == 2


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
    producer, records = publish(source, 10)
    assert by_coin(records) == {coin: fake.expected_tick(coin) for coin in fake.quotes}
    assert len(records) == 10
    assert producer.metrics.retries == 3
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
    assert producer.metrics.failed_cycles == {
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
    assert producer.metrics.unchanged == 10


def test_key_error_reported_once(publish: Any, caplog: pytest.LogCaptureFixture) -> None:
    with FakeCoinGecko(api_key="CG-right-key") as fake:
        caplog.set_level(logging.INFO)
        wrong = source_for(fake, api_key="CG-wrong-key", max_cycles=3, poll_interval=0.2)
        producer, records = publish(wrong, 0)
        assert records == []
        assert producer.metrics.failed_cycles == {"key_error": 3}
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


# -- hostile servers (issue #11): no Kafka needed, the source is polled directly ---------------

KEY = "CG-test-secret-key-4f1c9"


def hostile_source(fake: FakeCoinGecko, **kwargs: Any) -> CoinGeckoSource:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("max_retries", 0)
    return source_for(fake, **kwargs)


def test_answers_are_gzip_on_the_wire_and_decoded(fake: FakeCoinGecko) -> None:
    with hostile_source(fake) as source:
        batch = source.poll_once()
    assert batch.error is None and len(batch.ticks) == 10
    assert fake.requests[-1].headers["accept-encoding"] == "gzip"  # the fake then gzips


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_other_server_never_sees_the_key(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeCoinGecko() as api, FakeCoinGecko() as elsewhere:
        target = f"{elsewhere.url}/simple/price?ids=bitcoin&vs_currencies=usd"
        # The harness can see a leak: a client that follows redirects hands the key over.
        api.respond(redirect(target, status))
        httpx.get(f"{api.url}/ping", headers={"x-cg-demo-api-key": KEY}, follow_redirects=True)
        assert elsewhere.requests[-1].headers["x-cg-demo-api-key"] == KEY
        elsewhere.requests.clear()

        caplog.set_level(logging.INFO, logger="cryptopulse")
        api.respond(redirect(target, status))
        with hostile_source(api, max_retries=3) as source:
            refused = source.poll_once()
            after = source.poll_once()
        assert refused.error == "redirect" and not refused.ticks
        metrics = ProducerMetrics()
        for batch in (refused, after):
            metrics.observe(batch)
        assert metrics.failed_cycles == {"redirect": 1}
        assert metrics.retries == 0  # not retried: the next cycle asks again
        assert after.error is None and len(after.ticks) == 10
        assert elsewhere.requests == []  # no request at all, so no key
        assert f"HTTP {status} redirect refused" in caplog.text


def test_a_gzip_bomb_is_refused_at_the_cap_without_inflating_it(fake: FakeCoinGecko) -> None:
    bomb = gzip_bomb(64 << 20)
    assert len(bomb.body or b"") < 100 << 10  # about 64 KiB on the wire for 64 MiB inflated
    cap = 1 << 20
    fake.respond(bomb)
    with hostile_source(fake, max_body_bytes=cap, max_retries=3) as source:
        tracemalloc.start()
        try:
            batch = source.poll_once()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert batch.error == "too_large"
        assert batch.retries == 0  # the same bomb would come again
        assert peak < 4 * cap, f"{peak} bytes held for a {cap} byte cap"
        assert len(source.poll_once().ticks) == 10  # and the next cycle is normal


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_a_server_that_drips_forever_is_cut_off_at_the_deadline(
    fake: FakeCoinGecko, headers: bool
) -> None:
    # A byte every 0.2 s: each read succeeds well within the 1 s per-read timeout, so
    # only the overall deadline can end it.
    fake.respond(drip(0.2, headers=headers))
    with hostile_source(fake, timeout=1.0, deadline=1.5) as source:
        started = time.monotonic()
        batch = source.poll_once()
        took = time.monotonic() - started
        assert batch.error == "deadline_exceeded"
        assert 1.5 <= took < 2.5, took
        assert len(source.poll_once().ticks) == 10


def test_the_key_never_appears_in_logs_errors_or_urls(caplog: pytest.LogCaptureFixture) -> None:
    # A hostile server that echoes the key back wherever it can.
    echo = orjson.dumps({"status": {"error_code": 10002, "error_message": f"bad key {KEY}"}})
    failures = [
        Reply(401, echo),
        Reply(403, orjson.dumps({"error": f"forbidden for {KEY}"})),
        Reply(429, echo, {"Retry-After": "0"}),
        Reply(500, orjson.dumps({"error": f"Internal Server Error ({KEY})"})),
        Reply(404, orjson.dumps({"status": {"error_code": 404, "error_message": KEY}})),
        Reply(200, orjson.dumps({"error": KEY})),
        Reply(200, f"<html>{KEY}</html>".encode(), content_type="text/html"),
        redirect(f"https://{KEY}.example/?x_cg_demo_api_key={KEY}"),
        gzip_bomb(8 << 20),
    ]
    caplog.set_level(logging.DEBUG)
    # httpcore's trace prints response headers as received (a Location echoing the key);
    # every process pins it at WARNING (cryptopulse.log.setup_logging), as here.
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    texts: list[str] = []
    try:
        with FakeCoinGecko(api_key=KEY) as fake:
            with hostile_source(fake, max_body_bytes=1 << 20, backoff=(0.01,)) as source:
                for reply in failures:
                    fake.respond(reply)
                    batch = source.poll_once()
                    assert batch.error is not None, reply
                    texts.append(batch.error)
                texts.append(source.describe())
            for bad_url in ("http://api.example.com/api/v3", "http://10.0.0.1/api/v3"):
                with pytest.raises(ValueError) as refused:
                    CoinGeckoSource(["bitcoin"], base_url=bad_url, api_key=KEY)
                texts += [str(refused.value), repr(refused.value)]
            with pytest.raises(ValueError) as refused:
                hostile_source(fake, api_key=f"{KEY}\nX-Other: 1")
            texts += [str(refused.value), repr(refused.value)]
            urls = [f"{r.path}?{r.query}" for r in fake.requests]
    finally:
        logging.getLogger("httpcore").setLevel(logging.NOTSET)
    assert len(urls) == len(failures)
    assert all(KEY not in url for url in urls)  # only ever in its header
    assert all(r.headers["x-cg-demo-api-key"] == KEY for r in fake.requests)
    records = [r.getMessage() for r in caplog.records]
    assert any("redirect refused" in m for m in records)
    assert any("[redacted]" in m for m in records)  # the echoes were there, blanked out
    for text in [*records, caplog.text, *texts]:
        assert KEY not in text, text


def test_produce_refuses_a_key_over_plain_http(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env |= {
        "CRYPTOPULSE_DATA_DIR": str(tmp_path / "data"),
        "CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY": KEY,
        "CRYPTOPULSE_PRODUCER__COINGECKO_BASE_URL": "http://api.coingecko.com/api/v3",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cryptopulse.cli", "produce", "--bootstrap", "127.0.0.1:1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Configuration error" in done.stderr
    assert "https://" in done.stderr and "COINGECKO_BASE_URL" in done.stderr
    assert KEY not in done.stdout + done.stderr
