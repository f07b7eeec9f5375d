"""Which window aggregates a server stores: the checks that need its settings.

A window must make sense on its own (`schema.window_problem`: end after start, open, close and
avg_price within low..high), have the configured length (the stream job's `spark.window_seconds`)
and start no more than `api.max_future_seconds` ahead of this server's clock. Applied per record,
to POST /ingest and to the windows topic alike: good records of a batch are stored, each bad one
is rejected with its reason. Pure: the caller passes the time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from cryptopulse.config import Settings
from cryptopulse.schema import WindowAggregate, window_problem

REASONS = ("window_order", "price_range", "trade_fields", "window_length", "future")
"""Why a valid record is rejected (bounded: metric label values)."""


def window_length(window_seconds: float) -> timedelta:
    """The length of the stream job's windows (it truncates to milliseconds, see stream/window.py)."""
    return timedelta(milliseconds=int(window_seconds * 1000))


@dataclass
class Verdict:
    accepted: list[WindowAggregate] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())


@dataclass(frozen=True)
class Admission:
    window: timedelta
    max_future: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            window=window_length(settings.spark.window_seconds),
            max_future=timedelta(seconds=settings.api.max_future_seconds),
        )

    def problem(self, record: WindowAggregate, now: datetime) -> str | None:
        """The reason `record` is refused (one of REASONS), or None."""
        inconsistent = window_problem(record)
        if inconsistent is not None:
            return inconsistent[0]
        if record.window_end - record.window_start != self.window:
            return "window_length"
        if record.window_start > now + self.max_future:
            return "future"
        return None

    def split(self, records: Iterable[WindowAggregate], now: datetime) -> Verdict:
        verdict = Verdict()
        for record in records:
            reason = self.problem(record, now)
            if reason is None:
                verdict.accepted.append(record)
            else:
                verdict.reasons[reason] += 1
        return verdict


def reason_of(exc: ValidationError) -> str:
    """A record that failed validation: its reason when the window validator refused it,
    else "invalid"."""
    kinds = {e["type"] for e in exc.errors(include_url=False)}
    return kinds.pop() if len(kinds) == 1 and kinds <= set(REASONS) else "invalid"
