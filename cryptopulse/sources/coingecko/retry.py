"""How long to wait before asking CoinGecko again: the server's `Retry-After` when it sent one,
else a fixed back-off (5 s, 10 s, 20 s). Pure: `RetryAfterWait` is a tenacity wait strategy the
client's `Retrying` uses; the clock it sleeps on is the client's."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Sequence
from datetime import UTC
from typing import Final

from tenacity import RetryCallState
from tenacity.wait import wait_base

BACKOFF: Final = (5.0, 10.0, 20.0)
MAX_RETRY_AFTER: Final = 600.0  # a larger Retry-After is taken as this


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date.

    None when absent or unreadable (the caller then backs off on its own); never negative.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_delay(
    attempt: int, retry_after: float | None, backoff: Sequence[float] = BACKOFF
) -> float:
    """Wait before retry number `attempt` (0-based): the server's `Retry-After` when it gave
    one (capped at MAX_RETRY_AFTER), else the back-off sequence (its last step repeats)."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return backoff[min(attempt, len(backoff) - 1)]


class RetryAfterWait(wait_base):
    """A tenacity wait: the failed attempt's `retry_after` (an attribute of its exception, set
    from the server's Retry-After), else `backoff[attempt]`."""

    def __init__(self, backoff: Sequence[float] = BACKOFF) -> None:
        self.backoff = tuple(backoff)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(failure, "retry_after", None)
        return retry_delay(retry_state.attempt_number - 1, retry_after, self.backoff)


__all__ = ["BACKOFF", "MAX_RETRY_AFTER", "RetryAfterWait", "parse_retry_after", "retry_delay"]
