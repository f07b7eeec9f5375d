"""The ingest token `cryptopulse up` keeps in the data folder."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from cryptopulse.config import ApiSettings, load_settings
from cryptopulse.supervisor import pipeline_env
from cryptopulse.token import TOKEN_ENV, ensure_token_file, ingest_token, is_loopback, token_file


def test_created_private_and_reused(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = ingest_token(settings)
    path = token_file(settings)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert ingest_token(settings) == first  # reused on later runs
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_never_world_readable_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ensure_token_file(tmp_path / "t" / "ingest-token")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t" / "ingest-token").stat().st_mode) == 0o600


def test_concurrent_first_runs_agree_on_one_token(tmp_path: Path) -> None:
    path = tmp_path / "ingest-token"
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(ensure_token_file(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and path.read_text().strip() == found[0]


def test_the_users_token_wins(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, api=ApiSettings(token=SecretStr("mine")))
    assert ingest_token(settings) == "mine"
    assert not token_file(settings).exists()


def test_the_supervisor_hands_the_token_to_its_children(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    env = pipeline_env(settings, {"PATH": "/bin"})
    assert env == {"PATH": "/bin", TOKEN_ENV: ingest_token(settings)}
    user = load_settings(data_dir=tmp_path, api=ApiSettings(token=SecretStr("mine")))
    assert pipeline_env(user, {TOKEN_ENV: "mine"})[TOKEN_ENV] == "mine"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
