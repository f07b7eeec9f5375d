"""The supervisor without servers: its pure decisions, and real short-lived processes
(`python -c ...`, `sleep`) in place of the pipeline's children and broker."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cryptopulse.cli import app
from cryptopulse.config import Settings, load_settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.ports import free_port
from cryptopulse.process_group import (
    Child,
    ExitAction,
    ProcessGroup,
    RateLimiter,
    backoff_delay,
    clean_text,
    exit_action,
    find_process,
    identity_of,
    ready_file_matches,
    same_process,
    stop_budget,
)
from cryptopulse.supervisor import (
    Supervisor,
    forwarded_text,
    line_level,
    parse_report,
    read_state,
    running_supervisor,
    shutdown_file,
    state_file,
    status_rows,
    stop_pipeline,
)
from tests.waiting import wait_for

PY = sys.executable


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process (what a reused pid points at)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load_settings(data_dir=tmp_path / "data")
    s.api.port = free_port()
    s.kafka.port = free_port()
    s.kafka.controller_port = free_port()
    s.kafka.bootstrap_servers = f"127.0.0.1:{s.kafka.port}"  # no local broker unless injected
    return s


class Terminal:
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.console = Console(file=self.buffer, width=400, color_system=None)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def terminal() -> Terminal:
    return Terminal()


@pytest.fixture
def make_supervisor(settings: Settings, terminal: Terminal) -> Iterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []

    def make(children: list[Child], **kwargs: Any) -> Supervisor:
        sup = Supervisor(
            settings,
            dict(os.environ),
            terminal.console,
            children=children,
            backoff_base=0.01,
            **kwargs,
        )
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.shutdown()
        sup.release()


def python_child(tmp_path: Path, name: str, script: str, **kwargs: Any) -> Child:
    return Child(name, [PY, "-c", script], tmp_path / "logs" / f"{name}.log", **kwargs)


def tick_until(sup: Supervisor, condition: Callable[[], object], timeout: float = 15.0) -> None:
    def step() -> object:
        sup.tick()
        return condition()

    wait_for(step, timeout)


# -- which log lines reach the terminal, and how ------------------------------------------


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2026-11-24 22:00:00,123 WARNING cryptopulse.producer: Kafka unreachable", "WARNING"),
        ("2026-11-24 22:00:00,123 ERROR cryptopulse.stream: batch 4 failed", "ERROR"),
        ("2026-11-24 22:00:00,123 CRITICAL x: y", "CRITICAL"),
        ("2026-11-24 22:00:00,123 INFO cryptopulse.api: GET /ws?ERROR[/x]", "INFO"),
        ("26/11/24 22:00:00 WARN TaskSetManager: Lost task 0.0", "WARNING"),
        ("26/11/24 22:00:00 ERROR MicroBatchExecution: Query terminated", "ERROR"),
        (
            "[2026-11-24 22:00:00,123] WARN [RaftManager id=1] Connection lost (kafka.raft)",
            "WARNING",
        ),
        ("%3|1732485600.123|FAIL|rdkafka#producer-1| [thrd:x]: Connection refused", "ERROR"),
        ("%7|1732485600.123|BROKER|rdkafka#producer-1| debug", "DEBUG"),
    ],
)
def test_the_level_field_decides(line: str, level: str) -> None:
    found = line_level(line)
    assert found is not None and found[0] == level


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "ValueError: ERROR in the message only",
        "WARNING: Using incubator modules: jdk.incubator.vector",  # JVM noise, no timestamp
        '  File "x.py", line 1, in <module> # ERROR',
        "CryptoPulse API on http://127.0.0.1:8000 ERROR WARNING",
        "2026-11-24 22:00:00,123 INFO uvicorn.error: connection to /ws?ERROR[/x] from ERROR",
        "",
    ],
)
def test_a_level_word_elsewhere_in_the_line_is_not_forwarded(line: str) -> None:
    assert forwarded_text(line) is None


def test_forwarded_text_starts_at_the_level_field() -> None:
    line = "2026-11-24 22:00:00,123 ERROR cryptopulse.stream: boom [/x]"
    assert forwarded_text(line) == ("ERROR", "ERROR cryptopulse.stream: boom [/x]")


@pytest.mark.parametrize(
    ("line", "forwarded"),
    [
        # Our processes: warnings and errors.
        ("2026-11-24 22:00:00,123 INFO cryptopulse.producer: 4 batches", False),
        ("2026-11-24 22:00:00,123 WARNING cryptopulse.producer: Kafka unreachable", True),
        ("2026-11-24 22:00:00,123 ERROR cryptopulse.stream: batch failed", True),
        # Spark and the broker: errors only (their warnings come by the dozen).
        ("26/11/24 22:00:00 WARN ProcessingTimeExecutor: Current batch is falling behind", False),
        ("26/11/24 22:00:00 ERROR MicroBatchExecution: Query windows-live terminated", True),
        ("[2026-11-24 22:00:00,123] WARN [RaftManager id=1] Connection lost (kafka.raft)", False),
        ("[2026-11-24 22:00:00,123] ERROR Error while writing (kafka.log.LogManager)", True),
        # librdkafka's own connection reports: only the critical ones.
        ("%3|1732485600.123|FAIL|rdkafka#producer-1| Connect failed: Connection refused", False),
        ("%2|1732485600.123|FATAL|rdkafka#producer-1| Fatal idempotent producer error", True),
    ],
)
def test_which_levels_reach_the_terminal(line: str, forwarded: bool) -> None:
    assert (forwarded_text(line) is not None) is forwarded


def test_clean_text_removes_terminal_escapes_and_control_characters() -> None:
    hostile = (
        "a\x1b[31mred\x1b[0m b\x1b]0;pwned title\x07 c\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
        " d\x07\x08\x00\x7f\x9b2J e\u202eevil\u202c f\tg\r\nh"
    )
    cleaned = clean_text(hostile)
    assert cleaned == "ared b clink d eevil f gh"
    assert all(ch.isprintable() for ch in cleaned)
    assert clean_text("x" * 500, limit=10) == "x" * 9 + "…"


def test_rate_limiter_holds_back_a_flood_and_counts_it() -> None:
    limiter = RateLimiter(limit=3, period=10.0)
    assert limiter.flush(100.0) == 0
    admitted = [limiter.admit(100.0 + i * 0.1) for i in range(20)]
    assert admitted == [True] * 3 + [False] * 17
    assert limiter.flush(105.0) == 0  # the period still runs
    assert limiter.flush(110.5) == 17  # one summary for the held lines
    assert limiter.flush(121.0) == 0
    assert limiter.admit(121.0)


@pytest.fixture
def log_child(tmp_path: Path) -> Child:
    child = Child("api", ["true"], tmp_path / "logs" / "api.log")
    child.log_file.parent.mkdir(parents=True)
    return child


def test_markup_and_control_characters_in_child_logs_are_printed_as_plain_text(
    make_supervisor: Callable[..., Supervisor], log_child: Child, terminal: Terminal
) -> None:
    sup = make_supervisor([log_child])
    with open(log_child.log_file, "ab") as log:
        log.write(
            b"2026-11-24 22:00:00,001 INFO uvicorn: GET /ws?ERROR[/x] 101\n"
            b"2026-11-24 22:00:00,002 ERROR cryptopulse.api: handshake /ws?ERROR[/x] [bold]b[/]"
            b" :smile: [link=http://evil]x[/link]\n"
            b"2026-11-24 22:00:00,003 WARNING cryptopulse.api: title \x1b]0;pwned\x07 \x1b[2J"
            b" bell\x07 \xff\xfe bytes\n"
            b"2026-11-24 22:00:00,004 WARNING cryptopulse.api: half a li"
        )
    sup.forward_logs()
    out = terminal.text
    assert "handshake /ws?ERROR[/x] [bold]b[/] :smile: [link=http://evil]x[/link]" in out
    assert "GET /ws?ERROR[/x] 101" not in out  # an INFO line, whatever it contains
    assert "title   bell \ufffd\ufffd bytes" in out
    assert "\x1b" not in out and "\x07" not in out
    assert "half a li" not in out  # incomplete: waits for its end
    with open(log_child.log_file, "ab") as log:
        log.write(b"ne\n")
    sup.forward_logs()
    assert "WARNING cryptopulse.api: half a line" in terminal.text


def test_say_never_interprets_markup(
    make_supervisor: Callable[..., Supervisor], terminal: Terminal
) -> None:
    sup = make_supervisor([])
    sup.say("api", "exited: [/x] [red]not red[/red] \x1b[31m", "red")
    assert "exited: [/x] [red]not red[/red]" in terminal.text


def test_forwarding_is_rate_limited_per_child(
    make_supervisor: Callable[..., Supervisor], log_child: Child, terminal: Terminal
) -> None:
    log_child.limiter = RateLimiter(limit=5, period=0.3)
    sup = make_supervisor([log_child])
    lines = [f"2026-11-24 22:00:00,000 ERROR rdkafka: Connection refused #{i}\n" for i in range(50)]
    log_child.log_file.write_text("".join(lines))
    sup.forward_logs()
    assert terminal.text.count("Connection refused") == 5
    wait_for(lambda: (sup.forward_logs(), "more lines" in terminal.text)[1], 5)
    assert f"45 more lines in {log_child.log_file}" in terminal.text
    assert terminal.text.count("Connection refused") == 5


def test_an_error_while_forwarding_is_logged_not_raised(
    make_supervisor: Callable[..., Supervisor],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Child("stream", ["true"], tmp_path / "not-a-file")
    broken.log_file.mkdir()  # reading it fails
    sup = make_supervisor([broken])
    with caplog.at_level(logging.WARNING, logger="cryptopulse.up"):
        sup.forward_logs()
    assert "could not forward stream's log" in caplog.text


# -- exits and restarts --------------------------------------------------------------------


def test_stop_budgets_keep_the_whole_shutdown_within_its_total() -> None:
    # producer (5.5 s), stream (6 s), api (2 s), broker (5 s), each using all it may.
    elapsed = 0.0
    for own, later in ((5.5, 3), (6.0, 2), (2.0, 1), (5.0, 0)):
        budget = stop_budget(own, elapsed, later, total=13.0)
        assert budget >= 1.0
        elapsed += budget
    assert elapsed <= 13.0
    assert stop_budget(6.0, 0.5, 2, total=13.0) == 6.0  # time to spare: its own budget
    assert stop_budget(6.0, 12.5, 2, total=13.0) == 1.0  # none left: the floor


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(1000) == 30
    assert backoff_delay(2, base=0.5, cap=10) == 2


@pytest.mark.parametrize("code", [0, 1, 3, 137, -9, -15])
def test_every_exit_is_restarted(code: int) -> None:
    assert exit_action(code, finite=False, pipeline_started=True) is ExitAction.RESTART


def test_only_a_finite_sources_clean_end_is_finished() -> None:
    assert exit_action(0, finite=True, pipeline_started=True) is ExitAction.FINISHED
    assert exit_action(1, finite=True, pipeline_started=True) is ExitAction.RESTART
    assert exit_action(-9, finite=True, pipeline_started=True) is ExitAction.RESTART


def test_exit_code_2_is_a_configuration_error_only_while_the_pipeline_starts() -> None:
    assert exit_action(2, finite=False, pipeline_started=False) is ExitAction.CONFIG_ERROR
    assert exit_action(2, finite=False, pipeline_started=True) is ExitAction.RESTART
    assert exit_action(1, finite=False, pipeline_started=False) is ExitAction.RESTART


@pytest.mark.parametrize(
    "script",
    [
        "import sys; sys.exit(0)",
        "import sys; sys.exit(1)",
        "import sys; sys.exit(2)",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ],
)
def test_the_stream_job_is_restarted_on_any_exit(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, terminal: Terminal, script: str
) -> None:
    stream = python_child(tmp_path, "stream", script)
    sup = make_supervisor([stream])
    sup.started = True
    sup.spawn(stream)
    first_pid = stream.state.pid
    tick_until(sup, lambda: stream.state.restarts >= 3)
    assert stream.state.pid != first_pid
    assert terminal.text.count("stream │ exited (code") >= 3
    assert "restarted (restart #3" in terminal.text
    assert stream.failures >= 3  # quick failures: the backoff grows


def test_a_replay_producer_that_ends_cleanly_is_not_restarted(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, terminal: Terminal
) -> None:
    producer = python_child(tmp_path, "producer", "pass", finite=True)
    sup = make_supervisor([producer])
    sup.started = True
    sup.spawn(producer)
    tick_until(sup, lambda: producer.state.status == "finished")
    for _ in range(20):
        sup.tick()
    assert producer.state.restarts == 0 and producer.proc is None
    assert "finished (exit code 0); not restarted" in terminal.text


def test_a_replay_producer_that_fails_is_restarted(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    producer = python_child(tmp_path, "producer", "import sys; sys.exit(1)", finite=True)
    sup = make_supervisor([producer])
    sup.started = True
    sup.spawn(producer)
    tick_until(sup, lambda: producer.state.restarts >= 1)


def test_exit_code_2_during_start_up_stops_everything_with_one_message(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    script = "import sys; print('Invalid option: --window must be > 0'); sys.exit(2)"
    stream = python_child(tmp_path, "stream", script)
    sup = make_supervisor([stream])
    sup.spawn(stream)
    with pytest.raises(CryptoPulseError, match=r"stream: configuration error .*--window"):
        tick_until(sup, lambda: False)


def test_the_stream_job_is_ready_when_its_ready_file_names_it(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    script = (
        "import json, os, sys, time\n"
        "path = sys.argv[sys.argv.index('--ready-file') + 1]\n"
        "time.sleep(0.3)\n"
        "open(path + '.tmp', 'w').write(json.dumps({'pid': os.getpid(), 'started_at': time.time()}))\n"
        "os.replace(path + '.tmp', path)\n"
        "time.sleep(60)\n"
    )
    ready_file = tmp_path / "run" / "stream.ready"
    ready_file.parent.mkdir()
    ready_file.write_bytes(orjson.dumps({"pid": os.getpid(), "started_at": 1.0}))  # a killed run's
    stream = python_child(tmp_path, "stream", script, ready_file=ready_file)
    sup = make_supervisor([stream])
    sup.spawn(stream)
    assert not ready_file.exists()  # the old one is gone before the new process starts
    assert not stream.is_ready()
    tick_until(sup, lambda: stream.state.status == "running")
    assert ready_file_matches(ready_file.read_bytes(), stream.state.pid or 0)


def test_ready_file_must_name_the_process() -> None:
    assert ready_file_matches(b'{"pid": 42, "started_at": 1.5}', 42)
    assert not ready_file_matches(b'{"pid": 41, "started_at": 1.5}', 42)
    assert not ready_file_matches(b'{"pid": 4', 42)
    assert not ready_file_matches(b"[42]", 42)


def test_parse_report() -> None:
    assert parse_report(b'{"sent": 5, "delivered": 3, "undelivered": 2}\n') is not None
    report = parse_report(b'\n{"sent": 5, "delivered": 3, "undelivered": 2}\n\n')
    assert report is not None and report.undelivered == 2
    assert parse_report(b"") is None
    assert parse_report(b'{"sent": 5}') is None
    assert parse_report(b"not json") is None


REPORTING_PRODUCER = """
import json, os, signal, sys, time
fd = int(sys.argv[sys.argv.index('--report-fd') + 1])
def stop(*_):
    os.write(fd, json.dumps({'sent': 10, 'delivered': 7, 'undelivered': 3}).encode() + b'\\n')
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print('handler installed', flush=True)
while True:
    time.sleep(0.05)
"""


def test_shutdown_reads_the_producers_report_and_writes_a_summary(
    make_supervisor: Callable[..., Supervisor],
    tmp_path: Path,
    terminal: Terminal,
    settings: Settings,
) -> None:
    producer = python_child(tmp_path, "producer", REPORTING_PRODUCER, report=True)
    sup = make_supervisor([producer])
    sup.spawn(producer)
    wait_for(lambda: "installed" in producer.log_file.read_text(), 10, "the producer's handler")
    assert "--report-fd" in producer.state.cmdline
    sup.shutdown()
    assert (sup.sent, sup.delivered, sup.undelivered) == (10, 7, 3)
    assert "producer │ 3 ticks could not be delivered" in terminal.text
    summary = orjson.loads(shutdown_file(settings).read_bytes())
    assert summary["undelivered"] == 3 and summary["unreported"] == 0
    assert summary["seconds"] < 5
    assert not state_file(settings).exists()


def test_a_producer_killed_before_reporting_is_counted_as_unreported(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    producer = python_child(tmp_path, "producer", "import time; time.sleep(60)", report=True)
    sup = make_supervisor([producer])
    sup.started = True
    sup.spawn(producer)
    assert producer.proc is not None
    os.kill(producer.proc.pid, signal.SIGKILL)
    tick_until(sup, lambda: producer.state.restarts >= 1)
    assert sup.unreported == 1 and sup.undelivered == 0


def test_a_child_that_ignores_sigterm_is_killed_with_its_group_after_its_budget(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, terminal: Terminal
) -> None:
    script = (
        "import signal, subprocess, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "helper = subprocess.Popen(['sleep', '60'])\n"
        "print('helper', helper.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = python_child(tmp_path, "stream", script, stop_budget=0.5)
    sup = make_supervisor([stubborn])
    sup.spawn(stubborn)
    wait_for(lambda: "helper" in stubborn.log_file.read_text(), 10, "the helper")
    helper = int(stubborn.log_file.read_text().split()[-1])
    began = time.monotonic()
    sup.shutdown()
    assert time.monotonic() - began < 4
    assert "did not stop within 0.5 s; killed" in terminal.text
    wait_for(lambda: identity_of(helper) is None, 5, "the helper to be gone")


# -- identity: a stale state file never makes us signal a stranger ------------------------


def test_identity_needs_pid_start_time_and_command_line(
    sleeper: subprocess.Popen[bytes],
) -> None:
    real = identity_of(sleeper.pid)
    assert real is not None and real.cmdline == ("sleep", "60")
    record = real.record()
    assert same_process(record, real) and find_process(record) == real
    assert not same_process({**record, "create_time": real.create_time - 3600}, real)
    assert not same_process({**record, "cmdline": [PY, "-m", "cryptopulse.cli", "up"]}, real)
    assert not same_process({"pid": sleeper.pid}, real)  # an old state file: pid only
    assert not same_process(None, real)
    stop(sleeper)
    assert identity_of(sleeper.pid) is None and find_process(record) is None


def test_a_zombie_is_not_alive(tmp_path: Path) -> None:
    proc = subprocess.Popen([PY, "-c", "pass"])
    wait_for(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, 10)
    assert identity_of(proc.pid) is None
    proc.wait()


def signalled(pid: int) -> bool:
    """Whether `pid` has a signal pending or has ended. kill(2) marks a signal pending before
    it returns, so a signal sent earlier shows here without waiting for its delivery."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return pending != 0 or fields["State"].strip()[0] in "ZX"


def stale_state(sleeper: subprocess.Popen[bytes], settings: Settings) -> dict[str, Any]:
    """A state file whose pids now belong to an unrelated process (a reused pid)."""
    real = identity_of(sleeper.pid)
    assert real is not None
    earlier = real.create_time - 3600
    state = {
        "supervisor": {
            "pid": sleeper.pid,
            "create_time": earlier,
            "cmdline": [PY, "-m", "cryptopulse.cli", "up"],
        },
        "dashboard": settings.api.base_url,
        "components": [
            {
                "name": "kafka",
                "status": "running",
                "pid": sleeper.pid,
                "create_time": earlier,
                "cmdline": ["java", "kafka.Kafka"],
                "owned": True,
                "restarts": 0,
                "last_error": "",
            },
            # same start time, another program
            {
                "name": "api",
                "status": "running",
                "pid": sleeper.pid,
                "create_time": real.create_time,
                "cmdline": [PY, "-m", "cryptopulse.cli", "serve"],
                "owned": True,
                "restarts": 0,
                "last_error": "",
            },
            # an old state file: pid only
            {
                "name": "stream",
                "status": "running",
                "pid": sleeper.pid,
                "restarts": 0,
                "last_error": "",
            },
        ],
    }
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(state))
    return state


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "CRYPTOPULSE_DATA_DIR": str(settings.data_dir),
        "CRYPTOPULSE_API__PORT": str(settings.api.port),
        "CRYPTOPULSE_KAFKA__PORT": str(settings.kafka.port),
        "CRYPTOPULSE_KAFKA__CONTROLLER_PORT": str(settings.kafka.controller_port),
    }


def test_down_and_status_ignore_a_stale_state_file(
    sleeper: subprocess.Popen[bytes], settings: Settings
) -> None:
    state = stale_state(sleeper, settings)
    assert running_supervisor(state) is None
    assert [row["state"] for row in status_rows(state)] == ["dead", "dead", "dead"]

    result = stop_pipeline(settings)
    assert not result.was_running and result.stale and result.killed == []
    assert not signalled(sleeper.pid), "down signalled an unrelated process"
    assert sleeper.poll() is None
    assert not state_file(settings).exists()  # the stale file is cleared

    stale_state(sleeper, settings)
    runner = CliRunner()
    status = runner.invoke(app, ["status"], env=cli_env(settings))
    assert status.exit_code == 3 and "No pipeline is running" in status.output
    down = runner.invoke(app, ["down"], env=cli_env(settings))
    assert down.exit_code == 0, down.output
    assert "No pipeline is running. (a state file from an earlier run was ignored)" in down.output
    assert not signalled(sleeper.pid) and sleeper.poll() is None


def test_up_ignores_a_stale_state_file(
    sleeper: subprocess.Popen[bytes],
    settings: Settings,
    make_supervisor: Callable[..., Supervisor],
) -> None:
    stale_state(sleeper, settings)
    sup = make_supervisor([])
    sup.preflight()  # neither "already running" nor "leftovers"
    assert not signalled(sleeper.pid) and sleeper.poll() is None


def test_down_stops_the_supervisor_it_recorded(
    sleeper: subprocess.Popen[bytes], settings: Settings
) -> None:
    real = identity_of(sleeper.pid)
    assert real is not None
    state_file(settings).parent.mkdir(parents=True)
    state_file(settings).write_bytes(
        orjson.dumps({"supervisor": real.record(), "dashboard": "", "components": []})
    )
    result = stop_pipeline(settings, timeout=5)
    assert result.was_running and result.killed == []
    assert sleeper.wait(5) == -signal.SIGTERM  # down returned once it had ended (a zombie)


def test_down_stops_what_a_dead_supervisor_left_and_up_refuses_to_start_beside_it(
    sleeper: subprocess.Popen[bytes],
    settings: Settings,
    make_supervisor: Callable[..., Supervisor],
) -> None:
    real = identity_of(sleeper.pid)
    assert real is not None
    orphan = {"name": "stream", "status": "running", "owned": True, **real.record()}
    state_file(settings).parent.mkdir(parents=True)
    state_file(settings).write_bytes(
        orjson.dumps(
            {"supervisor": {"pid": 1, "create_time": 0.0, "cmdline": []}, "components": [orphan]}
        )
    )
    with pytest.raises(CryptoPulseError, match=rf"earlier run .*stream pid {sleeper.pid}"):
        make_supervisor([]).preflight()
    result = stop_pipeline(settings)
    assert result.killed == [f"stream (pid {sleeper.pid})"]
    assert sleeper.wait(5) == -signal.SIGTERM


def test_a_second_up_says_so_and_exits(
    settings: Settings, make_supervisor: Callable[..., Supervisor]
) -> None:
    first = make_supervisor([])
    first.preflight()
    first.write_state()
    with pytest.raises(
        CryptoPulseError, match=rf"already running \(supervisor pid {os.getpid()}\)"
    ):
        make_supervisor([]).preflight()
    # The command itself: non-zero, one clear message, the running pipeline's state untouched.
    env = {**os.environ, **cli_env(settings)}
    env.pop("CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS", None)
    second = subprocess.run(
        [PY, "-m", "cryptopulse.cli", "up", "--source", "simulated"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert second.returncode == 1, second.stderr
    message = " ".join(second.stderr.split())
    assert f"the pipeline is already running (supervisor pid {os.getpid()})" in message
    assert running_supervisor(read_state(settings)) is not None


# -- the broker is supervised too ----------------------------------------------------------


class FakeBroker:
    """Stands in for LocalKafka: a real detached process, started and stopped the same way."""

    def __init__(self, tmp_path: Path, *, running: bool = False) -> None:
        self.log_file = tmp_path / "broker.log"
        self.bootstrap = "127.0.0.1:1"
        self.topic_names: tuple[str, ...] = ("ticks",)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.fail_next = 0
        self.stopped = False
        if running:
            self._spawn()

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(["sleep", "300"], start_new_session=True)

    def pid(self) -> int | None:
        if self.proc is None:
            return None
        return self.proc.pid if identity_of(self.proc.pid) is not None else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> None:
        self.starts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise CryptoPulseError("Port 9092 (broker) on 127.0.0.1 is already in use")
        self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    def create_topics(self, names: Iterable[str]) -> None:
        pass

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)


def test_a_broker_that_dies_is_restarted_with_one_line_out_and_one_back(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, terminal: Terminal
) -> None:
    broker = FakeBroker(tmp_path)
    waiting = python_child(tmp_path, "producer", "import sys; sys.exit(1)")
    sup = make_supervisor([waiting], kafka=broker)
    sup.start_kafka()
    sup.wait_kafka(10)
    sup.started = True
    first = sup.kafka_state.pid
    assert first is not None and sup.kafka_state.status == "running"
    assert sup.kafka_state.cmdline == ["sleep", "300"]

    broker.fail_next = 10**6  # restarts fail for now (e.g. its port is still taken)
    broker.kill()
    tick_until(sup, lambda: sup.kafka_state.status == "restarting")
    sup.spawn(waiting)  # a child that exits while Kafka is away waits for it
    tick_until(sup, lambda: waiting.state.status == "restarting" and waiting.proc is None)
    assert "once Kafka is back" in terminal.text
    tick_until(sup, lambda: broker.starts >= 4)
    assert waiting.proc is None and waiting.state.restarts == 0
    broker.fail_next = 0
    tick_until(sup, lambda: sup.kafka_state.status == "running")
    assert sup.kafka_state.pid not in (None, first)
    assert sup.kafka_state.restarts == broker.starts - 1
    out = terminal.text
    assert out.count("kafka │ went away") == 1
    assert out.count("kafka │ could not restart yet") == 1  # the same error is said once
    assert out.count("kafka │ back after") == 1
    # What waited for Kafka starts at once.
    tick_until(sup, lambda: waiting.state.restarts >= 1)
    # The broker we started is stopped with the pipeline.
    sup.shutdown()
    assert broker.stopped and not broker.running()


def test_a_broker_up_did_not_start_is_neither_restarted_nor_stopped(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, terminal: Terminal
) -> None:
    broker = FakeBroker(tmp_path, running=True)
    sup = make_supervisor([], kafka=broker)
    sup.start_kafka()
    sup.started = True
    assert not sup.kafka_state.owned and sup.kafka_state.status == "running"
    assert "using it (not ours)" in terminal.text
    broker.kill()
    tick_until(sup, lambda: sup.kafka_state.status == "gone")
    for _ in range(10):
        sup.tick()
    assert broker.starts == 0
    assert "not restarted" in terminal.text
    assert status_rows(orjson.loads(state_file(sup.settings).read_bytes()))[0]["state"] == "gone"
    sup.shutdown()
    assert not broker.stopped


def test_status_shows_a_dead_broker_truthfully(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path, settings: Settings
) -> None:
    broker = FakeBroker(tmp_path)
    sup = make_supervisor([], kafka=broker)
    sup.start_kafka()
    sup.wait_kafka(10)
    sup.write_state()
    state = read_state(settings)
    assert state is not None and status_rows(state)[0]["state"] == "running"
    broker.kill()
    assert broker.proc is not None
    broker.proc.wait(5)
    # Before the supervisor noticed: the recorded process is gone, so it is shown dead.
    assert status_rows(state)[0]["state"] == "dead"


def test_the_pipelines_children(settings: Settings, terminal: Terminal) -> None:
    settings.producer.source = "replay"
    sup = Supervisor(settings, {}, terminal.console)
    api, stream, producer = sup.children
    assert api.env == {"CRYPTOPULSE_API__CONSUME_WINDOWS": "true"}
    assert stream.ready_file == settings.data_dir / "run" / "stream.ready"
    assert producer.report and producer.finite
    assert producer.stop_budget == settings.producer.flush_timeout + 0.5
    # The producer and the stream job stop together, then the API, then the broker.
    assert [[c.name for c in wave] for wave in sup.stop_waves()] == [
        ["producer", "stream"],
        ["api"],
    ]


def test_a_process_group_of_plain_commands(tmp_path: Path, terminal: Terminal) -> None:
    """The group alone: started in order, each once the one before is ready, stopped in
    reverse order; its ready files are removed."""
    ready_file = tmp_path / "run" / "second.ready"
    ready_file.parent.mkdir()
    script = (
        "import json, os, sys, time\n"
        "path = sys.argv[sys.argv.index('--ready-file') + 1]\n"
        "open(path, 'w').write(json.dumps({'pid': os.getpid()}))\n"
        "time.sleep(60)\n"
    )
    first = python_child(tmp_path, "first", "import time; time.sleep(60)")
    second = python_child(tmp_path, "second", script, ready_file=ready_file)
    group = ProcessGroup([first, second], dict(os.environ), terminal.console, backoff_base=0.01)
    try:
        assert group.start_in_order() and group.started
        assert [c.state.status for c in (first, second)] == ["running", "running"]
        assert ready_file_matches(ready_file.read_bytes(), second.state.pid or 0)
        group.stop_children(time.monotonic(), total=5.0)
    finally:
        group.stop_children(time.monotonic(), total=5.0)
    out = terminal.text
    assert out.index("first │ ready") < out.index("second │ starting")
    assert out.index("second │ stopping") < out.index("first │ stopping")
    assert [c.state.status for c in (first, second)] == ["stopped", "stopped"]
    assert first.proc is None and not ready_file.exists()


def test_the_process_group_knows_nothing_of_the_pipeline() -> None:
    """Importing the generic group loads none of the pipeline's parts."""
    parts = (
        "cryptopulse.config",
        "cryptopulse.platform",
        "cryptopulse.api",
        "cryptopulse.stream",
        "cryptopulse.producer",
        "cryptopulse.sources",
        "cryptopulse.supervisor",
        "confluent_kafka",
        "pyspark",
    )
    code = (
        "import sys, cryptopulse.process_group\n"
        f"print(sorted(m for m in sys.modules if m.startswith({parts!r})))\n"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


FAKE_SUPERVISOR = """
import json, os, signal, sys, time
summary = sys.argv[1]
def stop(*_):
    with open(summary, "w") as f:
        json.dump({"stopped_at": time.time(), "seconds": 4.2, "undelivered": 7, "unreported": 0}, f)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_down_prints_the_supervisors_shutdown_summary(settings: Settings) -> None:
    fake = subprocess.Popen(
        [PY, "-c", FAKE_SUPERVISOR, str(shutdown_file(settings))],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert fake.stdout is not None and fake.stdout.readline() == b"ready\n"
        real = identity_of(fake.pid)
        assert real is not None
        state_file(settings).parent.mkdir(parents=True)
        state_file(settings).write_bytes(
            orjson.dumps({"supervisor": real.record(), "dashboard": "", "components": []})
        )
        down = CliRunner().invoke(app, ["down"], env=cli_env(settings))
        assert down.exit_code == 0, down.output
        assert "Pipeline stopped in 4.2 s; 7 ticks undelivered" in down.output
        assert fake.wait(5) == 0
    finally:
        stop(fake)
