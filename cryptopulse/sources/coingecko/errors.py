"""What can go wrong with CoinGecko, as one hierarchy; every error carries a short `reason`
(the label counted in the skip and failed-cycle metrics)."""

from __future__ import annotations


class CoinGeckoError(Exception):
    """Something CoinGecko sent, or failed to send, named by `reason`."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class BadQuote(CoinGeckoError):
    """One coin's entry is unusable (a null price, a negative volume, ...): that coin is skipped."""


class CycleFailed(CoinGeckoError):
    """A request got no usable answer: the cycle (or one page of it) fails; the next runs on time."""


class TryAgain(CycleFailed):
    """A failure that may pass (429, 5xx, a timeout, a dropped connection): the request is retried,
    after `retry_after` seconds when the server said how long (`Retry-After`)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


__all__ = ["BadQuote", "CoinGeckoError", "CycleFailed", "TryAgain"]
