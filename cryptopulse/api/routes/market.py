"""The market reads, from memory: latest windows, sources, a coin's recent windows, the snapshot
(candles over longer spans come from the history database: `routes/history.py`). Open by default;
`create_app` puts them behind the token with `api.protect_reads` (so the OpenAPI document says
which)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from cryptopulse.api.deps import Ctx, SourceParam
from cryptopulse.api.responses import json_response, records_response
from cryptopulse.api.store import MarketStore
from cryptopulse.schema import COIN_PATTERN, SnapshotMessage, SourceStatus, WindowAggregate

MAX_WINDOWS_LIMIT = 100_000

router = APIRouter(prefix="/api", tags=["market"])


class SourceInfo(BaseModel):
    source: str
    status: SourceStatus | None
    coins: int
    newest_window_end: str | None


class Sources(BaseModel):
    default: str | None
    sources: list[SourceInfo]


def _chosen(store: MarketStore, source: str | None) -> str | None:
    return source or store.default_source()


def _source_info(store: MarketStore, name: str) -> SourceInfo:
    end = store.newest_end(name)
    return SourceInfo(
        source=name,
        status=store.statuses.get(name),
        coins=len(store.coins(name)),
        newest_window_end=end.isoformat().replace("+00:00", "Z") if end else None,
    )


@router.get("/coins", response_model=list[WindowAggregate])
async def coins(ctx: Ctx, source: SourceParam = None) -> Response:
    """The latest window of every coin of one source (default: the running source)."""
    name = _chosen(ctx.store, source)
    return records_response(ctx.store.latest(name) if name else [])


@router.get("/sources", response_model=Sources)
async def sources(ctx: Ctx) -> Response:
    """Every source with data or a status, and which one is shown by default."""
    store = ctx.store
    body = Sources(
        default=store.default_source(),
        sources=[_source_info(store, name) for name in store.sources],
    )
    return json_response(body.model_dump(mode="json"))


@router.get(
    "/windows/{coin}",
    response_model=list[WindowAggregate],
    responses={404: {"description": "No data for this coin"}},
)
async def windows(
    ctx: Ctx,
    coin: Annotated[str, Path(min_length=1, max_length=100, pattern=COIN_PATTERN)],
    limit: Annotated[int | None, Query(ge=1, le=MAX_WINDOWS_LIMIT)] = None,
    source: SourceParam = None,
) -> Response:
    """The coin's recent windows held in memory from one source, oldest first (bounded per
    coin: `api.history_per_coin`), the open one included."""
    name = _chosen(ctx.store, source)
    records = ctx.store.history(name, coin, limit) if name else None
    if records is None:
        raise HTTPException(404, f"no data for coin {coin!r} from source {name!r}")
    return records_response(records)


@router.get("/snapshot", response_model=SnapshotMessage)
async def snapshot(ctx: Ctx) -> Response:
    """What a new WebSocket client gets first."""
    messages, _ = ctx.feed.welcome()
    return Response(messages[0].payload, media_type="application/json")
