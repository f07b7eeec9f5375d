"""Test data shared by unit and integration tests: valid contract records, and ticks as they
are sent to Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cryptopulse.schema import SourceState, SourceStatus, WindowAggregate

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)


def window(
    coin: str = "bitcoin",
    i: int = 0,
    *,
    price: float = 100.0,
    final: bool = True,
    source: str = "simulated",
    start: datetime = T0,
    trades: int | None = None,
    quote: str | None = None,
) -> WindowAggregate:
    """The i-th 30 s window after `start` of one coin, with every price equal to `price`;
    with `trades`, that many trades of size 0.5 each (a VWAP of `price`)."""
    begin = start + WINDOW * i
    return WindowAggregate(
        source=source,
        coin=coin,
        symbol=coin[:3],
        window_start=begin,
        window_end=begin + WINDOW,
        avg_price=price,
        open=price,
        high=price,
        low=price,
        close=price,
        avg_change_24h=0.5,
        max_volume_24h=1.0,
        market_cap=2.0,
        tick_count=3,
        volatility="Stable",
        trend="➡️ Stable",
        final=final,
        quote=quote,
        vwap=price if trades else None,
        traded_volume=0.5 * trades if trades else None,
        trade_count=trades,
    )


def status(
    source: str = "coingecko",
    state: SourceState = "live",
    *,
    at: datetime = T0,
    detail: str = "",
    last_good: datetime | None = None,
) -> SourceStatus:
    return SourceStatus(
        source=source, state=state, detail=detail, last_good=last_good, updated_at=at
    )


def iso(seconds: float, start: datetime = T0) -> str:
    """`seconds` after `start` as a tick's ISO 8601 UTC timestamp."""
    return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def tick(coin: str, at: float, price: float, change: float | None = 0.0, **extra: Any) -> bytes:
    """A tick's Kafka record value, observed `at` seconds after T0 (source "test" unless given);
    a trade with `size=` (and `quote=`)."""
    record: dict[str, Any] = {
        "coin": coin,
        "symbol": coin[:3],
        "price": price,
        "change_24h": change,
        "volume_24h": extra.get("volume", 1000.0),
        "market_cap": extra.get("cap", 1e6),
        "timestamp": iso(at),
        "source": extra.get("source", "test"),
    }
    for optional in ("size", "quote"):  # left out when absent, as Tick's JSON does
        if extra.get(optional) is not None:
            record[optional] = extra[optional]
    return orjson.dumps(record)


Finals = dict[tuple[str, str, str], list[dict[str, Any]]]


def finals(records: list[dict[str, Any]]) -> Finals:
    """Final window records (as JSON from the windows topic) by (source, coin, window_start)."""
    out: Finals = {}
    for r in records:
        if r["final"]:
            out.setdefault((r["source"], r["coin"], r["window_start"]), []).append(r)
    return out
