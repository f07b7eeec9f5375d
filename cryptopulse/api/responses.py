"""JSON responses serialized by orjson, timestamps as ISO 8601 with `Z`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi.responses import Response

from cryptopulse.api.hub import encode_record
from cryptopulse.schema import WindowAggregate


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
    )


def records_response(records: Iterable[WindowAggregate]) -> Response:
    """A JSON array of windows, each encoded as the WebSocket messages encode it."""
    body = b"[" + b",".join(map(encode_record, records)) + b"]"
    return Response(body, media_type="application/json")
