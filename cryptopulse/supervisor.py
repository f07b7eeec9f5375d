"""`cryptopulse up`: run the whole pipeline, in order, and keep every part of it running.

Kafka (when local) -> API server -> Spark job -> producer. Each child process logs to
its own file under <data>/logs; the terminal gets a short, coloured, prefixed summary:
lifecycle events, our processes' warnings and errors and the libraries' (Spark, Kafka)
errors, chosen by each line's log level field, printed as plain text (never markup,
control characters removed) and rate-limited per child.

Any component that exits or dies is restarted with backoff, the local broker included
(its data is kept). Only a producer playing a finite source (a replay) that exits 0 has
finished. Exit code 2 (a configuration error) while the pipeline starts stops everything;
once the pipeline has run, a child that exits 2 is restarted like any other (so a broken
edit of the configuration file does not take down the healthy parts, and fixing it heals
the pipeline). Ctrl-C, SIGTERM or `cryptopulse down` stop the children in reverse order,
each within a budget, in under 15 s in all: the producer (which flushes what it has in
flight while Kafka is still there) together with the Spark job, then the API server, then
the broker `up` started.

The supervisor's state is kept in <data>/run/state.json for `cryptopulse status` and
`cryptopulse down`: every process is recorded by pid, start time and command line, and
those commands act only on a process that matches all three. The last shutdown's
summary (seconds taken, ticks the producer could not deliver) is kept in
<data>/run/last-shutdown.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

import orjson
import psutil
from rich.console import Console
from rich.text import Text

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import write_atomic
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import port_in_use

log = logging.getLogger("cryptopulse.up")

CONFIG_ERROR_EXIT = 2
COLOURS = {"kafka": "magenta", "api": "cyan", "stream": "yellow", "producer": "green", "up": "bold"}
STABLE_AFTER = 60.0  # a process that ran this long has its backoff reset
READY_TIMEOUT = 180.0  # first readiness of each component while the pipeline starts
SHUTDOWN_BUDGET = 13.0  # seconds from the stop signal until the broker has been stopped
KAFKA_STOP_BUDGET = 5.0
FORWARD_LIMIT = 5  # forwarded lines per child per FORWARD_PERIOD
FORWARD_PERIOD = 10.0


# =====================================================================================
# Pure decisions (unit-tested without processes)
# =====================================================================================


def backoff_delay(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Wait before the next restart after `failures` quick failures in a row: 1, 2, 4 ... 30 s."""
    return float(min(cap, base * 2.0 ** min(max(failures, 0), 16)))


def stop_budget(
    own: float, elapsed: float, later: int, total: float = SHUTDOWN_BUDGET, floor: float = 1.0
) -> float:
    """Seconds a component may take to stop: its own budget, cut so that the `later`
    components still get `floor` seconds each within `total` (never less than `floor`, or
    its own budget when that is smaller)."""
    return max(min(own, floor), min(own, total - elapsed - later * floor))


class ExitAction(Enum):
    RESTART = "restart"
    FINISHED = "finished"
    CONFIG_ERROR = "config_error"


def exit_action(code: int, *, finite: bool, pipeline_started: bool) -> ExitAction:
    """What an exited child means.

    Every exit is restarted, exit code 0 included (a stream job whose query ended must run
    again), except a finite source's clean end (a replay producer that exits 0). Exit code 2
    is a configuration error only while the pipeline starts: then nothing would come up, and
    one clear message is better than a restart loop. Later, a code 2 is treated as a crash.
    """
    if code == 0 and finite:
        return ExitAction.FINISHED
    if code == CONFIG_ERROR_EXIT and not pipeline_started:
        return ExitAction.CONFIG_ERROR
    return ExitAction.RESTART


# -- log lines ------------------------------------------------------------------------

_LEVELS = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
    "FATAL": "CRITICAL",
}
_RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# Each format a child's log lines come in: a timestamp, then the level field. The terminal
# gets our own processes' warnings, but only errors from the libraries' own logs: Spark's
# and the broker's warnings (AQE disabled, a slow batch, a node not reachable) and
# librdkafka's connection reports come by the dozen and say nothing a user can act on.
_DIALECTS = (
    # 2026-11-24 22:00:00,123 WARNING cryptopulse.producer: ...   (ours: cryptopulse/log.py)
    (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (?P<level>[A-Z]+) "), "WARNING"),
    # 26/11/24 22:00:00 WARN TaskSetManager: ...   (Spark's log4j)
    (re.compile(r"^\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} (?P<level>[A-Z]+) "), "ERROR"),
    # [2026-11-24 22:00:00,123] WARN ... (kafka.server...)   (the Kafka broker's log4j)
    (re.compile(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\] (?P<level>[A-Z]+) "), "ERROR"),
)
# librdkafka's own format when no logger is set: %<syslog severity>|<time>|<facility>|...
_RDKAFKA = re.compile(r"^%(?P<severity>[0-7])\|\d+(?:\.\d+)?\|")
_SYSLOG = ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG")


def line_level(line: str) -> tuple[str, int, str] | None:
    """(level, where the level field starts, the least level the terminal gets for this
    format) of a log line, or None for a line without a level field (a continuation line,
    a traceback, plain output). Only the level field counts: a word anywhere else in the
    line (a URL with ERROR in it) does not."""
    for pattern, minimum in _DIALECTS:
        if match := pattern.match(line):
            level = _LEVELS.get(match["level"])
            return (level, match.start("level"), minimum) if level else None
    if match := _RDKAFKA.match(line):
        return _SYSLOG[int(match["severity"])], 0, "CRITICAL"
    return None


def forwarded_text(line: str) -> tuple[str, str] | None:
    """(level, text from the level field on) for a line the terminal should get, else None."""
    found = line_level(line)
    if found is None:
        return None
    level, start, minimum = found
    if _RANK[level] < _RANK[minimum]:
        return None
    return level, line[start:].strip()


_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, ...
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks, ...
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS strings
    r"|\x1b.?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def clean_text(text: str, limit: int = 300) -> str:
    """Text safe for a terminal: escape sequences and control characters removed (a tab
    becomes a space), bidirectional overrides too, at most `limit` characters."""
    text = _ESCAPES.sub("", text)
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            continue
        else:
            out.append(ch)
    cleaned = "".join(out)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class RateLimiter:
    """At most `limit` lines per `period` seconds; the rest are counted, for one summary line.

    Call `flush(now)` before `admit(now)`: it returns how many lines were held back in a
    period that has ended (0 when none, or when the period is still running)."""

    def __init__(self, limit: int = FORWARD_LIMIT, period: float = FORWARD_PERIOD) -> None:
        self.limit = limit
        self.period = period
        self.started = -math.inf
        self.sent = 0
        self.held = 0

    def flush(self, now: float) -> int:
        if now - self.started < self.period:
            return 0
        held, self.held, self.sent, self.started = self.held, 0, 0, now
        return held

    def admit(self, now: float) -> bool:
        if now - self.started >= self.period:
            self.started, self.sent, self.held = now, 0, 0
        if self.sent < self.limit:
            self.sent += 1
            return True
        self.held += 1
        return False


# -- process identity -----------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A process as `down`, `status` and `up` recognise it: pid, start time, command line."""

    pid: int
    create_time: float
    cmdline: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "cmdline": list(self.cmdline)}


def identity_of(pid: int | None) -> Identity | None:
    """The identity of a live (not zombie) process, None when there is none."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return Identity(pid, proc.create_time(), tuple(proc.cmdline()))
    except psutil.Error:
        return None


def same_process(recorded: Mapping[str, Any] | None, actual: Identity | None) -> bool:
    """True only when a recorded process and a live one agree on pid, start time and
    command line (a pid reused by another program, or a record without them, never does)."""
    if not recorded or actual is None:
        return False
    try:
        pid = int(recorded["pid"])
        started = float(recorded["create_time"])
        cmdline = tuple(str(arg) for arg in recorded["cmdline"])
    except (KeyError, TypeError, ValueError):
        return False
    return (
        pid == actual.pid and abs(started - actual.create_time) < 0.05 and cmdline == actual.cmdline
    )


def find_process(recorded: Mapping[str, Any] | None) -> Identity | None:
    """The live process a record describes, when it is still that process."""
    if not recorded:
        return None
    try:
        pid = int(recorded.get("pid") or 0)
    except (TypeError, ValueError):
        return None
    actual = identity_of(pid)
    return actual if same_process(recorded, actual) else None


# -- child protocols --------------------------------------------------------------------


def ready_file_matches(data: bytes, pid: int) -> bool:
    """The stream job's ready file ({"pid": ..., "started_at": ...}) names this process."""
    try:
        ready = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(ready, dict) and ready.get("pid") == pid


@dataclass(frozen=True)
class ProducerReport:
    sent: int
    delivered: int
    undelivered: int


def parse_report(data: bytes) -> ProducerReport | None:
    """The producer's exit report (one JSON line on its --report-fd); None when absent or bad."""
    for line in reversed(data.splitlines()):
        if not line.strip():
            continue
        try:
            report = orjson.loads(line)
            return ProducerReport(
                int(report["sent"]), int(report["delivered"]), int(report["undelivered"])
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
    return None


# =====================================================================================
# State
# =====================================================================================


@dataclass
class ComponentState:
    name: str
    # starting | running | restarting | stopped | finished | gone | external
    status: str = "stopped"
    pid: int | None = None
    create_time: float | None = None
    cmdline: list[str] = field(default_factory=list)
    port: int | None = None
    restarts: int = 0
    last_error: str = ""
    log_file: str = ""
    since: float = field(default_factory=time.time)  # when status last changed (unix time)
    owned: bool = True  # False: a broker `up` found running (neither restarted nor stopped)

    def set(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.since = time.time()

    def set_process(self, identity: Identity | None) -> None:
        self.pid = identity.pid if identity else None
        self.create_time = identity.create_time if identity else None
        self.cmdline = list(identity.cmdline) if identity else []


def state_file(settings: Settings) -> Path:
    return settings.data_dir / "run" / "state.json"


def shutdown_file(settings: Settings) -> Path:
    return settings.data_dir / "run" / "last-shutdown.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_state(settings: Settings) -> dict[str, Any] | None:
    return read_json(state_file(settings))


def running_supervisor(state: Mapping[str, Any] | None) -> Identity | None:
    """The supervisor a state file describes, when that very process still runs."""
    if not state or not isinstance(state.get("supervisor"), Mapping):
        return None
    return find_process(state["supervisor"])


def component_processes(state: Mapping[str, Any] | None) -> list[tuple[str, Identity]]:
    """The recorded components whose processes still run (and are still those processes).
    A broker `up` did not start is not one of ours and is left out."""
    found = []
    for c in (state or {}).get("components", []):
        if not isinstance(c, Mapping) or not c.get("owned", True):
            continue
        identity = find_process(c)
        if identity is not None:
            found.append((str(c.get("name", "?")), identity))
    return found


def shown_status(component: Mapping[str, Any]) -> str:
    """A component's status as `cryptopulse status` shows it: a process recorded as
    running that is gone (or is now another program) is `dead`."""
    status = str(component.get("status", "?"))
    if component.get("pid") and status in ("running", "starting") and not find_process(component):
        return "dead"
    return status


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


# =====================================================================================
# Processes
# =====================================================================================


class LogFollower:
    """New complete lines of a log file since the last call (bounded per call)."""

    def __init__(self, path: Path, max_read: int = 1 << 20, max_line: int = 8192) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.max_read = max_read
        self.max_line = max_line

    def skip_to_end(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.offset = self.path.stat().st_size
        self.partial = b""

    def read_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self.offset:  # truncated or replaced: start again
                    self.offset, self.partial = 0, b""
                skip_partial = False
                if size - self.offset > self.max_read:  # a flood: keep only the newest part
                    self.offset, self.partial, skip_partial = size - self.max_read, b"", True
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        pieces = (self.partial + chunk).split(b"\n")
        self.partial = pieces.pop()
        if len(self.partial) > self.max_line:
            pieces.append(self.partial)
            self.partial = b""
        if skip_partial and pieces:
            pieces.pop(0)
        return [p.decode(errors="replace").rstrip("\r") for p in pieces]


class Broker(Protocol):
    """What the supervisor needs of the local broker (LocalKafka; a stand-in in unit tests)."""

    @property
    def bootstrap(self) -> str: ...
    @property
    def log_file(self) -> Path: ...
    @property
    def topic_names(self) -> tuple[str, ...]: ...
    def pid(self) -> int | None: ...
    def running(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 30.0) -> None: ...
    def create_topics(self, names: Iterable[str]) -> None: ...


@dataclass
class Child:
    """One supervised process: how to run it, when it is ready and how long it may take to stop."""

    name: str
    argv: list[str]
    log_file: Path
    ready: Callable[[Child], bool] = lambda _child: True
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    finite: bool = False  # exit code 0 means "done" (a replay), not "restart me"
    stop_budget: float = 2.0  # seconds between SIGTERM and SIGKILL of its process group
    stops_with_next: bool = False  # stopped at the same time as the child started after it
    ready_file: Path | None = None  # passed as --ready-file; ready when it names the child
    report: bool = False  # passed --report-fd; the exit report is read after it exits
    state: ComponentState = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_seen: bool = False
    failures: int = 0  # quick failures in a row, for the backoff
    next_restart: float = 0.0
    report_fd: int | None = None
    follower: LogFollower = field(init=False)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def __post_init__(self) -> None:
        self.state = ComponentState(self.name, port=self.port, log_file=str(self.log_file))
        self.follower = LogFollower(self.log_file)
        self.follower.skip_to_end()  # never echo earlier runs

    def is_ready(self) -> bool:
        if self.proc is None:
            return False
        if self.ready_file is not None:
            try:
                if not ready_file_matches(self.ready_file.read_bytes(), self.proc.pid):
                    return False
            except FileNotFoundError:
                return False
        return self.ready(self)


class _Starter(threading.Thread):
    """Starts the broker in the background: the supervisor keeps watching everything else."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(name="kafka-start", daemon=True)
        self.broker = broker
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.broker.start()
        except BaseException as exc:
            self.error = exc


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def finish_process(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for a child that was sent SIGTERM until `deadline` (monotonic), then SIGKILL its
    whole process group; leftovers in its group are killed either way. True when it
    stopped by itself."""
    clean = True
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        clean = False
        _kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    _kill_group(proc.pid)  # e.g. a JVM its driver left behind; the group is the child's own
    return clean


# =====================================================================================
# The supervisor
# =====================================================================================


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        env: dict[str, str],
        console: Console,
        *,
        kafka: Broker | None = None,
        children: list[Child] | None = None,
        backoff_base: float = 1.0,
    ) -> None:
        self.settings = settings
        self.env = env
        self.console = console
        self.stopping = threading.Event()
        self.backoff_base = backoff_base
        if kafka is None and settings.kafka.managed:
            kafka = LocalKafka.from_settings(settings)
        self.kafka = kafka
        self.kafka_state = ComponentState(
            "kafka", port=settings.kafka.port if kafka else None, status="stopped"
        )
        if kafka is not None:
            self.kafka_state.log_file = str(kafka.log_file)
        self.kafka_starter: _Starter | None = None
        self.kafka_failures = 0
        self.kafka_next_start = 0.0
        self.kafka_gone_at: float | None = None  # monotonic time the broker went away
        self.kafka_up_at = 0.0
        self.kafka_error_said = ""
        self.children = children if children is not None else self._default_children()
        self.started = False  # the whole pipeline came up once
        self.sent = self.delivered = self.undelivered = 0
        self.unreported = 0  # producer runs that ended without a report (killed)
        self._state_written = b""
        self._lock: IO[bytes] | None = None
        self._me = identity_of(os.getpid())
        self._previous: dict[str, Any] | None = None  # the state file found at start

    def _default_children(self) -> list[Child]:
        settings = self.settings
        logs = settings.logs_dir
        run = settings.data_dir / "run"
        exe = [sys.executable, "-m", "cryptopulse.cli"]
        return [
            Child(
                "api",
                [*exe, "serve"],
                logs / "api.log",
                ready=self._api_ready,
                port=settings.api.port,
                # Rebuild live state and history from Kafka after a restart.
                env={"CRYPTOPULSE_API__CONSUME_WINDOWS": "true"},
                stop_budget=2.0,
            ),
            Child(
                "stream",
                [*exe, "stream"],
                logs / "stream.log",
                ready_file=run / "stream.ready",
                stop_budget=6.0,
                # While the producer flushes: ticks it still sends wait in Kafka for the next
                # run (the job resumes from its checkpoint), and the shutdown stays short.
                stops_with_next=True,
            ),
            Child(
                "producer",
                [*exe, "produce"],
                logs / "producer.log",
                finite=settings.producer.source == "replay",
                report=True,
                stop_budget=settings.producer.flush_timeout + 0.5,
            ),
        ]

    # -- output ------------------------------------------------------------------------

    def say(self, name: str, message: str, style: str = "") -> None:
        """One line on the terminal: never interpreted as markup, control characters removed."""
        line = Text.assemble(
            (f"{name:>8}", COLOURS.get(name, "white")),
            " │ ",
            (clean_text(message, 1000), style),
        )
        self.console.print(line, highlight=False, soft_wrap=True)  # a log file: one line each

    def forward_logs(self) -> None:
        """Echo new warning and error lines of each child's log, prefixed with its name."""
        now = time.monotonic()
        for child in self.children:
            try:
                self._forward(child, now)
            except Exception:  # nothing a child writes may stop the supervisor
                log.warning("could not forward %s's log", child.name, exc_info=True)

    def _forward(self, child: Child, now: float) -> None:
        held = child.limiter.flush(now)
        if held:
            self.say(child.name, f"{held} more lines in {child.log_file}", "dim")
        for line in child.follower.read_lines():
            found = forwarded_text(line)
            if found is None:
                continue
            if child.limiter.admit(now):
                level, text = found
                style = "red" if level in ("ERROR", "CRITICAL") else "yellow"
                self.say(child.name, clean_text(text), style)

    def write_state(self) -> None:
        state = {
            "supervisor": self._me.record() if self._me else None,
            "dashboard": self.settings.api.base_url,
            "components": [asdict(self.kafka_state)] + [asdict(c.state) for c in self.children],
        }
        data = orjson.dumps(state, option=orjson.OPT_INDENT_2)
        if data != self._state_written:
            write_atomic(state_file(self.settings), data)
            self._state_written = data

    # -- readiness ---------------------------------------------------------------------

    def _api_ready(self, _child: Child) -> bool:
        import httpx  # here: `down` and `status` start faster without it

        try:
            return httpx.get(f"{self.settings.api.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    # -- before anything starts --------------------------------------------------------

    def preflight(self) -> None:
        """Refuse to start next to a running pipeline or its leftovers, or on busy ports."""
        run = self.settings.data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        previous = self._previous = read_state(self.settings)
        lock = open(run / "up.lock", "wb")  # noqa: SIM115 - held as long as we run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            sup = running_supervisor(previous)
            which = f" (supervisor pid {sup.pid})" if sup else ""
            raise CryptoPulseError(
                f"the pipeline is already running{which}; `cryptopulse down` stops it."
            ) from None
        self._lock = lock
        if (sup := running_supervisor(previous)) is not None and sup.pid != os.getpid():
            raise CryptoPulseError(
                f"the pipeline is already running (supervisor pid {sup.pid}); "
                "`cryptopulse down` stops it."
            )
        # A broker an earlier run started is simply used again (start_kafka); anything else
        # still running without its supervisor would fight the new children for the ports.
        if leftovers := [(n, i) for n, i in component_processes(previous) if n != "kafka"]:
            listed = ", ".join(f"{name} pid {ident.pid}" for name, ident in leftovers)
            raise CryptoPulseError(
                f"processes of an earlier run are still running ({listed}) without their "
                "supervisor; `cryptopulse down` stops them."
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

    # -- the broker --------------------------------------------------------------------

    def start_kafka(self) -> None:
        """Begin using the broker: start ours in the background, or adopt a running one."""
        kafka = self.kafka
        if kafka is None:
            self.say("kafka", f"using the existing cluster at {self.settings.kafka.bootstrap}")
            self.kafka_state.set("external")
            return
        if kafka.running():
            kafka.create_topics(kafka.topic_names)
            if self._earlier_broker() is not None:
                self.say("kafka", f"still running from the last run on {kafka.bootstrap}; using it")
            else:
                self.say("kafka", f"already running on {kafka.bootstrap}; using it (not ours)")
                self.kafka_state.owned = False
            self._kafka_is_up()
            return
        self.say("kafka", f"starting on {kafka.bootstrap} (log: {kafka.log_file})")
        self.kafka_state.set("starting")
        self._launch_kafka()

    def _earlier_broker(self) -> Identity | None:
        """The broker an earlier `up` started, when that very process still runs."""
        for c in (self._previous or {}).get("components", []):
            if isinstance(c, Mapping) and c.get("name") == "kafka" and c.get("owned", True):
                return find_process(c)
        return None

    def _launch_kafka(self) -> None:
        assert self.kafka is not None
        self.kafka_starter = _Starter(self.kafka)
        self.kafka_starter.start()

    def _kafka_is_up(self) -> None:
        assert self.kafka is not None
        self.kafka_state.set_process(identity_of(self.kafka.pid()))
        self.kafka_state.set("running")
        self.kafka_up_at = time.monotonic()

    def kafka_available(self) -> bool:
        return self.kafka is None or self.kafka_state.status == "running"

    def check_kafka(self) -> None:
        """Notice a broker that went away and bring ours back, with backoff, keeping its data.

        The terminal gets one line when it goes and one when it is back, not one per retry."""
        kafka = self.kafka
        if kafka is None:
            return
        now = time.monotonic()
        state = self.kafka_state
        starter = self.kafka_starter
        if starter is not None:
            if starter.is_alive():
                return
            self.kafka_starter = None
            if starter.error is None:
                self._kafka_is_up()
                self._kafka_back(now)
                return
            error = clean_text(str(starter.error).strip().replace("\n", " | "), 500)
            if not self.started:
                raise CryptoPulseError(f"Kafka did not start: {error}")
            state.last_error = error
            if error != self.kafka_error_said:  # the same failure again is not news
                self.say("kafka", f"could not restart yet: {error}", "red")
                self.kafka_error_said = error
            delay = backoff_delay(self.kafka_failures, self.backoff_base)
            self.kafka_failures += 1
            self.kafka_next_start = now + delay
            return
        if state.status == "running":
            if find_process(asdict(state)) is not None:
                if now - self.kafka_up_at >= STABLE_AFTER:
                    self.kafka_failures = 0
                return
            self._reap(state.pid)
            self.kafka_gone_at = now
            state.last_error = f"pid {state.pid} went away"
            if not state.owned:
                state.set("gone")
                self.say("kafka", "went away; not restarted (`up` did not start it)", "red")
                return
            state.set("restarting")
            delay = backoff_delay(self.kafka_failures, self.backoff_base)
            self.kafka_failures += 1
            self.kafka_next_start = now + delay
            self.say(
                "kafka",
                f"went away (pid {state.pid}); restarting it with its data, retrying with backoff",
                "red",
            )
            state.set_process(None)
            return
        if state.status == "gone":  # a broker we do not own: did someone bring it back?
            if kafka.running():
                self._kafka_is_up()
                self._kafka_back(now)
            return
        if state.status == "restarting" and now >= self.kafka_next_start:
            if kafka.running():  # started by someone else meanwhile: use it
                self._kafka_is_up()
                self._kafka_back(now)
                return
            state.restarts += 1
            self._launch_kafka()

    def _kafka_back(self, now: float) -> None:
        gone = self.kafka_gone_at
        self.kafka_error_said = ""
        if gone is None:
            self.say("kafka", f"ready (pid {self.kafka_state.pid})", "green")
            return
        self.kafka_gone_at = None
        self.kafka_state.last_error = ""
        self.say("kafka", f"back after {now - gone:.1f} s (pid {self.kafka_state.pid})", "green")
        for child in self.children:  # what waited for Kafka may start at once
            if child.proc is None and child.state.status == "restarting":
                child.next_restart = min(child.next_restart, now)

    @staticmethod
    def _reap(pid: int | None) -> None:
        """Collect a dead broker's exit status when it was our child (no zombie left)."""
        if pid:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    # -- children ----------------------------------------------------------------------

    def spawn(self, child: Child) -> None:
        child.log_file.parent.mkdir(parents=True, exist_ok=True)
        argv = list(child.argv)
        pass_fds: tuple[int, ...] = ()
        write_fd: int | None = None
        if child.ready_file is not None:
            child.ready_file.unlink(missing_ok=True)  # one left by a killed run is not ours
            argv += ["--ready-file", str(child.ready_file)]
        if child.report:
            child.report_fd, write_fd = os.pipe()
            os.set_blocking(child.report_fd, False)
            argv += ["--report-fd", str(write_fd)]
            pass_fds = (write_fd,)
        try:
            with open(child.log_file, "ab") as out:
                child.proc = subprocess.Popen(
                    argv,
                    env={**self.env, **child.env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=pass_fds,
                    start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
                )
        except OSError:
            self._close_report(child)
            raise
        finally:
            if write_fd is not None:
                os.close(write_fd)  # the child holds the only write end: EOF when it exits
        child.started_at = time.monotonic()
        child.ready_seen = False
        child.state.set_process(identity_of(child.proc.pid))
        if child.state.pid is None:  # exited at once; still record which pid it was
            child.state.pid = child.proc.pid
        child.state.set("starting" if not child.state.restarts else "restarting")
        self.write_state()

    def _close_report(self, child: Child) -> bytes:
        data = b""
        if child.report_fd is not None:
            with contextlib.suppress(OSError):
                while chunk := os.read(child.report_fd, 65536):
                    data += chunk
            os.close(child.report_fd)
            child.report_fd = None
        return data

    def _collect_report(self, child: Child) -> None:
        """Read a producer's exit report; tell the terminal about ticks it could not deliver."""
        if not child.report:
            return
        report = parse_report(self._close_report(child))
        if report is None:
            self.unreported += 1
            return
        self.sent += report.sent
        self.delivered += report.delivered
        self.undelivered += report.undelivered
        if report.undelivered:
            self.say(child.name, f"{report.undelivered} ticks could not be delivered", "red")

    def check(self, child: Child) -> None:
        """Notice readiness and exits; restart an exited child with backoff."""
        if child.state.status in ("stopped", "finished"):
            return
        now = time.monotonic()
        proc = child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                if not child.ready_seen and child.is_ready():
                    child.ready_seen = True
                    if child.state.restarts:
                        self.say(child.name, f"running again (pid {proc.pid})", "green")
                    child.state.set("running")
                    self.write_state()
                elif child.ready_seen and now - child.started_at >= STABLE_AFTER:
                    child.failures = 0
                return
            self._exited(child, code, now)
            return
        if now < child.next_restart:
            return
        if not self.kafka_available():
            return  # restarted as soon as Kafka is back
        child.state.restarts += 1
        try:
            self.spawn(child)
        except OSError as exc:
            child.state.last_error = f"could not start: {exc}"
            child.next_restart = now + backoff_delay(child.failures, self.backoff_base)
            child.failures += 1
            return
        assert child.proc is not None
        self.say(
            child.name,
            f"restarted (restart #{child.state.restarts}, pid {child.proc.pid})",
            "yellow",
        )

    def _exited(self, child: Child, code: int, now: float) -> None:
        assert child.proc is not None
        _kill_group(child.proc.pid)  # whatever it left behind in its process group
        self._collect_report(child)
        child.proc = None
        tail = log_tail(child.log_file)
        child.state.last_error = clean_text(f"exited with code {code}: {tail}", 500)
        action = exit_action(code, finite=child.finite, pipeline_started=self.started)
        if action is ExitAction.CONFIG_ERROR:
            child.state.set("stopped")
            raise CryptoPulseError(
                f"{child.name}: configuration error (exit code {code}): {log_tail(child.log_file, 2)}"
            )
        if action is ExitAction.FINISHED:
            child.state.set("finished")
            self.say(child.name, "finished (exit code 0); not restarted", "yellow")
            self.write_state()
            return
        delay = backoff_delay(child.failures, self.backoff_base)
        child.failures += 1
        child.next_restart = now + delay
        child.state.set("restarting")
        hint = " (a configuration error?)" if code == CONFIG_ERROR_EXIT else ""
        wait = "" if self.kafka_available() else " once Kafka is back"
        self.say(
            child.name, f"exited (code {code}){hint}; restarting in {delay:.0f} s{wait}", "red"
        )
        self.write_state()

    def tick(self) -> None:
        self.check_kafka()
        for child in self.children:
            if child.proc is not None or child.state.status == "restarting":
                self.check(child)
        self.forward_logs()
        self.write_state()

    def wait_ready(self, child: Child, timeout: float = READY_TIMEOUT) -> None:
        """Keep supervising (restarts included) until `child` is ready for the first time."""
        deadline = time.monotonic() + timeout
        while not child.ready_seen:
            if self.stopping.wait(0.25):
                return
            self.tick()
            if time.monotonic() > deadline:
                raise CryptoPulseError(
                    f"{child.name} was not ready within {timeout:.0f} s; see {child.log_file}"
                )
        self.say(child.name, "ready", "green")

    def wait_kafka(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.kafka_available():
            if self.stopping.wait(0.25):
                return
            self.tick()
            if time.monotonic() > deadline:
                raise CryptoPulseError(f"Kafka was not ready within {timeout:.0f} s")

    # -- run and stop ------------------------------------------------------------------

    def run(self) -> None:
        self.preflight()
        shutdown_file(self.settings).unlink(missing_ok=True)
        self.write_state()
        try:
            self.start_kafka()
            self.wait_kafka()
            for child in self.children:
                if self.stopping.is_set():
                    return
                self.say(child.name, f"starting (log: {child.log_file})")
                self.spawn(child)
                self.wait_ready(child)
            if self.stopping.is_set():
                return
            self.started = True
            url = f"{self.settings.api.base_url}/"
            token = self.env.get("CRYPTOPULSE_API__TOKEN", "")
            if token and self.settings.api.protect_reads:  # in the fragment: never sent to a server
                url += f"#token={quote(token, safe='')}"
            self.console.print(
                Text.assemble(
                    (f"{'up':>8}", "bold"),
                    " │ ",
                    ("dashboard: ", "bold green"),
                    (url, f"bold green link {url}"),
                    ("  (Ctrl-C stops everything)", "bold green"),
                ),
                highlight=False,
                soft_wrap=True,
            )
            while not self.stopping.wait(0.5):
                self.tick()
        finally:
            self.shutdown()

    def stop_waves(self) -> list[list[Child]]:
        """The children in stopping order: the last started first; a child that
        `stops_with_next` is stopped together with the one started after it."""
        waves: list[list[Child]] = []
        later: Child | None = None
        for child in reversed(self.children):
            if waves and later is not None and child.stops_with_next:
                waves[-1].append(child)
            else:
                waves.append([child])
            later = child
        return waves

    def shutdown(self) -> None:
        """Stop everything in reverse order, each part within its budget (under 15 s in all)."""
        began = time.monotonic()
        waves = self.stop_waves()
        for i, wave in enumerate(waves):
            running = [c for c in wave if c.proc is not None]
            for child in wave:
                if child.proc is None and child.state.status != "finished":
                    child.state.set("stopped")
            if not running:
                continue
            later = sum(any(c.proc for c in w) for w in waves[i + 1 :]) + (self.kafka is not None)
            elapsed = time.monotonic() - began
            budgets = {c.name: stop_budget(c.stop_budget, elapsed, later) for c in running}
            for child in running:
                assert child.proc is not None
                if child.proc.poll() is None:
                    self.say(child.name, "stopping")
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.terminate()  # it stops its own helpers (Spark's JVM) in order
            for child in running:
                assert child.proc is not None
                budget = budgets[child.name]
                if not finish_process(child.proc, began + elapsed + budget):
                    self.say(child.name, f"did not stop within {budget:.1f} s; killed", "red")
                self._collect_report(child)
                child.proc = None
                child.state.set("stopped")
                child.state.set_process(None)
            with contextlib.suppress(OSError):
                self.write_state()
        if child_ready := [c.ready_file for c in self.children if c.ready_file is not None]:
            for path in child_ready:
                path.unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            self.forward_logs()
        self._stop_kafka(stop_budget(KAFKA_STOP_BUDGET, time.monotonic() - began, 0))
        seconds = time.monotonic() - began
        summary = {
            "stopped_at": time.time(),
            "seconds": round(seconds, 2),
            "undelivered": self.undelivered,
            "sent": self.sent,
            "delivered": self.delivered,
            "unreported": self.unreported,
        }
        write_atomic(shutdown_file(self.settings), orjson.dumps(summary))
        state_file(self.settings).unlink(missing_ok=True)
        lost = f"; {self.undelivered} ticks could not be delivered" if self.undelivered else ""
        self.say("up", f"everything stopped in {seconds:.1f} s{lost}", "bold")

    def _stop_kafka(self, budget: float) -> None:
        kafka = self.kafka
        if kafka is None or not self.kafka_state.owned:
            if self.kafka_state.status != "external":
                self.kafka_state.set("stopped")
            return
        starter = self.kafka_starter
        if kafka.running() or (starter is not None and starter.is_alive()):
            self.say("kafka", "stopping")
            deadline = time.monotonic() + budget
            try:
                kafka.stop(timeout=budget)
                if starter is not None:
                    # A start under way (formatting, not yet a pid file) fails once the broker
                    # is stopped, or finishes it: then that broker is stopped too.
                    starter.join(max(0.1, deadline - time.monotonic()))
                    if kafka.running():
                        kafka.stop(timeout=max(1.0, deadline - time.monotonic()))
            except Exception as exc:  # a broker that vanished meanwhile is stopped too
                log.warning("stopping Kafka: %s", exc)
        self.kafka_state.set("stopped")
        self.kafka_state.set_process(None)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def pipeline_env(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """The children's environment with the ingest token in force (the user's, else the one kept
    in the data folder, created on first run): the API requires it, the stream job sends it."""
    from cryptopulse.token import TOKEN_ENV, ingest_token

    return {**env, TOKEN_ENV: ingest_token(settings)}


def run_pipeline(settings: Settings, env: dict[str, str], console: Console) -> None:
    # LocalKafka logs each start step; a broker restart gets one line from us instead, and
    # its admin client's "connection refused" while the broker is away is no news either.
    logging.getLogger("cryptopulse.kafka").setLevel(logging.WARNING)
    logging.getLogger("cryptopulse.kafka.admin").setLevel(logging.CRITICAL)
    supervisor = Supervisor(settings, env, console)

    def on_signal(signum: int, _frame: object) -> None:
        if not supervisor.stopping.is_set():
            supervisor.say(
                "up", f"{signal.Signals(signum).name}: stopping everything (producer first)"
            )
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        supervisor.run()
    finally:
        supervisor.release()


# =====================================================================================
# `cryptopulse down` and `cryptopulse status`
# =====================================================================================


@dataclass
class DownResult:
    was_running: bool = False
    summary: dict[str, Any] | None = None  # the supervisor's last-shutdown.json
    killed: list[str] = field(default_factory=list)  # processes stopped without a supervisor
    stale: bool = False  # a state file was found whose processes are gone (or are others)


def _process(ident: Identity) -> psutil.Process | None:
    """A handle on exactly that process: psutil refuses to signal it once its pid is reused."""
    try:
        proc = psutil.Process(ident.pid)
        return proc if abs(proc.create_time() - ident.create_time) < 0.05 else None
    except psutil.Error:
        return None


def _wait_gone(idents: list[Identity], timeout: float) -> list[Identity]:
    """Wait until these processes have ended (a zombie has ended); those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [i for i in idents if find_process(i.record()) is not None]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _terminate(identities: list[tuple[str, Identity]], budget: float) -> list[str]:
    """SIGTERM each process (still the recorded one), SIGKILL its group after `budget`."""
    stopped: list[tuple[str, Identity]] = []
    for name, ident in identities:
        if (proc := _process(ident)) is not None:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
                stopped.append((name, ident))
    for ident in _wait_gone([i for _, i in stopped], budget):
        if (proc := _process(ident)) is not None:
            with contextlib.suppress(psutil.Error):
                proc.kill()
            with contextlib.suppress(OSError):  # our children lead their own groups
                if os.getpgid(ident.pid) == ident.pid:
                    _kill_group(ident.pid)
    _wait_gone([i for _, i in stopped], 5.0)
    return [f"{name} (pid {ident.pid})" for name, ident in stopped]


def stop_pipeline(settings: Settings, timeout: float = 20.0) -> DownResult:
    """`cryptopulse down`: ask a running supervisor to stop and wait for it. Only processes
    that match the state file's pid, start time and command line are ever signalled."""
    state = read_state(settings)
    result = DownResult()
    if state is None:
        return result
    supervisor = running_supervisor(state)
    if supervisor is None:
        # A supervisor that died (SIGKILL, a crash) may have left its children running.
        result.stale = True
        result.killed = _terminate(component_processes(state), 5.0)
        with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError):
            if orjson.loads(state_file(settings).read_bytes()) == state:  # not a new `up`'s
                state_file(settings).unlink()
        return result
    result.was_running = True
    asked = time.time()
    proc = _process(supervisor)
    if proc is not None:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
        if _wait_gone([supervisor], timeout):
            with contextlib.suppress(psutil.Error):
                proc.kill()
            result.killed = _terminate(component_processes(state), 2.0)
    summary = read_json(shutdown_file(settings))
    if summary and float(summary.get("stopped_at", 0)) >= asked:
        result.summary = summary
    return result


def status_rows(state: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each component as `cryptopulse status` shows it (the truth about each process)."""
    rows = []
    now = time.time()
    for c in state.get("components", []):
        status = shown_status(c)
        if status == "running" and not c.get("owned", True):
            status = "running (not ours)"
        since = float(c.get("since") or now)
        rows.append(
            {
                "component": str(c.get("name", "?")),
                "state": status,
                "for": _duration(now - since),
                "pid": str(c.get("pid") or ""),
                "port": str(c.get("port") or ""),
                "restarts": str(c.get("restarts", 0)),
                "last error": clean_text(str(c.get("last_error", "")), 80),
            }
        )
    return rows


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
