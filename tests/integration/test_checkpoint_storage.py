"""The checkpoint's bookkeeping files behave alike in a local folder and behind a Hadoop URL
(`spark.checkpoint_location=hdfs://…|s3a://…`; here Hadoop's own file:// file system, through
the real Spark JVM)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cryptopulse.stream.finals import FinalTracker
from cryptopulse.stream.storage import (
    CheckpointPath,
    HadoopPath,
    checkpoint_path,
    modified_at,
    write_state,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["folder", "hadoop-url"])
def root(request: pytest.FixtureRequest, spark: SparkSession, tmp_path: Path) -> CheckpointPath:
    location = str(tmp_path) if request.param == "folder" else tmp_path.as_uri()
    path = checkpoint_path(location, spark)
    assert isinstance(path, HadoopPath) == (request.param == "hadoop-url")
    return path


def test_files_are_replaced_read_listed_and_dated(root: CheckpointPath) -> None:
    state = root / "v3" / "windows-live" / "sink-state.json"
    with pytest.raises(FileNotFoundError):
        state.read_bytes()
    with pytest.raises(FileNotFoundError):
        modified_at(state)
    with pytest.raises(FileNotFoundError):
        list((root / "nowhere").iterdir())
    assert not (root / "v3").is_dir()

    write_state(state, b'{"batch_id": 1}', durable=True)
    write_state(state, b'{"batch_id": 2}')  # replaces
    assert state.read_bytes() == b'{"batch_id": 2}'
    assert abs(modified_at(state) - time.time()) < 60
    assert (root / "v3").is_dir() and not state.is_dir()
    names = {p.name for p in (root / "v3" / "windows-live").iterdir()}
    assert "sink-state.json" in names
    assert not any(name.endswith(".tmp") for name in names)  # nothing left aside


def test_the_final_tracker_comes_back_from_either(root: CheckpointPath) -> None:
    tracker = FinalTracker(5000, batch_id=7, max_event_ms=123_000)
    state = root / "sink-state.json"
    tracker.save(state)
    again = FinalTracker.load(state, 5000)
    assert (again.batch_id, again.max_event_ms) == (7, 123_000)


def test_a_stale_checksum_left_by_a_crash_does_not_hide_the_file(
    spark: SparkSession, tmp_path: Path
) -> None:
    # file:// renames the file, then its .crc: a SIGKILL between them leaves this behind
    root = checkpoint_path(tmp_path.as_uri(), spark)
    state = root / "sink-state.json"
    write_state(state, b'{"batch_id": 1}')
    old_crc = (tmp_path / ".sink-state.json.crc").read_bytes()
    write_state(state, b'{"batch_id": 22}')
    (tmp_path / ".sink-state.json.crc").write_bytes(old_crc)
    assert state.read_bytes() == b'{"batch_id": 22}'
