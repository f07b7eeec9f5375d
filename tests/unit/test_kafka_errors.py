"""What `LocalKafka` says when it cannot start, checked without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.kafka import LocalKafka, new_cluster_id


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalKafka(data_dir=tmp_path / "data", lib_dir=tmp_path / "lib")
    with pytest.raises(CryptoPulseError, match="Java was not found: install a JDK 17"):
        broker.start()


def test_missing_jars_point_to_setup(tmp_path: Path) -> None:
    broker = LocalKafka(data_dir=tmp_path / "data", lib_dir=tmp_path / "lib")
    with pytest.raises(CryptoPulseError, match="make setup"):
        broker.start()


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    broker = LocalKafka(data_dir=tmp_path, lib_dir=tmp_path / "lib")
    broker.pid_file.write_text("1")  # pid 1 exists but is not a broker
    assert not broker.running()
    broker.stop()  # a no-op that clears the stale file
    assert not broker.pid_file.exists()


def test_cluster_ids_never_start_with_a_dash() -> None:
    """The storage tool reads `-t -abc...` as an option: one fresh start in 64 failed."""
    ids = [new_cluster_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids) and {len(i) for i in ids} == {22}
