"""A local CoinGecko: real HTTP on 127.0.0.1, speaking the public API's exact wire format.

Serves `/api/v3/simple/price`, `/api/v3/coins/markets` (paginated), `/api/v3/coins/{id}/market_chart`
(the last 24 h: 5-minute points, about 288, as `days=1` gives) and `/api/v3/ping` from an
in-memory market, gzip-compressed when the client accepts it (as CoinGecko's CDN does).
Tests script misbehaviour for the next requests with `respond(...)`:
`rate_limited()` (with or without Retry-After, in seconds or as an HTTP date),
`server_error()`, `hang()` (past the client's timeout), `garbage()`, `html_page()`,
`error_body()`, and hostile answers: `redirect(url)`, `gzip_bomb()` (small on the wire, huge
decompressed), `drip()` (a body, or headers, that arrive a byte at a time and never end);
and bad data per coin with `corrupt(coin, entry)` / `extra_ids`. A coin's market_chart can be
scripted on its own with `fail_chart(coin, reply, times)` (a 429, garbage, a hang).
Every request is recorded (time, path, query, headers) for assertions: a second fake is the
target of a redirect that records whether a key reached it.
"""

from __future__ import annotations

import email.utils
import functools
import gzip
import math
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

COINS: dict[str, tuple[str, str, float, float, float, float]] = {
    # id: (symbol, name, price, market cap, 24 h volume, 24 h change %)
    "bitcoin": ("btc", "Bitcoin", 97012.5, 1.92e12, 3.1e10, -1.84),
    "ethereum": ("eth", "Ethereum", 3398.12, 4.09e11, 2.05e10, 2.31),
    "binancecoin": ("bnb", "BNB", 651.3, 9.38e10, 1.9e9, 0.42),
    "solana": ("sol", "Solana", 241.77, 1.15e11, 4.4e9, -6.05),
    "cardano": ("ada", "Cardano", 1.02, 3.58e10, 1.6e9, 11.7),
    "ripple": ("xrp", "XRP", 1.41, 8.05e10, 8.3e9, -12.9),
    "polkadot": ("dot", "Polkadot", 9.12, 1.39e10, 6.2e8, 4.4),
    "dogecoin": ("doge", "Dogecoin", 0.4012, 5.9e10, 5.1e9, 21.3),
    "avalanche-2": ("avax", "Avalanche", 45.2, 1.85e10, 1.05e9, -24.1),
    "chainlink": ("link", "Chainlink", 22.4, 1.41e10, 1.22e9, 7.7),
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body=None` means the normal answer; `delay` hangs first."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json; charset=utf-8"
    drip: float = 0.0  # > 0: a byte every `drip` seconds, forever (no Content-Length)
    drip_headers: bool = False  # drip the header block instead of the body


def rate_limited(retry_after: str | float | None = None) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    body = orjson.dumps(
        {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
    )
    return Reply(429, body, headers)


def retry_after_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def server_error(status: int = 500) -> Reply:
    return Reply(status, b'{"error":"Internal Server Error"}')


def hang(seconds: float = 30.0) -> Reply:
    return Reply(delay=seconds)


def garbage(body: bytes = b'{"bitcoin": {"usd": 97012.5,', status: int = 200) -> Reply:
    return Reply(status, body)


def html_page(status: int = 200) -> Reply:
    page = (
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
        b"<body><h1>Attention Required! | Cloudflare</h1></body></html>"
    )
    return Reply(status, page, content_type="text/html; charset=UTF-8")


def error_body(code: int = 10002, message: str = "API Key Missing", status: int = 401) -> Reply:
    return Reply(status, orjson.dumps({"status": {"error_code": code, "error_message": message}}))


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


@functools.cache
def _bomb(size: int) -> bytes:
    """gzip of `size` bytes of valid JSON (spaces, then `{}`), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    spaces = b" " * (1 << 20)
    parts = [packer.compress(spaces) for _ in range(size >> 20)]
    return b"".join([*parts, packer.compress(b"{}"), packer.flush()])


def gzip_bomb(size: int = 64 << 20) -> Reply:
    """About 64 KiB on the wire that inflate to `size` bytes (64 MiB by default)."""
    return Reply(200, _bomb(size), {"Content-Encoding": "gzip"})


def drip(interval: float = 1.0, *, headers: bool = False) -> Reply:
    """An answer that never ends: its body (or its header block) one byte per `interval`."""
    return Reply(drip=interval, drip_headers=headers)


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when it arrived
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Quote:
    symbol: str
    name: str
    price: float
    market_cap: float
    volume: float
    change: float
    updated_at: int


class FakeCoinGecko:
    """Start with `with FakeCoinGecko() as fake:`; the API root is `fake.url`."""

    def __init__(
        self,
        coins: dict[str, tuple[str, str, float, float, float, float]] | None = None,
        *,
        api_key: str | None = None,
        key_header: str = "x-cg-demo-api-key",
        now: int | None = None,
    ) -> None:
        start = int(time.time()) - 5 if now is None else now
        self.quotes: dict[str, Quote] = {
            coin: Quote(sym, name, price, cap, vol, chg, start - i)
            for i, (coin, (sym, name, price, cap, vol, chg)) in enumerate((coins or COINS).items())
        }
        self.api_key = api_key
        self.key_header = key_header
        self.corrupted: dict[str, Any] = {}  # coin -> raw entry served instead of the quote
        self.hidden: set[str] = set()  # coins left out of answers (as if unknown upstream)
        self.extra_ids: dict[str, Any] = {}  # ids nobody asked for, added to /simple/price
        self.requests: list[Request] = []
        self.chart_points = 288  # days=1: 5-minute points over 24 h
        self._chart_faults: dict[str, tuple[Reply, int | None]] = {}
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------

    def respond(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; then normally again."""
        with self._lock:
            self._script.extend(replies)

    def corrupt(self, coin: str, entry: Any) -> None:
        self.corrupted[coin] = entry

    def fail_chart(self, coin: str, reply: Reply, times: int | None = None) -> None:
        """Answer `coin`'s market_chart with `reply` the next `times` times (None: always)."""
        with self._lock:
            self._chart_faults[coin] = (reply, times)

    def chart_requests(self, coin: str) -> list[Request]:
        return self.requests_to(f"/coins/{coin}/market_chart")

    def _chart_fault(self, path: str) -> Reply | None:
        match = _CHART_PATH.fullmatch(path)
        fault = self._chart_faults.get(match.group(1)) if match else None
        if match is None or fault is None:
            return None
        reply, times = fault
        if times is not None:
            if times <= 1:
                del self._chart_faults[match.group(1)]
            else:
                self._chart_faults[match.group(1)] = (reply, times - 1)
        return reply

    def advance(self, seconds: int = 60, factor: float = 1.01) -> None:
        """Move the market: every price changes and `last_updated_at` moves forward."""
        with self._lock:
            for quote in self.quotes.values():
                quote.price = round(quote.price * factor, 8)
                quote.market_cap = round(quote.market_cap * factor, 2)
                quote.updated_at += seconds

    def requests_to(self, path_suffix: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def expected_tick(self, coin: str) -> dict[str, Any]:
        """The Tick (as JSON) a correct producer publishes for `coin` from /simple/price."""
        q = self.quotes[coin]
        return {
            "coin": coin,
            "symbol": q.symbol,
            "price": q.price,
            "change_24h": q.change,
            "volume_24h": q.volume,
            "market_cap": q.market_cap,
            "timestamp": datetime.fromtimestamp(q.updated_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "coingecko",
        }

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/v3"

    def start(self) -> FakeCoinGecko:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeCoinGecko:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(time.monotonic(), parts.path, query, headers))
            reply = self._script.popleft() if self._script else None
            reply = reply or self._chart_fault(parts.path) or Reply()
        if reply.delay and self._closing.wait(reply.delay):
            return
        if reply.drip:
            self._drip(handler, reply)
            return
        if reply.body is None:
            reply = self._answer(parts.path, query, headers)
            if "gzip" in headers.get("accept-encoding", "") and reply.body:
                encoded = {**reply.headers, "Content-Encoding": "gzip"}
                reply = replace(reply, body=gzip.compress(reply.body), headers=encoded)
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body or b"")))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body or b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered

    def _drip(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        """A byte per `reply.drip` seconds until the client goes away or the fake stops."""
        handler.close_connection = True
        try:
            if reply.drip_headers:
                handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            else:
                handler.send_response(200)
                handler.send_header("Content-Type", reply.content_type)
                handler.send_header("Connection", "close")  # body until the connection closes
                handler.end_headers()
            while not self._closing.wait(reply.drip):
                handler.wfile.write(b"a" if reply.drip_headers else b" ")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        if self.api_key is not None:
            given = headers.get(self.key_header)
            if given is None:
                return error_body(10002, "API Key Missing")
            if given != self.api_key:
                return error_body(10002, "Invalid API Key")
        if path == "/api/v3/ping":
            return Reply(200, b'{"gecko_says":"(V3) To the Moon!"}')
        if path == "/api/v3/simple/price":
            return self._simple_price(query)
        if path == "/api/v3/coins/markets":
            return self._markets(query)
        chart = _CHART_PATH.fullmatch(path)
        if chart is not None:
            return self._market_chart(chart.group(1), query)
        return Reply(404, b'{"error":"Not Found"}')

    def _market_chart(self, coin: str, query: dict[str, str]) -> Reply:
        if query.get("vs_currency") != "usd" or query.get("days") != "1":
            return Reply(400, b'{"error":"Missing parameter vs_currency or days"}')
        with self._lock:
            q = self.quotes.get(coin)
            if q is None or coin in self.hidden:
                return Reply(404, b'{"error":"coin not found"}')
            return Reply(200, orjson.dumps(market_chart(q, self.chart_points, time.time())))

    def _simple_price(self, query: dict[str, str]) -> Reply:
        if query.get("vs_currencies") != "usd":
            return Reply(400, b'{"error":"Missing parameter vs_currencies"}')
        body: dict[str, Any] = {}
        with self._lock:
            for coin in filter(None, query.get("ids", "").split(",")):
                if coin in self.corrupted:
                    body[coin] = self.corrupted[coin]
                    continue
                q = self.quotes.get(coin)
                if q is None or coin in self.hidden:
                    continue  # CoinGecko leaves unknown ids out
                entry: dict[str, Any] = {"usd": q.price}
                if query.get("include_market_cap") == "true":
                    entry["usd_market_cap"] = q.market_cap
                if query.get("include_24hr_vol") == "true":
                    entry["usd_24h_vol"] = q.volume
                if query.get("include_24hr_change") == "true":
                    entry["usd_24h_change"] = q.change
                if query.get("include_last_updated_at") == "true":
                    entry["last_updated_at"] = q.updated_at
                body[coin] = entry
            body.update(self.extra_ids)
        return Reply(200, orjson.dumps(body))

    def _markets(self, query: dict[str, str]) -> Reply:
        if query.get("vs_currency") != "usd":
            return Reply(400, b'{"error":"Missing parameter vs_currency"}')
        per_page = min(int(query.get("per_page", "100")), 250)
        page = max(int(query.get("page", "1")), 1)
        with self._lock:
            ids = [c for c in query.get("ids", "").split(",") if c]
            coins = ids or sorted(self.quotes, key=lambda c: -self.quotes[c].market_cap)
            rows: list[Any] = []
            for coin in coins:
                if coin in self.corrupted:
                    rows.append(self.corrupted[coin])
                    continue
                q = self.quotes.get(coin)
                if q is None or coin in self.hidden:
                    continue
                rows.append(_market_row(coin, q))
        chosen = rows[(page - 1) * per_page : page * per_page]
        return Reply(200, orjson.dumps(chosen))

    def iter_quotes(self) -> Iterator[tuple[str, Quote]]:
        yield from self.quotes.items()


def _market_row(coin: str, q: Quote) -> dict[str, Any]:
    updated = datetime.fromtimestamp(q.updated_at, UTC)
    return {
        "id": coin,
        "symbol": q.symbol,
        "name": q.name,
        "image": f"https://coin-images.coingecko.com/coins/images/1/large/{coin}.png",
        "current_price": q.price,
        "market_cap": q.market_cap,
        "market_cap_rank": 1,
        "fully_diluted_valuation": q.market_cap,
        "total_volume": q.volume,
        "high_24h": q.price * 1.02,
        "low_24h": q.price * 0.97,
        "price_change_24h": q.price * q.change / 100,
        "price_change_percentage_24h": q.change,
        "market_cap_change_24h": q.market_cap * q.change / 100,
        "market_cap_change_percentage_24h": q.change,
        "circulating_supply": q.market_cap / q.price,
        "total_supply": None,
        "max_supply": None,
        "ath": q.price * 1.3,
        "ath_change_percentage": -23.1,
        "ath_date": "2024-03-14T07:10:36.635Z",
        "atl": q.price * 0.01,
        "atl_change_percentage": 9999.0,
        "atl_date": "2013-07-06T00:00:00.000Z",
        "roi": None,
        "last_updated": updated.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "price_change_percentage_24h_in_currency": q.change,
    }


_CHART_PATH = re.compile(r"/api/v3/coins/([a-z0-9._-]+)/market_chart")


def market_chart(q: Quote, points: int, now: float) -> dict[str, list[list[float]]]:
    """A day of `q`'s past as CoinGecko's market_chart gives it: `points` pairs per array,
    `[unix ms, value]`, 5 minutes apart at irregular seconds, the last one now at the current
    price; the price moves from its level 24 h ago (given by the 24 h change) to now, with a wave."""
    then = q.price / (1 + q.change / 100)
    step = 86_400 / points
    start = now - step * (points - 1)
    prices, caps, volumes = [], [], []
    for i in range(points):
        at = now if i == points - 1 else start + i * step + (i * 7) % 40
        share = i / (points - 1)
        wave = 1 + 0.01 * math.sin(i / 12)
        price = q.price if i == points - 1 else (then + (q.price - then) * share) * wave
        ms = int(at * 1000)
        prices.append([ms, round(price, 8)])
        caps.append([ms, round(q.market_cap * price / q.price, 2)])
        volumes.append([ms, round(q.volume * (0.9 + 0.1 * share), 2)])
    return {"prices": prices, "market_caps": caps, "total_volumes": volumes}


def many_coins(count: int) -> dict[str, tuple[str, str, float, float, float, float]]:
    """`count` coins for /coins/markets tests: the ten real ones, then generated ones."""
    coins = dict(list(COINS.items())[:count])
    for i in range(len(coins), count):
        coins[f"coin-{i:04d}"] = (
            f"c{i:04d}",
            f"Coin {i}",
            round(1 + i * 0.5, 4),
            1e9 / (i + 1),
            1e7,
            round((i % 40) - 20.5, 2),
        )
    return coins
