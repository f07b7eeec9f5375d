"""Hosts, origins and security headers against a real server, with raw sockets (a browser page
under DNS rebinding sends exactly these Host and Origin headers)."""

from __future__ import annotations

import base64
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cryptopulse.api.security import host_allowed
from cryptopulse.api.server import BackgroundServer
from cryptopulse.config import ApiSettings
from tests.factories import window
from tests.integration.test_api_server import AUTH, body, make_settings, metric

FOREIGN = "attacker.example"


class Raw:
    """One HTTP/1.1 exchange over a plain socket: status, headers (lower-case names), body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def exchange(
    server: BackgroundServer, head: str, payload: bytes = b"", upgrade: bool = False
) -> Raw:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + payload)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        return Raw(status, headers, rest)


def get(server: BackgroundServer, path: str, host: str, **extra: str) -> Raw:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return exchange(server, "\r\n".join(lines) + "\r\n")


def post_ingest(server: BackgroundServer, host: str) -> Raw:
    payload = body([window()])
    lines = [
        "POST /ingest HTTP/1.1",
        f"Host: {host}",
        "Connection: close",
        "Content-Type: application/json",
        f"Authorization: {AUTH['Authorization']}",
        f"Content-Length: {len(payload)}",
    ]
    return exchange(server, "\r\n".join(lines) + "\r\n", payload)


def ws_handshake(server: BackgroundServer, host: str, origin: str | None = None) -> Raw:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return exchange(server, "\r\n".join(lines) + "\r\n", upgrade=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(make_settings(tmp_path)) as running:
        yield running


def test_a_foreign_host_is_refused_everywhere(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    host = f"{FOREIGN}:{server.port}"
    origin = f"http://{host}"
    for path in ("/", "/api/coins", "/healthz"):
        refused = get(server, path, host, Origin=origin)
        assert refused.status == 400, path
        assert refused.json()["reason"] == "host_not_allowed"
        assert FOREIGN in refused.json()["detail"]
    ingest = post_ingest(server, host)
    assert ingest.status == 400 and ingest.json()["reason"] == "host_not_allowed"
    assert httpx.get(f"{server.url}/api/coins").json() == []  # nothing was stored
    handshake = ws_handshake(server, host, origin)
    assert handshake.status == 400 and handshake.json()["reason"] == "host_not_allowed"
    assert ws_handshake(server, host).status == 400  # without Origin too
    # No Host at all (HTTP/1.0) is refused as well.
    assert exchange(server, "GET /api/coins HTTP/1.0\r\n").status == 400

    rejected = "cryptopulse_api_rejected_total"
    assert metric(server, rejected, endpoint="/api/coins", reason="host_not_allowed") == 2
    assert metric(server, rejected, endpoint="/ingest", reason="host_not_allowed") == 1
    assert metric(server, "cryptopulse_api_ws_refused_total", reason="host") == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_loopback_names_are_allowed_on_any_port(server: BackgroundServer) -> None:
    for host in (
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
        f"LocalHost.:{server.port}",
        f"[::1]:{server.port}",
        "localhost",
        "127.0.0.1:1",
    ):
        assert get(server, "/api/coins", host).status == 200, host
    assert post_ingest(server, f"127.0.0.1:{server.port}").status == 200
    # The dashboard's own origin, under either name, is allowed by default (derived from the port).
    for name in ("127.0.0.1", "localhost"):
        own = f"{name}:{server.port}"
        assert ws_handshake(server, own, f"http://{own}").status == 101
    assert ws_handshake(server, f"127.0.0.1:{server.port}").status == 101  # no Origin: not a page


def test_an_origin_equal_to_the_host_is_not_enough(tmp_path: Path) -> None:
    # A name the operator serves under, but whose pages were not put on the Origin allow-list.
    settings = make_settings(tmp_path, allowed_hosts=["127.0.0.1", "dash.example"])
    with BackgroundServer(settings) as server:
        host = f"dash.example:{server.port}"
        assert get(server, "/api/coins", host).status == 200
        assert ws_handshake(server, host, f"http://{host}").status == 403
        assert ws_handshake(server, f"127.0.0.1:{server.port}", "http://evil.test").status == 403
        assert ws_handshake(server, host).status == 101
        assert metric(server, "cryptopulse_api_ws_refused_total", reason="origin") == 2
        # CORS follows the same list: no Access-Control-Allow-Origin for the Host's own origin.
        preflight = get(server, "/api/coins", host, Origin=f"http://{host}")
        assert "access-control-allow-origin" not in preflight.headers

    settings = make_settings(
        tmp_path, allowed_hosts=["dash.example:443"], cors_origins=["https://dash.example"]
    )
    with BackgroundServer(settings) as server:
        assert get(server, "/api/coins", "dash.example:443").status == 200
        assert get(server, "/api/coins", "dash.example:80").status == 400
        ok = ws_handshake(server, "dash.example:443", "https://dash.example")
        assert ok.status == 101
        # The configured api.host (127.0.0.1) is always served.
        assert get(server, "/api/coins", f"127.0.0.1:{server.port}").status == 200


def test_the_allow_lists_and_their_defaults() -> None:
    api = ApiSettings(port=8123)
    assert api.hosts == ["127.0.0.1", "localhost", "[::1]"]
    assert "http://127.0.0.1:8123" in api.origins and "http://localhost:8123" in api.origins
    assert "http://127.0.0.1:8000" not in api.origins
    assert ApiSettings(host="::1").hosts[-1] == "[::1]"
    assert ApiSettings(host="10.0.0.5").hosts[-1] == "10.0.0.5"
    assert ApiSettings(host="0.0.0.0").hosts[-1] == "0.0.0.0"  # where the stream job posts
    assert "http://0.0.0.0:8000" not in ApiSettings(host="0.0.0.0").origins
    assert ApiSettings(cors_origins=["https://x.example"]).origins == ["https://x.example"]
    assert host_allowed("anything.example:1", ["*"])
    assert not host_allowed(None, ["127.0.0.1"])
    assert not host_allowed("127.0.0.1:80x", ["127.0.0.1"])
    assert not host_allowed("127.0.0.1.attacker.example", ["127.0.0.1"])
    assert host_allowed("[::1]:8000", ["[::1]"]) and not host_allowed("[::2]:8000", ["[::1]"])


CSP_PARTS = ("default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'")


def assert_secure(response: httpx.Response | Raw, what: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert all(part in csp for part in CSP_PARTS), (what, csp)
    assert "unsafe" not in csp and "http" not in csp, (what, csp)
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "no-referrer", what


def test_security_headers_on_every_response(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>CryptoPulse</title>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    with BackgroundServer(make_settings(tmp_path, web_dist=dist)) as server:
        for path, status in (
            ("/", 200),
            ("/assets/app.js", 200),
            ("/api/coins", 200),
            ("/healthz", 200),
            ("/metrics", 200),
            ("/openapi.json", 200),  # kept: a read-only schema (schemathesis reads it)
            ("/api/windows/nope", 404),
            ("/no/such/page", 404),
            ("/docs", 404),  # off by default
            ("/redoc", 404),
        ):
            response = httpx.get(f"{server.url}{path}")
            assert response.status_code == status, path
            assert_secure(response, path)
        bad = httpx.post(f"{server.url}/ingest", content=b"{", headers=AUTH)
        assert bad.status_code == 415
        assert_secure(bad, "415")
        refused = get(server, "/", f"{FOREIGN}:{server.port}")
        assert refused.status == 400
        assert_secure(refused, "refused host")


def test_docs_when_enabled(tmp_path: Path) -> None:
    with BackgroundServer(make_settings(tmp_path, docs=True)) as server:
        for path in ("/docs", "/redoc"):
            page = httpx.get(f"{server.url}{path}")
            assert page.status_code == 200
            csp = page.headers["content-security-policy"]
            assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp
        assert_secure(httpx.get(f"{server.url}/api/coins"), "/api/coins")
