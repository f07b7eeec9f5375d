"""What a source's batches say about it: `connecting`, `live`, `degraded`, `unreachable`,
`simulated` or `replay` (see `schema.SourceStatus`).

Pure: time is passed in, so every transition is unit-tested without a clock or a broker.
The producer publishes the result on the status topic (`producer.StatusReporter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptopulse.schema import SourceState, SourceStatus
from cryptopulse.sources.base import Batch

# Sources whose data is never live market prices, and the state that says so.
FIXED_STATES: dict[str, SourceState] = {"simulated": "simulated", "replay": "replay"}
DISPLAY_NAMES = {
    "coingecko": "CoinGecko",
    "binance": "Binance",
    "coinbase": "Coinbase",
    "kraken": "Kraken",
}
FIXED_DETAILS = {
    "simulated": "simulated data, not live market prices",
    "replay": "a recorded capture played back, not live market prices",
}


def display_name(source: str) -> str:
    return DISPLAY_NAMES.get(source, source)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


SEQUENCE_GAP = "sequence_gap"
"""The skip reason an exchange stream counts its sequence gaps under (exchanges/stream.py)."""


@dataclass
class StatusTracker:
    """The status of one source after each of its batches."""

    source: str
    unreachable_after: float = 300.0
    last_good: float | None = None
    state: SourceState = "connecting"
    detail: str = ""
    gaps: int = 0  # messages an exchange numbered but never sent (sequence gaps) since start

    def __post_init__(self) -> None:
        fixed = FIXED_STATES.get(self.source)
        if fixed is not None:
            self.state, self.detail = fixed, FIXED_DETAILS[self.source]
        else:
            self.detail = f"waiting for the first good response from {display_name(self.source)}"

    def status(self, now: float) -> SourceStatus:
        """The current status, stamped `now` (the heartbeat repeats it with a new time)."""
        return SourceStatus(
            source=self.source,
            state=self.state,
            detail=self.detail,
            last_good=None if self.last_good is None else _utc(self.last_good),
            updated_at=_utc(now),
        )

    def observe(self, batch: Batch, now: float) -> bool:
        """Take one batch's outcome; True when the state or its detail changed (a new
        `last_good` alone is not a change: the heartbeat carries it)."""
        before = (self.state, self.detail)
        self.gaps += batch.skipped.get(SEQUENCE_GAP, 0)
        if self.source in FIXED_STATES:
            if batch.error is None:
                self.last_good = now
        elif batch.error is None:
            self.last_good = now
            self.state, self.detail = "live", f"live {display_name(self.source)} prices"
            if self.gaps:
                self.detail += f"; {self.gaps} messages missed (sequence gaps) since start"
        else:
            self.state, self.detail = self._failed(batch.error, now)
        return (self.state, self.detail) != before

    def _failed(self, error: str, now: float) -> tuple[SourceState, str]:
        name = display_name(self.source)
        if error == "key_error":
            return (
                "unreachable",
                f"{name} refused the API key; see the producer log for what to fix",
            )
        reason = error.replace("_", " ")
        if self.last_good is None:
            return "unreachable", f"{name} unavailable ({reason}); no data received yet"
        last = _utc(self.last_good).strftime("%H:%M:%S UTC")
        if now - self.last_good >= self.unreachable_after:
            return (
                "unreachable",
                f"{name} unavailable ({reason}) since the last good fetch at {last}",
            )
        return "degraded", f"{name} unavailable ({reason}); last good fetch at {last}, retrying"
