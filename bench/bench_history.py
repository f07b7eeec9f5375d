"""History benchmark: candles from a month of windows for 100 coins, through the real route.

Fills a temporary SQLite history file with --coins coins x --days days of 30 s windows
(100 x 30 = 8.64 million rows) with executemany in one transaction per coin, starts a real
`cryptopulse serve` on it (`history.path`), and times --requests GETs of each query over HTTP:
1 h candles over the last 7 days, 1 m candles over the last 24 h, and the sparklines (every
coin's closes over 24 h). Also: the file's size per million windows, the fill rate, and how
long the retention cleanup takes to delete one day of every coin.

Run: `.venv/bin/python bench/bench_history.py [--coins 100 --days 30 --requests 200]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import summary  # noqa: E402
from cryptopulse.history.sqlite import SqliteHistory  # noqa: E402
from cryptopulse.platform.ports import free_port  # noqa: E402

SOURCE = "simulated"


def fill(path: Path, coins: int, days: float, end: int) -> tuple[int, float]:
    """Random-walk windows ending at `end` (epoch seconds); (rows, seconds)."""
    store = SqliteHistory(path)
    per_coin = int(days * 2880)
    first = end - per_coin * 30
    rng = random.Random(1)
    began = time.perf_counter()
    for c in range(coins):
        coin = "bitcoin" if c == 0 else f"coin-{c:03d}"
        price = rng.uniform(1, 1000)
        rows = []
        for i in range(per_coin):
            step = price * rng.uniform(-0.002, 0.002)
            o, close = price, price + step
            hi, lo = max(o, close) * 1.0005, min(o, close) * 0.9995
            change = rng.uniform(-12, 12)
            rows.append(
                (first + 30 * i, o, hi, lo, close, (o + close) / 2, change, 3e10, 1.9e12, 3, 0)
            )
            price = close
        store.write_rows(SOURCE, coin, coin[:3], rows)
    seconds = time.perf_counter() - began
    store.close()
    return coins * per_coin, seconds


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def start_server(path: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env |= {
        "CRYPTOPULSE_DATA_DIR": str(data_dir),
        "CRYPTOPULSE_HISTORY__PATH": str(path),
        "CRYPTOPULSE_HISTORY__RETENTION_DAYS": "3650",  # the bench's month stays
        "CRYPTOPULSE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "cryptopulse.cli", "serve", "--port", str(port)]
    command += ["--no-consume-windows"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("server did not start")


def timed(http: httpx.Client, path: str, params: dict[str, str], n: int) -> dict[str, Any]:
    for _ in range(5):  # warm: connections, page cache
        http.get(path, params=params).raise_for_status()
    ms: list[float] = []
    size = 0
    for _ in range(n):
        began = time.perf_counter()
        response = http.get(path, params=params)
        ms.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return {"ms": summary(ms), "bytes": size, "requests": n}


def server_query_ms(http: httpx.Client) -> dict[str, float]:
    """Mean time of each history read inside the server (cryptopulse_history_query_seconds)."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in http.get("/metrics").text.splitlines():
        for suffix, into in (("_sum", sums), ("_count", counts)):
            prefix = f"cryptopulse_history_query_seconds{suffix}{{"
            if line.startswith(prefix):
                query = line.split('query="')[1].split('"')[0]
                into[query] = float(line.rsplit(" ", 1)[1])
    return {q: round(sums[q] / counts[q] * 1000, 2) for q in sums if counts.get(q)}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        path = Path(tmp) / "history.sqlite3"
        now = datetime.now(UTC).replace(microsecond=0)
        end = int(now.timestamp()) // 30 * 30
        rows, fill_seconds = fill(path, args.coins, args.days, end)
        size = db_bytes(path)
        print(
            f"filled {rows:,} windows in {fill_seconds:.0f} s; {size / 2**20:.0f} MiB", flush=True
        )
        port = free_port()
        proc = start_server(path, Path(tmp) / "data", port)
        results: dict[str, Any] = {}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                base = {"source": SOURCE, "to": iso(now)}
                queries = {
                    "baseline: /api/sources (no database)": ("/api/sources", {}),
                    "1h over 7 days": (
                        "/api/history/bitcoin",
                        {**base, "interval": "1h", "from": iso(now - timedelta(days=7))},
                    ),
                    "1m over 24 h": (
                        "/api/history/bitcoin",
                        {**base, "interval": "1m", "from": iso(now - timedelta(hours=24))},
                    ),
                    "sparklines, 24 h": ("/api/sparklines", {"source": SOURCE, "hours": "24"}),
                }
                for name, (route, params) in queries.items():
                    results[name] = timed(http, route, params, args.requests)
                    print(name, json.dumps(results[name]), flush=True)
                results["server-side query mean ms"] = server_query_ms(http)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        store = SqliteHistory(path)
        began = time.perf_counter()
        purged = store.purge(datetime.fromtimestamp(end, UTC) - timedelta(days=args.days - 1))
        purge_seconds = time.perf_counter() - began
        store.close()

    load = os.getloadavg()
    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    report = {
        "machine": machine,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load],
        "windows": rows,
        "fill_seconds": round(fill_seconds, 1),
        "db_bytes": size,
        "mib_per_million_windows": round(size / 2**20 / (rows / 1e6), 1),
        "queries": results,
        "purge_one_day": {"windows": purged, "seconds": round(purge_seconds, 2)},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
