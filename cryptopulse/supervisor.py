"""`cryptopulse up`, `down` and `status`: the pipeline as a process group.

This module is the pipeline's definition: which components run, their commands and
environment, how each says it is ready, in which order they start and stop, which of
their log lines reach the terminal, and the local Kafka broker's supervision. The
mechanics (start, restart with backoff, stop budgets, process identity, log forwarding)
are `cryptopulse/process_group.py`, which knows nothing of Kafka, Spark or the API.

Kafka (when local) -> API server -> Spark job -> producer, each started once the one
before it is ready, and each ready by an explicit signal, never by its log text:
the broker when its port answers and it has a controller (`LocalKafka.start`), the API
server when `/healthz` answers 200, the Spark job when its `--ready-file` names its pid
(written once its queries run), the producer at once. Each child process logs to its own
file under <data>/logs; the terminal gets a short, coloured, prefixed summary: lifecycle
events, our processes' warnings and errors and the libraries' (Spark, Kafka) errors,
chosen by each line's log level field, printed as plain text (never markup, control
characters removed) and rate-limited per child.

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
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

import orjson
from rich.console import Console
from rich.text import Text

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import write_atomic
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import port_in_use
from cryptopulse.process_group import (
    READY_TIMEOUT,
    STABLE_AFTER,
    Child,
    ComponentState,
    Identity,
    ProcessGroup,
    backoff_delay,
    clean_text,
    find_process,
    http_ready,
    identity_of,
    signal_process,
    stop_budget,
    terminate,
    wait_gone,
)

log = logging.getLogger("cryptopulse.up")

COLOURS = {"kafka": "magenta", "api": "cyan", "stream": "yellow", "producer": "green", "up": "bold"}
SHUTDOWN_BUDGET = 13.0  # seconds from the stop signal until the broker has been stopped
KAFKA_STOP_BUDGET = 5.0


# =====================================================================================
# The pipeline's children
# =====================================================================================


def pipeline_children(settings: Settings) -> list[Child]:
    """The API server, the Spark job and the producer, in start order."""
    logs = settings.logs_dir
    exe = [sys.executable, "-m", "cryptopulse.cli"]
    return [
        Child(
            "api",
            [*exe, "serve"],
            logs / "api.log",
            ready=http_ready(f"{settings.api.base_url}/healthz"),
            port=settings.api.port,
            # Rebuild live state and history from Kafka after a restart.
            env={"CRYPTOPULSE_API__CONSUME_WINDOWS": "true"},
            stop_budget=2.0,
        ),
        Child(
            "stream",
            [*exe, "stream"],
            logs / "stream.log",
            ready_file=settings.data_dir / "run" / "stream.ready",
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


def pipeline_env(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """The children's environment with the ingest token in force (the user's, else the one kept
    in the data folder, created on first run): the API requires it, the stream job sends it."""
    from cryptopulse.token import TOKEN_ENV, ingest_token

    return {**env, TOKEN_ENV: ingest_token(settings)}


# -- which log lines reach the terminal ---------------------------------------------------

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


# -- the producer's exit report ---------------------------------------------------------


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
# State files
# =====================================================================================


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


# =====================================================================================
# The supervisor: the children as a process group, and the local broker
# =====================================================================================


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


class Supervisor(ProcessGroup):
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
        super().__init__(
            children if children is not None else pipeline_children(settings),
            env,
            console,
            backoff_base=backoff_base,
            forward=forwarded_text,
            colours=COLOURS,
            logger=log,
        )
        self.settings = settings
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
        self.sent = self.delivered = self.undelivered = 0
        self.unreported = 0  # producer runs that ended without a report (killed)
        self._state_written = b""
        self._lock: IO[bytes] | None = None
        self._me = identity_of(os.getpid())
        self._previous: dict[str, Any] | None = None  # the state file found at start

    # -- the process group's hooks -------------------------------------------------------

    def changed(self) -> None:
        self.write_state()

    def restarts_wait_for(self) -> str:
        return "" if self.kafka_available() else "Kafka"

    def exit_report(self, child: Child, data: bytes) -> None:
        """Count a producer's exit report; tell the terminal about ticks it could not deliver."""
        report = parse_report(data)
        if report is None:
            self.unreported += 1
            return
        self.sent += report.sent
        self.delivered += report.delivered
        self.undelivered += report.undelivered
        if report.undelivered:
            self.say(child.name, f"{report.undelivered} ticks could not be delivered", "red")

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

    # -- before anything starts --------------------------------------------------------

    def preflight(self) -> None:
        """Refuse to start next to a running pipeline or its leftovers, or on busy ports."""
        run = self.settings.data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        previous = self._previous = read_state(self.settings)
        self._take_lock(run / "up.lock", previous)
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
        self._refuse_busy_ports()

    def _take_lock(self, path: Path, previous: Mapping[str, Any] | None) -> None:
        lock = open(path, "wb")  # noqa: SIM115 - held as long as we run
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

    def _refuse_busy_ports(self) -> None:
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

    def wait_kafka(self, timeout: float = READY_TIMEOUT) -> None:
        self.tick_until(
            self.kafka_available, timeout, f"Kafka was not ready within {timeout:.0f} s"
        )

    def check_kafka(self) -> None:
        """Notice a broker that went away and bring ours back, with backoff, keeping its data.

        The terminal gets one line when it goes and one when it is back, not one per retry."""
        kafka = self.kafka
        if kafka is None:
            return
        now = time.monotonic()
        status = self.kafka_state.status
        if self.kafka_starter is not None:
            self._check_starter(now)
        elif status == "running":
            self._check_broker_alive(now)
        elif status == "gone":  # a broker we do not own: did someone bring it back?
            if kafka.running():
                self._kafka_is_up()
                self._kafka_back(now)
        elif status == "restarting" and now >= self.kafka_next_start:
            if kafka.running():  # started by someone else meanwhile: use it
                self._kafka_is_up()
                self._kafka_back(now)
                return
            self.kafka_state.restarts += 1
            self._launch_kafka()

    def _check_starter(self, now: float) -> None:
        """A start under way: has it ended, and how?"""
        starter = self.kafka_starter
        assert starter is not None
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
        self.kafka_state.last_error = error
        if error != self.kafka_error_said:  # the same failure again is not news
            self.say("kafka", f"could not restart yet: {error}", "red")
            self.kafka_error_said = error
        self._kafka_retry_later(now)

    def _kafka_retry_later(self, now: float) -> None:
        delay = backoff_delay(self.kafka_failures, self.backoff_base)
        self.kafka_failures += 1
        self.kafka_next_start = now + delay

    def _check_broker_alive(self, now: float) -> None:
        state = self.kafka_state
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
        self._kafka_retry_later(now)
        self.say(
            "kafka",
            f"went away (pid {state.pid}); restarting it with its data, retrying with backoff",
            "red",
        )
        state.set_process(None)

    def _kafka_back(self, now: float) -> None:
        gone = self.kafka_gone_at
        self.kafka_error_said = ""
        if gone is None:
            self.say("kafka", f"ready (pid {self.kafka_state.pid})", "green")
            return
        self.kafka_gone_at = None
        self.kafka_state.last_error = ""
        self.say("kafka", f"back after {now - gone:.1f} s (pid {self.kafka_state.pid})", "green")
        self.restart_now()  # what waited for Kafka may start at once

    @staticmethod
    def _reap(pid: int | None) -> None:
        """Collect a dead broker's exit status when it was our child (no zombie left)."""
        if pid:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

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

    # -- run and stop ------------------------------------------------------------------

    def tick(self) -> None:
        self.check_kafka()
        super().tick()

    def run(self) -> None:
        self.preflight()
        shutdown_file(self.settings).unlink(missing_ok=True)
        self.write_state()
        try:
            self.start_kafka()
            self.wait_kafka()
            if self.start_in_order():
                self._say_dashboard()
                self.supervise()
        finally:
            self.shutdown()

    def _say_dashboard(self) -> None:
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

    def shutdown(self) -> None:
        """Stop everything in reverse order, each part within its budget (under 15 s in all)."""
        began = time.monotonic()
        self.stop_children(began, SHUTDOWN_BUDGET, after=int(self.kafka is not None))
        with contextlib.suppress(Exception):
            self.forward_logs()
        elapsed = time.monotonic() - began
        self._stop_kafka(stop_budget(KAFKA_STOP_BUDGET, elapsed, 0, SHUTDOWN_BUDGET))
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

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


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
        result.killed = terminate(component_processes(state), 5.0)
        with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError):
            if orjson.loads(state_file(settings).read_bytes()) == state:  # not a new `up`'s
                state_file(settings).unlink()
        return result
    result.was_running = True
    asked = time.time()
    if signal_process(supervisor) and wait_gone([supervisor], timeout):
        signal_process(supervisor, signal.SIGKILL)
        result.killed = terminate(component_processes(state), 2.0)
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
