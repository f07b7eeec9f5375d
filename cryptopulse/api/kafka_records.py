"""Turning a batch of Kafka messages from the windows and status topics into validated windows
and statuses (pure: the consumer in kafka_feed.py does the I/O and the counting)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from cryptopulse.api.admission import Admission, reason_of
from cryptopulse.schema import SourceStatus, WindowAggregate

_windows: TypeAdapter[WindowAggregate] = TypeAdapter(WindowAggregate)
_status: TypeAdapter[SourceStatus] = TypeAdapter(SourceStatus)


class Record(Protocol):
    """The part of a confluent_kafka.Message read here (its error is handled by the consumer)."""

    def topic(self) -> str | None: ...

    def value(self) -> bytes | None: ...


@dataclass
class Decoded:
    windows: list[WindowAggregate] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)
    valid: int = 0
    invalid: int = 0
    """Records that are not a valid window or status, or windows refused by admission."""
    refused: Counter[str] = field(default_factory=Counter)
    """Windows refused, by reason (metric label values)."""
    not_admitted: int = 0
    """Valid windows that admission refused."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(topic, why) of each malformed record, for the log."""


def why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


def decode(
    records: Iterable[Record], windows_topic: str, admission: Admission | None, now: datetime
) -> Decoded:
    """Each record of `windows_topic` as a window that passes admission, every other as a
    source status; what fails is counted with its reason, never raised."""
    out = Decoded()
    for record in records:
        topic = record.topic() or ""
        value = record.value()
        try:
            if value is None:
                raise ValueError("a record without a value")
            if topic != windows_topic:
                out.statuses.append(_status.validate_json(value))
            else:
                window = _windows.validate_json(value)
                problem = admission.problem(window, now) if admission else None
                if problem is not None:
                    out.refused[problem] += 1
                    out.not_admitted += 1
                    out.invalid += 1
                    continue
                out.windows.append(window)
        except (ValidationError, ValueError) as exc:
            out.invalid += 1
            if topic == windows_topic:
                out.refused[reason_of(exc) if isinstance(exc, ValidationError) else "invalid"] += 1
            out.problems.append((topic, why(exc)))
            continue
        out.valid += 1
    return out
