"""Logging set-up shared by every process: one line per event, with the component's name."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def setup_logging(level: str = "INFO", *, rich: bool = True) -> None:
    """Configure the root logger once; plain lines when output is not a terminal."""
    handler: logging.Handler
    if rich:
        handler = RichHandler(show_path=False, rich_tracebacks=True, log_time_format="%H:%M:%S")
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler()
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("py4j", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
