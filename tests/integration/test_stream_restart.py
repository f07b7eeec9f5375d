"""The streaming job as a process: killed with SIGKILL mid-stream and restarted, it resumes
from its checkpoint and every final window is published exactly once; `cryptopulse stream`
says when it is ready, exits 0 after SIGTERM and non-zero when its queries end otherwise."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from cryptopulse.stream.job import CHECKPOINT_VERSION, LIVE
from tests.factories import iso, tick
from tests.kafka_helpers import TopicReader, read_topic, send, send_in_steps
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

COINS = ("alpha", "beta", "gamma")
WINDOW = 10


def start_job(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cryptopulse.stream"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the JVM dies with it
        )


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            kill_hard(proc)


def final_keys(records: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(coin, window_start) of each final record; every tick here is from source "test"."""
    assert {r["source"] for r in records} <= {"test"}
    return Counter((r["coin"], r["window_start"]) for r in records if r["final"])


def window_start(index: int) -> str:
    return iso(index * WINDOW).replace("Z", ".000Z")


@pytest.fixture
def job_env(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "CRYPTOPULSE_DATA_DIR": str(tmp_path),
        "CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CRYPTOPULSE_KAFKA__TOPIC_TICKS": new_topic("ticks", partitions=2),
        "CRYPTOPULSE_KAFKA__TOPIC_WINDOWS": new_topic("windows", partitions=2),
        "CRYPTOPULSE_KAFKA__TOPIC_DLQ": new_topic("dlq", partitions=1),
        "CRYPTOPULSE_SPARK__STARTING_OFFSETS": "earliest",
        "CRYPTOPULSE_SPARK__TRIGGER_SECONDS": "0.5",
        "CRYPTOPULSE_SPARK__WINDOW_SECONDS": str(WINDOW),
        "CRYPTOPULSE_SPARK__WATERMARK_SECONDS": "2",
        "CRYPTOPULSE_SPARK__POST_TO_API": "false",
        "CRYPTOPULSE_LOG_LEVEL": "INFO",
    }
    yield env


def saved_batch(state_file: Path) -> int:
    """The last batch the sink saved its state for, or -1 while there is no file."""
    try:
        return int(orjson.loads(state_file.read_bytes())["batch_id"])
    except FileNotFoundError:
        return -1


@pytest.mark.parametrize("checkpoint", ["folder", "hadoop-url"])
def test_sigkill_then_restart_loses_and_repeats_no_final(
    job_env: dict[str, str], tmp_path: Path, checkpoint: str
) -> None:
    # "hadoop-url": the checkpoint and the sinks' bookkeeping through Hadoop's FileSystem, as
    # on HDFS or S3 (spark.checkpoint_location), here with its file:// implementation
    location = (tmp_path / "shared" / "cp").as_uri() if checkpoint == "hadoop-url" else ""
    job_env["CRYPTOPULSE_SPARK__CHECKPOINT_LOCATION"] = location
    bootstrap = job_env["CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS"]
    ticks = job_env["CRYPTOPULSE_KAFKA__TOPIC_TICKS"]
    windows = TopicReader(bootstrap, job_env["CRYPTOPULSE_KAFKA__TOPIC_WINDOWS"], "restart-check")
    log = tmp_path / "stream.log"
    root = Path(location.removeprefix("file://")) if location else tmp_path / "checkpoints"
    live = root / CHECKPOINT_VERSION / LIVE
    state_file = live / "sink-state.json"

    def ticks_for(seconds: range) -> list[tuple[str | None, bytes]]:
        return [(c, tick(c, s, 100.0 + s, 1.0)) for s in seconds for c in COINS]

    send(bootstrap, ticks, ticks_for(range(0, 60)))
    first = start_job(job_env, log)
    try:
        # Windows 0..4 close once the watermark (59 - 2 s) passes them.
        windows.until(lambda rs: len(final_keys(rs)) >= 3 * len(COINS), timeout=180)
        # Sent while the job runs: a second at a time, so that no batch sees 30 s of one
        # partition's ticks without the other's (whose windows the watermark would then close).
        send_in_steps(bootstrap, ticks, [ticks_for(range(s, s + 1)) for s in range(60, 90)])
        kill_hard(first)
        send(bootstrap, ticks, ticks_for(range(90, 120)))
        second = start_job(job_env, log)
        try:
            expected = {(c, window_start(i)) for c in COINS for i in range(11)}
            windows.until(
                lambda rs: expected <= set(final_keys(rs)),
                timeout=180,
                explain=lambda rs: (
                    f"missing: {sorted(expected - set(final_keys(rs)))}\n{log.read_text()[-4000:]}"
                ),
            )
            # The finals reach the topic before the sink saves its state for their batch:
            # stopping in between would leave the state at the first job's last batch.
            wait_for(lambda: saved_batch(state_file) > 0, 60, "the second job's saved state")
        finally:
            stop(second)
        # The job has stopped: read everything it published, to the end of every partition.
        records = read_topic(bootstrap, job_env["CRYPTOPULSE_KAFKA__TOPIC_WINDOWS"])
    finally:
        stop(first)
        windows.close()
    counts = final_keys(records)
    assert set(counts) == {(c, window_start(i)) for c in COINS for i in range(11)}
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n != 1}
    # Each final is complete: one tick per second per coin.
    assert {r["tick_count"] for r in records if r["final"]} == {WINDOW}
    # Two processes ran the job; the second resumed from the checkpoint (no new first batch).
    text = log.read_text()
    assert text.count("query windows-live started") == 2
    # No tick was late: each batch saw every partition's ticks up to a second apart at most.
    assert set(re.findall(r"(\d+) late ticks dropped", text)) <= {"0"}
    # ... the checkpoint the setting names, with the sinks' bookkeeping next to it
    assert {"offsets", "commits", "sink-state.json"} <= {p.name for p in live.iterdir()}
    assert orjson.loads(state_file.read_bytes())["batch_id"] > 0
    if checkpoint == "hadoop-url":  # written through Hadoop's file system (its checksum file)
        assert (live / ".sink-state.json.crc").exists()


def ready_pid(ready: Path) -> int | None:
    """The pid in the ready file; None while there is none (the job deletes an earlier
    process's file as it starts, so it may vanish between a check and the read)."""
    try:
        return int(orjson.loads(ready.read_bytes())["pid"])
    except FileNotFoundError:
        return None


def start_cli(env: dict[str, str], log: Path, ready: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cryptopulse.cli", "stream", "--ready-file", str(ready)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_cli_ready_file_and_exit_codes(job_env: dict[str, str], tmp_path: Path) -> None:
    log, ready = tmp_path / "stream.log", tmp_path / "run" / "stream.ready"
    ready.parent.mkdir()
    ready.write_text('{"pid": 1, "started_at": 0}')  # left by an earlier, killed process
    proc = start_cli(job_env, log, ready)
    try:
        wait_for(
            lambda: ready_pid(ready) == proc.pid,
            180,
            "the ready file",
        )
        assert abs(orjson.loads(ready.read_bytes())["started_at"] - time.time()) < 180
        assert "query windows-live started" in log.read_text()  # still logged
        # As the supervisor stops it: SIGTERM to the process alone.
        proc.terminate()
        assert proc.wait(90) == 0, log.read_text()[-3000:]
        assert not ready.exists()

        # Spark's JVM dies under a running job (e.g. the OOM killer): its queries end, and so
        # does the job, with an error the supervisor restarts (never 0, never 2).
        proc = start_cli(job_env, log, ready)
        wait_for(
            lambda: ready_pid(ready) == proc.pid,
            180,
            "the ready file (second start)",
        )
        [jvm] = [c for c in psutil.Process(proc.pid).children(recursive=True) if "java" in c.name()]
        jvm.kill()
        code = proc.wait(90)
        assert code not in (0, 2), log.read_text()[-3000:]
        assert not ready.exists()
    finally:
        stop(proc)
