"""The CoinGecko source: which requests make up a poll cycle, and when cycles run.

Few coins (the default ten): one `GET /simple/price` per cycle. Many coins (hundreds to
thousands) or the top N by market cap: `GET /coins/markets`, 250 coins a page. Cycles run on a
fixed grid (`poll_interval`); one that overruns skips the slots it missed rather than drift.
Nothing here raises on bad data: a bad coin is skipped and counted with a reason, a failed
cycle is a Batch with an `error`, and the next cycle runs on time. Quotes CoinGecko has not
updated since the last cycle are counted as unchanged, not published again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any, Final

from cryptopulse.config import ProducerSettings
from cryptopulse.sources.base import BackfillSink, Batch, Clock, SystemClock, next_deadline
from cryptopulse.sources.coingecko.backfill import ChartBackfill
from cryptopulse.sources.coingecko.client import CoinGeckoClient
from cryptopulse.sources.coingecko.errors import CycleFailed
from cryptopulse.sources.coingecko.models import (
    SOURCE_NAME,
    Parsed,
    market_ids,
    parse_coins_markets,
    parse_simple_price,
)

log = logging.getLogger("cryptopulse.sources.coingecko")

MARKETS_PAGE_SIZE: Final = 250  # the most /coins/markets returns per page
SIMPLE_PRICE_MAX_IDS: Final = 50  # above this, /coins/markets (URL length, one big response)
_SIMPLE_PRICE: Final = {
    "vs_currencies": "usd",
    "include_market_cap": "true",
    "include_24hr_vol": "true",
    "include_24hr_change": "true",
    "include_last_updated_at": "true",
}
_MARKETS: Final = {
    "vs_currency": "usd",
    "order": "market_cap_desc",
    "per_page": str(MARKETS_PAGE_SIZE),
    "sparkline": "false",
    "price_change_percentage": "24h",
}


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class CoinGeckoSource:
    """Polls CoinGecko every `poll_interval` seconds on a fixed grid; yields one Batch per cycle.
    The keyword arguments other than the schedule's are the client's (`CoinGeckoClient`)."""

    name = SOURCE_NAME

    def __init__(
        self,
        coins: Sequence[str],
        *,
        poll_interval: float = 30.0,
        top: int = 0,
        markets_threshold: int = SIMPLE_PRICE_MAX_IDS,
        max_cycles: int | None = None,
        clock: Clock | None = None,
        **client: Any,
    ) -> None:
        if not coins and top <= 0:
            raise ValueError("no coins to poll")
        self.coins = list(dict.fromkeys(coins))  # unique, order kept
        self.top = top
        self.use_markets = top > 0 or len(self.coins) > markets_threshold
        self.poll_interval = poll_interval
        self.max_cycles = max_cycles
        self.clock: Clock = clock or SystemClock()
        self.client = CoinGeckoClient(self.clock, **client)
        self.cycles = 0
        self._last_seen: dict[str, float] = {}
        self._backfill_to: tuple[BackfillSink, float, float] | None = None
        self.backfill: ChartBackfill | None = None  # from the first poll on, when asked for

    def backfill_to(self, sink: BackfillSink, *, window_seconds: float, retry: float) -> None:
        """Also fetch each polled coin's last 24 h into `sink`, between polls (see `backfill`)."""
        self._backfill_to = (sink, window_seconds, retry)

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
        self.client.close()

    def __enter__(self) -> CoinGeckoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        count = len(self.coins)
        what = f"top {self.top} coins" if self.top else f"{count} coin{'s' if count != 1 else ''}"
        endpoint = "/coins/markets" if self.use_markets else "/simple/price"
        return f"{what} via {endpoint} at {self.client.base_url} every {self.poll_interval:g} s"

    # -- the schedule --------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        start = self.clock.monotonic()
        deadline = start
        log.info("polling %s", self.describe())
        self._warn_if_too_slow()
        if self._backfill_to is not None:
            sink, window_seconds, retry = self._backfill_to
            self.backfill = ChartBackfill(
                self.client,
                self.clock,
                sink,
                window_seconds=window_seconds,
                retry=retry,
            )
        while not self.clock.stopped:
            batch = self.poll_once()
            if self.backfill is not None:
                self.backfill.add(batch.ticks)
                self.backfill.take_requests(batch)
            if self.clock.stopped and not batch.ticks:
                return
            yield batch
            if self.max_cycles is not None and self.cycles >= self.max_cycles:
                return
            now = self.clock.monotonic()
            upcoming = next_deadline(start, self.poll_interval, now)
            missed = round((upcoming - deadline) / self.poll_interval) - 1
            if missed > 0:
                log.warning("cycle %d overran; skipping %d scheduled poll(s)", batch.cycle, missed)
            deadline = upcoming
            if self._wait(upcoming):
                return

    def _wait(self, until: float) -> bool:
        """Wait for the next poll (fetching backfill charts meanwhile); True when stopped."""
        if self.backfill is not None:
            return self.backfill.wait_until(until)
        return self.clock.sleep(until - self.clock.monotonic())

    def _warn_if_too_slow(self) -> None:
        pages = self._pages_per_cycle()
        spacing = self.client.min_spacing
        if pages > 1 and (pages - 1) * spacing > self.poll_interval:
            log.warning(
                "%d requests per cycle at %.1f s spacing (rate limit) take longer than the "
                "%g s poll interval: cycles will be skipped; poll fewer coins or raise the limit",
                pages,
                spacing,
                self.poll_interval,
            )

    def _pages_per_cycle(self) -> int:
        if not self.use_markets:
            return 1
        count = self.top if self.top else len(self.coins)
        return max(1, math.ceil(count / MARKETS_PAGE_SIZE))

    # -- one cycle -----------------------------------------------------------------------

    def poll_once(self) -> Batch:
        """Fetch once (with retries) and return the new quotes as a Batch."""
        self.cycles += 1
        batch = Batch([], cycle=self.cycles)
        try:
            parsed = self._fetch_markets(batch) if self.use_markets else self._fetch_simple(batch)
        except CycleFailed as failed:
            batch.error = failed.reason
            return batch
        batch.skipped = parsed.skipped
        for quote in parsed.quotes:
            updated = quote.updated_at
            if updated is not None:
                seen = self._last_seen.get(quote.tick.coin)
                if seen is not None and updated <= seen:
                    batch.unchanged += 1
                    continue
                self._last_seen[quote.tick.coin] = updated
            batch.ticks.append(quote.tick)
        return batch

    def _fetch_simple(self, batch: Batch) -> Parsed:
        params = {"ids": ",".join(self.coins), **_SIMPLE_PRICE}
        payload = self.client.get("/simple/price", params, batch)
        return parse_simple_price(payload, self.coins, self.clock.time())

    def _market_pages(self) -> list[dict[str, str]]:
        if self.top:
            pages = range(1, self._pages_per_cycle() + 1)
            return [{**_MARKETS, "page": str(page)} for page in pages]
        return [
            {**_MARKETS, "ids": ",".join(ids), "page": "1"}
            for ids in chunks(self.coins, MARKETS_PAGE_SIZE)
        ]

    def _fetch_markets(self, batch: Batch) -> Parsed:
        """Every page; a failed page is counted (`page_failed`) and the others still count,
        unless all fail (or the key is refused, or a stop came): then the cycle fails."""
        requested = None if self.top else self.coins
        requests = self._market_pages()
        parsed = Parsed()
        seen: set[str] = set()
        failures: list[str] = []
        for params in requests:
            try:
                payload = self.client.get("/coins/markets", params, batch)
            except CycleFailed as failed:
                if failed.reason in ("key_error", "stopped"):
                    raise
                failures.append(failed.reason)
                if requested is not None:
                    seen.update(params["ids"].split(","))  # not "missing": the page failed
                continue
            parsed.extend(parse_coins_markets(payload, self.clock.time(), requested))
            seen |= market_ids(payload)
            if self.top and isinstance(payload, list) and len(payload) < MARKETS_PAGE_SIZE:
                break  # the last page
        if failures and len(failures) == len(requests):
            raise CycleFailed(failures[0])
        if failures:
            parsed.skipped["page_failed"] += len(failures)
        if requested is not None:
            missing = sum(1 for c in requested if c not in seen)
            if missing:
                parsed.skipped["missing_coin"] += missing
        return parsed
