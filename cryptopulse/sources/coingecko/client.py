"""The HTTP client for CoinGecko: the key, the request budget, retries. Parsing is `models`'.

Requests are bounded (`sources.http`: no redirects, a body cap, an overall deadline; an
injectable transport and base URL) and spaced to stay within the plan's calls per minute.
A request that may succeed later (429, 5xx, a timeout, a dropped connection) is retried with
tenacity, waiting what the server's `Retry-After` says, else 5, 10, 20 s; the waits run on the
source's clock, so a stop ends them at once. The API key travels only in its header, only
over https (or to loopback), and is blanked out of anything the server says that gets logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cryptopulse.config import secret_safe_url
from cryptopulse.sources import http
from cryptopulse.sources.base import Batch, Clock
from cryptopulse.sources.coingecko.errors import CycleFailed, TryAgain
from cryptopulse.sources.coingecko.models import decode_body, error_code, key_problem
from cryptopulse.sources.coingecko.retry import (
    BACKOFF,
    MAX_RETRY_AFTER,
    RetryAfterWait,
    parse_retry_after,
)

log = logging.getLogger("cryptopulse.sources.coingecko")

PUBLIC_BASE_URL: Final = "https://api.coingecko.com/api/v3"
PRO_BASE_URL: Final = "https://pro-api.coingecko.com/api/v3"
KEY_HEADERS: Final = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
# Calls per minute each plan allows (keyless public use is lower and varies).
PLAN_CALLS_PER_MINUTE: Final = {"public": 5.0, "demo": 30.0, "pro": 500.0}
MAX_RETRIES: Final = 3
# Failures worth another try; the others (a redirect, a body over the cap) would only come
# again, so the cycle fails at once.
RETRIED: Final = frozenset({http.TIMEOUT, http.DEADLINE, http.CONNECTION_ERROR, http.BAD_RESPONSE})
MAX_BODY_BYTES: Final = 4 * 1024 * 1024  # decompressed; a /coins/markets page is ~300 KB
REQUEST_DEADLINE: Final = 20.0  # seconds for one request in all, headers and body
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")  # what a header value may carry, unquoted
_MAX_LOG_TEXT: Final = 500  # of any text from the server or an exception, in a log line


def checked_key(api_key: str | None, base_url: str) -> str | None:
    """The key, stripped (None when blank); ValueError when it cannot be sent safely."""
    key = (api_key or "").strip() or None
    if key is not None and not _HEADER_SAFE.fullmatch(key):
        raise ValueError(
            "the CoinGecko API key holds spaces or control characters (an HTTP header "
            "cannot carry them): check CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY"
        )
    if key is not None and not secret_safe_url(base_url):
        raise ValueError(
            "a CoinGecko API key is only sent over https:// (or to a loopback address): "
            "check CRYPTOPULSE_PRODUCER__COINGECKO_BASE_URL"
        )
    return key


class CoinGeckoClient:
    """GETs JSON from CoinGecko within the plan's rate, with retries; `get` raises
    `CycleFailed` (with a reason) when there is no usable answer."""

    def __init__(
        self,
        clock: Clock,
        *,
        base_url: str = PUBLIC_BASE_URL,
        api_key: str | None = None,
        plan: str = "demo",
        timeout: float = 10.0,
        deadline: float = REQUEST_DEADLINE,
        max_body_bytes: int = MAX_BODY_BYTES,
        calls_per_minute: float | None = None,
        backoff: Sequence[float] = BACKOFF,
        max_retries: int = MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if plan == "pro" and base_url.rstrip("/") == PUBLIC_BASE_URL:
            base_url = PRO_BASE_URL
        self._api_key = checked_key(api_key, base_url)
        headers = {"accept": "application/json", "user-agent": "cryptopulse/0.1"}
        if self._api_key:
            headers[KEY_HEADERS.get(plan, KEY_HEADERS["demo"])] = self._api_key
        self.clock = clock
        self.base_url = base_url
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        self.max_retries = max_retries
        self.wait = RetryAfterWait(backoff)
        plan_key = plan if self._api_key else "public"
        cpm = calls_per_minute or PLAN_CALLS_PER_MINUTE.get(
            plan_key, PLAN_CALLS_PER_MINUTE["public"]
        )
        self.min_spacing = 60.0 / cpm
        self._http = http.new_client(base_url, headers, timeout=timeout, transport=transport)
        self._last_request: float | None = None
        self._not_before = 0.0  # a Retry-After that outlasted the retries
        self._key_error_reported = False
        self._warned_status: set[int] = set()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str], tally: Batch) -> Any:
        """The JSON body of a successful GET; counts requests and retries into `tally`."""

        def log_retry(state: RetryCallState) -> None:
            tally.retries += 1
            failure = state.outcome.exception() if state.outcome is not None else None
            assert isinstance(failure, TryAgain)
            log.info(
                "CoinGecko %s: %s; retry %d/%d in %.3g s%s",
                path,
                failure.reason.replace("_", " "),
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
                " (Retry-After)" if failure.retry_after is not None else "",
            )

        retrying = Retrying(
            retry=retry_if_exception_type(TryAgain),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self.wait,
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, path, params, tally)
        except TryAgain as exhausted:
            if exhausted.retry_after is not None:
                wait = min(exhausted.retry_after, MAX_RETRY_AFTER)
                self._not_before = self.clock.monotonic() + wait
            log.warning(
                "CoinGecko %s: %s after %d retries; trying again next cycle",
                path,
                exhausted.reason.replace("_", " "),
                self.max_retries,
            )
            raise

    def _sleep(self, seconds: float) -> None:
        if self.clock.sleep(seconds):
            raise CycleFailed("stopped")

    def _throttle(self) -> None:
        """Wait for the rate limit and any pending Retry-After."""
        now = self.clock.monotonic()
        wait = self._not_before - now
        if self._last_request is not None:
            wait = max(wait, self._last_request + self.min_spacing - now)
        if wait > 0:
            self._sleep(wait)
        elif self.clock.stopped:
            raise CycleFailed("stopped")

    def ready_at(self) -> float:
        """The earliest `clock.monotonic()` time the budget lets the next request go out."""
        now = self.clock.monotonic()
        if self._last_request is None:
            return max(now, self._not_before)
        return max(now, self._not_before, self._last_request + self.min_spacing)

    def fetch_once(
        self, path: str, params: Mapping[str, str], tally: Batch, *, deadline: float
    ) -> Any:
        """One request within `deadline` s, no retry and no log line (a backfill: the caller
        tries again much later and says why once). Raises as `get`'s attempts do."""
        return self._attempt(path, params, tally, deadline=deadline, quiet=True)

    def _attempt(
        self,
        path: str,
        params: Mapping[str, str],
        tally: Batch,
        *,
        deadline: float | None = None,
        quiet: bool = False,
    ) -> Any:
        """One request: the payload, `TryAgain` for a failure that may pass, else `CycleFailed`."""
        self._throttle()
        self._last_request = self.clock.monotonic()
        tally.requests += 1
        try:
            reply = http.get(
                self._http,
                path,
                params,
                max_bytes=self.max_body_bytes,
                deadline=self.deadline if deadline is None else deadline,
            )
        except http.FetchError as failed:
            if failed.reason in RETRIED:
                log.debug("CoinGecko %s: %s", path, self.safe(str(failed)))
                raise TryAgain(failed.reason) from None
            if not quiet:
                log.warning(
                    "CoinGecko %s: %s; trying again next cycle", path, self.safe(str(failed))
                )
            raise CycleFailed(failed.reason) from None
        if reply.status == 429:
            header = reply.headers.get("retry-after")
            raise TryAgain("rate_limited", parse_retry_after(header, self.clock.time()))
        if reply.status >= 500:
            raise TryAgain(f"http_{reply.status}")
        return self._accept(reply, quiet=quiet)

    def _accept(self, reply: http.Reply, *, quiet: bool = False) -> Any:
        """A final response: its JSON payload, or `CycleFailed` with a reason."""
        status = reply.status
        payload, bad = decode_body(reply.body, reply.headers.get("content-type", ""))
        problem = key_problem(status, payload)
        if problem is not None:
            if not self._key_error_reported and not quiet:
                self._key_error_reported = True
                log.error(
                    "%s. The producer keeps polling but publishes nothing until fixed.",
                    self.safe(problem),
                )
            raise CycleFailed("key_error")
        code, message = error_code(payload)
        if status >= 400:
            if status not in self._warned_status and not quiet:
                self._warned_status.add(status)
                said = f": {self.safe(message)}" if message else ""
                log.error("CoinGecko answered HTTP %d%s", status, said)
            raise CycleFailed(f"http_{status}")
        if bad is not None:
            if not quiet:
                log.warning("CoinGecko returned an unreadable body (%s); skipping this cycle", bad)
            raise CycleFailed(bad)
        if code is not None or message is not None:
            if not quiet:
                log.warning("CoinGecko returned an error body: %s", self.safe(message or str(code)))
            raise CycleFailed("error_body")
        return payload

    def safe(self, text: str) -> str:
        """Text from the server or an exception, fit for a log line: the key blanked out (a
        hostile server may echo it back), then bounded."""
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text if len(text) <= _MAX_LOG_TEXT else text[:_MAX_LOG_TEXT] + "…"
