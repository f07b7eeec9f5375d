"""Running the API app on uvicorn: in the foreground (`cryptopulse serve`) or in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn

from cryptopulse.api.app import create_app
from cryptopulse.api.protocols import http_protocol, websocket_protocol
from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError


def uvicorn_config(
    settings: Settings, *, log_level: str | None = None, direct_writes: bool | None = None
) -> uvicorn.Config:
    """The uvicorn configuration of the API server: our bounded protocols, no compression.

    `direct_writes=False` uses uvicorn's stock WebSocket protocol (the hub then sends through
    ASGI, and WebSocket clients are not rate-limited).
    """
    api = settings.api
    if direct_writes is None:
        direct_writes = api.websocket_writes == "direct"
    app = create_app(settings)
    metrics, limits = app.state.ctx.metrics, app.state.ctx.limits
    return uvicorn.Config(
        app,
        host=api.host,
        port=api.port,
        http=http_protocol(api, limits, metrics),
        ws=websocket_protocol(api, metrics) if direct_writes else "websockets-sansio",
        ws_per_message_deflate=False,  # one frame for every client; compression would be per client
        ws_ping_interval=api.ping_interval,
        ws_ping_timeout=api.ping_timeout,
        ws_max_size=api.ws_max_message_bytes,
        lifespan="on",
        log_config=None,  # keep the project's logging
        log_level=(log_level or settings.log_level).lower(),
        access_log=False,
        backlog=4096,
        server_header=False,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by every accepted connection (Linux): without it, a response written in two
    # parts (head, then body) waits for the client's delayed ACK, 40 ms per keep-alive GET
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CryptoPulseError(
            f"cannot listen on {host}:{port}: {exc.strerror}. "
            "Is another server running? Choose another port with --port or CRYPTOPULSE_API__PORT."
        ) from exc
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    """Run the server in the foreground until interrupted."""
    sock = bind_socket(settings.api.host, settings.api.port)
    server = uvicorn.Server(uvicorn_config(settings))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()


class BackgroundServer:
    """The API server on a free loopback port in a thread: for tests, benchmarks and embedding.

    >>> with BackgroundServer(settings) as server:
    ...     httpx.get(f"{server.url}/healthz")
    """

    def __init__(
        self,
        settings: Settings,
        *,
        port: int = 0,
        start_timeout: float = 20.0,
        direct_writes: bool | None = None,
    ) -> None:
        """Serve `settings` on `port` of `settings.api.host` (0: a free port)."""
        self._sock = bind_socket(settings.api.host, port)
        self.port = int(self._sock.getsockname()[1])
        self.settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"port": self.port})}
        )
        self._server = uvicorn.Server(
            uvicorn_config(self.settings, log_level="warning", direct_writes=direct_writes)
        )
        self._start_timeout = start_timeout
        self._thread = threading.Thread(target=self._run, name=f"api-{self.port}", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.api.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.api.host}:{self.port}/ws"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:
            self._error = exc

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise CryptoPulseError(f"API server did not start: {self._error!r}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
