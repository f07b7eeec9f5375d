"""Small file helpers shared by the processes."""

from __future__ import annotations

import os
import re
from pathlib import Path

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str) -> bool:
    """A URL (`hdfs://…`, `file:///…`) rather than a plain path."""
    return bool(URL.match(location))


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never half of one.

    `durable` also syncs the data to disk first, for state a crash must not lose.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    tmp.replace(path)
