"""The API server for real: uvicorn on a free loopback port, httpx and websockets clients."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cryptopulse.api.server import BackgroundServer
from cryptopulse.config import ApiSettings, Settings, load_settings
from cryptopulse.schema import SnapshotMessage, WindowAggregate
from tests.factories import T0, WINDOW, window

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECV = 15.0  # generous bound on waiting for one message: liveness, not speed


def make_settings(tmp_path: Path, **api: Any) -> Settings:
    options: dict[str, Any] = {"web_dist": tmp_path / "no-dist", "token": TOKEN, **api}
    return load_settings(data_dir=tmp_path, api=ApiSettings(**options))


def body(records: list[WindowAggregate]) -> bytes:
    return orjson.dumps({"data": [r.model_dump(mode="json") for r in records]})


def post(server: BackgroundServer, records: list[WindowAggregate]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/ingest",
        content=body(records),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )


def metric(server: BackgroundServer, name: str, **labels: str) -> float:
    """One sample from /metrics (0 when absent)."""
    text = httpx.get(f"{server.url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


async def close_of(ws: ClientConnection) -> tuple[int, str]:
    """The code and reason with which the server closes `ws` (waiting at most RECV)."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), RECV)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), RECV)
    message: dict[str, Any] = orjson.loads(raw)
    return message


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(make_settings(tmp_path, max_body_bytes=64 * 1024)) as running:
        yield running


STORED_ONE = {"received": 1, "stored": 1, "rejected": 0, "reasons": {}}


def _raw_record(**changes: Any) -> dict[str, Any]:
    record = window().model_dump(mode="json")
    record.update(changes)
    return record


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj)


BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    # (case, body, content type, status, reason)
    ("malformed JSON", b'{"data": [}', "application/json", 400, "malformed_json"),
    ("not an object", b"[1, 2]", "application/json", 422, "invalid"),
    ("empty body", b"", "application/json", 400, "empty"),
    ("empty list", b'{"data": []}', "application/json", 422, "invalid"),
    ("wrong type", _json({"data": [_raw_record(avg_price="lots")]}), "application/json", 422, "invalid"),
    ("number as a string", _json({"data": [_raw_record(avg_price="1.5")]}), "application/json",
     422, "invalid"),
    ("boolean as a number", _json({"data": [_raw_record(avg_change_24h=False)]}), "application/json",
     422, "invalid"),
    ("fractional count", _json({"data": [_raw_record(tick_count=1.5)]}), "application/json", 422,
     "invalid"),
    ("absurd count", body([window()]).replace(b"\"tick_count\":3", b"\"tick_count\":" + b"9" * 30),
     "application/json", 422,
     "invalid"),
    ("timestamp out of range", _json({"data": [_raw_record(window_start="9999-12-31T23:59:59-01:00")]}),
     "application/json", 422, "invalid"),
    ("NaN", body([window()]).replace(b'"avg_change_24h":0.5', b'"avg_change_24h":NaN'),
     "application/json", 422, "invalid"),
    ("Infinity", body([window()]).replace(b'"avg_change_24h":0.5', b'"avg_change_24h":1e999'),
     "application/json", 422, "invalid"),
    ("unknown volatility", _json({"data": [_raw_record(volatility="Meh")]}), "application/json",
     422, "invalid"),
    ("unknown trend", _json({"data": [_raw_record(trend="up")]}), "application/json", 422, "invalid"),
    ("negative price", _json({"data": [_raw_record(close=-1)]}), "application/json", 422, "invalid"),
    ("naive timestamp", _json({"data": [_raw_record(window_start="2026-11-24T22:00:00")]}),
     "application/json", 422, "invalid"),
    ("extra field", _json({"data": [_raw_record(surprise=1)]}), "application/json", 422, "invalid"),
    ("missing field", _json({"data": [{"coin": "bitcoin"}]}), "application/json", 422, "invalid"),
    ("oversized", b'{"data": [' + b" " * (70 * 1024) + b"]}", "application/json", 413, "too_large"),
    ("not JSON", b"coin=bitcoin", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
]  # fmt: skip


def test_bad_input_is_rejected_with_a_reason_counted_and_never_broadcast(
    server: BackgroundServer,
) -> None:
    async def main() -> None:
        async with connect(server.ws_url) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as http:
                for case, content, content_type, status, reason in BAD_BODIES:
                    response = await http.post(
                        "/ingest", content=content, headers={"Content-Type": content_type}
                    )
                    assert response.status_code == status, case
                    assert response.json()["reason"] == reason, case
                    assert response.json()["detail"], case

                async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
                    for _ in range(100):
                        yield b" " * 1024

                response = await http.post(
                    "/ingest", content=chunks(), headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 413
                good = await http.post("/ingest", content=body([window(price=42.0)]),
                                       headers={"Content-Type": "application/json"})  # fmt: skip
                assert good.json() == STORED_ONE
            update = await recv_json(ws)  # the first thing broadcast is the good batch
            assert update["type"] == "market_update"
            assert update["data"][0]["avg_price"] == 42.0

    asyncio.run(main())
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    rejected = sum(
        metric(server, "cryptopulse_api_rejected_total", endpoint="/ingest", reason=r)
        for r in {case[4] for case in BAD_BODIES}
    )
    assert rejected == len(BAD_BODIES) + 1
    assert metric(server, "cryptopulse_api_records_total", origin="http") == 1
    assert metric(server, "cryptopulse_api_broadcasts_total", type="market_update") == 1


def _record(**changes: Any) -> WindowAggregate:
    """window() with changes, unchecked: what a client may send."""
    return WindowAggregate.model_construct(**{**dict(window()), **changes})


YEAR_9999 = datetime(9999, 1, 1, tzinfo=UTC)
REFUSED: list[tuple[str, WindowAggregate, str]] = [
    ("year 9999", window(start=YEAR_9999), "future"),
    ("in the future", window(start=datetime.now(UTC) + timedelta(minutes=10)), "future"),
    ("low above high", _record(low=101.0, high=99.0), "price_range"),
    ("open outside low..high", _record(open=120.0), "price_range"),
    ("avg_price outside low..high", _record(avg_price=90.0), "price_range"),
    ("end before start", _record(window_end=T0 - WINDOW), "window_order"),
    ("end equals start", _record(window_end=T0), "window_order"),
    ("wrong length", _record(window_end=T0 + timedelta(seconds=5)), "window_length"),
]


@pytest.mark.parametrize(("record", "reason"), [(r, why) for _, r, why in REFUSED],
                         ids=[case for case, _, _ in REFUSED])  # fmt: skip
def test_a_window_that_makes_no_sense_is_refused_and_counted(
    server: BackgroundServer, record: WindowAggregate, reason: str
) -> None:
    response = post(server, [record])
    assert response.status_code == 200  # the body is valid: the answer says what became of it
    assert response.json() == {"received": 1, "stored": 0, "rejected": 1, "reasons": {reason: 1}}
    assert httpx.get(f"{server.url}/api/coins").json() == []
    assert (
        metric(server, "cryptopulse_api_rejected_records_total", origin="http", reason=reason) == 1
    )
    assert metric(server, "cryptopulse_api_records_total", origin="http") == 0


def test_a_window_in_the_year_9999_does_not_hide_the_real_ones(tmp_path: Path) -> None:
    # with a short history, a stored 9999 window stayed the newest and pushed out the real ones
    with BackgroundServer(make_settings(tmp_path, history_per_coin=2)) as small:
        assert post(small, [window(start=YEAR_9999)]).json()["reasons"] == {"future": 1}
        for i in range(3):
            assert post(small, [window(i=i, price=10.0 + i)]).json() == STORED_ONE
        history = httpx.get(f"{small.url}/api/windows/bitcoin").json()
        assert [h["avg_price"] for h in history] == [11.0, 12.0]
        assert [c["avg_price"] for c in httpx.get(f"{small.url}/api/coins").json()] == [12.0]


def test_a_mixed_batch_stores_the_good_records_and_reports_the_bad(
    server: BackgroundServer,
) -> None:
    good = [window("bitcoin", i) for i in range(3)] + [window("ethereum", 0)]
    bad = [record for _, record, _ in REFUSED]
    mixed = [good[0], bad[0], good[1], *bad[1:4], good[2], *bad[4:], good[3]]

    async def main() -> dict[str, Any]:
        async with connect(server.ws_url) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            answer = post(server, mixed)
            assert answer.status_code == 200
            update = await recv_json(ws)
            assert update["type"] == "market_update"
            assert [WindowAggregate.model_validate(w) for w in update["data"]] == good
            answer_json: dict[str, Any] = answer.json()
            return answer_json

    assert asyncio.run(main()) == {
        "received": len(mixed),
        "stored": 4,
        "rejected": len(bad),
        "reasons": {"future": 2, "price_range": 3, "window_order": 2, "window_length": 1},
    }
    assert len(httpx.get(f"{server.url}/api/windows/bitcoin").json()) == 3
    assert metric(server, "cryptopulse_api_records_total", origin="http") == 4
    for reason, count in (
        ("future", 2),
        ("price_range", 3),
        ("window_order", 2),
        ("window_length", 1),
    ):
        assert metric(server, "cryptopulse_api_rejected_records_total", origin="http",
                      reason=reason) == count  # fmt: skip
    # a body that does not match the contract is still refused whole
    broken = body([window()]).replace(b'"avg_price":100.0', b'"avg_price":"lots"')
    response = httpx.post(f"{server.url}/ingest", content=broken,
                          headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and response.json()["reason"] == "invalid"


def test_the_window_length_is_the_configured_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.spark.window_seconds = 5
    with BackgroundServer(settings) as five:
        five_s = _record(window_end=T0 + timedelta(seconds=5))
        answer = post(five, [window(), five_s]).json()
        assert answer == {
            "received": 2,
            "stored": 1,
            "rejected": 1,
            "reasons": {"window_length": 1},
        }
        assert httpx.get(f"{five.url}/api/coins").json()[0]["window_end"] == "2026-11-24T22:00:05Z"


def test_the_future_tolerance_is_a_setting(tmp_path: Path) -> None:
    with BackgroundServer(make_settings(tmp_path, max_future_seconds=3600)) as lenient:
        soon = window(start=datetime.now(UTC) + timedelta(minutes=30))
        later = window(start=datetime.now(UTC) + timedelta(hours=2))
        answer = post(lenient, [soon, later]).json()
        assert answer == {"received": 2, "stored": 1, "rejected": 1, "reasons": {"future": 1}}


def test_token_is_enforced(server: BackgroundServer) -> None:
    content = body([window()])
    json_type = {"Content-Type": "application/json"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.post(
            f"{server.url}/ingest", content=content, headers={**json_type, **headers}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    # the source status is no longer written over HTTP: it comes from the status topic
    assert httpx.post(f"{server.url}/api/source-status", content=b"{}").status_code in (404, 405)
    assert post(server, [window()]).status_code == 200
    assert (
        metric(server, "cryptopulse_api_rejected_total", endpoint="/ingest", reason="unauthorized")
        == 3
    )


def test_no_token_configured_means_open_ingest(tmp_path: Path) -> None:
    with BackgroundServer(make_settings(tmp_path, token=None)) as open_server:
        response = httpx.post(f"{open_server.url}/ingest", content=body([window()]),
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.json() == STORED_ONE


def test_snapshot_then_updates_in_order(server: BackgroundServer) -> None:
    # history before anyone connects: two coins, the open window of bitcoin updated twice
    post(server, [window("bitcoin", 0), window("ethereum", 0)])
    post(server, [window("bitcoin", 1, price=1.0, final=False)])
    post(server, [window("bitcoin", 1, price=2.0, final=False)])
    post(server, [window("bitcoin", 0, price=7.0, source="coingecko")])  # another source

    async def main() -> None:
        async with connect(server.ws_url) as ws:
            snapshot = SnapshotMessage.model_validate(await recv_json(ws))
            keys = [(w.source, w.coin, w.window_start, w.avg_price) for w in snapshot.data]
            assert keys == [
                ("coingecko", "bitcoin", window(i=0).window_start, 7.0),
                ("simulated", "bitcoin", window(i=0).window_start, 100.0),
                ("simulated", "bitcoin", window(i=1).window_start, 2.0),  # replaced, not added
                ("simulated", "ethereum", window(i=0).window_start, 100.0),
            ]
            for price in (3.0, 4.0, 5.0):
                post(server, [window("bitcoin", 1, price=price, final=price == 5.0)])
            prices = [(await recv_json(ws))["data"][0]["avg_price"] for _ in range(3)]
            assert prices == [3.0, 4.0, 5.0]

    asyncio.run(main())
    # no status yet: the default source is the one with the newest window
    history = httpx.get(f"{server.url}/api/windows/bitcoin").json()
    assert [(h["avg_price"], h["final"]) for h in history] == [(100.0, True), (5.0, True)]
    assert len(httpx.get(f"{server.url}/api/windows/bitcoin", params={"limit": 1}).json()) == 1
    coins = httpx.get(f"{server.url}/api/coins").json()
    assert [(c["coin"], c["avg_price"]) for c in coins] == [("bitcoin", 5.0), ("ethereum", 100.0)]
    other = {"source": "coingecko"}
    assert [c["avg_price"] for c in httpx.get(f"{server.url}/api/coins", params=other).json()] == [
        7.0
    ]
    assert len(httpx.get(f"{server.url}/api/windows/bitcoin", params=other).json()) == 1
    assert httpx.get(f"{server.url}/api/windows/ethereum", params=other).status_code == 404
    sources = httpx.get(f"{server.url}/api/sources").json()
    assert sources["default"] == "simulated"
    assert [(s["source"], s["coins"], s["status"]) for s in sources["sources"]] == [
        ("coingecko", 1, None),
        ("simulated", 2, None),
    ]
    assert httpx.get(f"{server.url}/api/windows/dogecoin").status_code == 404
    assert httpx.get(f"{server.url}/api/windows/Not%20A%20Coin").status_code == 422
    assert httpx.get(f"{server.url}/api/windows/bitcoin", params={"limit": 0}).status_code == 422
    assert httpx.get(f"{server.url}/api/windows/bitcoin", params={"limit": "x"}).status_code == 422


def test_500_concurrent_clients_all_receive_a_broadcast(tmp_path: Path) -> None:
    clients = 500
    settings = make_settings(
        tmp_path, max_clients_per_address=clients, ws_connects_per_second_per_address=clients
    )
    with BackgroundServer(settings) as server:
        _all_receive_a_broadcast(server, clients)


def _all_receive_a_broadcast(server: BackgroundServer, clients: int) -> None:
    async def client(ready: asyncio.Queue[None]) -> dict[str, Any]:
        async with connect(server.ws_url, open_timeout=60) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            await ready.put(None)
            return await recv_json(ws)

    async def main() -> None:
        ready: asyncio.Queue[None] = asyncio.Queue()
        tasks = [asyncio.create_task(client(ready)) for _ in range(clients)]
        for _ in range(clients):
            await asyncio.wait_for(ready.get(), 60)
        assert httpx.get(f"{server.url}/healthz").json()["clients"] == clients
        await asyncio.to_thread(post, server, [window(coin, 5) for coin in ("bitcoin", "solana")])
        updates = await asyncio.gather(*tasks)
        assert all(u["type"] == "market_update" and len(u["data"]) == 2 for u in updates)

    asyncio.run(main())
    assert metric(server, "cryptopulse_api_ws_dropped_total", reason="slow") == 0


def _never_reading_client(server: BackgroundServer) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def test_a_client_that_never_reads_is_dropped_and_the_others_get_every_message(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, send_timeout=0.5)
    sent = 0

    def big() -> list[WindowAggregate]:  # ~0.8 MB per message, new prices each time
        return [window(f"coin-{i}", 0, price=100.0 + sent) for i in range(2000)]

    async def main(server: BackgroundServer) -> None:
        nonlocal sent
        stuck = _never_reading_client(server)
        async with (
            connect(server.ws_url, max_size=None) as a,
            connect(server.ws_url, max_size=None) as b,
        ):
            for ws in (a, b):
                assert (await recv_json(ws))["type"] == "snapshot"
            while metric(server, "cryptopulse_api_ws_dropped_total", reason="slow") == 0:
                assert sent < 60, "the stuck client was never dropped"
                response = await asyncio.to_thread(post, server, big())
                assert response.status_code == 200
                sent += 1
                for ws in (a, b):  # the readers get each message while the stuck one lags
                    update = await recv_json(ws)
                    assert len(update["data"]) == 2000
                await asyncio.sleep(0.2)
            # the stuck client's connection is gone: reading it now ends in EOF or a reset
            stuck.settimeout(RECV)
            with pytest.raises((ConnectionResetError, EOFError)):
                while stuck.recv(1 << 20):
                    pass
                raise EOFError
            stuck.close()
            # and the others go on as before
            await asyncio.to_thread(post, server, [window("solana", 1)])
            for ws in (a, b):
                assert (await recv_json(ws))["data"][0]["coin"] == "solana"

    with BackgroundServer(settings) as server:
        asyncio.run(main(server))
        assert sent > 1  # it took a full socket buffer before the timeout could start
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok" and health["clients"] == 0


def test_max_clients_is_enforced_with_close_code_1013(tmp_path: Path) -> None:
    async def main(server: BackgroundServer) -> None:
        async with connect(server.ws_url) as first, connect(server.ws_url) as second:
            for ws in (first, second):
                await recv_json(ws)
            async with connect(server.ws_url) as third:
                code, reason = await close_of(third)
                assert code == 1013 and "server full" in reason
        # places are given back when clients leave
        async with connect(server.ws_url) as again:
            assert (await recv_json(again))["type"] == "snapshot"

    with BackgroundServer(make_settings(tmp_path, max_clients=2)) as server:
        asyncio.run(main(server))
        assert metric(server, "cryptopulse_api_ws_refused_total", reason="full") == 1


def test_cors_and_websocket_origins_follow_the_allow_list(server: BackgroundServer) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{server.url}/api/coins",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )

    assert preflight("http://localhost:5173").headers["access-control-allow-origin"] == (
        "http://localhost:5173"
    )
    assert "access-control-allow-origin" not in preflight("http://evil.test").headers

    async def main() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_url, origin="http://evil.test"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with connect(server.ws_url, origin="http://localhost:5173") as ws:  # type: ignore[arg-type]
            assert (await recv_json(ws))["type"] == "snapshot"

    asyncio.run(main())


def test_ops_endpoints_and_the_page(server: BackgroundServer, tmp_path: Path) -> None:
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in (
        "cryptopulse_api_ingests_total",
        "cryptopulse_api_records_total",
        "cryptopulse_api_ingest_seconds",
        "cryptopulse_api_ws_clients",
        "cryptopulse_api_ws_dropped_total",
        "cryptopulse_api_broadcast_seconds",
    ):
        assert f"# HELP {name} " in metrics.text
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "IngestRequest" in spec["components"]["schemas"]
    assert "/ingest" in spec["paths"] and "/api/history/{coin}" in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 404  # off unless api.docs
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "make setup" in page.text

    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>CryptoPulse dashboard</title>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    with BackgroundServer(make_settings(tmp_path, web_dist=dist)) as built:
        assert "CryptoPulse dashboard" in httpx.get(f"{built.url}/").text
        assert httpx.get(f"{built.url}/assets/app.js").text == "console.log('hi')"
        assert httpx.get(f"{built.url}/api/coins").json() == []


def test_without_direct_writes_the_asgi_path_delivers_the_same(tmp_path: Path) -> None:
    async def main(server: BackgroundServer) -> None:
        async with connect(server.ws_url) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            for price in (1.0, 2.0):
                await asyncio.to_thread(post, server, [window(price=price)])
            assert [(await recv_json(ws))["data"][0]["avg_price"] for _ in range(2)] == [1.0, 2.0]

    with BackgroundServer(make_settings(tmp_path), direct_writes=False) as server:
        asyncio.run(main(server))
        assert ws_paths(server) == {"direct": 0, "asgi": 1}


def ws_paths(server: BackgroundServer) -> dict[str, float]:
    name = "cryptopulse_api_ws_connections_total"
    return {path: metric(server, name, path=path) for path in ("direct", "asgi")}


def test_the_fast_path_is_the_one_running(server: BackgroundServer) -> None:
    """`cryptopulse serve` writes frames straight to each client's socket: were uvicorn to change
    what the hook relies on, clients would fall back to ASGI sends and this would say so."""

    async def main() -> None:
        async with connect(server.ws_url) as a, connect(server.ws_url) as b:
            for ws in (a, b):
                assert (await recv_json(ws))["type"] == "snapshot"
            await asyncio.to_thread(post, server, [window(price=3.0)])
            for ws in (a, b):
                assert (await recv_json(ws))["data"][0]["avg_price"] == 3.0

    asyncio.run(main())
    assert ws_paths(server) == {"direct": 2, "asgi": 0}


def test_ingest_can_be_turned_off(tmp_path: Path) -> None:
    with BackgroundServer(make_settings(tmp_path, ingest_enabled=False)) as server:
        assert post(server, [window()]).status_code in (404, 405)
        assert httpx.get(f"{server.url}/healthz").json()["ingest"] is False


def test_protect_reads_puts_the_api_and_the_websocket_behind_the_token(tmp_path: Path) -> None:
    with BackgroundServer(make_settings(tmp_path, protect_reads=True)) as guarded:
        assert post(guarded, [window()]).status_code == 200
        assert httpx.get(f"{guarded.url}/api/coins").status_code == 401
        assert httpx.get(f"{guarded.url}/api/coins", headers=AUTH).status_code == 200
        assert httpx.get(f"{guarded.url}/").status_code == 200  # the page stays public
        assert httpx.get(f"{guarded.url}/healthz").status_code == 200
        ws_url = guarded.url.replace("http", "ws", 1) + "/ws"

        async def refused(protocols: list[str] | None) -> None:
            async with connect(ws_url, subprotocols=protocols) as ws:  # type: ignore[arg-type]
                assert await close_of(ws) == (1008, "missing or wrong token")

        async def allowed() -> None:
            protocols: Any = ["cryptopulse", f"token.{TOKEN}"]
            async with connect(ws_url, subprotocols=protocols) as ws:
                assert ws.subprotocol == "cryptopulse"  # the token is never echoed back
                assert (await recv_json(ws))["type"] == "snapshot"

        async def run() -> None:
            for protocols in (None, ["cryptopulse", "token.wrong"]):
                await refused(protocols)  # with its reason, which a browser can show
            await allowed()

        asyncio.run(run())


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from cryptopulse.platform.ports import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env |= {"CRYPTOPULSE_DATA_DIR": str(tmp_path), "CRYPTOPULSE_API__WEB_DIST": str(tmp_path / "x")}
    command = [sys.executable, "-m", "cryptopulse.cli", "serve", "--host", "0.0.0.0"]
    command += ["--port", str(port), "--no-consume-windows"]
    refused = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert refused.returncode == 2
    message = b" ".join(refused.stderr.split())
    assert b"not a loopback address, without a token" in message
    assert b"CRYPTOPULSE_API__TOKEN" in message

    with subprocess.Popen(
        command,
        env={**env, "CRYPTOPULSE_API__TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(30)
        output = proc.stderr.read() if proc.stderr else b""
        assert TOKEN.encode() not in output
