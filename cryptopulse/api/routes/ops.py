"""Health and Prometheus metrics: open, they carry no market data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from cryptopulse.api.deps import Ctx
from cryptopulse.api.responses import json_response

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str
    clients: int
    coins: int
    version: int
    ingest: bool
    consumer: dict[str, Any] | None


@router.get("/healthz", response_model=Health)
async def healthz(ctx: Ctx) -> Response:
    consumer = ctx.consumer
    consumer_state = None
    if consumer is not None:
        consumer_state = {
            "topic": consumer.topic,
            "group": consumer.group_id,
            "running": consumer.running,
            "assigned": consumer.assigned.is_set(),
            "last_error": consumer.last_error,
        }
    healthy = ctx.hub.running and (consumer is None or consumer.running)
    body = Health(
        status="ok" if healthy else "unhealthy",
        clients=len(ctx.hub),
        coins=len(ctx.store.coins()),
        version=ctx.store.version,
        ingest=ctx.api.ingest_enabled,
        consumer=consumer_state,
    )
    return json_response(body.model_dump(), 200 if healthy else 503)


@router.get("/metrics", response_class=Response)
async def prometheus(ctx: Ctx) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)
