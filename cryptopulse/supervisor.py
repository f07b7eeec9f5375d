"""`cryptopulse up`: run the whole pipeline, in order, and keep it running.

Kafka (when local) -> API server -> Spark job -> producer. Each child process logs to
its own file under <data>/logs; the terminal gets a short, coloured, prefixed summary
(lifecycle events and each child's warnings and errors). A child that exits is
restarted with backoff; a configuration error (exit code 2) stops everything. Ctrl-C,
SIGTERM or `cryptopulse down` stop the children in reverse order (the producer first,
so what it has in flight is flushed while Kafka is still there).

The supervisor's state (pids, ports, restarts, last errors) is kept in
<data>/run/state.json for `cryptopulse status` and `cryptopulse down`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from rich.console import Console

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import write_atomic
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import port_in_use

log = logging.getLogger("cryptopulse.up")

CONFIG_ERROR_EXIT = 2
COLOURS = {"kafka": "magenta", "api": "cyan", "stream": "yellow", "producer": "green", "up": "bold"}
_FORWARD = ("WARNING", "ERROR", "CRITICAL", "Traceback")


@dataclass
class ComponentState:
    name: str
    status: str = "stopped"  # starting | running | restarting | stopped | failed
    pid: int | None = None
    port: int | None = None
    restarts: int = 0
    last_error: str = ""
    log_file: str = ""


@dataclass
class Child:
    """One supervised process: how to run it and when it is ready."""

    name: str
    argv: list[str]
    log_file: Path
    ready: Callable[[Child], bool] = lambda _child: True
    port: int | None = None
    state: ComponentState = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    log_start: int = 0  # size of its log when the current process started
    next_restart: float = 0.0

    def __post_init__(self) -> None:
        self.state = ComponentState(self.name, port=self.port, log_file=str(self.log_file))


def state_file(settings: Settings) -> Path:
    return settings.data_dir / "run" / "state.json"


def read_state(settings: Settings) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = orjson.loads(state_file(settings).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return state


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str], console: Console) -> None:
        self.settings = settings
        self.env = env
        self.console = console
        self.stopping = threading.Event()
        self.kafka = LocalKafka.from_settings(settings) if settings.kafka.managed else None
        self.kafka_state = ComponentState("kafka", port=settings.kafka.port if self.kafka else None)
        logs = settings.logs_dir
        exe = [sys.executable, "-m", "cryptopulse.cli"]
        api = settings.api
        self.children = [
            Child("api", [*exe, "serve"], logs / "api.log", ready=self._api_ready, port=api.port),
            Child("stream", [*exe, "stream"], logs / "stream.log", ready=self._stream_ready),
            Child("producer", [*exe, "produce"], logs / "producer.log"),
        ]
        self._offsets: dict[Path, int] = {}
        self._source_status: bytes = b""
        self.owns_kafka = False
        # Written by the producer; one left by an earlier run must never be shown as current.
        self.status_file = settings.data_dir / "run" / "producer-status.json"

    # -- output ------------------------------------------------------------------------

    def say(self, name: str, message: str, style: str = "") -> None:
        colour = COLOURS.get(name, "white")
        text = f"[{style}]{message}[/{style}]" if style else message
        self.console.print(f"[{colour}]{name:>8}[/{colour}] │ {text}", highlight=False)

    def forward_logs(self) -> None:
        """Echo new warning and error lines of each child's log, prefixed with its name."""
        for child in self.children:
            path = child.log_file
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets.get(path, 0))
                    chunk = f.read()
                    self._offsets[path] = f.tell()
            except FileNotFoundError:
                continue
            for line in chunk.decode(errors="replace").splitlines():
                if any(word in line for word in _FORWARD):
                    self.say(child.name, line.strip()[:200], "red" if "ERROR" in line else "yellow")

    def write_state(self) -> None:
        path = state_file(self.settings)
        state = {
            "supervisor_pid": os.getpid(),
            "dashboard": self.settings.api.base_url,
            "components": [asdict(self.kafka_state)] + [asdict(c.state) for c in self.children],
        }
        write_atomic(path, orjson.dumps(state, option=orjson.OPT_INDENT_2))

    # -- readiness ---------------------------------------------------------------------

    def _api_ready(self, _child: Child) -> bool:
        try:
            return httpx.get(f"{self.settings.api.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _stream_ready(self, child: Child) -> bool:
        """The current process has started its query (earlier runs' lines do not count)."""
        try:
            with open(child.log_file, "rb") as f:
                f.seek(child.log_start)
                return b"windows-live started" in f.read()
        except FileNotFoundError:
            return False

    # -- lifecycle ---------------------------------------------------------------------

    def preflight(self) -> None:
        """Report a running pipeline, or every port in use, before anything starts."""
        previous = read_state(self.settings)
        if previous and alive(previous.get("supervisor_pid")):
            raise CryptoPulseError(
                f"the pipeline is already running (supervisor pid {previous['supervisor_pid']}); "
                "`cryptopulse down` stops it."
            )
        wanted = [("api", self.settings.api.host, self.settings.api.port, "CRYPTOPULSE_API__PORT")]
        if self.kafka is not None and not self.kafka.running():
            k = self.settings.kafka
            wanted += [
                ("kafka", k.host, k.port, "CRYPTOPULSE_KAFKA__PORT"),
                (
                    "kafka controller",
                    k.host,
                    k.controller_port,
                    "CRYPTOPULSE_KAFKA__CONTROLLER_PORT",
                ),
            ]
        busy = [
            f"{what} port {port} on {host} (set {var})"
            for what, host, port, var in wanted
            if port_in_use(host, port)
        ]
        if busy:
            raise CryptoPulseError(
                "ports already in use: "
                + "; ".join(busy)
                + ". Stop what uses them or choose others."
            )

    def start_kafka(self) -> None:
        if self.kafka is None:
            self.say("kafka", f"using the existing cluster at {self.settings.kafka.bootstrap}")
            self.kafka_state.status = "external"
            return
        self.kafka_state.status = "starting"
        if self.kafka.running():
            self.say("kafka", f"already running on {self.kafka.bootstrap}; using it")
            self.kafka.create_topics(self.kafka.topic_names)
        else:
            self.say("kafka", f"starting on {self.kafka.bootstrap} (log: {self.kafka.log_file})")
            self.kafka.start()
            self.owns_kafka = True  # only a broker we started is stopped with the pipeline
        self.kafka_state.status = "running"
        self.kafka_state.pid = self.kafka.pid()
        self.kafka_state.log_file = str(self.kafka.log_file)
        self.say("kafka", "ready", "green")

    def spawn(self, child: Child) -> None:
        child.log_file.parent.mkdir(parents=True, exist_ok=True)
        child.log_start = child.log_file.stat().st_size if child.log_file.exists() else 0
        self._offsets.setdefault(child.log_file, child.log_start)  # never re-echo old runs
        with open(child.log_file, "ab") as out:
            child.proc = subprocess.Popen(
                child.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            )
        child.started_at = time.monotonic()
        child.state.pid = child.proc.pid
        child.state.status = "starting"
        self.write_state()

    def wait_ready(self, child: Child, timeout: float = 180.0) -> None:
        self.say(child.name, f"starting (log: {child.log_file})")
        deadline = time.monotonic() + timeout
        while not child.ready(child):
            self.forward_logs()
            assert child.proc is not None
            if child.proc.poll() is not None:
                raise CryptoPulseError(
                    f"{child.name} exited during start (code {child.proc.returncode}): "
                    f"{log_tail(child.log_file)}"
                )
            if self.stopping.wait(0.25):
                return
            if time.monotonic() > deadline:
                raise CryptoPulseError(
                    f"{child.name} was not ready within {timeout:.0f} s; see {child.log_file}"
                )
        child.state.status = "running"
        self.say(child.name, "ready", "green")
        self.write_state()

    def check(self, child: Child) -> None:
        """Restart a child that exited, with backoff; a configuration error stops everything."""
        proc = child.proc
        now = time.monotonic()
        if child.state.status == "stopped":
            return
        if proc is not None and proc.poll() is None:
            if child.state.status == "restarting" and child.ready(child):
                child.state.status = "running"
                self.say(child.name, "running again", "green")
                self.write_state()
            return
        if proc is not None:
            code = proc.returncode
            child.state.last_error = f"exited with code {code}: {log_tail(child.log_file)}"[:500]
            child.proc = None
            if code == 0:
                # A finite source (a replay) that reached its end: done, not crashed.
                child.state.status = "stopped"
                self.say(child.name, "finished (exit code 0); not restarted", "yellow")
                self.write_state()
                return
            if code == CONFIG_ERROR_EXIT:
                raise CryptoPulseError(
                    f"{child.name}: configuration error: {log_tail(child.log_file, 2)}"
                )
            # Backoff grows with restarts in quick succession, capped at 30 s.
            quick = now - child.started_at < 60
            delay = min(30.0, 2.0 ** min(child.state.restarts if quick else 0, 5))
            child.next_restart = now + delay
            child.state.status = "restarting"
            self.say(child.name, f"exited (code {code}); restarting in {delay:.0f} s", "red")
            self.write_state()
            return
        if now >= child.next_restart:
            child.state.restarts += 1
            self.spawn(child)
            child.state.status = "restarting"
            self.say(
                child.name,
                f"restarted (restart #{child.state.restarts}, pid {child.state.pid})",
                "yellow",
            )

    def publish_source_status(self) -> None:
        """Tell the dashboard whether the source is live (simulated data never looks live)."""
        # The producer writes the status of whatever source it runs (producer.source_status).
        try:
            body = self.status_file.read_bytes()
        except FileNotFoundError:
            return
        if body == self._source_status:
            return
        headers = {"content-type": "application/json"}
        if self.settings.api.token:
            headers["authorization"] = f"Bearer {self.settings.api.token.get_secret_value()}"
        try:
            httpx.post(
                f"{self.settings.api.base_url}/api/source-status",
                content=body,
                headers=headers,
                timeout=2,
            ).raise_for_status()
        except httpx.HTTPError as exc:
            log.debug("source status not delivered: %s", exc)
            return
        self._source_status = body
        status = orjson.loads(body)
        if not status.get("live", False):
            self.say("producer", f"source {status.get('source')}: {status.get('detail')}", "yellow")

    def run(self) -> None:
        self.preflight()
        self.status_file.unlink(missing_ok=True)
        self.write_state()
        try:
            self.start_kafka()
            self.write_state()
            for child in self.children:
                if self.stopping.is_set():
                    return
                self.spawn(child)
                self.wait_ready(child)
            if self.stopping.is_set():
                return
            self.say(
                "up",
                f"dashboard: [link]{self.settings.api.base_url}/[/link]  (Ctrl-C stops everything)",
                "bold green",
            )
            while not self.stopping.wait(0.5):
                for child in self.children:
                    self.check(child)
                self.forward_logs()
                self.publish_source_status()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for child in reversed(self.children):
            proc = child.proc
            if proc is None or proc.poll() is not None:
                child.state.status = "stopped"
                continue
            self.say(child.name, "stopping")
            try:
                # Only the child itself: it stops its own helpers (Spark's JVM) in order.
                proc.terminate()
                proc.wait(60)
            except subprocess.TimeoutExpired:
                self.say(child.name, "did not stop in 60 s; killing it", "red")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
            child.state.status = "stopped"
            child.state.pid = None
            self.write_state()
        self.forward_logs()
        self.status_file.unlink(missing_ok=True)
        if self.kafka is not None and self.owns_kafka and self.kafka.running():
            self.say("kafka", "stopping")
            self.kafka.stop()
        self.kafka_state.status = "stopped"
        self.kafka_state.pid = None
        self.write_state()
        state_file(self.settings).unlink(missing_ok=True)
        self.say("up", "everything stopped", "bold")


def run_pipeline(settings: Settings, env: dict[str, str], console: Console) -> None:
    supervisor = Supervisor(settings, env, console)

    def on_signal(signum: int, _frame: object) -> None:
        if not supervisor.stopping.is_set():
            supervisor.say(
                "up", f"{signal.Signals(signum).name}: stopping everything (producer first)"
            )
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor.run()


def stop_pipeline(settings: Settings, timeout: float = 120.0) -> bool:
    """`cryptopulse down`: ask a running supervisor to stop; False when none runs."""
    state = read_state(settings)
    pid = state.get("supervisor_pid") if state else None
    if not alive(pid):
        return False
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)
