"""Headless Debian Chromium for the browser tests and benchmarks (Playwright drives it)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Background networking would reach for Google's hosts, which this sandbox refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a `sync_playwright()` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
