"""The ingest token `cryptopulse up` generates once and keeps in the data folder."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from pathlib import Path

from cryptopulse.config import Settings

TOKEN_ENV = "CRYPTOPULSE_API__TOKEN"


def token_file(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "ingest-token"


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return text or None


def ensure_token_file(path: Path) -> str:
    """The token kept in `path`, created on first use: mode 0600 from the first byte on
    (written to a private temporary file, then linked into place, so a reader never sees a
    partial or world-readable file, and two concurrent callers agree on one token)."""
    if (found := _read(path)) is not None:
        return found
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the file first
        except FileExistsError:
            found = _read(path)
            if found is None:
                raise
            return found
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return token


def ingest_token(settings: Settings) -> str:
    """The token in force: the user's `api.token` wins over the generated one."""
    if settings.api.token is not None:
        return settings.api.token.get_secret_value()
    return ensure_token_file(token_file(settings))


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
