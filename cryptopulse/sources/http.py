"""One bounded HTTP GET for the market sources, which talk to servers they do not control.

- **No redirects.** A 3xx is an error: httpx keeps custom headers (an API key) on a
  cross-origin redirect, so following one would hand the key to the other server.
- **A byte cap on the body, after decompression.** The body is streamed and decompressed a
  bounded step at a time (we ask for gzip only and decode it ourselves), so a gzip bomb is
  refused after `max_bytes` without ever holding more than that.
- **One overall deadline** for connecting, sending, the headers and the body. httpx's timeouts
  apply to each read, so a server dripping a byte a second would never time out: here every
  socket read and write gets at most the time left, and the body is checked between chunks
  (which also covers test transports that have no socket).

Nothing here logs; error messages carry no request headers and no response body.
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

# Reasons a fetch fails (FetchError.reason), also the failed-cycle labels.
REDIRECT = "redirect"
TOO_LARGE = "too_large"
DEADLINE = "deadline_exceeded"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
BAD_RESPONSE = "bad_response"

_until: ContextVar[float | None] = ContextVar("cryptopulse_http_until", default=None)


class FetchError(Exception):
    """No usable response: `reason` is a short label; the message is safe to log."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes  # decompressed, at most the cap


def new_client(
    base_url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client that never follows redirects, asks for gzip only, and (unless a test transport
    is given) enforces `get`'s deadline on every socket operation."""
    return httpx.Client(
        base_url=base_url,
        headers={**headers, "accept-encoding": "gzip"},
        timeout=timeout,
        transport=transport if transport is not None else DeadlineTransport(),
        follow_redirects=False,
    )


def get(
    client: httpx.Client,
    path: str,
    params: Mapping[str, str],
    *,
    max_bytes: int,
    deadline: float,
) -> Reply:
    """GET `path`: the whole answer within `deadline` seconds and `max_bytes` of body, else
    `FetchError`. Any status other than 3xx is returned for the caller to judge."""
    until = time.monotonic() + deadline
    token = _until.set(until)
    try:
        with client.stream("GET", path, params=params) as response:
            if 300 <= response.status_code < 400:
                raise FetchError(
                    REDIRECT,
                    f"HTTP {response.status_code} redirect refused "
                    "(redirects are never followed: check the base URL)",
                )
            body = _read_body(response, max_bytes, until)
            return Reply(response.status_code, response.headers, body)
    except httpx.TimeoutException as exc:
        if time.monotonic() >= until:
            raise _late(deadline) from None
        raise FetchError(TIMEOUT, f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise FetchError(CONNECTION_ERROR, f"{type(exc).__name__}: {exc}") from None
    except httpx.HTTPError as exc:
        raise FetchError(BAD_RESPONSE, f"{type(exc).__name__}: {exc}") from None
    finally:
        _until.reset(token)


def _read_body(response: httpx.Response, max_bytes: int, until: float) -> bytes:
    if response.is_stream_consumed:  # built in memory by a test transport, already decoded
        if len(response.content) > max_bytes:
            raise _too_large(max_bytes)
        return response.content
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        gunzip: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding in ("", "identity"):
        gunzip = None
    else:  # we asked for gzip only
        raise FetchError(BAD_RESPONSE, f"unsupported content-encoding {encoding[:40]!r}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    received = 0
    for raw in response.iter_raw():
        received += len(raw)
        if received > max_bytes:
            raise _too_large(max_bytes)
        if gunzip is None:
            body += raw
        else:
            pending = raw
            while pending:
                try:  # at most one byte past the cap per step: never the whole bomb
                    body += gunzip.decompress(pending, max_bytes + 1 - len(body))
                except zlib.error:
                    raise FetchError(BAD_RESPONSE, "corrupt gzip body") from None
                if len(body) > max_bytes:
                    raise _too_large(max_bytes)
                pending = gunzip.unconsumed_tail
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        if time.monotonic() >= until:
            raise httpx.ReadTimeout("deadline passed")  # reported as the deadline by `get`
    if gunzip is not None and received and not gunzip.eof:
        raise FetchError(BAD_RESPONSE, "truncated gzip body")
    return bytes(body)


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(TOO_LARGE, f"body larger than {max_bytes} bytes (decompressed) refused")


def _late(deadline: float) -> FetchError:
    return FetchError(DEADLINE, f"no complete answer within the {deadline:g} s deadline; cut off")


# -- the deadline on every socket operation ---------------------------------------------


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The per-operation timeout cut to what is left of the current `get`'s deadline."""
    until = _until.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise expired("deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, left, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets honour `get`'s deadline."""

    def __init__(self) -> None:
        context = httpx.create_ssl_context()
        super().__init__(verify=context)
        # httpx builds its pool without a way to pass a network backend: replace it with an
        # equal one (httpx's default limits) that has ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_DeadlineBackend(),
        )
