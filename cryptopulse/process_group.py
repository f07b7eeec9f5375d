"""A group of child processes kept running: started in order, each restarted with backoff
when it exits, stopped in reverse order within budgets, their logs forwarded to a terminal.

Nothing here knows what the children are. A child is a command line, a log file and how
to tell it is ready: a callable (e.g. an HTTP port answering, see `http_ready`), and/or a
ready file (the child gets `--ready-file PATH` and writes {"pid": <its pid>, ...} there once
it is ready). A child may also be given `--report-fd N`, a pipe for an exit report that the
group hands to `exit_report` after it ended. Which log lines reach the terminal is for the
owner to say (`forward`). The pipeline's use of it is `cryptopulse/supervisor.py`.

Every process is known by its identity: pid, start time and command line. A process is
only ever signalled when all three still match, so a pid reused by another program is
never touched. Each child leads its own process group (a new session), so Ctrl-C reaches
only the owner, and whatever a child leaves behind in its group is killed with it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.text import Text

from cryptopulse.errors import CryptoPulseError

CONFIG_ERROR_EXIT = 2
STABLE_AFTER = 60.0  # a process that ran this long has its backoff reset
READY_TIMEOUT = 180.0  # first readiness of each child while the group starts
FORWARD_LIMIT = 5  # forwarded lines per child per FORWARD_PERIOD
FORWARD_PERIOD = 10.0

Forward = Callable[[str], tuple[str, str] | None]  # a log line -> (level, text) to show


# =====================================================================================
# Pure decisions (unit-tested without processes)
# =====================================================================================


def backoff_delay(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Wait before the next restart after `failures` quick failures in a row: 1, 2, 4 ... 30 s."""
    return float(min(cap, base * 2.0 ** min(max(failures, 0), 16)))


def stop_budget(own: float, elapsed: float, later: int, total: float, floor: float = 1.0) -> float:
    """Seconds a process may take to stop: its own budget, cut so that the `later`
    processes still get `floor` seconds each within `total` (never less than `floor`, or
    its own budget when that is smaller)."""
    return max(min(own, floor), min(own, total - elapsed - later * floor))


class ExitAction(Enum):
    RESTART = "restart"
    FINISHED = "finished"
    CONFIG_ERROR = "config_error"


def exit_action(code: int, *, finite: bool, pipeline_started: bool) -> ExitAction:
    """What an exited child means.

    Every exit is restarted, exit code 0 included (a service that ended must run again),
    except a finite child's clean end (one that has done its work and exits 0). Exit code 2
    is a configuration error only while the group starts: then nothing would come up, and
    one clear message is better than a restart loop. Later, a code 2 is treated as a crash.
    """
    if code == 0 and finite:
        return ExitAction.FINISHED
    if code == CONFIG_ERROR_EXIT and not pipeline_started:
        return ExitAction.CONFIG_ERROR
    return ExitAction.RESTART


# -- text for a terminal ----------------------------------------------------------------

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


# =====================================================================================
# Process identity
# =====================================================================================


@dataclass(frozen=True)
class Identity:
    """A process as the group and its owner recognise it: pid, start time, command line."""

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


def _handle(ident: Identity) -> psutil.Process | None:
    """A handle on exactly that process: psutil refuses to signal it once its pid is reused."""
    try:
        proc = psutil.Process(ident.pid)
        return proc if abs(proc.create_time() - ident.create_time) < 0.05 else None
    except psutil.Error:
        return None


def signal_process(ident: Identity, signum: int = signal.SIGTERM) -> bool:
    """Send `signum` to that very process; False when it is gone (or its pid is another's)."""
    if (proc := _handle(ident)) is None:
        return False
    try:
        proc.send_signal(signum)
    except psutil.Error:
        return False
    return True


def wait_gone(idents: list[Identity], timeout: float) -> list[Identity]:
    """Wait until these processes have ended (a zombie has ended); those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [i for i in idents if find_process(i.record()) is not None]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def wait_exited(proc: psutil.Process, timeout: float) -> bool:
    """Wait until `proc` has exited; True when it has within `timeout`. A zombie has exited:
    its parent may be another process that reaps it late (e.g. whoever started a cluster),
    so psutil's own wait, which waits for the pid to vanish, would wait for the parent."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(psutil.Error):
            proc.wait(0)  # reaps it when it is our child
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` leads (each child leads its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def terminate(identities: list[tuple[str, Identity]], budget: float) -> list[str]:
    """SIGTERM each process (still the recorded one), SIGKILL its group after `budget`;
    "name (pid N)" of each process that was signalled."""
    stopped = [(name, ident) for name, ident in identities if signal_process(ident)]
    for ident in wait_gone([i for _, i in stopped], budget):
        if _handle(ident) is None:
            continue
        signal_process(ident, signal.SIGKILL)
        with contextlib.suppress(OSError):  # our children lead their own groups
            if os.getpgid(ident.pid) == ident.pid:
                kill_group(ident.pid)
    wait_gone([i for _, i in stopped], 5.0)
    return [f"{name} (pid {ident.pid})" for name, ident in stopped]


def finish_process(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for a child that was sent SIGTERM until `deadline` (monotonic), then SIGKILL its
    whole process group; leftovers in its group are killed either way. True when it
    stopped by itself."""
    clean = True
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        clean = False
        kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    kill_group(proc.pid)  # e.g. a helper the child left behind; the group is the child's own
    return clean


# =====================================================================================
# Children
# =====================================================================================


@dataclass
class ComponentState:
    """What the group says about one process (recorded for `status`-like commands)."""

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
    owned: bool = True  # False: a process found running, neither restarted nor stopped

    def set(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.since = time.time()

    def set_process(self, identity: Identity | None) -> None:
        self.pid = identity.pid if identity else None
        self.create_time = identity.create_time if identity else None
        self.cmdline = list(identity.cmdline) if identity else []


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


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


def ready_file_matches(data: bytes, pid: int) -> bool:
    """A ready file ({"pid": ..., "started_at": ...}) names this process."""
    try:
        ready = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(ready, dict) and ready.get("pid") == pid


def http_ready(url: str) -> Callable[[Child], bool]:
    """Readiness by a port: the child is ready once `url` answers 200."""

    def ready(_child: Child) -> bool:
        import httpx  # here: commands that never start a child start faster without it

        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


@dataclass
class Child:
    """One supervised process: how to run it, when it is ready and how long it may take to stop."""

    name: str
    argv: list[str]
    log_file: Path
    ready: Callable[[Child], bool] = lambda _child: True
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the group's environment
    finite: bool = False  # exit code 0 means "done" (e.g. a replay), not "restart me"
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

    def command(self, report_fd: int | None) -> list[str]:
        """Its command line, with the ready file and the report pipe it is given."""
        argv = list(self.argv)
        if self.ready_file is not None:
            argv += ["--ready-file", str(self.ready_file)]
        if report_fd is not None:
            argv += ["--report-fd", str(report_fd)]
        return argv

    def close_report(self) -> bytes:
        """What the child wrote on its report pipe (all of it once it has exited)."""
        data = b""
        if self.report_fd is not None:
            with contextlib.suppress(OSError):
                while chunk := os.read(self.report_fd, 65536):
                    data += chunk
            os.close(self.report_fd)
            self.report_fd = None
        return data


# =====================================================================================
# The group
# =====================================================================================


class ProcessGroup:
    """The children, in start order. Subclasses may override the hooks `changed`,
    `restarts_wait_for` and `exit_report`."""

    def __init__(
        self,
        children: list[Child],
        env: Mapping[str, str],
        console: Console,
        *,
        backoff_base: float = 1.0,
        forward: Forward | None = None,
        colours: Mapping[str, str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.children = children
        self.env = dict(env)
        self.console = console
        self.backoff_base = backoff_base
        self.forward = forward or (lambda _line: None)
        self.colours = dict(colours or {})
        self.log = logger or logging.getLogger(__name__)
        self.stopping = threading.Event()
        self.started = False  # every child came up once

    # -- hooks -------------------------------------------------------------------------

    def changed(self) -> None:
        """A child's state may have changed (e.g. to record it somewhere)."""

    def restarts_wait_for(self) -> str:
        """What exited children wait for before they are restarted ("" for nothing)."""
        return ""

    def exit_report(self, child: Child, data: bytes) -> None:
        """What a child given `report=True` wrote on its report pipe, once it has ended."""

    # -- output ------------------------------------------------------------------------

    def say(self, name: str, message: str, style: str = "") -> None:
        """One line on the terminal: never interpreted as markup, control characters removed."""
        line = Text.assemble(
            (f"{name:>8}", self.colours.get(name, "white")),
            " │ ",
            (clean_text(message, 1000), style),
        )
        self.console.print(line, highlight=False, soft_wrap=True)  # a log file: one line each

    def forward_logs(self) -> None:
        """Echo the new lines of each child's log that `forward` picks, prefixed with its name."""
        now = time.monotonic()
        for child in self.children:
            try:
                self._forward(child, now)
            except Exception:  # nothing a child writes may stop the group
                self.log.warning("could not forward %s's log", child.name, exc_info=True)

    def _forward(self, child: Child, now: float) -> None:
        held = child.limiter.flush(now)
        if held:
            self.say(child.name, f"{held} more lines in {child.log_file}", "dim")
        for line in child.follower.read_lines():
            found = self.forward(line)
            if found is None:
                continue
            if child.limiter.admit(now):
                level, text = found
                style = "red" if level in ("ERROR", "CRITICAL") else "yellow"
                self.say(child.name, clean_text(text), style)

    # -- one child -----------------------------------------------------------------------

    def spawn(self, child: Child) -> None:
        child.log_file.parent.mkdir(parents=True, exist_ok=True)
        if child.ready_file is not None:
            child.ready_file.unlink(missing_ok=True)  # one left by a killed run is not ours
        write_fd: int | None = None
        if child.report:
            child.report_fd, write_fd = os.pipe()
            os.set_blocking(child.report_fd, False)
        try:
            with open(child.log_file, "ab") as out:
                child.proc = subprocess.Popen(
                    child.command(write_fd),
                    env={**self.env, **child.env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=() if write_fd is None else (write_fd,),
                    start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
                )
        except OSError:
            child.close_report()
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
        self.changed()

    def _collect_report(self, child: Child) -> None:
        if child.report:
            self.exit_report(child, child.close_report())

    def check(self, child: Child) -> None:
        """Notice readiness and exits; restart an exited child with backoff."""
        if child.state.status in ("stopped", "finished"):
            return
        now = time.monotonic()
        proc = child.proc
        if proc is None:
            if now >= child.next_restart and not self.restarts_wait_for():
                self._restart(child, now)
            return
        code = proc.poll()
        if code is not None:
            self._exited(child, code, now)
        elif not child.ready_seen and child.is_ready():
            child.ready_seen = True
            if child.state.restarts:
                self.say(child.name, f"running again (pid {proc.pid})", "green")
            child.state.set("running")
            self.changed()
        elif child.ready_seen and now - child.started_at >= STABLE_AFTER:
            child.failures = 0

    def _restart(self, child: Child, now: float) -> None:
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
        kill_group(child.proc.pid)  # whatever it left behind in its process group
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
            self.changed()
            return
        delay = backoff_delay(child.failures, self.backoff_base)
        child.failures += 1
        child.next_restart = now + delay
        child.state.set("restarting")
        hint = " (a configuration error?)" if code == CONFIG_ERROR_EXIT else ""
        waits = self.restarts_wait_for()
        wait = f" once {waits} is back" if waits else ""
        self.say(
            child.name, f"exited (code {code}){hint}; restarting in {delay:.0f} s{wait}", "red"
        )
        self.changed()

    def restart_now(self) -> None:
        """What waited (for `restarts_wait_for`) may be restarted at once."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None and child.state.status == "restarting":
                child.next_restart = min(child.next_restart, now)

    # -- all of them ---------------------------------------------------------------------

    def tick(self) -> None:
        for child in self.children:
            if child.proc is not None or child.state.status == "restarting":
                self.check(child)
        self.forward_logs()
        self.changed()

    def tick_until(self, done: Callable[[], bool], timeout: float, failure: str) -> bool:
        """Keep supervising (restarts included) until `done()`; False when asked to stop
        first; CryptoPulseError(`failure`) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.stopping.wait(0.25):
                return False
            self.tick()
            if time.monotonic() > deadline:
                raise CryptoPulseError(failure)
        return True

    def wait_ready(self, child: Child, timeout: float = READY_TIMEOUT) -> None:
        """Keep supervising until `child` is ready for the first time."""
        failure = f"{child.name} was not ready within {timeout:.0f} s; see {child.log_file}"
        if self.tick_until(lambda: child.ready_seen, timeout, failure):
            self.say(child.name, "ready", "green")

    def start_in_order(self) -> bool:
        """Start each child once the one before it is ready; False when asked to stop first."""
        for child in self.children:
            if self.stopping.is_set():
                return False
            self.say(child.name, f"starting (log: {child.log_file})")
            self.spawn(child)
            self.wait_ready(child)
        if self.stopping.is_set():
            return False
        self.started = True
        return True

    def supervise(self, every: float = 0.5) -> None:
        """Keep every child running until asked to stop."""
        while not self.stopping.wait(every):
            self.tick()

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

    def stop_children(self, began: float, total: float, after: int = 0) -> None:
        """Stop the children in reverse order, each wave within its budget, so that the whole
        stop (from `began`, monotonic) stays within `total` seconds with `after` more
        processes to stop once the children are."""
        waves = self.stop_waves()
        for i, wave in enumerate(waves):
            for child in wave:
                if child.proc is None and child.state.status != "finished":
                    child.state.set("stopped")
            later = sum(any(c.proc for c in w) for w in waves[i + 1 :]) + after
            self._stop_wave([c for c in wave if c.proc is not None], began, total, later)
        for child in self.children:
            if child.ready_file is not None:
                child.ready_file.unlink(missing_ok=True)

    def _stop_wave(self, running: list[Child], began: float, total: float, later: int) -> None:
        if not running:
            return
        elapsed = time.monotonic() - began
        budgets = {c.name: stop_budget(c.stop_budget, elapsed, later, total) for c in running}
        for child in running:
            assert child.proc is not None
            if child.proc.poll() is None:
                self.say(child.name, "stopping")
                with contextlib.suppress(ProcessLookupError):
                    child.proc.terminate()  # it stops its own helpers (e.g. a JVM) in order
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
            self.changed()
