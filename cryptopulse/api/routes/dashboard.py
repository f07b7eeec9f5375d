"""The built dashboard at /, or a page that says how to build it."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CryptoPulse</title></head>
<body>
<h1>CryptoPulse API is running</h1>
<p>The dashboard has not been built: run <code>make setup</code> (it builds <code>{dist}</code>),
then restart <code>cryptopulse serve</code>.</p>
<p>Meanwhile: <a href="/openapi.json">API schema</a> · <a href="/api/coins">/api/coins</a> ·
<a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a> · WebSocket <code>/ws</code></p>
</body></html>
"""


def mount_dashboard(app: FastAPI, dist: Path) -> None:
    """Serve `dist` at / (mounted last: every other route comes first)."""
    if (dist / "index.html").is_file():
        app.mount("/", StaticFiles(directory=dist, html=True), name="web")
        return
    page = _NOT_BUILT.format(dist=html.escape(str(dist)))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)
