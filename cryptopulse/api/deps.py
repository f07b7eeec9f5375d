"""FastAPI dependencies shared by the routes: the server's context, the bearer token checks,
a bounded JSON body, the source a read is about."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect, HTTPConnection

from cryptopulse.api.context import ApiContext
from cryptopulse.api.errors import ApiRejection
from cryptopulse.schema import COIN_PATTERN

_bearer = HTTPBearer(auto_error=False, description="The token in settings `api.token`.")


def context(connection: HTTPConnection) -> ApiContext:
    ctx: ApiContext = connection.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def token_matches(offered: str, token: str) -> bool:
    return secrets.compare_digest(offered.encode(), token.encode())


def authorize(ctx: Ctx, credentials: Credentials) -> None:
    """Writes: the bearer token, whenever the server has one."""
    token = ctx.token
    if token is None:
        return
    if credentials is None or not token_matches(credentials.credentials, token):
        raise ApiRejection(
            401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
        )


async def json_body(request: Request, limit: int) -> bytes:
    """The request's body: JSON by its Content-Type, at most `limit` bytes, not empty. Called by
    the handler (not a dependency), so it runs after the token check."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiRejection(415, "unsupported_media_type", "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiRejection(413, "too_large", f"body larger than {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiRejection(413, "too_large", f"body larger than {limit} bytes")
    except ClientDisconnect as exc:  # gone, or cut off at body_timeout: counted, no traceback
        raise ApiRejection(
            400, "disconnected", "the client left before its body was complete"
        ) from exc
    if not body.strip():
        raise ApiRejection(400, "empty", "empty body; expected JSON")
    return bytes(body)


SourceParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=40,
        pattern=COIN_PATTERN,
        description="Which source's data (default: the running source).",
    ),
]
