"""CoinGecko source: parsing real-shaped bodies, Retry-After, back-off and cadence on a fake clock;
the key only over https, no redirects, bodies bounded in bytes and time (`sources.http`)."""

from __future__ import annotations

import email.utils
import gzip
import itertools
import logging
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import orjson
import pytest
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cryptopulse.coins import symbol_of
from cryptopulse.config import ProducerSettings, secret_safe_url
from cryptopulse.producer_metrics import ProducerMetrics
from cryptopulse.sources import http
from cryptopulse.sources.base import Batch, FakeClock, next_deadline
from cryptopulse.sources.coingecko import CoinGeckoSource
from cryptopulse.sources.coingecko.client import PRO_BASE_URL
from cryptopulse.sources.coingecko.errors import BadQuote, CoinGeckoError, TryAgain
from cryptopulse.sources.coingecko.models import (
    ChartProblem,
    MarketChart,
    MarketRow,
    SimplePriceQuote,
    decode_body,
    key_problem,
    parse_coins_markets,
    parse_simple_price,
)
from cryptopulse.sources.coingecko.retry import (
    BACKOFF,
    RetryAfterWait,
    parse_retry_after,
    retry_delay,
)
from tests.unit.test_backfill import Collected

T0 = 1_732_485_600  # 2024-11-24T22:00:00Z
DEFAULT = list(ProducerSettings().coins)

# A /simple/price answer as CoinGecko sends it (include_* all true).
SIMPLE = {
    "bitcoin": {
        "usd": 97012.5,
        "usd_market_cap": 1.92e12,
        "usd_24h_vol": 3.1e10,
        "usd_24h_change": -1.84,
        "last_updated_at": T0,
    },
    "ethereum": {
        "usd": 3398.12,
        "usd_market_cap": 409123456789.12,
        "usd_24h_vol": 20512345678.9,
        "usd_24h_change": 2.3102,
        "last_updated_at": T0 - 12,
    },
    "avalanche-2": {
        "usd": 45.2,
        "usd_market_cap": 18500000000,
        "usd_24h_vol": 1050000000,
        "usd_24h_change": None,
        "last_updated_at": T0 - 3,
    },
}

# One row of /coins/markets as CoinGecko sends it.
MARKET_ROW = {
    "id": "bitcoin",
    "symbol": "btc",
    "name": "Bitcoin",
    "image": "https://coin-images.coingecko.com/coins/images/1/large/bitcoin.png",
    "current_price": 97012.5,
    "market_cap": 1920000000000,
    "market_cap_rank": 1,
    "fully_diluted_valuation": 2030000000000,
    "total_volume": 31000000000,
    "high_24h": 99000,
    "low_24h": 95000,
    "price_change_24h": -1818.3,
    "price_change_percentage_24h": -1.84,
    "market_cap_change_24h": -3.5e10,
    "market_cap_change_percentage_24h": -1.8,
    "circulating_supply": 19790000.0,
    "total_supply": 21000000.0,
    "max_supply": 21000000.0,
    "ath": 99645,
    "ath_change_percentage": -2.6,
    "ath_date": "2024-11-22T19:16:28.312Z",
    "atl": 67.81,
    "atl_change_percentage": 142980.1,
    "atl_date": "2013-07-06T00:00:00.000Z",
    "roi": None,
    "last_updated": "2024-11-24T22:00:00.000Z",
}


# -- parsing ------------------------------------------------------------------------------


def test_simple_price_real_shape() -> None:
    parsed = parse_simple_price(SIMPLE, ["bitcoin", "ethereum", "avalanche-2"], fetched_at=T0 + 30)
    assert not parsed.skipped
    ticks = {q.tick.coin: q for q in parsed.quotes}
    btc = ticks["bitcoin"].tick
    assert btc.symbol == "btc"
    assert btc.price == 97012.5
    assert btc.change_24h == -1.84
    assert btc.volume_24h == 3.1e10
    assert btc.market_cap == 1.92e12
    assert btc.timestamp == datetime(2024, 11, 24, 22, 0, tzinfo=UTC)
    assert btc.source == "coingecko"
    assert ticks["bitcoin"].updated_at == T0
    assert ticks["avalanche-2"].tick.symbol == "avax"
    assert ticks["avalanche-2"].tick.change_24h is None  # null is allowed for secondary fields
    assert ticks["ethereum"].tick.timestamp.timestamp() == T0 - 12


def test_simple_price_without_last_updated_uses_fetch_time() -> None:
    parsed = parse_simple_price({"bitcoin": {"usd": 1.5}}, ["bitcoin"], fetched_at=T0 + 7)
    (quote,) = parsed.quotes
    assert quote.updated_at is None
    assert quote.tick.timestamp.timestamp() == T0 + 7
    assert quote.tick.market_cap is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"usd": None}, "null_price"),
        ({}, "malformed_quote"),
        ("97000", "malformed_quote"),
        (None, "malformed_quote"),
        ({"usd": -5.0}, "negative_price"),
        ({"usd": 0}, "zero_price"),
        ({"usd": "97012.5"}, "bad_price"),
        ({"usd": True}, "bad_price"),
        ({"usd": 1e400}, "bad_price"),  # orjson would refuse it; a dict can carry inf
        ({"usd": 1.0, "usd_24h_vol": -1}, "negative_volume"),
        ({"usd": 1.0, "usd_market_cap": -1e9}, "negative_market_cap"),
        ({"usd": 1.0, "usd_market_cap": "big"}, "bad_market_cap"),
        ({"usd": 1.0, "usd_24h_change": "up"}, "bad_change"),
        ({"usd": 1.0, "last_updated_at": "yesterday"}, "bad_timestamp"),
        ({"usd": 1.0, "last_updated_at": -1}, "bad_timestamp"),
        ({"usd": 1.0, "last_updated_at": 10**15}, "invalid_tick"),  # year far beyond 9999
    ],
)
def test_simple_price_bad_coin_is_skipped_with_reason(entry: Any, reason: str) -> None:
    payload = {**SIMPLE, "bitcoin": entry}
    parsed = parse_simple_price(payload, ["bitcoin", "ethereum", "avalanche-2"], T0)
    assert dict(parsed.skipped) == {reason: 1}
    assert sorted(q.tick.coin for q in parsed.quotes) == ["avalanche-2", "ethereum"]


def test_simple_price_missing_and_unknown_ids() -> None:
    payload = {**SIMPLE, "not-a-coin": {"usd": 1.0}}
    parsed = parse_simple_price(payload, ["bitcoin", "ethereum", "solana"], T0)
    assert dict(parsed.skipped) == {"missing_coin": 1, "unknown_id": 2}  # avalanche-2, not-a-coin
    assert sorted(q.tick.coin for q in parsed.quotes) == ["bitcoin", "ethereum"]


@pytest.mark.parametrize("payload", [[], "oops", 42, None])
def test_simple_price_wrong_shape_skips_everything(payload: Any) -> None:
    parsed = parse_simple_price(payload, ["bitcoin", "ethereum"], T0)
    assert not parsed.quotes
    assert dict(parsed.skipped) == {"malformed_response": 2}


def test_invalid_coin_id_is_skipped() -> None:
    parsed = parse_simple_price({"Bad Id!": {"usd": 1.0}}, ["Bad Id!"], T0)
    assert dict(parsed.skipped) == {"invalid_tick": 1}


def test_coins_markets_real_shape() -> None:
    rows = [MARKET_ROW, {**MARKET_ROW, "id": "ethereum", "symbol": "ETH", "current_price": 3398.1}]
    parsed = parse_coins_markets(rows, fetched_at=T0 + 30)
    assert not parsed.skipped
    btc, eth = (q.tick for q in parsed.quotes)
    assert (btc.coin, btc.symbol, btc.price, btc.change_24h) == ("bitcoin", "btc", 97012.5, -1.84)
    assert (btc.volume_24h, btc.market_cap) == (31e9, 1.92e12)
    assert btc.timestamp == datetime(2024, 11, 24, 22, 0, tzinfo=UTC)
    assert parsed.quotes[0].updated_at == T0
    assert eth.symbol == "eth"


def test_coins_markets_bad_rows() -> None:
    rows = [
        MARKET_ROW,
        {**MARKET_ROW, "id": "ethereum", "current_price": None},
        {**MARKET_ROW, "id": "solana", "total_volume": -3},
        {**MARKET_ROW, "id": "cardano", "last_updated": "not a date"},
        {**MARKET_ROW, "id": "stranger"},
        {"symbol": "x"},
        "garbage",
    ]
    parsed = parse_coins_markets(rows, T0, requested=["bitcoin", "ethereum", "solana", "cardano"])
    assert [q.tick.coin for q in parsed.quotes] == ["bitcoin"]
    assert dict(parsed.skipped) == {
        "null_price": 1,
        "negative_volume": 1,
        "bad_timestamp": 1,
        "unknown_id": 1,
        "malformed_quote": 2,
    }
    assert dict(parse_coins_markets({"error": "x"}, T0).skipped) == {"malformed_response": 1}


def test_symbols() -> None:
    assert [symbol_of(c) for c in DEFAULT] == [
        "btc", "eth", "bnb", "sol", "ada", "xrp", "dot", "doge", "avax", "link",
    ]  # fmt: skip
    assert symbol_of("some-new-token") == "some"
    assert symbol_of("wormhole-3") == "wormhole"
    assert symbol_of("averyveryverylongname") == "averyveryv"


def test_decode_body() -> None:
    assert decode_body(b'{"a": 1}') == ({"a": 1}, None)
    assert decode_body(b"<!DOCTYPE html><html>blocked</html>", "text/html") == (
        None,
        "html_error_page",
    )
    assert decode_body(b"  <html>", "") == (None, "html_error_page")
    assert decode_body(b'{"bitcoin": {"usd": 9', "application/json") == (None, "malformed_json")
    assert decode_body(b"", "application/json") == (None, "malformed_json")


def test_key_problems_say_what_to_fix() -> None:
    missing = key_problem(
        401, {"status": {"error_code": 10002, "error_message": "API Key Missing"}}
    )
    assert missing and "CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY" in missing
    pro_url = key_problem(401, {"status": {"error_code": 10010, "error_message": "..."}})
    assert pro_url and "PLAN=demo" in pro_url
    demo_url = key_problem(400, {"status": {"error_code": 10011, "error_message": "..."}})
    assert demo_url and "PLAN=pro" in demo_url
    assert "401" in (key_problem(401, None) or "")
    assert "403" in (key_problem(403, {"error": "Forbidden"}) or "")
    assert key_problem(200, SIMPLE) is None
    assert key_problem(429, {"status": {"error_code": 429, "error_message": "rate"}}) is None


# -- Retry-After, back-off, schedule ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (email.utils.formatdate(T0 + 42, usegmt=True), 42.0),
        ("Sun, 24 Nov 2024 22:00:30 GMT", 30.0),
        ("Sun, 24 Nov 2024 21:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=T0) == expected


def test_retry_delay_sequence() -> None:
    assert [retry_delay(i, None) for i in range(3)] == [5.0, 10.0, 20.0] == list(BACKOFF)
    assert retry_delay(0, 12.0) == 12.0
    assert retry_delay(2, 0.0) == 0.0
    assert retry_delay(0, 10_000.0) == 600.0  # capped


def _failed_attempt(number: int, failure: BaseException) -> RetryCallState:
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = number
    state.set_exception((type(failure), failure, None))
    return state


def test_retry_after_wait_takes_the_servers_word_else_the_back_off() -> None:
    wait = RetryAfterWait((0.5, 1.0))
    assert wait(_failed_attempt(1, TryAgain("rate_limited", retry_after=7.0))) == 7.0
    assert wait(_failed_attempt(3, TryAgain("rate_limited", retry_after=0.0))) == 0.0
    assert wait(_failed_attempt(1, TryAgain("rate_limited", retry_after=1e6))) == 600.0  # capped
    assert [wait(_failed_attempt(n, TryAgain("http_503"))) for n in (1, 2, 3)] == [0.5, 1.0, 1.0]
    assert wait(_failed_attempt(2, ValueError("not ours"))) == 1.0


def test_retry_after_wait_drives_tenacity() -> None:
    answers: list[TryAgain | str] = [
        TryAgain("rate_limited", retry_after=3.0),
        TryAgain("http_500"),
        "payload",
    ]
    slept: list[float] = []

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, TryAgain):
            raise answer
        return answer

    retrying = Retrying(
        retry=retry_if_exception_type(TryAgain),
        stop=stop_after_attempt(4),
        wait=RetryAfterWait(BACKOFF),
        sleep=slept.append,
        reraise=True,
    )
    assert retrying(attempt) == "payload"
    assert slept == [3.0, 10.0]  # Retry-After, then the second step of the back-off


# -- the payload models ---------------------------------------------------------------------


def test_simple_price_quote_model_reads_the_wire_names() -> None:
    quote = SimplePriceQuote.read(cast(dict[str, Any], SIMPLE["bitcoin"]))
    assert (quote.price, quote.volume, quote.market_cap, quote.change) == (
        97012.5,
        3.1e10,
        1.92e12,
        -1.84,
    )
    assert quote.updated_at == T0
    bare = SimplePriceQuote.read({"usd": 2})  # an int price is a number too
    assert (bare.price, bare.volume, bare.updated_at) == (2.0, None, None)


def test_market_row_model_reads_iso_times() -> None:
    row = MarketRow.read(MARKET_ROW)
    assert (row.price, row.volume, row.change) == (97012.5, 31e9, -1.84)
    assert row.updated_at == T0
    naive = MarketRow.read({**MARKET_ROW, "last_updated": "2024-11-24T22:00:00"})
    assert naive.updated_at == T0  # no zone given: UTC
    assert MarketRow.read({**MARKET_ROW, "last_updated": None}).updated_at is None


@pytest.mark.parametrize(
    ("model", "entry", "reason"),
    [
        (SimplePriceQuote, {"usd_24h_vol": 1.0}, "null_price"),  # price missing
        (SimplePriceQuote, {"usd": 1.0, "usd_24h_vol": True}, "bad_volume"),
        (SimplePriceQuote, {"usd": 1.0, "usd_24h_vol": float("nan")}, "bad_volume"),
        (SimplePriceQuote, {"usd": 1.0, "usd_market_cap": 0}, None),  # zero is a market cap
        (SimplePriceQuote, {"usd": 1.0, "usd_24h_change": -300.0}, None),  # any finite change
        (SimplePriceQuote, {"usd": 1.0, "last_updated_at": 0}, "bad_timestamp"),
        (SimplePriceQuote, {"usd": -1.0, "usd_24h_vol": -1}, "negative_price"),  # the first
        (MarketRow, {**MARKET_ROW, "current_price": 0}, "zero_price"),
        (MarketRow, {**MARKET_ROW, "market_cap": -1}, "negative_market_cap"),
        (MarketRow, {**MARKET_ROW, "price_change_percentage_24h": "1%"}, "bad_change"),
        (MarketRow, {**MARKET_ROW, "last_updated": 1732485600}, "bad_timestamp"),
    ],
)
def test_payload_models_name_the_first_wrong_figure(
    model: type[SimplePriceQuote | MarketRow], entry: dict[str, Any], reason: str | None
) -> None:
    if reason is None:
        assert model.read(entry).price == 1.0
        return
    with pytest.raises(BadQuote) as bad:
        model.read(entry)
    assert bad.value.reason == reason
    assert isinstance(bad.value, CoinGeckoError)


def test_a_quote_past_year_9999_is_an_invalid_tick() -> None:
    quote = SimplePriceQuote.read({"usd": 1.0, "last_updated_at": 10**15})
    with pytest.raises(BadQuote, match="invalid_tick"):
        quote.tick("bitcoin", "btc", fetched_at=T0)


def test_next_deadline_keeps_the_grid() -> None:
    assert next_deadline(100.0, 30.0, 100.0) == 130.0
    assert next_deadline(100.0, 30.0, 112.0) == 130.0
    assert next_deadline(100.0, 30.0, 135.0) == 160.0  # overran: skip to the next slot
    assert next_deadline(100.0, 30.0, 190.0) == 220.0
    assert next_deadline(100.0, 30.0, 90.0) == 100.0


# -- the source over a mock transport, on a fake clock --------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def _simple_response(request: httpx.Request, *, updated: int = T0) -> httpx.Response:
    ids = request.url.params["ids"].split(",")
    body = {
        coin: {
            "usd": 100.0 + i,
            "usd_market_cap": 1e9,
            "usd_24h_vol": 1e7,
            "usd_24h_change": 1.5,
            "last_updated_at": updated,
        }
        for i, coin in enumerate(ids)
    }
    return httpx.Response(200, json=body)


class Scripted:
    """A transport handler: answers from a script, then normally; records (clock time, request)."""

    def __init__(self, clock: FakeClock, *script: Handler, latency: float = 0.0) -> None:
        self.clock = clock
        self.script = list(script)
        self.latency = latency
        self.calls: list[tuple[float, httpx.Request]] = []
        self.updated = T0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((self.clock.monotonic(), request))
        self.clock.advance(self.latency)
        if self.script:
            return self.script.pop(0)(request)
        return _simple_response(request, updated=self.updated)


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Handler:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers=headers, json=body if body is not None else {})

    return reply


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def metered(batches: Iterable[Batch]) -> tuple[list[Batch], ProducerMetrics]:
    """The batches, and the producer's metrics counted from them."""
    metrics = ProducerMetrics()
    seen = []
    for batch in batches:
        metrics.observe(batch)
        seen.append(batch)
    return seen, metrics


def _source(clock: FakeClock, handler: Scripted, **kwargs: Any) -> CoinGeckoSource:
    kwargs.setdefault("max_cycles", 1)
    kwargs.setdefault("calls_per_minute", 6000.0)
    coins = kwargs.pop("coins", DEFAULT)
    return CoinGeckoSource(
        coins,
        base_url="https://coingecko.test/api/v3",
        clock=clock,
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def test_request_shape_and_key_header() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock)
    source = _source(clock, handler, api_key="CG-secret-demo-key")
    (batch,) = list(source)
    assert len(batch.ticks) == 10
    (_, request) = handler.calls[0]
    assert request.url.path == "/api/v3/simple/price"
    assert dict(request.url.params) == {
        "ids": ",".join(DEFAULT),
        "vs_currencies": "usd",
        "include_market_cap": "true",
        "include_24hr_vol": "true",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }
    assert request.headers["x-cg-demo-api-key"] == "CG-secret-demo-key"
    assert "x-cg-pro-api-key" not in request.headers


def test_pro_plan_uses_pro_url_and_header() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock)
    source = CoinGeckoSource(
        DEFAULT,
        api_key="CG-pro",
        plan="pro",
        clock=clock,
        max_cycles=1,
        transport=httpx.MockTransport(handler),
    )
    list(source)
    (_, request) = handler.calls[0]
    assert str(request.url).startswith(PRO_BASE_URL + "/simple/price")
    assert request.headers["x-cg-pro-api-key"] == "CG-pro"


def test_429_without_retry_after_backs_off_5_10_20_then_gives_up() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, *[status(429)] * 4)
    source = _source(clock, handler, max_cycles=2, poll_interval=30.0)
    (first, second), metrics = metered(source)
    assert first.error == "rate_limited" and not first.ticks
    assert clock.sleeps[:3] == [5.0, 10.0, 20.0]
    assert len(handler.calls) == 5  # 1 + 3 retries, then the next cycle
    assert metrics.retries == 3
    assert metrics.failed_cycles == {"rate_limited": 1}
    assert second.error is None and len(second.ticks) == 10
    # the next cycle ran on the grid: 35 s of back-off overran slot 30, so it ran at 60
    assert handler.calls[4][0] - handler.calls[0][0] == 60.0


def test_429_with_retry_after_seconds_and_date() -> None:
    clock = FakeClock(T0)
    date = email.utils.formatdate(T0 + 12, usegmt=True)
    handler = Scripted(
        clock,
        status(429, {"Retry-After": "7"}),
        status(429, {"Retry-After": date}),
    )
    (batch,) = list(_source(clock, handler))
    assert len(batch.ticks) == 10
    assert clock.sleeps[0] == 7.0
    assert clock.sleeps[1] == pytest.approx(5.0)  # the date was 12 s after T0; 7 s have passed


def test_5xx_timeouts_and_connection_errors_are_retried() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, status(500), timeout, status(503))
    (batch,) = list(_source(clock, handler))
    assert len(batch.ticks) == 10
    assert clock.sleeps == [5.0, 10.0, 20.0]

    clock = FakeClock(T0)
    handler = Scripted(clock, refused, refused, refused, timeout)
    (batch,) = list(_source(clock, handler))
    assert batch.error == "timeout"


def test_retry_after_outlasting_the_retries_delays_the_next_cycle() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, *[status(429, {"Retry-After": "50"})] * 4)
    source = _source(clock, handler, max_cycles=2, poll_interval=30.0)
    first, second = list(source)
    assert first.error == "rate_limited"
    assert len(second.ticks) == 10
    last_429 = handler.calls[3][0]
    assert handler.calls[4][0] - last_429 >= 50.0


def test_cadence_does_not_drift() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, latency=4.0)
    source = _source(clock, handler, max_cycles=4, poll_interval=30.0)
    for _batch in source:
        handler.updated += 30  # the market moves each cycle
    starts = [at - handler.calls[0][0] for at, _ in handler.calls]
    assert starts == [0.0, 30.0, 60.0, 90.0]
    assert clock.sleeps == [26.0, 26.0, 26.0]


def test_unchanged_quotes_are_not_republished() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock)
    source = _source(clock, handler, max_cycles=3)
    batches = []
    for batch in source:
        batches.append(batch)
        if batch.cycle == 2:
            handler.updated += 60
    assert [len(b.ticks) for b in batches] == [10, 0, 10]
    assert [b.unchanged for b in batches] == [0, 10, 0]
    assert metered(batches)[1].unchanged == 10


def test_bad_coins_are_skipped_and_the_rest_published() -> None:
    def partly_bad(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(_simple_response(request).content)
        body["bitcoin"]["usd"] = None
        body["ethereum"]["usd_24h_vol"] = -1
        del body["solana"]
        body["unknown-coin"] = {"usd": 3}
        return httpx.Response(200, content=orjson.dumps(body))

    clock = FakeClock(T0)
    (batch,) = list(_source(clock, Scripted(clock, partly_bad)))
    assert len(batch.ticks) == 7
    assert dict(batch.skipped) == {
        "null_price": 1,
        "negative_volume": 1,
        "missing_coin": 1,
        "unknown_id": 1,
    }


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            lambda r: httpx.Response(
                200, text="<html>Cloudflare</html>", headers={"content-type": "text/html"}
            ),
            "html_error_page",
        ),
        (lambda r: httpx.Response(200, content=b'{"bitcoin": {"us'), "malformed_json"),
        (lambda r: httpx.Response(200, json={"error": "coin not found"}), "error_body"),
        (lambda r: httpx.Response(404, json={"error": "Not Found"}), "http_404"),
    ],
)
def test_unreadable_bodies_fail_the_cycle_without_crashing(reply: Handler, reason: str) -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, reply)
    first, second = list(_source(clock, handler, max_cycles=2))
    assert first.error == reason
    assert len(handler.calls) == 2  # no retry of a bad body; the next cycle works
    assert len(second.ticks) == 10


def test_key_error_reported_once_and_key_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    body = {"status": {"error_code": 10002, "error_message": "API Key Missing"}}
    handler = Scripted(clock, *[status(401, body=body)] * 3)
    caplog.set_level(logging.DEBUG)
    batches = list(_source(clock, handler, max_cycles=3, api_key="CG-very-secret"))
    assert [b.error for b in batches] == ["key_error"] * 3
    assert len(handler.calls) == 3  # not retried
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "COINGECKO_API_KEY" in errors[0].getMessage()
    assert "CG-very-secret" not in caplog.text


def test_many_coins_use_coins_markets_in_pages_within_the_rate_limit() -> None:
    coins = [f"coin-{i:04d}" for i in range(600)]

    def markets(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v3/coins/markets"
        ids = request.url.params["ids"].split(",")
        rows = [{**MARKET_ROW, "id": c, "symbol": c[-3:]} for c in ids if c != "coin-0599"]
        return httpx.Response(200, json=rows)

    clock = FakeClock(T0)
    handler = Scripted(clock, markets, markets, markets)
    source = _source(clock, handler, coins=coins, calls_per_minute=30.0)
    assert source.use_markets
    (batch,) = list(source)
    assert len(handler.calls) == 3
    sizes = [len(r.url.params["ids"].split(",")) for _, r in handler.calls]
    assert sizes == [250, 250, 100]
    assert {r.url.params["per_page"] for _, r in handler.calls} == {"250"}
    assert len(batch.ticks) == 599
    assert dict(batch.skipped) == {"missing_coin": 1}
    gaps = [b[0] - a[0] for a, b in zip(handler.calls, handler.calls[1:], strict=False)]
    assert gaps == [2.0, 2.0]  # 30 calls per minute


def test_top_n_paginates_until_a_short_page() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        count = 250 if number == 1 else 10
        rows = [{**MARKET_ROW, "id": f"c{number}-{i}"} for i in range(count)]
        return httpx.Response(200, json=rows)

    clock = FakeClock(T0)
    handler = Scripted(clock, page, page, page)
    source = _source(clock, handler, coins=[], top=700)
    (batch,) = list(source)
    assert [r.url.params["page"] for _, r in handler.calls] == ["1", "2"]
    assert "ids" not in handler.calls[0][1].url.params
    assert len(batch.ticks) == 260


def test_stop_ends_the_schedule() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock)
    source = _source(clock, handler, max_cycles=None)
    seen = 0
    for _ in source:
        seen += 1
        if seen == 2:
            source.stop()
    assert seen == 2


def test_from_settings() -> None:
    settings = ProducerSettings(
        coins=["bitcoin"], poll_interval=5, coingecko_api_key="k", coingecko_plan="pro"
    )
    source = CoinGeckoSource.from_settings(settings, clock=FakeClock())
    assert source.client.base_url == PRO_BASE_URL
    assert source.poll_interval == 5
    assert source.client.min_spacing == 60 / 500
    assert "1 coin via /simple/price" in source.describe()


# -- issue #11: the key only over https, no redirects, bounded bodies ----------------------------

SECRET = "CG-unit-secret-7d2a"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://api.coingecko.com/api/v3", True),
        ("HTTPS://pro-api.coingecko.com/api/v3", True),
        ("http://127.0.0.1:8080/api/v3", True),
        ("http://127.5.6.7/api/v3", True),
        ("http://[::1]:9000/api/v3", True),
        ("http://localhost:9000/api/v3", True),
        ("http://api.coingecko.com/api/v3", False),
        ("http://10.0.0.2/api/v3", False),
        ("http://127.0.0.1.nip.io/api/v3", False),
        ("http://localhost.evil.example/api/v3", False),
        ("ftp://api.coingecko.com/", False),
        ("api.coingecko.com/api/v3", False),
    ],
)
def test_secret_safe_url(url: str, safe: bool) -> None:
    assert secret_safe_url(url) is safe


def test_settings_refuse_a_key_over_plain_http_without_printing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        ProducerSettings(coingecko_api_key=SECRET, coingecko_base_url="http://api.coingecko.com")
    message = str(refused.value)
    assert "coingecko_base_url" in message and "https://" in message
    assert SECRET not in message and SECRET not in repr(refused.value)
    # Without a key plain http is fine (a local mirror), and loopback is fine with one.
    assert ProducerSettings(coingecko_base_url="http://mirror.internal/api/v3")
    assert ProducerSettings(coingecko_api_key=SECRET, coingecko_base_url="http://127.0.0.1:1/v3")
    # A pasted key's newline and spaces go; a blank key is no key.
    pasted = ProducerSettings(coingecko_api_key=f"  {SECRET}\n").coingecko_api_key
    assert pasted is not None and pasted.get_secret_value() == SECRET
    assert ProducerSettings(coingecko_api_key=" \n").coingecko_api_key is None


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"base_url": "http://api.coingecko.com/api/v3", "api_key": SECRET}, "https://"),
        ({"api_key": f"{SECRET}\r\nX-Injected: 1"}, "control characters"),
        ({"api_key": "CG key with spaces"}, "control characters"),
    ],
)
def test_the_source_refuses_an_unsafe_key_without_printing_it(
    kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        CoinGeckoSource(DEFAULT, **kwargs)
    key = kwargs["api_key"].strip()
    assert key not in str(refused.value) and key not in repr(refused.value)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_fails_the_cycle_and_is_not_followed(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers={"Location": "https://elsewhere.example/steal"})

    clock = FakeClock(T0)
    handler = Scripted(clock, moved)
    caplog.set_level(logging.INFO)
    first, second = list(_source(clock, handler, max_cycles=2, api_key=SECRET))
    assert first.error == "redirect" and not first.ticks
    assert [r.url.host for _, r in handler.calls] == ["coingecko.test"] * 2  # never elsewhere
    assert len(second.ticks) == 10
    assert f"HTTP {code} redirect refused" in caplog.text
    assert "elsewhere" not in caplog.text


def test_an_oversized_body_fails_the_cycle_without_retries() -> None:
    clock = FakeClock(T0)
    handler = Scripted(clock, lambda r: httpx.Response(200, content=b" " * 70_000 + b"{}"))
    source = _source(clock, handler, max_cycles=2, max_body_bytes=65_536)
    (first, second), metrics = metered(source)
    assert first.error == "too_large"
    assert metrics.retries == 0 and len(handler.calls) == 2
    assert len(second.ticks) == 10


def test_from_settings_passes_the_limits() -> None:
    settings = ProducerSettings(http_deadline=7, http_max_body_bytes=100_000)
    source = CoinGeckoSource.from_settings(settings, clock=FakeClock())
    assert (source.client.deadline, source.client.max_body_bytes) == (7, 100_000)


# -- sources.http.get over streamed mock responses (the way a socket delivers them) ------------


class Chunks(httpx.SyncByteStream):
    """A response body that arrives in pieces, as from a socket (not pre-read by httpx)."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self.parts = parts
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            self.pulled += 1
            yield part


def _get(body: Chunks, headers: dict[str, str] | None = None, cap: int = 1 << 20) -> bytes:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, headers=headers, stream=body))
    with http.new_client("https://api.test", {}, timeout=1.0, transport=transport) as client:
        return http.get(client, "/x", {}, max_bytes=cap, deadline=5.0).body


def _pieces(data: bytes, size: int = 16 << 10) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_get_decodes_gzip_itself_and_asks_for_nothing_else() -> None:
    payload = orjson.dumps(SIMPLE)
    assert _get(Chunks(_pieces(gzip.compress(payload), 7)), {"content-encoding": "gzip"}) == payload
    assert _get(Chunks([payload])) == payload
    client = http.new_client("https://api.test", {"a": "b"}, timeout=1.0)
    assert client.headers["accept-encoding"] == "gzip" and not client.follow_redirects
    client.close()


def test_get_refuses_a_gzip_bomb_after_the_cap_without_inflating_it() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join([*(packer.compress(bytes(1 << 20)) for _ in range(32)), packer.flush()])
    assert len(bomb) < 64 << 10  # 32 MiB inflated
    cap = 256 << 10
    tracemalloc.start()
    try:
        with pytest.raises(http.FetchError) as refused:
            _get(Chunks(_pieces(bomb)), {"content-encoding": "gzip"}, cap=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "too_large"
    assert peak < 4 * cap, peak


def test_get_refuses_a_declared_oversized_body_before_reading_it() -> None:
    body = Chunks([b"x" * 10])
    with pytest.raises(http.FetchError) as refused:
        _get(body, {"content-length": str(2 << 20)})
    assert refused.value.reason == "too_large" and body.pulled == 0


def test_get_refuses_an_oversized_plain_body_while_streaming() -> None:
    body = Chunks(b"x" * 1024 for _ in range(10_000))
    with pytest.raises(http.FetchError) as refused:
        _get(body, cap=64 << 10)
    assert refused.value.reason == "too_large" and body.pulled == 65


@pytest.mark.parametrize(
    ("parts", "encoding", "says"),
    [
        ([b"\x1f\x8b\x08\x00garbage-not-deflate"], "gzip", "corrupt gzip"),
        ([gzip.compress(b'{"a": 1}')[:-6]], "gzip", "truncated gzip"),
        ([b"{}"], "br", "unsupported content-encoding"),
    ],
)
def test_get_refuses_bodies_it_cannot_decode(parts: list[bytes], encoding: str, says: str) -> None:
    with pytest.raises(http.FetchError, match=says) as refused:
        _get(Chunks(parts), {"content-encoding": encoding})
    assert refused.value.reason == "bad_response"


def test_get_cuts_a_body_off_at_the_deadline_between_chunks() -> None:
    pause = threading.Event()

    def forever() -> Iterator[bytes]:
        while True:
            pause.wait(0.01)  # a slow server: a byte every 10 ms
            yield b" "

    transport = httpx.MockTransport(lambda r: httpx.Response(200, stream=Chunks(forever())))
    with http.new_client("https://api.test", {}, timeout=1.0, transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(http.FetchError) as late:
            http.get(client, "/x", {}, max_bytes=1 << 20, deadline=0.3)
    assert late.value.reason == "deadline_exceeded"
    assert 0.3 <= time.monotonic() - started < 1.0


# -- backfill: /coins/{id}/market_chart ---------------------------------------------------------


def _chart(now: float, points: int = 288, price: float = 100.0) -> dict[str, list[list[float]]]:
    """A market_chart body of the real shape: `[unix ms, value]` pairs, 5 minutes apart."""
    times = [int((now - 300 * (points - 1 - i)) * 1000) for i in range(points)]
    return {
        "prices": [[ms, price + i * 0.01] for i, ms in enumerate(times)],
        "market_caps": [[ms, 1e9 + i] for i, ms in enumerate(times)],
        "total_volumes": [[ms, 5e7 + i] for i, ms in enumerate(times)],
    }


def test_market_chart_real_shape() -> None:
    chart = MarketChart.read(_chart(T0, points=3))
    points, skipped = chart.points()
    assert not skipped
    assert [p.at for p in points] == [T0 - 600, T0 - 300, T0]
    assert [p.price for p in points] == [100.0, 100.01, 100.02]
    assert [(p.market_cap, p.volume_24h) for p in points][-1] == (1e9 + 2, 5e7 + 2)
    assert all(p.change_24h is None for p in points)  # the chart has none; see with_day_change


def test_market_chart_pairs_are_read_one_by_one() -> None:
    body = _chart(T0, points=2)
    body["prices"] += [[T0 * 1000 + 1, None], ["x", 1.0], [1, 2, 3], [T0 * 1000 + 2, True], 7]
    body["market_caps"].append([T0 * 1000, "big"])  # an unreadable cap: that point has none
    points, skipped = MarketChart.read(body).points()
    assert len(points) == 2
    assert skipped == {"null_price": 1, "malformed_point": 4}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "malformed_chart"),
        ({"prices": "no"}, "malformed_chart"),
        ({"market_caps": []}, "malformed_chart"),
        ({"prices": []}, "no_points"),
        ({"prices": [[T0 * 1000, 1.0]] * 5001}, "too_many_points"),
        ({"error": "coin not found"}, "malformed_chart"),
    ],
)
def test_unusable_market_charts_are_refused_with_a_reason(payload: Any, reason: str) -> None:
    with pytest.raises(ChartProblem) as refused:
        MarketChart.read(payload)
    assert refused.value.reason == reason


class Charts(Scripted):
    """/simple/price as usual, and each coin's market_chart: normal, or a scripted failure."""

    def __init__(self, clock: FakeClock, **faults: list[Handler]) -> None:
        super().__init__(clock)
        self.faults = faults

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.endswith("/market_chart"):
            return super().__call__(request)
        self.calls.append((self.clock.monotonic(), request))
        coin = path.split("/")[-2]
        assert request.url.params["vs_currency"] == "usd" and request.url.params["days"] == "1"
        if self.faults.get(coin):
            return self.faults[coin].pop(0)(request)
        return httpx.Response(200, json=_chart(self.clock.time() - 1))

    def times(self, kind: str) -> list[float]:
        return [at - self.calls[0][0] for at, r in self.calls if r.url.path.endswith(kind)]


def _backfilling(
    clock: FakeClock, handler: Scripted, **kwargs: Any
) -> tuple[CoinGeckoSource, Collected]:
    retry = kwargs.pop("retry", 600.0)
    source = _source(clock, handler, **kwargs)
    sink = Collected()
    source.backfill_to(sink, window_seconds=30.0, retry=retry)
    return source, sink


def test_backfill_takes_only_the_slots_polls_leave() -> None:
    """Keyless budget: 5 calls a minute (12 s apart), a poll every 30 s. A chart goes out only
    where the next poll still gets its own slot, so polls stay exactly on their grid."""
    clock = FakeClock(T0)
    handler = Charts(clock)
    source, sink = _backfilling(
        clock, handler, coins=DEFAULT[:3], max_cycles=4, calls_per_minute=5.0, poll_interval=30.0
    )
    batches, metrics = metered(source)
    assert handler.times("/simple/price") == [0.0, 30.0, 60.0, 90.0]
    assert handler.times("/market_chart") == [12.0, 42.0, 72.0]  # 24 s would crowd the poll at 30
    starts = sorted(at for at, _ in handler.calls)
    assert all(b - a >= 12.0 for a, b in itertools.pairwise(starts))  # the budget
    assert list(sink.windows) == DEFAULT[:3]
    assert sink.rounds == [3] and sink.failures == []
    assert metrics.requests == 7  # charts counted with the polls
    live_start = batches[0].ticks[0].timestamp
    for windows in sink.windows.values():
        assert len(windows) == 287  # the newest point is in the live window
        assert windows[-1].window_end <= live_start
        assert all(w.kind == "backfill" and w.source == "coingecko" for w in windows)
        assert windows[0].symbol == symbol_of(windows[0].coin)


def test_a_failed_chart_skips_its_coin_once_and_is_tried_again_later() -> None:
    clock = FakeClock(T0)
    handler = Charts(
        clock,
        bitcoin=[status(429, {"Retry-After": "5"})],
        ethereum=[lambda r: httpx.Response(200, content=b'{"prices": [[1,')],
        ripple=[timeout],
    )
    coins = ["bitcoin", "ethereum", "ripple", "solana"]
    source, sink = _backfilling(
        clock, handler, coins=coins, max_cycles=4, poll_interval=30.0, retry=40.0
    )
    list(source)
    assert sink.failures == [
        ("bitcoin", "rate_limited", 40.0),
        ("ethereum", "malformed_json", 40.0),
        ("ripple", "timeout", 40.0),
    ]
    assert sink.rounds == [4]
    assert set(sink.windows) == set(coins)  # each made it on its retry
    charts = [(at, r.url.path.split("/")[-2]) for at, r in handler.calls if "chart" in r.url.path]
    tries = {coin: [at for at, c in charts if c == coin] for coin in coins}
    assert all(len(t) == 2 for c, t in tries.items() if c != "solana")  # no quick retries
    assert tries["bitcoin"][1] - tries["bitcoin"][0] >= 40.0
    assert tries["ethereum"][0] - tries["bitcoin"][0] >= 5.0  # Retry-After holds every chart
    assert handler.times("/simple/price") == [0.0, 30.0, 60.0, 90.0]


def test_top_n_backfills_the_coins_its_first_page_names() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        rows = [{**MARKET_ROW, "id": f"c{i}", "symbol": f"S{i}"} for i in range(3)]
        return httpx.Response(200, json=rows)

    clock = FakeClock(T0)
    handler = Charts(clock)
    handler.script = [page, page]
    source, sink = _backfilling(clock, handler, coins=[], top=3, max_cycles=2)
    list(source)
    assert list(sink.windows) == ["c0", "c1", "c2"]
    assert sink.windows["c1"][0].symbol == "s1"


def test_without_a_sink_no_chart_is_fetched() -> None:
    clock = FakeClock(T0)
    handler = Charts(clock)
    list(_source(clock, handler, max_cycles=3, poll_interval=30.0))
    assert handler.times("/market_chart") == []
