"""Benchmark: recovery after SIGKILL of each component, and what was lost.

    .venv/bin/python bench/bench_recovery.py [--rounds 3] [--json out.json]

Runs `cryptopulse up --source simulated` (5 s windows, 1 s watermark and trigger, 10 coins
at 2 ticks/s each) on free ports in a temp folder, then, `--rounds` times, SIGKILLs the
broker, the API server, the Spark job and the producer in turn. For each kill it measures

* running again: until the supervisor reports every component running, with a new process
  for the killed one;
* data again: until the API serves a window that ends after the kill (what the dashboard
  shows).

At the end it reads both topics back: every window the watermark has passed must have
exactly one final record, and the final's tick_count is compared with the ticks Kafka holds
for that window (ticks lost in aggregation, e.g. dropped as late). Ticks a SIGKILLed
producer had not yet handed to Kafka cannot be counted here; its linger is 20 ms.
Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.e2e.test_chaos import COMPONENTS, WINDOW_S, all_running, window_of
from tests.e2e.test_pipeline import Pipeline, running, wait_for
from tests.kafka_helpers import read_topic


def newest_end(pipeline: Pipeline) -> float:
    try:
        coins = httpx.get(f"{pipeline.url}api/coins", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return 0.0
    ends = [datetime.fromisoformat(c["window_end"].replace("Z", "+00:00")) for c in coins]
    return max((e.timestamp() for e in ends), default=0.0)


def kill_and_wait(pipeline: Pipeline, name: str) -> dict[str, float]:
    before = pipeline.component(name)
    killed = time.time()
    os.killpg(before["pid"], signal.SIGKILL)
    wait_for(
        lambda: (
            pipeline.component(name).get("pid") not in (None, before["pid"])
            and all_running(pipeline)
        ),
        120,
        f"{name} to run again",
        interval=0.1,
    )
    back = time.time()
    wait_for(lambda: newest_end(pipeline) > killed, 180, "newer windows", interval=0.2)
    data = time.time()
    pipeline.remember_processes()
    return {"running_s": back - killed, "data_s": data - killed}


def account(pipeline: Pipeline) -> dict[str, int]:
    bootstrap = f"127.0.0.1:{pipeline.kafka_ports[0]}"
    cutoff = time.time() - 3 * WINDOW_S
    cutoff_key = datetime.fromtimestamp(cutoff // WINDOW_S * WINDOW_S, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    wait_for(
        lambda: any(
            w["final"] and w["window_start"] >= cutoff_key
            for w in read_topic(bootstrap, "crypto_market_windows")
        ),
        60,
        "finals past the cut-off",
        interval=2,
    )
    ticks = Counter(
        (t["source"], t["coin"], window_of(t["timestamp"]))
        for t in read_topic(bootstrap, "crypto_market_data")
    )
    finals: dict[tuple[str, str, str], list[int]] = {}
    for w in read_topic(bootstrap, "crypto_market_windows"):
        if w["final"]:
            finals.setdefault((w["source"], w["coin"], w["window_start"]), []).append(
                w["tick_count"]
            )
    closed = {key: n for key, n in ticks.items() if key[2] < cutoff_key}
    return {
        "windows_checked": len(closed),
        "ticks_in_kafka": sum(closed.values()),
        "windows_without_final": sum(1 for key in closed if key not in finals),
        "windows_with_repeated_final": sum(1 for v in finals.values() if len(v) > 1),
        "ticks_lost_in_aggregation": sum(
            max(0, n - (finals.get(key) or [0])[0]) for key, n in closed.items()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    options = ("--source", "simulated", "--window", str(WINDOW_S), "--watermark", "1")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in COMPONENTS}
    with (
        tempfile.TemporaryDirectory(prefix="cryptopulse-bench-") as tmp,
        running(Path(tmp), *options, "--trigger", "1", "--rate", "2") as pipeline,
    ):
        wait_for(lambda: newest_end(pipeline) > 0, 180, "the first window")
        for round_no in range(args.rounds):
            for name in COMPONENTS:
                result = kill_and_wait(pipeline, name)
                results[name].append(result)
                print(f"round {round_no + 1} {name:>8}: {result}", flush=True)
        accounting = account(pipeline)
        code = pipeline.stop()
    summary: dict[str, Any] = {
        name: {
            "running_median_s": round(statistics.median(r["running_s"] for r in runs), 1),
            "data_median_s": round(statistics.median(r["data_s"] for r in runs), 1),
            "runs": runs,
        }
        for name, runs in results.items()
    }
    summary["accounting"] = accounting
    summary["up_exit_code"] = code
    summary["machine"] = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    print(json.dumps({k: v for k, v in summary.items()}, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
