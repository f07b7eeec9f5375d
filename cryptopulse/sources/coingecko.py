"""CoinGecko: poll current prices and turn them into Ticks.

Few coins (the default ten): one `GET /simple/price` per cycle. Many coins (hundreds to
thousands): `GET /coins/markets`, 250 coins per page, requests spaced to stay within the
plan's rate limit.

Parsing, `Retry-After` and back-off are pure functions; `CoinGeckoSource` adds the I/O:
bounded requests (`sources.http`: no redirects, a body cap, an overall deadline; injectable
transport and base URL), a retry loop on an injectable clock, and the poll schedule. Nothing
here raises on bad data: a bad coin is skipped and counted with a reason, a failed cycle is
logged and the next one runs on time. The API key travels only in its header, only over
https (or to loopback), and is redacted from anything the server says that gets logged.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import orjson
from pydantic import ValidationError

from cryptopulse.coins import symbol_of as derive_symbol
from cryptopulse.config import ProducerSettings, secret_safe_url
from cryptopulse.schema import Tick
from cryptopulse.sources import http
from cryptopulse.sources.base import Batch, Clock, SystemClock, next_deadline

log = logging.getLogger("cryptopulse.sources.coingecko")

SOURCE_NAME: Final = "coingecko"
PUBLIC_BASE_URL: Final = "https://api.coingecko.com/api/v3"
PRO_BASE_URL: Final = "https://pro-api.coingecko.com/api/v3"
KEY_HEADERS: Final = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}

BACKOFF: Final = (5.0, 10.0, 20.0)
MAX_RETRIES: Final = 3
MAX_RETRY_AFTER: Final = 600.0  # a larger Retry-After is taken as this (and logged)
# Failures worth another try within the cycle; the others (a redirect, a body over the cap)
# would only come again, so the cycle fails at once.
RETRIED: Final = frozenset({http.TIMEOUT, http.DEADLINE, http.CONNECTION_ERROR, http.BAD_RESPONSE})
MAX_BODY_BYTES: Final = 4 * 1024 * 1024  # decompressed; a /coins/markets page is ~300 KB
REQUEST_DEADLINE: Final = 20.0  # seconds for one request in all, headers and body
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")  # what a header value may carry, unquoted
_MAX_SERVER_TEXT: Final = 200  # of a server's error message
_MAX_LOG_TEXT: Final = 500  # of any text from the server or an exception, in a log line
MARKETS_PAGE_SIZE: Final = 250  # the most /coins/markets returns per page
SIMPLE_PRICE_MAX_IDS: Final = 50  # above this, /coins/markets (URL length, one big response)
# Calls per minute each plan allows (keyless public use is lower and varies).
PLAN_CALLS_PER_MINUTE: Final = {"public": 5.0, "demo": 30.0, "pro": 500.0}

# CoinGecko's own error codes that mean "fix your key or URL" (sent with HTTP 401/403).
KEY_ERROR_HINTS: Final[Mapping[int, str]] = {
    10002: (
        "CoinGecko requires an API key (error 10002): set CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY "
        "(a free Demo key from coingecko.com/en/api)"
    ),
    10005: (
        "this CoinGecko plan has no access to the endpoint (error 10005): use fewer coins "
        "(/simple/price) or a plan that includes /coins/markets"
    ),
    10010: (
        "CoinGecko refused the key for pro-api.coingecko.com (error 10010): a Demo key needs "
        "CRYPTOPULSE_PRODUCER__COINGECKO_PLAN=demo and the api.coingecko.com base URL"
    ),
    10011: (
        "CoinGecko refused the key for api.coingecko.com (error 10011): a Pro key needs "
        "CRYPTOPULSE_PRODUCER__COINGECKO_PLAN=pro (base URL pro-api.coingecko.com)"
    ),
}


# -- pure parsing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A parsed tick and the source's own update time (None when it gave none)."""

    tick: Tick
    updated_at: float | None


@dataclass
class Parsed:
    quotes: list[Quote] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(
    value: object, name: str, *, positive: bool = False, nullable: bool = True
) -> float | None:
    """A finite JSON number; raises `_Bad` with a reason for null (when not allowed),
    non-numbers, non-finite, negative (or non-positive) values."""
    if value is None:
        if nullable:
            return None
        raise _Bad(f"null_{name}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"bad_{name}")
    number = float(value)
    if not math.isfinite(number):
        raise _Bad(f"bad_{name}")
    if number < 0 or (positive and number == 0):
        raise _Bad(f"negative_{name}" if number < 0 else f"zero_{name}")
    return number


def _change(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad("bad_change")
    return float(value)


def _epoch(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad("bad_timestamp")
    if value <= 0:
        raise _Bad("bad_timestamp")
    return float(value)


def _iso_epoch(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad("bad_timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Bad("bad_timestamp") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _tick(
    coin: str,
    symbol: str,
    price: float | None,
    change: float | None,
    volume: float | None,
    market_cap: float | None,
    observed_at: float,
) -> Tick:
    try:
        return Tick(
            coin=coin,
            symbol=symbol,
            price=price,
            change_24h=change,
            volume_24h=volume,
            market_cap=market_cap,
            timestamp=datetime.fromtimestamp(observed_at, UTC),
            source=SOURCE_NAME,
        )
    except (ValidationError, ValueError, OverflowError, OSError) as exc:
        raise _Bad("invalid_tick") from exc


@dataclass(frozen=True)
class _Fields:
    """Where one endpoint's JSON keeps a quote's figures."""

    price: str
    volume: str
    market_cap: str
    change: str
    updated: str
    parse_updated: Callable[[object], float | None]


def _add_quote(
    out: Parsed,
    coin: str,
    symbol: str,
    entry: dict[str, Any],
    fields: _Fields,
    fetched_at: float,
) -> None:
    """One coin's entry as a Quote, or its skip reason (the first figure that is wrong)."""
    try:
        price = _number(entry.get(fields.price), "price", positive=True, nullable=False)
        volume = _number(entry.get(fields.volume), "volume")
        market_cap = _number(entry.get(fields.market_cap), "market_cap")
        change = _change(entry.get(fields.change))
        updated = fields.parse_updated(entry.get(fields.updated))
        tick = _tick(
            coin,
            symbol,
            price,
            change,
            volume,
            market_cap,
            updated if updated is not None else fetched_at,
        )
    except _Bad as bad:
        out.skipped[bad.reason] += 1
        return
    out.quotes.append(Quote(tick, updated))


def parse_simple_price(payload: object, requested: Sequence[str], fetched_at: float) -> Parsed:
    """Ticks from a `/simple/price` body (`{"bitcoin": {"usd": ..., ...}, ...}`).

    Every requested coin becomes a quote or a skip reason; ids nobody asked for are
    skipped as `unknown_id`. `fetched_at` is the timestamp when CoinGecko gives none.
    """
    out = Parsed()
    if not isinstance(payload, dict):
        out.skipped["malformed_response"] += len(requested) or 1
        return out
    wanted = set(requested)
    for coin in payload:
        if coin not in wanted:
            out.skipped["unknown_id"] += 1
    for coin in requested:
        entry = payload.get(coin)
        if coin not in payload:
            out.skipped["missing_coin"] += 1
            continue
        if not isinstance(entry, dict) or not entry:
            out.skipped["malformed_quote"] += 1
            continue
        _add_quote(out, coin, derive_symbol(coin), entry, _SIMPLE_PRICE_FIELDS, fetched_at)
    return out


def parse_coins_markets(
    payload: object, fetched_at: float, requested: Sequence[str] | None = None
) -> Parsed:
    """Ticks from a `/coins/markets` body (a JSON array of coin objects).

    With `requested`, coins outside it are skipped as `unknown_id` (missing coins are
    counted by the caller, which sees every page).
    """
    out = Parsed()
    if not isinstance(payload, list):
        out.skipped["malformed_response"] += 1
        return out
    wanted = set(requested) if requested is not None else None
    for entry in payload:
        if not isinstance(entry, dict):
            out.skipped["malformed_quote"] += 1
            continue
        coin = entry.get("id")
        if not isinstance(coin, str) or not coin:
            out.skipped["malformed_quote"] += 1
            continue
        if wanted is not None and coin not in wanted:
            out.skipped["unknown_id"] += 1
            continue
        raw_symbol = entry.get("symbol")
        symbol = (
            raw_symbol.lower()
            if isinstance(raw_symbol, str) and 0 < len(raw_symbol) <= 20
            else derive_symbol(coin)
        )
        _add_quote(out, coin, symbol, entry, _MARKETS_FIELDS, fetched_at)
    return out


_SIMPLE_PRICE_FIELDS = _Fields(
    "usd", "usd_24h_vol", "usd_market_cap", "usd_24h_change", "last_updated_at", _epoch
)
_MARKETS_FIELDS = _Fields(
    "current_price",
    "total_volume",
    "market_cap",
    "price_change_percentage_24h",
    "last_updated",
    _iso_epoch,
)


def decode_body(content: bytes, content_type: str = "") -> tuple[Any, str | None]:
    """(payload, None) for a JSON body, else (None, reason): `html_error_page` for the
    CDN's HTML pages, `malformed_json` for anything else."""
    try:
        return orjson.loads(content), None
    except orjson.JSONDecodeError:
        head = content[:200].lstrip().lower()
        if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html", b"<")):
            return None, "html_error_page"
        return None, "malformed_json"


def error_code(payload: object) -> tuple[int | None, str | None]:
    """CoinGecko's error code and message (at most 200 characters) from
    `{"status": {"error_code", "error_message"}}` or `{"error": "..."}`; (None, None) for a
    normal body."""
    if not isinstance(payload, dict):
        return None, None
    status = payload.get("status")
    if isinstance(status, dict) and "error_code" in status:
        code = status.get("error_code")
        message = status.get("error_message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            str(message)[:_MAX_SERVER_TEXT] if message is not None else "",
        )
    if set(payload) == {"error"} or (isinstance(payload.get("error"), str) and len(payload) <= 2):
        return None, str(payload.get("error"))[:_MAX_SERVER_TEXT]
    return None, None


def key_problem(status_code: int, payload: object) -> str | None:
    """A plain sentence saying what to fix when the key, plan or URL is wrong, else None."""
    code, message = error_code(payload)
    if code is not None and code in KEY_ERROR_HINTS:
        return KEY_ERROR_HINTS[code]
    if status_code == 401:
        return (
            f"CoinGecko refused the request as unauthorized (HTTP 401{': ' + message if message else ''}): "
            "check CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY and CRYPTOPULSE_PRODUCER__COINGECKO_PLAN"
        )
    if status_code == 403:
        return (
            f"CoinGecko refused access (HTTP 403{': ' + message if message else ''}): check the API "
            "key and plan, or whether this network is blocked by CoinGecko's CDN"
        )
    return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date.

    None when absent or unreadable (the caller then backs off on its own); never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int, retry_after: float | None, backoff: Sequence[float] = BACKOFF
) -> float:
    """Wait before retry number `attempt` (0-based): the server's `Retry-After` when it gave
    one (capped at MAX_RETRY_AFTER), else the back-off sequence (5 s, 10 s, 20 s)."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return backoff[min(attempt, len(backoff) - 1)]


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# -- the source ---------------------------------------------------------------------------


@dataclass
class CoinGeckoStats:
    cycles: int = 0
    failed_cycles: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    quotes: int = 0


class _GiveUp(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CoinGeckoSource:
    """Polls CoinGecko every `poll_interval` seconds on a fixed grid; yields one Batch per cycle."""

    name = SOURCE_NAME

    def __init__(
        self,
        coins: Sequence[str],
        *,
        base_url: str = PUBLIC_BASE_URL,
        api_key: str | None = None,
        plan: str = "demo",
        poll_interval: float = 30.0,
        timeout: float = 10.0,
        deadline: float = REQUEST_DEADLINE,
        max_body_bytes: int = MAX_BODY_BYTES,
        top: int = 0,
        markets_threshold: int = SIMPLE_PRICE_MAX_IDS,
        calls_per_minute: float | None = None,
        backoff: Sequence[float] = BACKOFF,
        max_retries: int = MAX_RETRIES,
        max_cycles: int | None = None,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not coins and top <= 0:
            raise ValueError("no coins to poll")
        self.coins = list(dict.fromkeys(coins))  # unique, order kept
        self.top = top
        self.use_markets = top > 0 or len(self.coins) > markets_threshold
        self.poll_interval = poll_interval
        self.backoff = tuple(backoff)
        self.max_retries = max_retries
        self.max_cycles = max_cycles
        self.clock: Clock = clock or SystemClock()
        self.stats = CoinGeckoStats()
        if plan == "pro" and base_url.rstrip("/") == PUBLIC_BASE_URL:
            base_url = PRO_BASE_URL
        api_key = (api_key or "").strip() or None
        if api_key is not None and not _HEADER_SAFE.fullmatch(api_key):
            raise ValueError(
                "the CoinGecko API key holds spaces or control characters (an HTTP header "
                "cannot carry them): check CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY"
            )
        if api_key is not None and not secret_safe_url(base_url):
            raise ValueError(
                "a CoinGecko API key is only sent over https:// (or to a loopback address): "
                "check CRYPTOPULSE_PRODUCER__COINGECKO_BASE_URL"
            )
        self._api_key = api_key
        headers = {"accept": "application/json", "user-agent": "cryptopulse/0.1"}
        if api_key:
            headers[KEY_HEADERS.get(plan, KEY_HEADERS["demo"])] = api_key
        self.base_url = base_url
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        plan_key = plan if api_key else "public"
        cpm = calls_per_minute or PLAN_CALLS_PER_MINUTE.get(plan_key, 5.0)
        self.min_spacing = 60.0 / cpm
        self._client = http.new_client(base_url, headers, timeout=timeout, transport=transport)
        self._last_request: float | None = None
        self._not_before = 0.0  # a Retry-After that outlasted the retries
        self._last_seen: dict[str, float] = {}
        self._key_error_reported = False
        self._warned_status: set[int] = set()

    @classmethod
    def from_settings(
        cls, settings: ProducerSettings, *, clock: Clock | None = None, **overrides: Any
    ) -> CoinGeckoSource:
        key = settings.coingecko_api_key.get_secret_value() if settings.coingecko_api_key else None
        kwargs: dict[str, Any] = {
            "base_url": settings.coingecko_base_url,
            "api_key": key,
            "plan": settings.coingecko_plan,
            "poll_interval": settings.poll_interval,
            "timeout": settings.http_timeout,
            "deadline": settings.http_deadline,
            "max_body_bytes": settings.http_max_body_bytes,
            "top": settings.coingecko_top,
            "calls_per_minute": settings.coingecko_calls_per_minute,
            "clock": clock,
        }
        kwargs.update(overrides)
        return cls(settings.coins, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self.clock.stop()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CoinGeckoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        what = (
            f"top {self.top} coins"
            if self.top
            else f"{len(self.coins)} coin{'s' if len(self.coins) != 1 else ''}"
        )
        endpoint = "/coins/markets" if self.use_markets else "/simple/price"
        return f"{what} via {endpoint} at {self.base_url} every {self.poll_interval:g} s"

    # -- the schedule --------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        start = self.clock.monotonic()
        deadline = start
        log.info("polling %s", self.describe())
        pages = self._pages_per_cycle()
        if pages > 1 and (pages - 1) * self.min_spacing > self.poll_interval:
            log.warning(
                "%d requests per cycle at %.1f s spacing (rate limit) take longer than the "
                "%g s poll interval: cycles will be skipped; poll fewer coins or raise the limit",
                pages,
                self.min_spacing,
                self.poll_interval,
            )
        while not self.clock.stopped:
            batch = self.poll_once()
            if self.clock.stopped and not batch.ticks:
                return
            yield batch
            if self.max_cycles is not None and self.stats.cycles >= self.max_cycles:
                return
            now = self.clock.monotonic()
            upcoming = next_deadline(start, self.poll_interval, now)
            missed = round((upcoming - deadline) / self.poll_interval) - 1
            if missed > 0:
                log.warning("cycle %d overran; skipping %d scheduled poll(s)", batch.cycle, missed)
            deadline = upcoming
            if self.clock.sleep(upcoming - now):
                return

    def _pages_per_cycle(self) -> int:
        if not self.use_markets:
            return 1
        count = self.top if self.top else len(self.coins)
        return max(1, math.ceil(count / MARKETS_PAGE_SIZE))

    # -- one cycle -----------------------------------------------------------------------

    def poll_once(self) -> Batch:
        """Fetch once (with retries) and return the new quotes as a Batch."""
        self.stats.cycles += 1
        cycle = self.stats.cycles
        try:
            parsed = self._fetch_markets() if self.use_markets else self._fetch_simple()
        except _GiveUp as gave_up:
            self.stats.failed_cycles[gave_up.reason] += 1
            return Batch([], cycle=cycle, error=gave_up.reason)
        batch = Batch([], skipped=parsed.skipped, cycle=cycle)
        for quote in parsed.quotes:
            coin = quote.tick.coin
            if quote.updated_at is not None:
                seen = self._last_seen.get(coin)
                if seen is not None and quote.updated_at <= seen:
                    batch.unchanged += 1
                    continue
                self._last_seen[coin] = quote.updated_at
            batch.ticks.append(quote.tick)
        self.stats.quotes += len(batch.ticks)
        self.stats.unchanged += batch.unchanged
        self.stats.skipped.update(batch.skipped)
        return batch

    def _fetch_simple(self) -> Parsed:
        params = {
            "ids": ",".join(self.coins),
            "vs_currencies": "usd",
            "include_market_cap": "true",
            "include_24hr_vol": "true",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }
        payload = self._get("/simple/price", params)
        return parse_simple_price(payload, self.coins, self.clock.time())

    def _fetch_markets(self) -> Parsed:
        base = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": str(MARKETS_PAGE_SIZE),
            "sparkline": "false",
            "price_change_percentage": "24h",
        }
        parsed = Parsed()
        if self.top:
            requests = [
                {**base, "page": str(page)} for page in range(1, self._pages_per_cycle() + 1)
            ]
            requested: list[str] | None = None
        else:
            requests = [
                {**base, "ids": ",".join(ids), "page": "1"}
                for ids in chunks(self.coins, MARKETS_PAGE_SIZE)
            ]
            requested = self.coins
        seen: set[str] = set()
        failures: list[str] = []
        for params in requests:
            try:
                payload = self._get("/coins/markets", params)
            except _GiveUp as gave_up:
                if gave_up.reason in ("key_error", "stopped"):
                    raise
                failures.append(gave_up.reason)  # the other pages still count
                if requested is not None:
                    seen.update(params["ids"].split(","))  # not "missing": the page failed
                continue
            page = parse_coins_markets(payload, self.clock.time(), requested)
            parsed.quotes.extend(page.quotes)
            parsed.skipped.update(page.skipped)
            if isinstance(payload, list):
                seen.update(e["id"] for e in payload if isinstance(e, dict) and "id" in e)
            if self.top and isinstance(payload, list) and len(payload) < MARKETS_PAGE_SIZE:
                break  # last page
        if failures and len(failures) == len(requests):
            raise _GiveUp(failures[0])
        if failures:
            parsed.skipped["page_failed"] += len(failures)
        if requested is not None:
            parsed.skipped["missing_coin"] += sum(1 for c in requested if c not in seen)
        return parsed

    # -- HTTP with retries ---------------------------------------------------------------

    def _throttle(self) -> bool:
        """Wait for the rate limit and any pending Retry-After; True when stopped."""
        now = self.clock.monotonic()
        wait = self._not_before - now
        if self._last_request is not None:
            wait = max(wait, self._last_request + self.min_spacing - now)
        return self.clock.sleep(wait) if wait > 0 else self.clock.stopped

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """The JSON body of a successful GET; raises `_GiveUp(reason)` after the retries."""
        for attempt in range(self.max_retries + 1):
            if self._throttle():
                raise _GiveUp("stopped")
            self._last_request = self.clock.monotonic()
            self.stats.requests += 1
            retry_after: float | None = None
            try:
                reply = http.get(
                    self._client,
                    path,
                    params,
                    max_bytes=self.max_body_bytes,
                    deadline=self.deadline,
                )
            except http.FetchError as failed:
                if failed.reason not in RETRIED:
                    log.warning(
                        "CoinGecko %s: %s; trying again next cycle", path, self._safe(str(failed))
                    )
                    raise _GiveUp(failed.reason) from None
                reason = failed.reason
                log.debug("CoinGecko %s: %s", path, self._safe(str(failed)))
            else:
                status = reply.status
                if status == 429:
                    reason = "rate_limited"
                    retry_after = parse_retry_after(
                        reply.headers.get("retry-after"), self.clock.time()
                    )
                elif status >= 500:
                    reason = f"http_{status}"
                else:
                    return self._accept(reply)
            if attempt == self.max_retries:
                if retry_after is not None:
                    self._not_before = self.clock.monotonic() + min(retry_after, MAX_RETRY_AFTER)
                log.warning(
                    "CoinGecko %s: %s after %d retries; trying again next cycle",
                    path,
                    reason.replace("_", " "),
                    self.max_retries,
                )
                raise _GiveUp(reason)
            delay = retry_delay(attempt, retry_after, self.backoff)
            self.stats.retries += 1
            log.info(
                "CoinGecko %s: %s; retry %d/%d in %.3g s%s",
                path,
                reason.replace("_", " "),
                attempt + 1,
                self.max_retries,
                delay,
                " (Retry-After)" if retry_after is not None else "",
            )
            if self.clock.sleep(delay):
                raise _GiveUp("stopped")
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept(self, reply: http.Reply) -> Any:
        """A non-retryable response: its JSON payload, or `_GiveUp` with a reason."""
        status = reply.status
        payload, bad = decode_body(reply.body, reply.headers.get("content-type", ""))
        problem = key_problem(status, payload)
        if problem is not None:
            if not self._key_error_reported:
                self._key_error_reported = True
                log.error(
                    "%s. The producer keeps polling but publishes nothing until fixed.",
                    self._safe(problem),
                )
            raise _GiveUp("key_error")
        if status >= 400:
            if status not in self._warned_status:
                self._warned_status.add(status)
                _, message = error_code(payload)
                log.error(
                    "CoinGecko answered HTTP %d%s",
                    status,
                    f": {self._safe(message)}" if message else "",
                )
            raise _GiveUp(f"http_{status}")
        if bad is not None:
            log.warning("CoinGecko returned an unreadable body (%s); skipping this cycle", bad)
            raise _GiveUp(bad)
        code, message = error_code(payload)
        if code is not None or message is not None:
            log.warning("CoinGecko returned an error body: %s", self._safe(message or str(code)))
            raise _GiveUp("error_body")
        return payload

    def _safe(self, text: str) -> str:
        """Text from the server or an exception, fit for a log line: the key blanked out (a
        hostile server may echo it back), then bounded."""
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text if len(text) <= _MAX_LOG_TEXT else text[:_MAX_LOG_TEXT] + "…"
