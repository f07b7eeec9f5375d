"""Percentiles for the benchmarks' reports, defined once."""

from __future__ import annotations

import statistics


def pct(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`: the nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float], digits: int = 2) -> dict[str, float]:
    """Count, median, p95, p99 and max of `values` ({} for none)."""
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), digits),
        "p95": round(pct(values, 0.95), digits),
        "p99": round(pct(values, 0.99), digits),
        "max": round(max(values), digits),
    }
