from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cryptopulse import classify
from cryptopulse.classify import BOUNDARIES, TREND_LABELS, VOLATILITY_LABELS, trend, volatility


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (0.0, "Stable"),
        (1.999, "Stable"),
        (2.0, "Moving"),
        (-2.0, "Moving"),
        (4.999, "Moving"),
        (5.0, "Volatile"),
        (-9.99, "Volatile"),
        (10.0, "High Volatility"),
        (-19.99, "High Volatility"),
        (20.0, "Extreme"),
        (-20.0, "Extreme"),
        (250.0, "Extreme"),
        (None, "Stable"),
    ],
)
def test_volatility_table(change: float | None, expected: str) -> None:
    assert volatility(change) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (5.0, "🚀 Surging"),
        (4.999, "📈 Rising"),
        (2.0, "📈 Rising"),
        (1.999, "➡️ Stable"),
        (0.0, "➡️ Stable"),
        (-1.999, "➡️ Stable"),
        (-2.0, "📉 Falling"),
        (-4.999, "📉 Falling"),
        (-5.0, "💥 Crashing"),
        (-80.0, "💥 Crashing"),
        (None, "➡️ Stable"),
    ],
)
def test_trend_table(change: float | None, expected: str) -> None:
    assert trend(change) == expected


def test_every_label_is_reachable() -> None:
    probes = [b + d for b in BOUNDARIES for d in (-0.001, 0.0, 0.001)]
    assert {volatility(p) for p in probes} == set(VOLATILITY_LABELS)
    assert {trend(p) for p in probes} == set(TREND_LABELS)


def test_the_web_apps_bands_are_generated_from_this_module() -> None:
    """web/src/generated/classify.json must be regenerated when classify.py changes
    (`cd web && npm run gen:schema`); the web's tests check its labels against its cases."""
    root = Path(__file__).resolve().parents[2]
    committed = orjson.loads((root / "web" / "src" / "generated" / "classify.json").read_bytes())
    assert committed == orjson.loads(orjson.dumps(classify.web_table()))
