"""CPU time of the processes a benchmark measures: on a shared machine wall time varies with
the load, CPU time much less."""

from __future__ import annotations

import contextlib

import psutil


def cpu_seconds(proc: psutil.Process, children: bool) -> float:
    """User + system CPU of a process, with its children's when asked (spark-submit's JVM is a
    child of its launcher; this process's children are the others measured on their own)."""
    total = 0.0
    for p in (proc, *(proc.children(recursive=True) if children else ())):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total
