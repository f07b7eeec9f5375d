"""The API server's bounds, against a real `cryptopulse serve` stack (uvicorn on a free port),
probed with raw sockets the way a hostile client would: idle and half-sent requests, huge
headers, stalled bodies, too many connections or requests, chatty and silent WebSocket
clients, too many coins."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cryptopulse.api.server import BackgroundServer
from tests.factories import window
from tests.integration.test_api_server import (
    AUTH,
    RECV,
    close_of,
    make_settings,
    metric,
    post,
    recv_json,
)
from tests.waiting import wait_for

DEADLINE = 15.0


@contextmanager
def raw(server: BackgroundServer) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    try:
        yield sock
    finally:
        sock.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def refused(server: BackgroundServer, reason: str) -> float:
    return metric(server, "cryptopulse_api_connections_refused_total", reason=reason)


def ws_upgrade(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_text_frame(payload: bytes) -> bytes:
    """A client's text frame (clients must mask, RFC 6455 §5.3); payload < 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[BackgroundServer]:
    settings = make_settings(
        tmp_path,
        header_timeout=0.5,
        body_timeout=0.5,
        max_header_bytes=4096,
        max_requests=2,
        ws_messages_per_second=5,
        ws_max_message_bytes=1024,
        max_clients_per_address=2,
        max_coins=3,
        snapshot_max_records=10,
        ping_interval=0.3,
        ping_timeout=0.5,
    )
    with BackgroundServer(settings) as server:
        yield server


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/coins HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"GE"],
    ids=["idle socket", "half-sent headers", "half-sent request line"],
)
def test_a_request_that_never_finishes_its_headers_gets_408_and_is_closed(
    strict: BackgroundServer, sent: bytes
) -> None:
    with raw(strict) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert time.monotonic() - started < 5
    assert refused(strict, "header_timeout") == 1


def test_headers_beyond_the_limit_get_431(strict: BackgroundServer) -> None:
    with raw(strict) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: " + b"a" * 10_000)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 431")
    assert refused(strict, "header_too_large") == 1
    # a normal request on a new connection is served as before
    assert httpx.get(f"{strict.url}/healthz").status_code == 200


def test_a_stalled_body_is_cut_off(strict: BackgroundServer) -> None:
    with raw(strict) as sock:
        sock.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: " + AUTH["Authorization"].encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"data": ['
        )
        started = time.monotonic()
        read_until_closed(sock)
        assert time.monotonic() - started < 5
    assert refused(strict, "body_timeout") == 1
    # the request it cut off is counted as such, not logged as a traceback
    labels = {"endpoint": "/ingest", "reason": "disconnected"}
    wait_for(
        lambda: metric(strict, "cryptopulse_api_rejected_total", **labels) == 1,
        DEADLINE,
        "the cut-off request to be counted",
    )


def test_requests_beyond_the_limit_get_503_and_the_server_recovers(tmp_path: Path) -> None:
    """Two requests whose bodies never finish hold both request places: a third gets 503."""
    settings = make_settings(tmp_path, max_requests=2, body_timeout=3)
    with BackgroundServer(settings) as server, ExitStack() as stack:
        for _ in range(2):
            sock = stack.enter_context(raw(server))
            sock.sendall(
                b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Authorization: " + AUTH["Authorization"].encode() + b"\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
        answers: list[httpx.Response] = []

        def full() -> bool:  # as soon as the server has read both requests' headers
            answers.append(httpx.get(f"{server.url}/api/coins"))
            return answers[-1].status_code == 503

        wait_for(full, DEADLINE, "a 503 while both places are held")
        busy = answers[-1]
        assert busy.json()["reason"] == "busy"
        assert busy.headers["retry-after"] == "1"
        # the stalled bodies are cut off after body_timeout: places come back
        wait_for(
            lambda: httpx.get(f"{server.url}/healthz").status_code == 200, DEADLINE, "places back"
        )
        assert (
            metric(server, "cryptopulse_api_rejected_total", endpoint="other", reason="busy") >= 1
        )


def test_connections_beyond_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_connections=16, header_timeout=30)
    with BackgroundServer(settings) as server, ExitStack() as stack:
        socks = [stack.enter_context(raw(server)) for _ in range(24)]
        closed = 0
        for sock in socks:
            sock.settimeout(0.5)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass  # still open: waiting for its headers
        assert closed == 24 - 16
        for sock in socks:
            sock.close()
        wait_for(lambda: refused(server, "max_connections") == 8, DEADLINE, "the refusals counted")


def test_a_chatty_websocket_client_is_dropped(strict: BackgroundServer) -> None:
    async def main() -> None:
        async with connect(strict.ws_url) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(1000):
                    await ws.send("hello")
                    await asyncio.sleep(0.001)
                await asyncio.wait_for(ws.recv(), RECV)
            assert closed.value.rcvd is None or closed.value.rcvd.code == 1008

    asyncio.run(main())
    wait_for(
        lambda: httpx.get(f"{strict.url}/healthz").json()["clients"] == 0, DEADLINE, "the drop"
    )
    assert metric(strict, "cryptopulse_api_ws_dropped_total", reason="chatty") == 1


def test_a_websocket_flood_is_dropped_before_it_is_parsed(strict: BackgroundServer) -> None:
    """64 KiB of tiny frames in one write: more bytes than the allowance, refused unread."""
    with raw(strict) as sock:
        sock.sendall(ws_upgrade(strict.port))
        wait_for(
            lambda: httpx.get(f"{strict.url}/healthz").json()["clients"] == 1,
            DEADLINE,
            "admission",
        )
        flood = masked_text_frame(b"hi") * 8000
        with contextlib.suppress(ConnectionError):
            sock.sendall(flood)
        read_until_closed(sock)
    wait_for(
        lambda: metric(strict, "cryptopulse_api_ws_dropped_total", reason="flood") == 1,
        DEADLINE,
        "the drop to be counted",
    )


def test_new_websocket_clients_per_address_are_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ws_connects_per_second_per_address=0.2)  # burst 1

    async def main(server: BackgroundServer) -> None:
        async with connect(server.ws_url) as first:
            assert (await recv_json(first))["type"] == "snapshot"
        async with connect(server.ws_url) as second:
            code, reason = await close_of(second)
            assert code == 1013 and "too many new connections" in reason

    with BackgroundServer(settings) as server:
        asyncio.run(main(server))
        assert metric(server, "cryptopulse_api_ws_refused_total", reason="address_rate") == 1


def test_a_websocket_message_beyond_the_size_limit_closes_the_connection(
    strict: BackgroundServer,
) -> None:
    async def main() -> None:
        async with connect(strict.ws_url) as ws:
            await recv_json(ws)
            await ws.send("x" * 2000)
            assert (await close_of(ws))[0] == 1009

    asyncio.run(main())


def test_a_client_that_misses_pings_is_dropped_without_waiting_for_its_buffer(
    strict: BackgroundServer,
) -> None:
    with raw(strict) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(ws_upgrade(strict.port))
        wait_for(
            lambda: httpx.get(f"{strict.url}/healthz").json()["clients"] == 1, DEADLINE, "admission"
        )
        # never reads, never answers a ping: dropped within ping_interval + ping_timeout
        wait_for(
            lambda: httpx.get(f"{strict.url}/healthz").json()["clients"] == 0, DEADLINE, "the drop"
        )
    assert metric(strict, "cryptopulse_api_ws_dropped_total", reason="ping_timeout") == 1


def test_websocket_clients_per_address_are_limited(strict: BackgroundServer) -> None:
    async def main() -> None:
        async with connect(strict.ws_url) as a, connect(strict.ws_url) as b:
            for ws in (a, b):
                await recv_json(ws)
            async with connect(strict.ws_url) as third:
                code, reason = await close_of(third)
                assert code == 1013 and "your address" in reason
        async with connect(strict.ws_url) as again:  # places come back
            assert (await recv_json(again))["type"] == "snapshot"

    asyncio.run(main())
    assert metric(strict, "cryptopulse_api_ws_refused_total", reason="per_address") == 1


def test_coins_beyond_the_limit_are_refused_with_a_reason(strict: BackgroundServer) -> None:
    response = post(strict, [window(f"coin-{n}", 0) for n in range(5)])
    assert response.json() == {
        "received": 5,
        "stored": 3,
        "rejected": 2,
        "reasons": {"too_many_coins": 2},
    }
    assert [w["coin"] for w in httpx.get(f"{strict.url}/api/coins").json()] == [
        "coin-0",
        "coin-1",
        "coin-2",
    ]
    labels = {"origin": "http", "reason": "too_many_coins"}
    assert metric(strict, "cryptopulse_api_rejected_records_total", **labels) == 2
    assert metric(strict, "cryptopulse_api_series") == 3


def test_the_snapshot_is_bounded(strict: BackgroundServer) -> None:
    assert (
        post(strict, [window(c, i) for c in ("a", "b", "c") for i in range(10)]).json()["stored"]
        == 30
    )

    async def main() -> dict[str, Any]:
        async with connect(strict.ws_url) as ws:
            return await recv_json(ws)

    snapshot = asyncio.run(main())
    assert snapshot["type"] == "snapshot"
    assert len(snapshot["data"]) == 9  # three windows for each of the three coins
    assert {w["coin"] for w in snapshot["data"]} == {"a", "b", "c"}
