"""The FastAPI application: the server's context, its middleware and its routes (one module per
resource under `routes/`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import Scope

from cryptopulse.api.context import ApiContext
from cryptopulse.api.deps import authorize
from cryptopulse.api.errors import install_error_handlers
from cryptopulse.api.limits import Limits, RequestLimit
from cryptopulse.api.openapi import install_openapi
from cryptopulse.api.routes import dashboard, history, ingest, live, market, ops
from cryptopulse.api.security import HOST_REFUSED, SecurityMiddleware
from cryptopulse.config import Settings

log = logging.getLogger(__name__)

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def _lifespan(ctx: ApiContext) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.hub.start()
        if ctx.history is not None:
            ctx.history.start()  # before the consumer: the topic's replay is stored too
        if ctx.consumer is not None:
            ctx.consumer.start(asyncio.get_running_loop())
        log.info(
            "API ready: ingest %s, Kafka %s",
            "on" if ctx.api.ingest_enabled else "off",
            " and ".join(ctx.consumer.topics) if ctx.consumer else "not consumed",
        )
        try:
            yield
        finally:
            if ctx.consumer is not None:
                await asyncio.to_thread(ctx.consumer.stop)
            await ctx.hub.stop()
            if ctx.history is not None:
                await asyncio.to_thread(ctx.history.stop)  # writes what is queued

    return lifespan


def _add_middleware(app: FastAPI, ctx: ApiContext, routers: list[APIRouter]) -> None:
    """Outermost last: the Host check, then the request limit, then CORS."""
    api, metrics = ctx.api, ctx.metrics
    app.add_middleware(
        CORSMiddleware,
        allow_origins=api.origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(
        RequestLimit,
        limit=ctx.limits.requests,
        on_busy=lambda scope: metrics.rejected.labels("other", "busy").inc(),
    )
    routes = [route for router in routers for route in router.routes]

    def host_refused(scope: Scope) -> None:
        """Counted by the route it was for (refused before routing, so matched here)."""
        if scope["type"] == "websocket":
            metrics.refused.labels("host").inc()
            return
        endpoint = next(
            (
                getattr(route, "path", "other")
                for route in routes
                if route.matches(scope)[0] == Match.FULL
            ),
            "other",
        )
        metrics.rejected.labels(endpoint, HOST_REFUSED).inc()

    app.add_middleware(
        SecurityMiddleware,
        allowed_hosts=api.hosts,
        on_refused=host_refused,
        docs_paths=DOCS_PATHS if api.docs else frozenset(),
    )


def create_app(settings: Settings, limits: Limits | None = None) -> FastAPI:
    """A new, independent API app (own store, hub and metrics registry); `limits` default to
    the settings' fitted to this process's open-files limit."""
    ctx = ApiContext.build(settings, limits)
    api = ctx.api
    app = FastAPI(
        title="CryptoPulse API",
        version="1.0",
        description="Live crypto market windows: ingest, WebSocket fan-out, history and metrics.",
        lifespan=_lifespan(ctx),
        # Off by default: FastAPI's pages load Swagger UI / ReDoc from a CDN. /openapi.json stays.
        docs_url="/docs" if api.docs else None,
        redoc_url="/redoc" if api.docs else None,
    )
    app.state.ctx = ctx
    routers = [market.router, history.router, ops.router, live.router]
    if api.ingest_enabled:
        routers.insert(0, ingest.router)
    _add_middleware(app, ctx, routers)
    install_error_handlers(app, ctx.metrics)
    # with `api.protect_reads`, /api/* needs the same bearer token as the writes
    protected = api.protect_reads and ctx.token is not None
    for router in routers:
        reads = router in (market.router, history.router) and protected
        app.include_router(router, dependencies=[Depends(authorize)] if reads else None)
    dashboard.mount_dashboard(app, api.web_dist)
    install_openapi(app)
    return app
