"""The history reads: a coin's candles at any interval, and every coin's recent closes for the
dashboard's sparklines, from the history database (read on its own threads, never the loop).
Protected like the market reads with `api.protect_reads`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cryptopulse.api.deps import Ctx, SourceParam
from cryptopulse.api.errors import ApiRejection
from cryptopulse.api.responses import json_response
from cryptopulse.history.rollup import default_interval, interval_for_points
from cryptopulse.history.service import History
from cryptopulse.schema import (
    COIN_PATTERN,
    INTERVAL_SECONDS,
    HistoryResponse,
    Interval,
    SparklinesResponse,
)

MAX_CANDLES = 5000
"""Most candles one request may span (1m over 24 h is 1,440)."""
SPARKLINE_POINTS = 48

router = APIRouter(prefix="/api", tags=["history"])


class Refusal(BaseModel):
    detail: str | list[dict[str, Any]] = Field(description="What is wrong and what to do.")
    reason: str = Field(
        description="invalid (a parameter), bad_range (`to` not after `from`, or out of "
        "range), range_too_long (more than history.retention_days), too_many_candles."
    )


NO_HISTORY: dict[int | str, dict[str, Any]] = {
    404: {"description": "No history database, or nothing stored for this coin"}
}
REFUSALS: dict[int | str, dict[str, Any]] = {
    **NO_HISTORY,
    422: {"model": Refusal, "description": "A bad parameter, or a range that cannot be served"},
}


def _history(ctx: Ctx) -> History:
    if ctx.history is None:
        raise ApiRejection(404, "history_disabled", "the history database is off (history.enabled)")
    return ctx.history


def _utc(moment: datetime) -> datetime:
    """ISO 8601 without an offset is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _source(ctx: Ctx, history: History, source: str | None) -> str:
    """The one asked for, else the running source, else the first with stored history."""
    chosen = source or ctx.store.default_source()
    if chosen is None:
        stored = await history.sources()
        chosen = stored[0] if stored else None
    if chosen is None:
        raise ApiRejection(404, "no_data", "no source has any data yet")
    return chosen


def _range(
    ctx: Ctx, start: datetime | None, end: datetime | None, default_span: timedelta
) -> tuple[datetime, datetime]:
    try:
        end = _utc(end) if end else datetime.now(UTC)
        start = _utc(start) if start else end - default_span
    except OverflowError as exc:  # e.g. to=0001-01-01: no 24 h before it
        raise ApiRejection(422, "bad_range", "`from`/`to` out of range") from exc
    if end <= start:
        raise ApiRejection(422, "bad_range", "`to` must be after `from`")
    retention = timedelta(days=ctx.settings.history.retention_days)
    if end - start > retention:
        raise ApiRejection(
            422,
            "range_too_long",
            f"the range spans more than the {ctx.settings.history.retention_days:g} days kept "
            "(history.retention_days): ask for a shorter range",
        )
    return start, end


FromParam = Annotated[
    datetime | None,
    Query(alias="from", description="Start, ISO 8601 (no offset: UTC). Default: `to` - 24 h."),
]
ToParam = Annotated[
    datetime | None, Query(alias="to", description="End (exclusive), ISO 8601. Default: now.")
]


@router.get("/history/{coin}", response_model=HistoryResponse, responses=REFUSALS)
async def history(
    ctx: Ctx,
    coin: Annotated[str, Path(min_length=1, max_length=100, pattern=COIN_PATTERN)],
    interval: Annotated[
        Interval | None,
        Query(description="Candle length. Default: the shortest giving at most ~500 candles."),
    ] = None,
    start: FromParam = None,
    end: ToParam = None,
    source: SourceParam = None,
) -> Response:
    """The coin's candles over [from, to), oldest first, rolled up from the stored final
    windows; windows starting in a candle's interval make it, and gaps stay gaps."""
    store = _history(ctx)
    start, end = _range(ctx, start, end, timedelta(hours=24))
    span = (end - start).total_seconds()
    interval = interval or default_interval(span, ctx.settings.history.max_points)
    if span / INTERVAL_SECONDS[interval] > MAX_CANDLES:
        raise ApiRejection(
            422,
            "too_many_candles",
            f"{interval} candles over this range would be more than {MAX_CANDLES}: ask for a "
            "longer interval or a shorter range (or leave `interval` out)",
        )
    name = await _source(ctx, store, source)
    symbol, candles = await store.candles(name, coin, INTERVAL_SECONDS[interval], start, end)
    if symbol is None:
        raise ApiRejection(404, "no_data", f"no history for coin {coin!r} from source {name!r}")
    # a HistoryResponse, serialized by orjson from plain data: 1,440 candles in ~1 ms
    return json_response(
        {
            "source": name,
            "coin": coin,
            "symbol": symbol,
            "interval": interval,
            "start": start,
            "end": end,
            "candles": candles,
        }
    )


@router.get("/sparklines", response_model=SparklinesResponse, responses=REFUSALS)
async def sparklines(
    ctx: Ctx,
    source: SourceParam = None,
    hours: Annotated[float, Query(ge=0.1, le=24 * 366, description="How far back.")] = 24.0,
) -> Response:
    """Every coin's closes over the last `hours` (at most the retention), hourly or at the
    longer interval giving about 48 points (24 h: 24 hourly closes)."""
    store = _history(ctx)
    hours = min(hours, ctx.settings.history.retention_days * 24)  # nothing older is kept
    start, end = _range(ctx, None, None, timedelta(hours=hours))
    # at least 1 h: read from the hours table (100 coins over 24 h: 2,400 rows, not 288,000)
    interval = max(
        interval_for_points((end - start).total_seconds(), SPARKLINE_POINTS),
        "1h",
        key=INTERVAL_SECONDS.__getitem__,
    )
    name = await _source(ctx, store, source)
    closes = await store.closes(name, INTERVAL_SECONDS[interval], start, end)
    return json_response(
        {"source": name, "interval": interval, "start": start, "end": end, "closes": closes}
    )
