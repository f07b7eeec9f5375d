"""The local cluster's pure parts and its process records, without servers: which workers a
Spark master reports alive, and a Daemon found again only while it is still the same process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest
from pydantic import ValidationError

from cryptopulse.config import ClusterSettings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.daemon import Daemon
from cryptopulse.platform.spark_cluster import alive_workers_in
from cryptopulse.process_group import wait_exited
from tests.waiting import wait_for


def _worker(port: int, state: str = "ALIVE") -> dict[str, object]:
    return {"webuiaddress": f"http://127.0.0.1:{port}", "state": state, "cores": 1}


def test_alive_workers_are_told_apart_by_their_ui_port() -> None:
    status = {
        "workers": [
            _worker(18082),
            _worker(18081, "DEAD"),  # a killed worker stays listed for a while
            _worker(180811),  # another port that merely starts alike
            "garbage",
            {"state": "ALIVE"},
        ]
    }
    assert alive_workers_in(status, (18081, 18082)) == [2]
    assert alive_workers_in(
        {**status, "workers": [_worker(18081), _worker(18082)]}, (18081, 18082)
    ) == [1, 2]
    assert alive_workers_in({}, (18081, 18082)) == []
    assert alive_workers_in({"workers": None}, (18081, 18082)) == []


def test_cluster_ports_must_all_differ() -> None:
    with pytest.raises(ValidationError, match="must all differ"):
        ClusterSettings(spark_master_port=19092)
    with pytest.raises(ValidationError, match="must all differ"):
        ClusterSettings(api_ports=(8001, 8001))


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


def _sleeper(tmp_path: Path) -> Daemon:
    return Daemon(
        name="sleeper",
        command=(sys.executable, "-c", "import time; time.sleep(60.5)"),
        folder=tmp_path,
        marker="time.sleep(60.5)",
    )


def test_a_daemon_is_found_again_and_killed_with_its_group(tmp_path: Path) -> None:
    # it starts a child of its own, as a Spark worker starts executors
    daemon = Daemon(
        name="parent",
        command=(
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60.5)']); "
            "time.sleep(60.5)",
        ),
        folder=tmp_path,
        marker="subprocess.Popen",
    )
    proc = daemon.launch()
    try:
        assert daemon.pid() == proc.pid
        child = wait_for(lambda: psutil.Process(proc.pid).children(), 10, "the child")[0]
        with pytest.raises(CryptoPulseError, match="already running"):
            daemon.launch()
        # the same record, for a process whose command line lacks the marker
        assert Daemon("parent", (), tmp_path, marker="no such marker").pid() is None
        daemon.kill()
        assert not psutil.pid_exists(proc.pid)
        wait_for(lambda: _gone(child), 10, "the child killed with it")
        assert daemon.pid() is None and not daemon.record_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_record_whose_pid_is_now_another_process_is_ignored(tmp_path: Path) -> None:
    daemon = _sleeper(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60.5)"])
    try:
        wait_for(lambda: "sleep(60.5)" in " ".join(psutil.Process(other.pid).cmdline()), 10, "exec")
        started = psutil.Process(other.pid).create_time()
        # same pid and marker, but started at another time: a reused pid
        daemon.record_file.write_bytes(orjson.dumps({"pid": other.pid, "create_time": started - 5}))
        assert daemon.pid() is None
        daemon.stop()  # signals nothing
        assert other.poll() is None
        daemon.record_file.write_bytes(orjson.dumps({"pid": other.pid, "create_time": started}))
        assert daemon.pid() == other.pid
        for junk in (b"", b"[]", b'{"pid": "x"}', b'{"pid": 1}'):
            daemon.record_file.write_bytes(junk)
            assert daemon.pid() is None
    finally:
        other.kill()
        other.wait(10)


def test_a_stopped_daemon_leaves_no_record(tmp_path: Path) -> None:
    daemon = _sleeper(tmp_path)
    proc = daemon.launch()
    daemon.stop(timeout=10)
    assert not psutil.pid_exists(proc.pid)
    assert daemon.pid() is None and not daemon.record_file.exists()


def test_a_zombie_has_exited_even_when_someone_else_must_reap_it() -> None:
    # a parent that never reaps its child: the child stays a zombie
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'pass']); time.sleep(60.5)",
        ]
    )
    try:
        child = wait_for(lambda: psutil.Process(parent.pid).children(), 10, "the child")[0]
        wait_for(lambda: child.status() == psutil.STATUS_ZOMBIE, 10, "the child's exit")
        started = time.monotonic()
        assert wait_exited(child, 10)
        assert time.monotonic() - started < 1
        assert not wait_exited(psutil.Process(parent.pid), 0.3)  # still running
        parent.terminate()
        assert wait_exited(psutil.Process(parent.pid), 10)  # our child: reaped
    finally:
        parent.kill()
        parent.wait(10)
