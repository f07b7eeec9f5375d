"""POST /ingest: window aggregates from the stream job."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from cryptopulse.api.body import parse
from cryptopulse.api.deps import Ctx, authorize, json_body
from cryptopulse.api.errors import ERROR_RESPONSES
from cryptopulse.api.responses import json_response
from cryptopulse.schema import DEFER_CONSISTENCY, IngestRequest, IngestResponse

router = APIRouter(tags=["ingest"])
_ingest_adapter: TypeAdapter[IngestRequest] = TypeAdapter(IngestRequest)


def _schema_body(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/ingest",
    response_model=IngestResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_schema_body(IngestRequest),
    dependencies=[Depends(authorize)],
)
async def ingest(request: Request, ctx: Ctx) -> Response:
    """Store a batch of window aggregates and broadcast it (without waiting for clients).

    A body that does not match the contract is refused whole (4xx). Within a valid
    body, each record that makes no sense, has the wrong length or starts too far in
    the future is rejected with its reason and the others are stored: the answer is
    200 with the counts, even when every record was rejected.
    """
    started = time.perf_counter()
    body = await json_body(request, ctx.api.max_body_bytes)
    batch = parse(_ingest_adapter, body, context={DEFER_CONSISTENCY: True})
    verdict = ctx.feed.admit(batch.data, "http", datetime.now(UTC))
    ctx.metrics.ingest_seconds.observe(time.perf_counter() - started)
    return json_response(
        {
            "received": len(batch.data),
            "stored": len(batch.data) - verdict.rejected,
            "rejected": verdict.rejected,
            "reasons": dict(verdict.reasons),
        }
    )
