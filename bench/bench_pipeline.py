"""Benchmark: the whole pipeline as `make up` runs it (set-up already done).

    .venv/bin/python bench/bench_pipeline.py [--probes 40]

1. Start-up: time from launching `cryptopulse up --source simulated` (1 s trigger, 30 s windows,
   10 coins) until headless Chromium shows the first aggregate in the dashboard's table.
2. Tick-to-browser latency: probe ticks, each for a coin seen nowhere else, are produced to
   Kafka one at a time; latency is from the produce call until that coin's row is in the page.
3. Memory at rest: resident memory of each component's process tree after the probes.

Runs on free ports in a temp folder; bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

import orjson
import psutil
from confluent_kafka import Producer
from playwright.sync_api import sync_playwright

from cryptopulse.platform.ports import free_port
from tests.browser import launch


def tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    api_port, kafka_port, controller = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CRYPTOPULSE_DATA_DIR": str(data),
        "CRYPTOPULSE_API__PORT": str(api_port),
        "CRYPTOPULSE_KAFKA__PORT": str(kafka_port),
        "CRYPTOPULSE_KAFKA__CONTROLLER_PORT": str(controller),
    }
    url = f"http://127.0.0.1:{api_port}/"
    out = open(data / "up.out", "wb")  # noqa: SIM115 - closed at the end
    started = time.monotonic()
    up = subprocess.Popen(
        [sys.executable, "-m", "cryptopulse.cli", "up", "--source", "simulated", "--trigger", "1"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} cores"}
    try:
        while "dashboard:" not in (data / "up.out").read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit((data / "up.out").read_text())
            time.sleep(0.1)
        result["up_to_url_s"] = round(time.monotonic() - started, 2)
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector('[data-testid="coin-row"]', timeout=120_000)
            result["up_to_first_aggregate_s"] = round(time.monotonic() - started, 2)
            producer = Producer({"bootstrap.servers": f"127.0.0.1:{kafka_port}", "linger.ms": 0})
            latencies = []
            for i in range(args.probes):
                coin = f"probe-{i:03d}"
                tick = {
                    "coin": coin,
                    "symbol": "prb",
                    "price": 1.0 + i,
                    "change_24h": 0.5,
                    "volume_24h": 1.0,
                    "market_cap": 1.0,
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "source": "bench",
                }
                sent = time.monotonic()
                producer.produce("crypto_market_data", key=coin, value=orjson.dumps(tick))
                producer.flush(5)
                page.wait_for_selector(
                    f'[data-testid="coin-row"][data-coin="{coin}"]', timeout=30_000
                )
                latencies.append(time.monotonic() - sent)
                time.sleep(0.3 + (i % 7) * 0.1)  # spread probes across the trigger phase
            browser.close()
            del producer  # its connection must close before the broker stops
        latencies.sort()
        result["tick_to_browser_median_s"] = round(statistics.median(latencies), 3)
        result["tick_to_browser_p95_s"] = round(latencies[int(0.95 * (len(latencies) - 1))], 3)
        time.sleep(20)  # at rest: only the simulated 10 coins, one tick per coin per 30 s
        state = orjson.loads((data / "run" / "state.json").read_bytes())
        result["rss_mb_at_rest"] = {
            c["name"]: round(tree_rss_mb(c["pid"]), 0) for c in state["components"] if c["pid"]
        }
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(180)
        out.close()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
