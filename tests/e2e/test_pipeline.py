"""The whole pipeline, as a user runs it: `cryptopulse up --source simulated` with short
windows, the dashboard in headless Chromium, a SIGKILLed Spark job that the supervisor
restarts from its checkpoint, and a shutdown that leaves nothing behind."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import playwright.sync_api as playwright
import psutil
import pytest

from cryptopulse.config import DEFAULT_COINS
from cryptopulse.platform.ports import free_port, port_in_use
from tests import waiting
from tests.browser import launch

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# Each check here asks the browser or reads a file: twice a second is often enough.
wait_for = functools.partial(waiting.wait_for, interval=0.5)


class Pipeline:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.api_port = free_port()
        self.kafka_ports = (free_port(), free_port())
        self.out = data_dir / "up.out"
        self.env = {
            **os.environ,
            "CRYPTOPULSE_DATA_DIR": str(data_dir),
            "CRYPTOPULSE_API__PORT": str(self.api_port),
            "CRYPTOPULSE_KAFKA__PORT": str(self.kafka_ports[0]),
            "CRYPTOPULSE_KAFKA__CONTROLLER_PORT": str(self.kafka_ports[1]),
            "CRYPTOPULSE_API__CORS_ORIGINS": f'["http://127.0.0.1:{self.api_port}"]',
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/"

    def start(self, *options: str) -> None:
        argv = [sys.executable, "-m", "cryptopulse.cli", "up", *options]
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = orjson.loads(
                (self.data_dir / "run" / "state.json").read_bytes()
            )
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return state

    def component(self, name: str) -> dict[str, Any]:
        return next((c for c in self.state().get("components", []) if c["name"] == name), {})

    def remember_processes(self) -> None:
        """Every process of the pipeline: the supervisor's tree and the detached broker."""
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        self.pids |= {root.pid, *(p.pid for p in root.children(recursive=True))}
        for c in self.state().get("components", []):
            if c["pid"]:
                self.pids.add(c["pid"])
                with contextlib.suppress(psutil.Error):
                    self.pids |= {p.pid for p in psutil.Process(c["pid"]).children(recursive=True)}

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(180)

    def assert_nothing_left(self) -> None:
        """No process of the pipeline is running and none of its ports is in use."""
        leftovers = [
            pid
            for pid in self.pids
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        assert leftovers == []
        for port in (self.api_port, *self.kafka_ports):
            assert not port_in_use("127.0.0.1", port), port

    def kill_everything(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


@contextlib.contextmanager
def running(data_dir: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Pipeline]:
    """`cryptopulse up` with these options, until the dashboard URL is printed; always stopped."""
    p = Pipeline(data_dir)
    p.env.update(env or {})
    p.start(*options)
    try:
        wait_for(
            lambda: "dashboard:" in p.output() or (p.proc and p.proc.poll() is not None),
            300,
            "the dashboard URL",
        )
        assert p.proc is not None and p.proc.poll() is None, p.output()
        p.remember_processes()
        yield p
    finally:
        if p.proc is not None and p.proc.poll() is None:
            p.stop()
        p.kill_everything()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    options = ("--source", "simulated", "--window", "5", "--watermark", "1", "--trigger", "1")
    with running(tmp_path, *options, "--rate", "2") as p:
        yield p


def table_prices(page: Any) -> dict[str, str]:
    cells = page.locator('[data-testid="coin-row"]').evaluate_all(
        "rows => rows.map(r => [r.dataset.coin, r.querySelector('[data-col=\"price\"]').textContent])"
    )
    return dict(cells)


def test_pipeline_end_to_end(pipeline: Pipeline) -> None:
    assert f"dashboard: {pipeline.url}" in re.sub(r"\s+", " ", pipeline.output())
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(pipeline.url)
            # Every configured coin appears, with values that change over time.
            wait_for(
                lambda: set(table_prices(page)) >= set(DEFAULT_COINS),
                120,
                "every coin in the table",
            )
            first = table_prices(page)
            wait_for(lambda: table_prices(page) != first, 60, "prices to change")
            # Simulated data is labelled as such, never as live market data.
            playwright.expect(page.get_by_test_id("source-badge")).to_contain_text("Simulated data")
            # At least one final window reaches the line chart.
            chart = page.get_by_test_id("line-chart")
            wait_for(
                lambda: int(chart.get_attribute("data-final-count") or 0) >= 1, 90, "a final window"
            )
            page.screenshot(path=str(ARTIFACTS / "pipeline-desktop.png"))
            # The stream job's POSTs carry the token `up` generated: accepted, none refused.
            token_path = pipeline.data_dir / "secrets" / "ingest-token"
            assert token_path.stat().st_mode & 0o777 == 0o600
            token = token_path.read_text().strip()
            metrics = httpx.get(f"{pipeline.url}metrics").text
            assert re.search(
                r'^cryptopulse_api_ingests_total\{origin="http"\} [1-9]', metrics, re.M
            )
            assert not re.search(r'reason="unauthorized"\} [1-9]', metrics)
            unauthorized = httpx.post(
                f"{pipeline.url}ingest",
                content=b"{}",
                headers={"Content-Type": "application/json"},
            )
            assert unauthorized.status_code == 401

            # SIGKILL the Spark job (its whole process group, JVM included).
            stream = pipeline.component("stream")
            assert stream["status"] == "running"
            os.killpg(stream["pid"], signal.SIGKILL)
            wait_for(
                lambda: (
                    pipeline.component("stream").get("restarts", 0) >= 1
                    and pipeline.component("stream").get("status") == "running"
                ),
                240,
                "the supervisor to restart the stream job",
            )
            assert "stream" in pipeline.output() and "restarted" in pipeline.output()
            pipeline.remember_processes()
            # The restarted job resumes from its checkpoint and the dashboard keeps updating.
            finals_before = int(chart.get_attribute("data-final-count") or 0)
            after_restart = table_prices(page)
            wait_for(lambda: table_prices(page) != after_restart, 120, "updates after the restart")
            wait_for(
                lambda: int(chart.get_attribute("data-final-count") or 0) > finals_before,
                120,
                "new final windows after the restart",
            )
            stream_log = (pipeline.data_dir / "logs" / "stream.log").read_text()
            assert stream_log.count("query windows-live started") >= 2
        finally:
            browser.close()

    # Ctrl-C: everything stops, in reverse order, and nothing is left behind.
    assert pipeline.stop() == 0, pipeline.output()[-3000:]
    out = pipeline.output()
    assert (
        out.index("producer │ stopping")
        < out.index("stream │ stopping")
        < out.index("api │ stopping")
    )
    assert "everything stopped" in out
    assert token not in out
    for log_file in (pipeline.data_dir / "logs").iterdir():
        assert token not in log_file.read_text(errors="replace"), log_file
    pipeline.assert_nothing_left()


def test_unreachable_live_source_is_reported_not_faked(tmp_path: Path) -> None:
    """The default source, CoinGecko, cannot be reached (here: nothing listens on its URL)."""
    closed = free_port()
    env = {
        "CRYPTOPULSE_PRODUCER__COINGECKO_BASE_URL": f"http://127.0.0.1:{closed}/api/v3",
        "CRYPTOPULSE_PRODUCER__POLL_INTERVAL": "5",
    }
    with (
        running(tmp_path, "--trigger", "1", env=env) as pipeline,
        playwright.sync_playwright() as pw,
    ):
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.goto(pipeline.url)
            badge = page.get_by_test_id("source-badge")
            playwright.expect(badge).to_have_text("coingecko unreachable", timeout=120_000)
            playwright.expect(page.get_by_test_id("coin-row")).to_have_count(0)
        finally:
            browser.close()
        wait_for(lambda: "CoinGecko unavailable" in pipeline.output(), 30, "the terminal to say so")
