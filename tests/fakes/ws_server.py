"""What every exchange's fake shares: a local WebSocket server on a free port in its own thread,
its lifecycle, and the switches each fake has (drop every connection, go silent, send raw frames).
Each fake (binance.py, coinbase.py, kraken.py) adds its exchange's wire format in `_handle`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

C = TypeVar("C")


class FakeWebSocketServer(Generic[C]):
    """`C` is what the fake records of each open connection."""

    title = "fake WebSocket server"  # for the error when it does not start
    path = ""  # appended to `url`

    def __init__(self) -> None:
        self._silent = False
        self._open: dict[ServerConnection, C] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.title, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the {self.title} did not start")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            loop.call_soon_threadsafe(server.close)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request
        ) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the handshake: None accepts it (a fake may refuse some)."""
        return None

    # -- switches ------------------------------------------------------------------------

    def _call(self, fn: Callable[..., object], *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    def drop(self) -> None:
        """Cut every open connection (TCP reset, no close frame)."""

        def cut() -> None:
            for ws in list(self._open):
                ws.transport.abort()

        self._call(cut)

    def silence(self, on: bool = True) -> None:
        self._silent = on

    def send_raw(self, *frames: str | bytes) -> None:
        """Send these frames, as they are, on every open connection."""

        async def send_all(ws: ServerConnection) -> None:
            try:
                for frame in frames:
                    await ws.send(frame)
            except ConnectionClosed:
                pass

        def send() -> None:
            for ws in list(self._open):
                task = asyncio.ensure_future(send_all(ws))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._call(send)
