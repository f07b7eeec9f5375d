"""Volatility and trend labels for a window's average 24 h change.

The thresholds live here once, as data. `volatility()` / `trend()` label every window:
the streaming job's sink (cryptopulse.stream.merge), the history roll-ups, and, through
`web_table()`, the dashboard's roll-ups.
Lower bounds are inclusive except where the design says otherwise (trend "Stable"
is strictly between -2 and +2).
"""

from __future__ import annotations

from typing import Final, Literal

Volatility = Literal["Stable", "Moving", "Volatile", "High Volatility", "Extreme"]
Trend = Literal["🚀 Surging", "📈 Rising", "➡️ Stable", "📉 Falling", "💥 Crashing"]

# (lower bound on |change| inclusive, label), highest first.
VOLATILITY_BANDS: Final[tuple[tuple[float, Volatility], ...]] = (
    (20.0, "Extreme"),
    (10.0, "High Volatility"),
    (5.0, "Volatile"),
    (2.0, "Moving"),
    (0.0, "Stable"),
)

# Rising bands: (change >= bound, label), highest first.
TREND_UP: Final[tuple[tuple[float, Trend], ...]] = (
    (5.0, "🚀 Surging"),
    (2.0, "📈 Rising"),
)
# Falling bands: (change <= bound, label), lowest first.
TREND_DOWN: Final[tuple[tuple[float, Trend], ...]] = (
    (-5.0, "💥 Crashing"),
    (-2.0, "📉 Falling"),
)
TREND_FLAT: Final[Trend] = "➡️ Stable"

VOLATILITY_LABELS: Final[tuple[Volatility, ...]] = tuple(label for _, label in VOLATILITY_BANDS)
TREND_LABELS: Final[tuple[Trend, ...]] = (
    *(label for _, label in TREND_UP),
    TREND_FLAT,
    *(label for _, label in reversed(TREND_DOWN)),
)

# Every value where a label changes, for tests and docs.
BOUNDARIES: Final[tuple[float, ...]] = tuple(
    sorted(
        {b for b, _ in VOLATILITY_BANDS}
        | {-b for b, _ in VOLATILITY_BANDS}
        | {b for b, _ in TREND_UP}
        | {b for b, _ in TREND_DOWN}
    )
)


def volatility(change_24h: float | None) -> Volatility:
    """Volatility class of an average 24 h change in percent; unknown change counts as 0."""
    magnitude = abs(change_24h or 0.0)
    for bound, label in VOLATILITY_BANDS:
        if magnitude >= bound:
            return label
    return VOLATILITY_BANDS[-1][1]


def trend(change_24h: float | None) -> Trend:
    """Trend class of an average 24 h change in percent; unknown change counts as 0."""
    change = change_24h or 0.0
    for bound, label in TREND_UP:
        if change >= bound:
            return label
    for bound, label in TREND_DOWN:
        if change <= bound:
            return label
    return TREND_FLAT


def web_table() -> dict[str, object]:
    """The bands for the web app (web/src/generated/classify.json, which labels candles it
    rolls up from live windows), with the labels at and around every boundary as computed
    here, so the web's tests check its reading of the bands against this module."""
    changes = sorted({0.0, *BOUNDARIES, *(b + d for b in BOUNDARIES for d in (-0.01, 0.01))})
    return {
        "volatility": [[bound, label] for bound, label in VOLATILITY_BANDS],
        "trend_up": [[bound, label] for bound, label in TREND_UP],
        "trend_down": [[bound, label] for bound, label in TREND_DOWN],
        "trend_flat": TREND_FLAT,
        "cases": [
            [None, volatility(None), trend(None)],
            *([round(c, 2), volatility(c), trend(c)] for c in changes),
        ],
    }
