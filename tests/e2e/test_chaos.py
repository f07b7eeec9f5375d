"""Chaos drill: `cryptopulse up --source simulated` with short windows, then SIGKILL in turn
the broker, the API server, the Spark job and the producer while data flows.

After each kill every component is running again within 60 s and the dashboard (headless
Chromium) shows windows newer than the kill. Over the whole run every
(source, coin, window_start) on the windows topic has exactly one final record, for every
window whose ticks reached Kafka. `down` (here: Ctrl-C) leaves no process and no port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright
import psutil
import pytest

from tests.browser import launch
from tests.e2e.test_pipeline import ARTIFACTS, Pipeline, running, wait_for
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.e2e

WINDOW_S = 5
COMPONENTS = ("kafka", "api", "stream", "producer")
RECOVERY_S = 60


def window_of(timestamp: str) -> str:
    seconds = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    start = datetime.fromtimestamp(seconds // WINDOW_S * WINDOW_S, UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def newest_end_shown(page: Any) -> float:
    """The newest window end the dashboard shows, in ms (0 before the first)."""
    value = page.get_by_test_id("data-age").get_attribute("data-newest-end")
    return float(value) if value else 0.0


def all_running(pipeline: Pipeline) -> bool:
    return all(
        pipeline.component(name).get("status") == "running"
        and pipeline.component(name).get("pid")
        and psutil.pid_exists(pipeline.component(name)["pid"])
        for name in COMPONENTS
    )


def test_every_component_killed_in_turn_comes_back_and_nothing_is_lost_or_repeated(
    tmp_path: Path,
) -> None:
    options = ("--source", "simulated", "--window", str(WINDOW_S), "--watermark", "1")
    with (
        running(tmp_path, *options, "--trigger", "1", "--rate", "2") as pipeline,
        playwright.sync_playwright() as pw,
    ):
        bootstrap = f"127.0.0.1:{pipeline.kafka_ports[0]}"
        browser = launch(pw)
        recoveries: dict[str, float] = {}
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(pipeline.url)
            wait_for(lambda: newest_end_shown(page) > 0, 120, "the first window on the dashboard")
            for name in COMPONENTS:
                before = pipeline.component(name)
                assert before.get("status") == "running", (name, pipeline.state())
                killed_at = time.time()
                os.killpg(before["pid"], signal.SIGKILL)  # each runs in its own process group
                wait_for(
                    lambda n=name, pid=before["pid"]: (  # type: ignore[misc]
                        pipeline.component(n).get("pid") not in (None, pid)
                        and all_running(pipeline)
                    ),
                    RECOVERY_S,
                    f"every component running again after killing {name}",
                )
                recoveries[name] = time.time() - killed_at
                pipeline.remember_processes()
                page.screenshot(path=str(ARTIFACTS / f"chaos-after-{name}.png"))
                wait_for(  # within the same 60 s from the kill
                    lambda t=killed_at: newest_end_shown(page) > t * 1000,  # type: ignore[misc]
                    max(1.0, killed_at + RECOVERY_S - time.time()),
                    f"the dashboard to show windows newer than the {name} kill",
                )
            print("recovered after SIGKILL (s):", {k: round(v, 1) for k, v in recoveries.items()})

            # Every window whose ticks reached Kafka is final exactly once. Windows the
            # watermark has not passed yet are left out: those are still open.
            def cut_off() -> str:
                cutoff = time.time() - 3 * WINDOW_S
                return datetime.fromtimestamp(cutoff // WINDOW_S * WINDOW_S, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z"
                )

            def windows_with_ticks(before: str) -> set[tuple[str, str, str]]:
                ticks = read_topic(bootstrap, "crypto_market_data")
                return {
                    (t["source"], t["coin"], window_of(t["timestamp"]))
                    for t in ticks
                    if window_of(t["timestamp"]) < before
                }

            # Quick recoveries leave only a few windows behind the cut-off: wait for enough.
            wait_for(
                lambda: len(windows_with_ticks(cut_off())) > 10 * len(COMPONENTS),
                60,
                "enough windows with ticks behind the cut-off",
                interval=2,
            )
            cutoff_key = cut_off()

            def finals() -> Counter[tuple[str, str, str]]:
                # Spark's finals only: the producer's backfill windows (kind "backfill", final
                # too) share the topic and are published again by each restarted producer.
                return Counter(
                    (w["source"], w["coin"], w["window_start"])
                    for w in read_topic(bootstrap, "crypto_market_windows")
                    if w["final"] and w.get("kind", "live") == "live"
                )

            wait_for(
                lambda: any(key[2] >= cutoff_key for key in finals()),
                60,
                "finals past the cut-off",
                interval=2,
            )
            expected = windows_with_ticks(cutoff_key)
            got = finals()
            repeated = {key: n for key, n in got.items() if n > 1}
            assert repeated == {}, f"windows finalized more than once: {list(repeated)[:5]}"
            closed = {key for key in got if key[2] < cutoff_key}
            assert expected - closed == set(), f"missing finals: {sorted(expected - closed)[:5]}"
            assert closed - expected == set(), f"finals without ticks: {sorted(closed - expected)}"
            assert len(expected) > 10 * len(COMPONENTS)
        finally:
            browser.close()

        assert pipeline.stop() == 0, pipeline.output()[-3000:]
        out = pipeline.output()
        # one line when Kafka went away and one when it was back, not a line per retry
        assert out.count("Traceback") == 0, out[-3000:]
        pipeline.assert_nothing_left()
    with contextlib.suppress(FileNotFoundError):
        print((tmp_path / "up.out").read_text()[-4000:])
