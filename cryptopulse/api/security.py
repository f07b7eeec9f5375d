"""Host allow-list and security headers, as one ASGI middleware around the whole app.

A page on `attacker.example` whose name is made to resolve to 127.0.0.1 (DNS rebinding) reaches
a loopback-bound server with `Host: attacker.example:PORT` and a matching `Origin`; refusing any
Host outside the allow-list, before routing, closes that for every route and the WebSocket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""The dashboard's policy: everything from this server (its WebSocket included), nothing framed.
React's `style` props are set through the CSSOM, which `style-src` does not restrict."""

DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
"""/docs and /redoc (off by default): FastAPI's pages load Swagger UI or ReDoc from a CDN."""

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

HOST_REFUSED = "host_not_allowed"


def _not_a_denial_response(record: logging.LogRecord) -> bool:
    """uvicorn logs an error after a WebSocket handshake refused with an HTTP response (the ASGI
    denial-response extension), as if the app had forgotten to answer; it did answer (400)."""
    return record.msg != "ASGI callable returned without completing handshake."


logging.getLogger("uvicorn.error").addFilter(_not_a_denial_response)


def split_host(value: str) -> tuple[str, str | None]:
    """`name[:port]` of a Host header (IPv6 in brackets), the name lower-case, no trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = (value[: end + 1], value[end + 1 :]) if end > 0 else (value, "")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, None
    return name.rstrip("."), port


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """True when the Host header names this server: an entry `name` matches any port,
    `name:port` only that port, `*` anything. A request without Host is refused."""
    if "*" in allowed:
        return True
    if not host:
        return False
    name, port = split_host(host)
    if port is not None and not port.isdigit():
        return False
    for entry in allowed:
        entry_name, entry_port = split_host(entry)
        if entry_name == name and (entry_port is None or entry_port == port):
            return True
    return False


class SecurityMiddleware:
    """Refuses requests whose Host is not allowed (400, also for a WebSocket handshake) and adds
    the security headers to every HTTP response."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: list[str],
        on_refused: Callable[[Scope], None],
        docs_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.on_refused = on_refused
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") in self.docs_paths else CSP
        host = Headers(scope=scope).get("host")
        if not host_allowed(host, self.allowed_hosts):
            self.on_refused(scope)
            await self._refuse(scope, send, host, csp)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", csp)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, send: Send, host: str | None, csp: str) -> None:
        shown = "no Host header" if host is None else f"Host {host[:100]!r} is not allowed"
        body = orjson.dumps(
            {
                "detail": f"{shown}: this server answers only to the names in api.allowed_hosts",
                "reason": HOST_REFUSED,
            }
        )
        prefix = "websocket." if scope["type"] == "websocket" else ""
        if prefix and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # the server answers 403
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"content-security-policy", csp.encode()),
            *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
        ]
        if scope["type"] == "http":
            headers.append((b"connection", b"close"))
        await send({"type": f"{prefix}http.response.start", "status": 400, "headers": headers})
        await send({"type": f"{prefix}http.response.body", "body": body})
