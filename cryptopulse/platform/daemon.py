"""A background process of the local development cluster (a Spark master or worker, an API
replica): started in a session of its own, found again by a later command through a record
file, and only ever signalled while it is still that process.

The record keeps the pid, the start time and a marker: a string its command line must hold
(e.g. its own work folder). Not the whole command line: `spark-class` is a shell script that
`exec`s the JVM, so the same pid shows another command line a moment after the start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
import psutil

from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import write_atomic
from cryptopulse.process_group import identity_of, kill_group, log_tail, wait_exited

log = logging.getLogger("cryptopulse.cluster")


class Stoppable(Protocol):
    def terminate(self) -> psutil.Process | None: ...
    def await_exit(self, proc: psutil.Process, timeout: float = 30.0) -> None: ...


def stop_together(processes: Iterable[Stoppable], timeout: float) -> None:
    """Ask every process to stop at once, then wait for each: none waits on one that is
    already gone (a controller quorum, a master), and the waits overlap."""
    stopping = [(p, p.terminate()) for p in processes]
    for process, proc in stopping:
        if proc is not None:
            process.await_exit(proc, timeout)


@dataclass(frozen=True)
class Daemon:
    name: str
    command: tuple[str, ...]
    folder: Path
    marker: str
    """A string the running process's command line holds, told apart from its siblings."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Set on top of this process's environment."""

    @property
    def record_file(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    # -- state -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Its pid while it runs, else None (a record whose pid now belongs to another
        process, or to a zombie, is ignored)."""
        try:
            record = orjson.loads(self.record_file.read_bytes())
            pid, started = int(record["pid"]), float(record["create_time"])
        except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        actual = identity_of(pid)
        if (
            actual is None
            or abs(actual.create_time - started) >= 0.05
            or self.marker not in " ".join(actual.cmdline)
        ):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    # -- lifecycle ---------------------------------------------------------------------

    def launch(self) -> subprocess.Popen[bytes]:
        """Start it without waiting for it to be ready."""
        if (pid := self.pid()) is not None:
            raise CryptoPulseError(f"{self.name} is already running (pid {pid}).")
        self.folder.mkdir(parents=True, exist_ok=True)
        log.info("starting %s (log: %s)", self.name, self.log_file)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C in the starting terminal must not reach it
            )
        identity = identity_of(proc.pid)
        record = {"pid": proc.pid, "create_time": identity.create_time if identity else 0.0}
        write_atomic(self.record_file, orjson.dumps(record))
        # Until the forked child has exec'd, its command line is ours, without the marker:
        # wait for it, so that `pid()` (and so `stop()`) finds it from here on.
        deadline = time.monotonic() + 10.0
        while self.pid() is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc

    def wait_ready(
        self, proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float
    ) -> None:
        """Return once `ready()` holds; fail when the process exits first or is late."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise CryptoPulseError(
                    f"{self.name} exited during start (code {proc.returncode}); last log "
                    f"lines ({self.log_file}):\n{log_tail(self.log_file, 15)}"
                )
            if ready():
                return
            time.sleep(0.25)
        raise CryptoPulseError(
            f"{self.name} was not ready within {timeout:.0f} s; last log lines "
            f"({self.log_file}):\n{log_tail(self.log_file, 15)}"
        )

    def terminate(self) -> psutil.Process | None:
        """Ask it to stop (SIGTERM); its process, or None when it was not running."""
        pid = self.pid()
        if pid is None:
            self.record_file.unlink(missing_ok=True)
            return None
        log.info("stopping %s (pid %d)", self.name, pid)
        proc = psutil.Process(pid)
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
        return proc

    def await_exit(self, proc: psutil.Process, timeout: float = 30.0) -> None:
        """Wait for it to exit, then SIGKILL whatever is left in its process group (a
        worker's executors); SIGKILL it too if it is late."""
        if not wait_exited(proc, timeout):
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
        kill_group(proc.pid)
        wait_exited(proc, 10)
        self.record_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        if (proc := self.terminate()) is not None:
            self.await_exit(proc, timeout)

    def kill(self) -> None:
        """SIGKILL it and everything in its process group (a crash of its machine: a worker
        goes with its executors) and wait until it is gone."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                kill_group(pid)
                wait_exited(proc, 10)
        self.record_file.unlink(missing_ok=True)
