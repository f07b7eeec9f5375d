"""CoinGecko's last 24 h per coin (`/coins/{id}/market_chart?days=1`), fetched in the gaps between
polls: polls first, always.

Between two polls the source waits; while it waits, a coin's chart is fetched when the request
budget has a slot that leaves the next poll its own (the slot plus one request spacing fits
before it) and the request is cut off before the poll is due (its deadline is the time left).
So a slow or hanging chart request never delays a poll, and backfill never spends a request
the polls need. No retries: a 429, a timeout or garbage skips that coin with one log line (the
sink's) and it is tried again `retry` seconds later (a 429's `Retry-After` also holds back the
other coins' charts that long). Coins are the ones the polls have quoted, in that order, so
the top-N mode backfills the coins its first `/coins/markets` page names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from cryptopulse.backfill import Point, to_windows, with_day_change
from cryptopulse.schema import Tick
from cryptopulse.sources.base import BackfillSink, Batch, Clock
from cryptopulse.sources.coingecko.client import CoinGeckoClient
from cryptopulse.sources.coingecko.errors import CycleFailed, TryAgain
from cryptopulse.sources.coingecko.models import SOURCE_NAME, ChartProblem, MarketChart
from cryptopulse.sources.coingecko.retry import MAX_RETRY_AFTER

log = logging.getLogger("cryptopulse.sources.coingecko")

CHART_PARAMS: Final = {"vs_currency": "usd", "days": "1"}
MIN_REQUEST_TIME: Final = 0.5  # s: a gap shorter than this before the next poll is not used
POLL_MARGIN: Final = 0.05  # s: a chart request is cut off this long before the poll is due
DAY_CHANGE_TOLERANCE: Final = 150.0  # s: half of the chart's 5-minute step


class ChartBackfill:
    """The backfill schedule of one CoinGecko source: which coin next, and when it may go."""

    def __init__(
        self,
        client: CoinGeckoClient,
        clock: Clock,
        sink: BackfillSink,
        *,
        window_seconds: float,
        retry: float,
    ) -> None:
        self.client = client
        self.clock = clock
        self.sink = sink
        self.window_seconds = window_seconds
        self.retry = retry
        self.tally = Batch([])  # requests made, handed to the next poll's batch for the metrics
        self._due: dict[str, float] = {}  # coin -> monotonic time it may be fetched
        self._symbols: dict[str, str] = {}
        self._live_since: dict[str, float] = {}  # coin -> its first live tick's time
        self._done: set[str] = set()
        self._tried: set[str] = set()
        self._not_before = 0.0  # a 429's Retry-After holds every chart back
        self._started = clock.monotonic()
        self._round_reported = False

    # -- the coins -----------------------------------------------------------------------

    def add(self, ticks: Iterable[Tick]) -> None:
        """Coins seen by a poll join the queue (once each). A coin's backfill stops before the
        window of its first live tick: the windows from there on are live ones."""
        now = self.clock.monotonic()
        for tick in ticks:
            if tick.coin not in self._done and tick.coin not in self._due:
                self._due[tick.coin] = now
                self._symbols[tick.coin] = tick.symbol
                self._live_since[tick.coin] = tick.timestamp.timestamp()

    @property
    def pending(self) -> int:
        return len(self._due)

    def next_due(self) -> float | None:
        """When the next chart may be fetched (monotonic), or None when nothing is queued."""
        if not self._due:
            return None
        return max(min(self._due.values()), self._not_before)

    def take_requests(self, batch: Batch) -> None:
        """Move the requests made since the last poll into its batch (one metrics object)."""
        batch.requests += self.tally.requests
        self.tally = Batch([])

    # -- waiting for the next poll ----------------------------------------------------------

    def wait_until(self, until: float) -> bool:
        """Sleep until `until` (monotonic), fetching charts in the gaps; True when stopped."""
        clock = self.clock
        while True:
            now = clock.monotonic()
            if clock.stopped:
                return True
            if now >= until:
                return False
            due = self.next_due()
            if due is None or due >= until:
                return clock.sleep(until - now)
            if due > now:
                if clock.sleep(due - now):
                    return True
                continue
            slot = self.client.ready_at()
            room = until - slot - POLL_MARGIN
            if room < max(self.client.min_spacing, MIN_REQUEST_TIME):
                return clock.sleep(until - now)  # the poll needs the next slot
            if slot > now and clock.sleep(slot - now):
                return True
            self.fetch(self._next_coin(), deadline=min(self.client.deadline, room))

    def _next_coin(self) -> str:
        return min(self._due, key=lambda coin: self._due[coin])

    # -- one coin --------------------------------------------------------------------------

    def fetch(self, coin: str, *, deadline: float) -> None:
        """One coin's chart, as windows to the sink; or the coin is put back with a reason."""
        first = coin not in self._tried
        self._tried.add(coin)
        try:
            payload = self.client.fetch_once(
                f"/coins/{coin}/market_chart", CHART_PARAMS, self.tally, deadline=deadline
            )
            points, skipped = MarketChart.read(payload).points()
        except TryAgain as failed:
            if failed.retry_after is not None:
                wait = min(failed.retry_after, MAX_RETRY_AFTER)
                self._not_before = self.clock.monotonic() + wait
            self._failed(coin, failed.reason)
        except (CycleFailed, ChartProblem) as failed:
            if failed.reason == "stopped":
                self._due[coin] = self.clock.monotonic()
                return
            self._failed(coin, failed.reason)
        else:
            self._convert(coin, points, skipped.total())
        if first:
            self._report_round()

    def _convert(self, coin: str, points: list[Point], bad_pairs: int) -> None:
        made = to_windows(
            with_day_change(points, DAY_CHANGE_TOLERANCE),
            source=SOURCE_NAME,
            coin=coin,
            symbol=self._symbols[coin],
            window_seconds=self.window_seconds,
            until=self._live_since[coin],
        )
        if not made.windows:
            self._failed(coin, "no_points")
            return
        rejected = bad_pairs + made.rejected.total()
        if rejected:
            log.info("backfill of %s: %d chart point(s) rejected", coin, rejected)
        del self._due[coin]
        self._done.add(coin)
        self.sink.publish(coin, made.windows)

    def _failed(self, coin: str, reason: str) -> None:
        self._due[coin] = self.clock.monotonic() + self.retry
        self.sink.failed(coin, reason, self.retry)

    def _report_round(self) -> None:
        if not self._round_reported and self._tried >= set(self._due) | self._done:
            self._round_reported = True
            self.sink.round_done(len(self._tried), self.clock.monotonic() - self._started)
