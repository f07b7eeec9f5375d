"""Candles rolled up in Python (`rollup.py`) equal a brute-force computation on random windows
with gaps; the default interval keeps within max_points."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse import classify
from cryptopulse.history.rollup import (
    CandleRow,
    WindowRow,
    default_interval,
    interval_for_points,
    rollup,
)
from cryptopulse.schema import INTERVAL_SECONDS, Candle

T0 = 1_795_600_800  # 2026-11-25T10:00Z: a whole hour in epoch seconds


@st.composite
def windows(draw: Any) -> list[WindowRow]:
    """30 s windows of one series at random slots (gaps included), each consistent."""
    slots = draw(st.sets(st.integers(-200, 3000), min_size=1, max_size=120))
    rows = []
    for slot in slots:
        prices = draw(st.lists(st.floats(0.01, 1e6), min_size=5, max_size=5))
        low, high = min(prices), max(prices)
        trades = draw(st.none() | st.integers(1, 10_000))  # windows with and without trades
        rows.append(
            WindowRow(
                start=T0 + 30 * slot,
                open=prices[0],
                high=high,
                low=low,
                close=prices[1],
                avg_price=prices[2],
                change=draw(st.none() | st.floats(-60, 60)),
                volume=draw(st.none() | st.floats(0, 1e12)),
                cap=draw(st.none() | st.floats(0, 1e13)),
                ticks=draw(st.integers(1, 1000)),
                kind=draw(st.sampled_from([0, 1])),
                quote=draw(st.sampled_from([None, "USD", "USDT"])),
                vwap=prices[3] if trades else None,
                traded=draw(st.floats(1e-8, 1e9)) if trades else None,
                trades=trades,
            )
        )
    return rows


def brute_force(rows: list[WindowRow], interval: int) -> list[dict[str, Any]]:
    """Each candle from scratch: which windows fall in [b, b + interval), then the definition."""
    first = min(r.start for r in rows) // interval * interval
    last = max(r.start for r in rows)
    out = []
    for b in range(first, last + 1, interval):
        inside = sorted((r for r in rows if b <= r.start < b + interval), key=lambda r: r.start)
        if not inside:
            continue  # gaps stay gaps
        ticks = sum(r.ticks for r in inside)
        changed = [r for r in inside if r.change is not None]
        change = (
            sum(r.change * r.ticks for r in changed if r.change is not None)
            / sum(r.ticks for r in changed)
            if changed
            else None
        )
        caps = [r.cap for r in inside if r.cap is not None]
        volumes = [r.volume for r in inside if r.volume is not None]
        traded = [r for r in inside if r.traded]  # the candle rule: windows with traded > 0
        volume = sum(r.traded for r in traded if r.traded) if traded else None
        vwap = (
            sum(r.vwap * r.traded for r in traded if r.vwap and r.traded) / volume
            if volume
            else None
        )
        out.append(
            {
                "start": b,
                "end": b + interval,
                "open": inside[0].open,
                "close": inside[-1].close,
                "high": max(r.high for r in inside),
                "low": min(r.low for r in inside),
                "avg_price": sum(r.avg_price * r.ticks for r in inside) / ticks,
                "avg_change_24h": change,
                "max_volume_24h": max(volumes) if volumes else None,
                "market_cap": caps[-1] if caps else None,
                "tick_count": ticks,
                "windows": len(inside),
                "volatility": classify.volatility(change),
                "trend": classify.trend(change),
                "kind": "backfill" if all(r.kind == 1 for r in inside) else "live",
                "vwap": vwap,
                "traded_volume": volume,
                "trade_count": sum(r.trades or 0 for r in traded) if traded else None,
            }
        )
    return out


def as_dict(candle: CandleRow) -> dict[str, Any]:
    out = asdict(candle)
    out["start"], out["end"] = int(candle.start.timestamp()), int(candle.end.timestamp())
    return out


SUMS = ("avg_price", "avg_change_24h", "vwap", "traded_volume")


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Equal; sums of floats may differ in the last bits with the order they were added in."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key in g:
            if isinstance(w[key], float) and key in SUMS:
                assert math.isclose(g[key], w[key], rel_tol=1e-12, abs_tol=1e-12), key
            else:
                assert g[key] == w[key], key


@settings(max_examples=300, deadline=None)
@given(windows(), st.sampled_from(list(INTERVAL_SECONDS.values())))
def test_rollup_equals_brute_force(rows: list[WindowRow], interval: int) -> None:
    candles = rollup(reversed(rows), interval)  # any input order
    assert_same([as_dict(c) for c in candles], brute_force(rows, interval))
    for c in candles:  # every candle validates against the contract
        assert isinstance(c.as_candle(), Candle)


def test_a_bucket_is_epoch_aligned_and_a_gap_gives_no_candle() -> None:
    def row(start: int, price: float) -> WindowRow:
        return WindowRow(start, price, price, price, price, price, 1.0, 1.0, 1.0, 1, 0)

    candles = rollup([row(T0 + 30, 1.0), row(T0 + 7200 + 60, 2.0)], 3600)
    assert [int(c.start.timestamp()) for c in candles] == [T0, T0 + 7200]
    assert [c.close for c in candles] == [1.0, 2.0]


def test_the_default_interval_gives_at_most_max_points() -> None:
    for span in (60, 3600, 86_400, 7 * 86_400, 30 * 86_400, 400 * 86_400):
        chosen = default_interval(span, 500)
        shorter = [n for n, s in INTERVAL_SECONDS.items() if s < INTERVAL_SECONDS[chosen]]
        if span <= 500 * 86_400:
            assert span / INTERVAL_SECONDS[chosen] <= 500
        assert all(span / INTERVAL_SECONDS[n] > 500 for n in shorter)  # the shortest that fits
    assert default_interval(86_400, 500) == "5m"
    assert default_interval(7 * 86_400, 500) == "1h"


def test_sparklines_get_about_48_points() -> None:
    assert interval_for_points(86_400, 48) == "15m"  # 96 points; 1 h would give 24
    assert interval_for_points(7 * 86_400, 48) == "4h"  # 42 points


def test_the_vwap_of_a_candle_weights_each_window_by_its_traded_volume() -> None:
    def row(start: int, price: float, traded: float | None, trades: int | None = None) -> WindowRow:
        vwap = price if traded else None
        return WindowRow(
            start,
            price,
            price,
            price,
            price,
            price,
            None,
            None,
            None,
            5,
            0,
            "USDT",
            vwap,
            traded,
            trades or (3 if traded else None),
        )

    rows = [row(T0, 10.0, 1.0), row(T0 + 30, 20.0, 3.0, 7), row(T0 + 60, 40.0, None)]
    (candle,) = rollup(rows, 3600)
    assert candle.vwap == (10.0 * 1 + 20.0 * 3) / 4  # the ticker-only window has no weight
    assert (candle.traded_volume, candle.trade_count, candle.tick_count) == (4.0, 10, 15)
    assert candle.avg_price == (10.0 + 20.0 + 40.0) / 3  # every window, by ticks, as before
    (none,) = rollup([row(T0, 40.0, None)], 60)
    assert (none.vwap, none.traded_volume, none.trade_count) == (None, None, None)
    assert none.as_candle().vwap is None
