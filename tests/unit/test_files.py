"""Small file helpers: URL or folder, atomic replace."""

from __future__ import annotations

from pathlib import Path

from cryptopulse.files import is_url, write_atomic


def test_url_or_folder() -> None:
    assert is_url("hdfs://namenode:8020/cp") and is_url("s3a://bucket/cp") and is_url("file:///x")
    assert not is_url("/var/lib/cryptopulse") and not is_url("relative/cp") and not is_url("")


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two", durable=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
