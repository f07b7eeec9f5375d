"""The producer's counters, in one object: the log lines and Prometheus `/metrics` both read it.

Counted here and nowhere else: what the source did (batches, requests, retries, quotes
skipped by reason, quotes unchanged, cycles that failed by reason, from each `Batch`), what
the sink took (`sent`: ticks handed to Kafka, or written to a capture), and what Kafka said
(delivered, delivery failures by error, ticks refused by schema validation), and the backfill
(windows handed to Kafka and acknowledged, coins whose backfill failed by reason). When several
sources run in one producer, each source's batches, ticks sent, skips and failed cycles are also
counted under its name (`source_*`). A Prometheus collector turns the same numbers into
`cryptopulse_producer_*` samples when scraped.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cryptopulse.sources.base import Batch


@dataclass
class Counts:
    """Totals since the start of a run; `since` gives those of a stretch of it."""

    batches: int = 0
    requests: int = 0
    retries: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    invalid: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed_cycles: Counter[str] = field(default_factory=Counter)
    delivery_errors: Counter[str] = field(default_factory=Counter)
    backfill_windows: int = 0
    backfill_delivered: int = 0
    backfill_undelivered: int = 0
    backfill_failures: Counter[str] = field(default_factory=Counter)
    # per source (its name), or (source, reason): what each of several sources did
    source_batches: Counter[str] = field(default_factory=Counter)
    source_sent: Counter[str] = field(default_factory=Counter)
    source_skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    source_failed_cycles: Counter[tuple[str, str]] = field(default_factory=Counter)

    def since(self, earlier: Counts) -> Counts:
        """What was counted after `earlier` (a `snapshot()` of this object)."""
        values = {f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(Counts)}
        return Counts(**values)


class ProducerMetrics(Counts):
    """A run's counts (see `Counts`), updated from any thread, exported in `registry`."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0  # how long the run took, once it ended
        self.last_sent = 0.0  # Unix time of the last tick handed over
        self.source_last_sent: dict[str, float] = {}  # the same, per source
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Exporter(self))

    def observe(
        self, batch: Batch, *, source: str | None = None, sent: int = 0, at: float = 0.0
    ) -> None:
        """Count what the source reported for one batch; with a name (`batch.source`, else
        `source`), also under that source, with the `sent` ticks the sink took from it."""
        name = batch.source or source
        with self._lock:
            self.batches += 1
            self.requests += batch.requests
            self.retries += batch.retries
            self.unchanged += batch.unchanged
            self.skipped.update(batch.skipped)
            if batch.error:
                self.failed_cycles[batch.error] += 1
            if name is None:
                return
            self.source_batches[name] += 1
            self.source_sent[name] += sent
            if sent:
                self.source_last_sent[name] = at
            self.source_skipped.update({(name, r): n for r, n in batch.skipped.items()})
            if batch.error:
                self.source_failed_cycles[(name, batch.error)] += 1

    def count_sent(self, count: int, at: float) -> None:
        with self._lock:
            self.sent += count
            if count:
                self.last_sent = at

    def count_delivery(self, error: str | None, count: int = 1) -> None:
        """`count` ticks acknowledged by the broker (error None) or not (the error's name)."""
        with self._lock:
            if error is None:
                self.delivered += count
            else:
                self.failed += count
                self.delivery_errors[error] += count

    def count_backfill(self, windows: int) -> None:
        """Backfill windows handed to Kafka."""
        with self._lock:
            self.backfill_windows += windows

    def count_backfill_delivery(self, error: str | None) -> None:
        with self._lock:
            if error is None:
                self.backfill_delivered += 1
            else:
                self.backfill_undelivered += 1

    def count_backfill_failure(self, reason: str) -> None:
        """A coin's backfill failed (it is tried again later)."""
        with self._lock:
            self.backfill_failures[reason] += 1

    def count_invalid(self) -> None:
        with self._lock:
            self.invalid += 1

    def last_sent_by_source(self) -> dict[str, float]:
        with self._lock:
            return dict(self.source_last_sent)

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(**{f.name: copy.copy(getattr(self, f.name)) for f in fields(Counts)})

    def summary(self) -> str:
        """One line for the end of a run."""
        parts = [f"sent {self.sent:,}", f"delivered {self.delivered:,}"]
        if self.failed:
            errors = ", ".join(f"{e} {n}" for e, n in self.delivery_errors.most_common())
            parts.append(f"delivery failed {self.failed:,} ({errors})")
        if self.invalid:
            parts.append(f"invalid {self.invalid:,}")
        if self.skipped:
            parts.append(f"skipped {self.skipped.total():,} ({reasons(self.skipped)})")
        if self.unchanged:
            parts.append(f"unchanged {self.unchanged:,}")
        if self.failed_cycles:
            parts.append(f"failed cycles {self.failed_cycles.total()}")
        if self.backfill_windows or self.backfill_failures:
            parts.append(f"backfill windows {self.backfill_windows:,}")
        if self.backfill_undelivered:
            parts.append(f"backfill undelivered {self.backfill_undelivered:,}")
        if self.backfill_failures:
            parts.append(f"backfill failed {reasons(self.backfill_failures)}")
        if len(self.source_batches) > 1:
            parts.append(f"by source: {by_source(self.snapshot())}")
        return ", ".join(parts)


def reasons(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))


def by_source(counts: Counts) -> str:
    """Each source's share: `binance 120 (skipped 2, failed 1); coinbase 80`."""
    parts = []
    for name in sorted(counts.source_batches):
        skipped = sum(n for (s, _), n in counts.source_skipped.items() if s == name)
        failed = sum(n for (s, _), n in counts.source_failed_cycles.items() if s == name)
        extra = [f"skipped {skipped:,}"] if skipped else []
        extra += [f"failed {failed:,}"] if failed else []
        detail = f" ({', '.join(extra)})" if extra else ""
        parts.append(f"{name} {counts.source_sent[name]:,}{detail}")
    return "; ".join(parts)


_COUNTERS = (
    ("sent", "Ticks handed to Kafka."),
    ("delivered", "Ticks acknowledged by the broker."),
    ("invalid", "Ticks refused by schema validation."),
    ("unchanged", "Quotes not republished because the source had not updated them."),
    ("requests", "Requests made to the source (CoinGecko), retries included."),
    ("retries", "Requests to the source that were retries."),
    ("backfill_windows", "Backfill windows handed to Kafka (the windows topic)."),
    ("backfill_delivered", "Backfill windows acknowledged by the broker."),
    ("backfill_undelivered", "Backfill windows the broker did not acknowledge."),
)
_LABELLED = (
    ("delivery_errors", "delivery_failures", "error", "Ticks the broker did not acknowledge."),
    ("skipped", "skipped", "reason", "Quotes the source left out, by reason."),
    ("failed_cycles", "failed_cycles", "reason", "Source cycles with no data after retries."),
    (
        "backfill_failures",
        "backfill_failures",
        "reason",
        "Coin backfills that failed, by reason (each is tried again later).",
    ),
)


class _Exporter(Collector):
    """`cryptopulse_producer_*` samples read from a ProducerMetrics when scraped."""

    def __init__(self, metrics: ProducerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        counts = self.metrics.snapshot()
        for name, doc in _COUNTERS:
            family = CounterMetricFamily(f"cryptopulse_producer_{name}", doc)
            family.add_metric([], getattr(counts, name))
            yield family
        for attr, name, label, doc in _LABELLED:
            labelled = CounterMetricFamily(f"cryptopulse_producer_{name}", doc, labels=[label])
            for value, n in sorted(getattr(counts, attr).items()):
                labelled.add_metric([value], n)
            yield labelled
        yield GaugeMetricFamily(
            "cryptopulse_producer_last_sent_timestamp_seconds",
            "Unix time of the last tick handed to Kafka.",
            value=self.metrics.last_sent,
        )
        yield from self._per_source(counts)

    def _per_source(self, counts: Counts) -> Iterator[Metric]:
        """The same by source (one producer may run several)."""
        sent = CounterMetricFamily(
            "cryptopulse_producer_source_sent",
            "Ticks handed to Kafka, by source.",
            labels=["source"],
        )
        for name, n in sorted(counts.source_sent.items()):
            sent.add_metric([name], n)
        yield sent
        for attr, metric, doc in (
            ("source_skipped", "source_skipped", "Quotes a source left out, by source and reason."),
            (
                "source_failed_cycles",
                "source_failed_cycles",
                "Cycles (connections) of a source that failed, by source and reason.",
            ),
        ):
            family = CounterMetricFamily(
                f"cryptopulse_producer_{metric}", doc, labels=["source", "reason"]
            )
            for (name, reason), n in sorted(getattr(counts, attr).items()):
                family.add_metric([name, reason], n)
            yield family
        last = GaugeMetricFamily(
            "cryptopulse_producer_source_last_sent_timestamp_seconds",
            "Unix time of the last tick of each source handed to Kafka.",
            labels=["source"],
        )
        for name, at in sorted(self.metrics.last_sent_by_source().items()):
            last.add_metric([name], at)
        yield last
