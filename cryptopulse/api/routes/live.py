"""/ws: the live feed. A client gets the snapshot, then every broadcast (see hub.py); it has
nothing to say, so reading only notices when it leaves."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from cryptopulse.api.context import ApiContext
from cryptopulse.api.deps import token_matches
from cryptopulse.api.hub import CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER
from cryptopulse.api.transport import channel_for

router = APIRouter()

SUBPROTOCOL = "cryptopulse"
TOKEN_PREFIX = "token."


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """A WebSocket from a page is accepted only from the allow-list (`api.origins`): no "same as
    Host" shortcut, which a rebound DNS name would satisfy. Clients that are not browsers send no
    Origin and are accepted.
    """
    if origin is None or "*" in allowed:
        return True
    return origin.strip().lower().rstrip("/") in {o.lower().rstrip("/") for o in allowed}


def ws_authorized(ctx: ApiContext, offered: list[str]) -> bool:
    """A browser cannot set Authorization on a WebSocket, and a `?token=` query would be
    written to access logs: the token travels as a subprotocol `token.<TOKEN>`."""
    token = ctx.token
    if not ctx.api.protect_reads or token is None:
        return True
    expected = TOKEN_PREFIX + token
    return any(token_matches(str(p), expected) for p in offered)


def _full(ctx: ApiContext, refused: str) -> str:
    if refused == "full":
        return f"server full ({ctx.hub.max_clients} clients)"
    if refused == "address_rate":
        return "too many new connections from your address; try again shortly"
    return f"too many connections from your address ({ctx.api.max_clients_per_address})"


@router.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    ctx: ApiContext = websocket.app.state.ctx
    if not origin_allowed(websocket.headers.get("origin"), ctx.api.origins):
        ctx.metrics.refused.labels("origin").inc()
        await websocket.close(CLOSE_POLICY_VIOLATION, "origin not allowed")
        return
    offered = [str(p) for p in websocket.scope.get("subprotocols") or []]
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    if not ws_authorized(ctx, offered):
        ctx.metrics.refused.labels("unauthorized").inc()
        # accepted first, so a browser sees why (a refused handshake shows it only 1006)
        await websocket.accept(subprotocol)
        await websocket.close(CLOSE_POLICY_VIOLATION, "missing or wrong token")
        return
    address = websocket.client.host if websocket.client else ""
    hub = ctx.hub
    refused = hub.admit(address)
    if refused is not None:
        ctx.metrics.refused.labels(refused).inc()
        await websocket.accept(subprotocol)
        await websocket.close(CLOSE_TRY_AGAIN_LATER, _full(ctx, refused))
        return
    try:
        await websocket.accept(subprotocol)
        # not kept in a local: this coroutine lives as long as the connection, and a snapshot
        # held by each of them would be MBs per client
        client = hub.register(channel_for(websocket), *ctx.feed.welcome())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        finally:
            hub.unregister(client)
    finally:
        hub.release(address)
