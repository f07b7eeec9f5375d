"""`cryptopulse produce` / `record` as a user runs them, against the real broker."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer

from cryptopulse.schema import SourceStatus, status_from_json, tick_from_json
from tests.integration.test_producer_coingecko import read_back
from tests.kafka_helpers import read_to_end

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "cryptopulse.cli"]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["CRYPTOPULSE_DATA_DIR"] = str(data_dir / "data")  # never the checkout's .cryptopulse
    return env


def _run(
    args: list[str], cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**_env(cwd), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _statuses(bootstrap: str, topic: str) -> list[tuple[str, SourceStatus]]:
    """Every (key, status) on the status topic so far."""
    return [
        ((key or b"").decode(), status_from_json(value))
        for key, value in read_to_end(bootstrap, topic)
    ]


def test_produce_simulated_fills_the_topic_with_valid_ticks(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    windows_topic = new_topic(
        "windows"
    )  # backfill (on by default): tests/integration/test_backfill.py
    read_fd, write_fd = os.pipe()
    try:
        done = subprocess.run(
            [
                *CLI, "produce", "--source", "simulated", "--simulated-coins", "20", "--rate", "10",
                "--max-ticks", "300", "--bootstrap", kafka_bootstrap, "--topic", topic,
                "--report-fd", str(write_fd),
            ],
            cwd=tmp_path,
            env={
                **_env(tmp_path),
                "CRYPTOPULSE_KAFKA__TOPIC_STATUS": status_topic,
                "CRYPTOPULSE_KAFKA__TOPIC_WINDOWS": windows_topic,
            },
            capture_output=True, text=True, timeout=120, pass_fds=(write_fd,),
        )  # fmt: skip
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as report:
            assert orjson.loads(report.read()) == {"sent": 300, "delivered": 300, "undelivered": 0}
    finally:
        with contextlib.suppress(OSError):
            os.close(write_fd)
    assert done.returncode == 0, done.stderr
    assert "sent 300, delivered 300" in done.stderr
    statuses = _statuses(kafka_bootstrap, status_topic)
    assert statuses and all(key == "simulated" for key, _ in statuses)
    assert {s.state for _, s in statuses} == {"simulated"}
    assert statuses[0][1].detail == "simulated data, not live market prices"
    records = read_back(kafka_bootstrap, topic)
    assert len(records) == 300
    ticks = [tick_from_json(orjson.dumps(r)) for r in records]  # every one passes the schema
    assert len({t.coin for t in ticks}) == 20
    assert {t.source for t in ticks} == {"simulated"}


def test_ctrl_c_flushes_and_exits_cleanly(
    kafka_bootstrap: str, new_topic: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    topic, windows_topic = new_topic("ticks"), new_topic("windows")
    proc = subprocess.Popen(
        [
            *CLI, "produce", "--source", "simulated", "--simulated-coins", "10", "--rate", "20",
            "--bootstrap", kafka_bootstrap, "--topic", topic,
        ],
        cwd=tmp_path, env={**_env(tmp_path), "CRYPTOPULSE_KAFKA__TOPIC_WINDOWS": windows_topic},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        read_back_some(kafka_bootstrap, topic, group_id + "-first")  # it is publishing
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    match = re.search(r"sent ([\d,]+), delivered ([\d,]+)", err)
    assert match, err
    sent, delivered = (int(g.replace(",", "")) for g in match.groups())
    assert sent == delivered > 0
    assert len(read_back(kafka_bootstrap, topic)) == sent


def read_back_some(bootstrap: str, topic: str, group: str, timeout: float = 60) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(m.error() is None for m in consumer.consume(10, timeout=0.5)):
                return
        raise AssertionError(f"nothing arrived on {topic} within {timeout} s")
    finally:
        consumer.close()


def test_record_then_replay(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    capture = tmp_path / "capture.jsonl"
    done = _run(
        ["record", "--source", "simulated", "--unpaced", "--max-ticks", "200", "-o", str(capture)],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in capture.read_bytes().splitlines()]
    assert len(lines) == 200

    topic = new_topic("ticks")
    done = _run(
        [
            "produce", "--source", "replay", "--replay-file", str(capture), "--speed", "0",
            "--keep-timestamps", "--bootstrap", kafka_bootstrap, "--topic", topic,
        ],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = read_back(kafka_bootstrap, topic)
    per_coin: dict[str, list[object]] = defaultdict(list)
    for record in lines:
        per_coin[record["coin"]].append(record)
    got: dict[str, list[object]] = defaultdict(list)
    for record in records:
        got[record["coin"]].append(record)
    assert got == per_coin  # same ticks, in order per coin (one partition per key)


def test_bad_options_and_missing_broker_are_plain_errors(tmp_path: Path) -> None:
    done = _run(["produce", "--source", "simulated", "--rate", "0"], tmp_path)
    assert done.returncode == 2 and "Invalid option" in done.stderr
    done = _run(["produce", "--source", "replay"], tmp_path)
    assert done.returncode == 1 and "--replay-file" in done.stderr
    done = _run(
        ["produce", "--source", "simulated", "--bootstrap", "127.0.0.1:1", "--max-ticks", "1"],
        tmp_path,
    )
    assert done.returncode == 1 and "not reachable" in done.stderr
