"""The history database for real: `cryptopulse serve` subprocesses on a free port with their
own data folder, finals POSTed with the ingest token, candles read back over HTTP, the server
SIGKILLed and restarted, the export CLI reading the file while the server runs."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from websockets.asyncio.client import connect

from cryptopulse.platform.ports import free_port
from cryptopulse.schema import HistoryResponse, SparklinesResponse, WindowAggregate
from tests.factories import WINDOW, window
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

TOKEN = "history-test-token"
CLI = [sys.executable, "-m", "cryptopulse.cli"]


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "CRYPTOPULSE_DATA_DIR": str(data_dir),
        "CRYPTOPULSE_API__WEB_DIST": str(data_dir / "no-dist"),
        "CRYPTOPULSE_API__TOKEN": TOKEN,
    }
    return env | {f"CRYPTOPULSE_{k.upper()}": v for k, v in settings.items()}


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"

    def post(self, records: list[WindowAggregate]) -> dict[str, Any]:
        body = orjson.dumps({"data": [r.model_dump(mode="json") for r in records]})
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        response = httpx.post(f"{self.url}/ingest", content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def history(self, coin: str = "bitcoin", **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/history/{coin}", params=params, timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@contextmanager
def serve(data_dir: Path, port: int, **settings: str) -> Iterator[Served]:
    """`cryptopulse serve` in its own process group; stopped (SIGTERM, then SIGKILL) by its
    group id at the end unless the test killed it already."""
    command = [*CLI, "serve", "--port", str(port), "--no-consume-windows"]
    proc = subprocess.Popen(
        command,
        env=_env(data_dir, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    served = Served(proc, port)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(served.url), 60, "serve to start")
        assert proc.poll() is None, "serve exited"
        yield served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        wait_for(lambda: _port_free(port), 30, f"port {port} to be free")


def kill(served: Served) -> None:
    os.killpg(served.proc.pid, signal.SIGKILL)
    served.proc.wait(10)
    wait_for(lambda: _port_free(served.port), 30, "the killed server's port to be free")


def recent(i: int) -> datetime:
    """The start of the i-th 30 s window before the current one (admission refuses the future)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=now.timestamp() % 30) - WINDOW * i


def hours_ago(k: int) -> datetime:
    """The start of the hour k hours before the current one: candles of 1 m ... 1 h align."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=k)


def candles(served: Served, coin: str = "bitcoin", **params: str) -> list[dict[str, Any]]:
    """The coin's candles; none while nothing of it is stored (404)."""
    response = served.history(coin, **params)
    if response.status_code == 404 and response.json()["reason"] == "no_data":
        return []
    assert response.status_code == 200, response.text
    HistoryResponse.model_validate(response.json())  # the documented contract
    found: list[dict[str, Any]] = response.json()["candles"]
    return found


def test_history_survives_a_sigkill_and_a_repeated_final_replaces(tmp_path: Path) -> None:
    port = free_port()
    base = hours_ago(3)
    finals = [window("bitcoin", i, price=100.0 + i, start=base) for i in range(120)]
    finals += [window("solana", i, price=5.0, start=base) for i in range(120)]
    span = {"from": base.isoformat(), "to": (base + WINDOW * 120).isoformat()}
    with serve(tmp_path, port) as server:
        assert server.post(finals)["stored"] == 240
        assert server.post([window("bitcoin", 200, final=False, start=base)])["stored"] == 1
        wanted = 120 // 2  # 1 m candles over 120 windows

        def stored() -> list[dict[str, Any]] | None:
            found = candles(server, interval="1m", **span)
            return found if len(found) == wanted and found[-1]["windows"] == 2 else None

        before = wait_for(stored, 30, "the finals in the history database")
        hourly = candles(server, interval="1h", **span)
        kill(server)  # no shutdown: only what the database committed survives
    assert before[0]["open"] == 100.0 and before[0]["close"] == 101.0
    assert before[0]["tick_count"] == 6 and before[0]["avg_price"] == 100.5
    assert sum(c["windows"] for c in hourly) == 120
    path = tmp_path / "history" / f"api-{port}.sqlite3"  # the default: one file per server
    assert path.exists()

    with serve(tmp_path, port) as server:  # the same data folder and port
        assert candles(server, interval="1m", **span) == before
        assert candles(server, interval="1h", **span) == hourly
        # the open window was not stored; the in-memory store starts empty after a restart
        assert candles(server, interval="30s", **{"from": (base + WINDOW * 200).isoformat()}) == []
        server.post([window("bitcoin", 0, price=90.0, start=base)])  # the same final again
        first = wait_for(
            lambda: (c := candles(server, interval="30s", **span)) and c[0]["close"] == 90.0 and c,
            30,
            "the repeated final to replace the stored one",
        )
        assert len(first) == 120 and first[0]["windows"] == 1  # replaced, not duplicated
        sparks = httpx.get(f"{server.url}/api/sparklines", params={"hours": 6}).json()
        SparklinesResponse.model_validate(sparks)
        assert set(sparks["closes"]) == {"bitcoin", "solana"}
        assert sparks["closes"]["solana"] and set(sparks["closes"]["solana"]) == {5.0}


def test_retention_removes_only_what_is_older(tmp_path: Path) -> None:
    port = free_port()
    old, new = recent(2880 * 2), recent(100)  # two days ago, ~50 min ago
    with serve(
        tmp_path, port, history__retention_days="1", history__cleanup_interval="0.2"
    ) as server:
        day = {"from": (old - WINDOW).isoformat(), "to": (old + WINDOW * 20).isoformat()}
        server.post([window("bitcoin", i, start=old) for i in range(10)])
        server.post([window("bitcoin", i, start=new) for i in range(10)])
        recent_span = {"from": new.isoformat(), "to": (new + WINDOW * 10).isoformat()}
        wait_for(
            lambda: len(candles(server, interval="30s", **recent_span)) == 10,
            30,
            "the recent windows stored",
        )
        purged = wait_for(
            lambda: _metric(server, "cryptopulse_history_windows_purged_total") >= 10,
            30,
            "the cleanup",
        )
        assert purged
        assert _metric(server, "cryptopulse_history_windows_purged_total") == 10
        assert len(candles(server, interval="30s", **recent_span)) == 10
        # older than the retention: gone
        assert candles(server, interval="30s", **day) == []
        kill(server)
    from cryptopulse.history.sqlite import SqliteHistory

    store = SqliteHistory(tmp_path / "history" / f"api-{port}.sqlite3", read_only=True)
    assert store.count() == 10
    store.close()


def _metric(server: Served, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_backfill_is_stored_but_never_live(tmp_path: Path) -> None:
    port = free_port()
    base = hours_ago(5)
    backfill = [
        window("cardano", i, price=0.5, start=base).model_copy(update={"kind": "backfill"})
        for i in range(20)
    ]
    with serve(tmp_path, port) as server:
        server.post([window("bitcoin", 0, start=recent(1))])  # some live data
        server.post(backfill)
        span = {"from": base.isoformat(), "to": (base + WINDOW * 20).isoformat()}
        found = wait_for(
            lambda: (c := candles(server, "cardano", interval="5m", **span)) and len(c) == 2 and c,
            30,
            "the backfill stored",
        )
        assert {c["kind"] for c in found} == {"backfill"}
        assert sum(c["windows"] for c in found) == 20
        coins = httpx.get(f"{server.url}/api/coins").json()
        assert [c["coin"] for c in coins] == ["bitcoin"]

        async def snapshot() -> dict[str, Any]:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                return message

        assert {r["coin"] for r in asyncio.run(snapshot())["data"]} == {"bitcoin"}
        # a backfill never replaces a live window of the same key
        server.post(
            [
                window("bitcoin", 0, price=1.0, start=recent(1)).model_copy(
                    update={"kind": "backfill"}
                )
            ]
        )
        live_span = {"from": recent(1).isoformat(), "to": recent(0).isoformat()}
        assert [c["kind"] for c in candles(server, interval="30s", **live_span)] == ["live"]


def test_bad_requests_get_a_clear_422(tmp_path: Path) -> None:
    with serve(tmp_path, free_port()) as server:
        server.post([window("bitcoin", 0, start=recent(1))])
        day = recent(0)
        for params, reason in (
            ({"from": day.isoformat(), "to": (day - WINDOW).isoformat()}, "bad_range"),
            ({"from": (day - timedelta(days=40)).isoformat()}, "range_too_long"),
            (
                {"from": (day - timedelta(days=7)).isoformat(), "interval": "30s"},
                "too_many_candles",
            ),
        ):
            response = server.history(**params)
            assert response.status_code == 422 and response.json()["reason"] == reason, params
        assert server.history(interval="2m").status_code == 422
        assert server.history(**{"from": "yesterday"}).status_code == 422
        assert server.history("dogecoin").status_code == 404
        default = server.history().json()  # the last 24 h at an interval of <= 500 candles
        assert default["interval"] == "5m" and default["source"] == "simulated"
        spec = httpx.get(f"{server.url}/openapi.json").json()
        params = {p["name"] for p in spec["paths"]["/api/history/{coin}"]["get"]["parameters"]}
        assert params == {"coin", "interval", "from", "to", "source"}
        assert "/api/sparklines" in spec["paths"] and "/api/windows/{coin}" in spec["paths"]


def test_export_to_csv_and_parquet_while_the_server_runs(tmp_path: Path) -> None:
    port = free_port()
    base = hours_ago(4)
    with serve(tmp_path, port) as server:
        server.post([window("bitcoin", i, price=10.0 + i, start=base) for i in range(60)])
        span = {"from": base.isoformat(), "to": (base + WINDOW * 60).isoformat()}
        want = wait_for(
            lambda: (c := candles(server, interval="5m", **span)) and len(c) == 6 and c,
            30,
            "the windows stored",
        )
        args = ["--coin", "bitcoin", "--from", span["from"], "--to", span["to"]]
        args += ["--interval", "5m"]
        for name in ("out.csv", "out.parquet"):
            done = subprocess.run(
                [*CLI, "export", *args, "-o", str(tmp_path / name)],
                env=_env(tmp_path, api__port=str(port)),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "6 rows written" in " ".join(done.stderr.split())
        with (tmp_path / "out.csv").open() as f:
            rows = list(csv.DictReader(f))
        table = pq.read_table(tmp_path / "out.parquet").to_pylist()
        for got in (rows, table):
            assert [float(r["close"]) for r in got] == [c["close"] for c in want]
            assert [int(r["tick_count"]) for r in got] == [c["tick_count"] for c in want]
        assert rows[0]["start"] == want[0]["start"]
        assert table[0]["start"] == datetime.fromisoformat(want[0]["start"])
        unknown = subprocess.run(
            [*CLI, "export", "--coin", "nope", "-o", str(tmp_path / "x.csv")],
            env=_env(tmp_path, api__port=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert unknown.returncode == 1 and "no history for coin 'nope'" in unknown.stderr
    missing = subprocess.run(
        [*CLI, "export", "--coin", "bitcoin", "-o", str(tmp_path / "x.csv")],
        env=_env(tmp_path / "empty"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no history database" in missing.stderr
