"""How the hub reaches a client's socket.

`HubWebSocketProtocol` (protocols.py), uvicorn's own WebSocket protocol with additions,
puts a `DirectChannel` into the ASGI scope's `extensions` as the app's coroutine starts (the
narrowest seam uvicorn offers: it holds no matter how or when the task is scheduled). Through
it the hub writes a frame built once per broadcast straight to the socket (server frames are
never masked, so the bytes are the same for every client), honours the transport's flow
control, and can abort a client that stopped reading, which ASGI cannot express. It reads the
protocol's `transport`, `writable`, `disconnected` and `close_sent`: uvicorn's own state,
checked by tests/integration/test_api_server.py, which asserts the fast path is the one running.

Under any other server the app falls back to `AsgiChannel` (plain ASGI sends); the hub logs
which path its clients use.
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from cryptopulse.api.hub import Outgoing

EXTENSION = "cryptopulse.direct"
"""The key of the `DirectChannel` in the scope's `extensions` (ASGI's place for server extras)."""


class DirectChannel:
    """Writes pre-built frames to the connection's transport."""

    __slots__ = ("_protocol",)
    path = "direct"

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def _open(self) -> bool:
        p = self._protocol
        return not (p.disconnected or p.close_sent or p.transport.is_closing())

    def ready(self) -> bool:
        return self._protocol.writable.is_set() and self._open()

    def write_now(self, message: Outgoing) -> None:
        for frame in message.frames:
            self._protocol.transport.write(frame)

    async def send(self, message: Outgoing) -> None:
        # a fragment at a time, each once the socket has taken the one before: a client that
        # stops reading leaves at most one fragment in this process's buffers
        for frame in message.frames:
            await self._protocol.writable.wait()
            if not self._open():
                raise ConnectionError("WebSocket closed")
            self._protocol.transport.write(frame)

    def abort(self) -> None:
        self._protocol.transport.abort()


class AsgiChannel:
    """Plain ASGI sends: works under any server; a stuck client can only be closed, not aborted."""

    __slots__ = ("_closing", "_websocket")
    path = "asgi"

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._closing: asyncio.Task[None] | None = None

    def ready(self) -> bool:
        return False  # every message goes through the client's writer task

    def write_now(self, message: Outgoing) -> None:  # pragma: no cover - never ready
        raise RuntimeError("AsgiChannel cannot write synchronously")

    async def send(self, message: Outgoing) -> None:
        await self._websocket.send_text(message.text)

    def abort(self) -> None:
        async def close() -> None:
            try:
                async with asyncio.timeout(1.0):
                    await self._websocket.close(1008, "too slow")
            except Exception:
                return

        self._closing = asyncio.get_running_loop().create_task(close())


def channel_for(websocket: WebSocket) -> DirectChannel | AsgiChannel:
    direct = (websocket.scope.get("extensions") or {}).get(EXTENSION)
    return direct if isinstance(direct, DirectChannel) else AsgiChannel(websocket)
