"""The FastAPI application: ingest, WebSocket fan-out, read API, metrics, the dashboard."""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request, WebSocket
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.routing import Match
from starlette.types import Scope

from cryptopulse.api.admission import Admission
from cryptopulse.api.feed import MarketFeed
from cryptopulse.api.hub import CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER, Hub
from cryptopulse.api.kafka_feed import KafkaFeed
from cryptopulse.api.limits import Limits, RequestLimit, server_limits
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.security import HOST_REFUSED, SecurityMiddleware
from cryptopulse.api.store import MarketStore
from cryptopulse.api.transport import channel_for
from cryptopulse.config import Settings
from cryptopulse.schema import (
    COIN_PATTERN,
    DEFER_CONSISTENCY,
    IngestRequest,
    IngestResponse,
    SnapshotMessage,
    SourceStatus,
    WindowAggregate,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_HISTORY_LIMIT = 100_000
_ingest_adapter: TypeAdapter[IngestRequest] = TypeAdapter(IngestRequest)
_bearer = HTTPBearer(auto_error=False, description="The token in settings `api.token`.")

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


class ApiRejection(Exception):
    """A request refused with a status, a machine-readable reason and a human-readable detail."""

    def __init__(
        self, status: int, reason: str, detail: Any, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers


class SourceInfo(BaseModel):
    source: str
    status: SourceStatus | None
    coins: int
    newest_window_end: str | None


class Sources(BaseModel):
    default: str | None
    sources: list[SourceInfo]


SourceParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=40,
        pattern=COIN_PATTERN,
        description="Which source's data (default: the running source).",
    ),
]


class Health(BaseModel):
    status: str
    clients: int
    coins: int
    version: int
    ingest: bool
    consumer: dict[str, Any] | None


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
    )


def _records(records: list[WindowAggregate]) -> Response:
    return _json([r.model_dump() for r in records])


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)[:20]
    ]


def _integral_float(error: Any) -> bool:
    value = error.get("input")
    return bool(error["type"] == "int_type" and isinstance(value, float) and value.is_integer())


def _endpoint(request: Request) -> str:
    """The route's path template (bounded label values), or "other" for unknown paths."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """A WebSocket from a page is accepted only from the allow-list (`api.origins`): no "same as
    Host" shortcut, which a rebound DNS name would satisfy. Clients that are not browsers send no
    Origin and are accepted.
    """
    if origin is None or "*" in allowed:
        return True
    return origin.strip().lower().rstrip("/") in {o.lower().rstrip("/") for o in allowed}


def create_app(settings: Settings, limits: Limits | None = None) -> FastAPI:
    """A new, independent API app (own store, hub and metrics registry); `limits` default to
    the settings' fitted to this process's open-files limit."""
    api = settings.api
    limits = limits or server_limits(api)
    metrics = ApiMetrics()
    store = MarketStore(
        api.history_per_coin, api.max_coins, timedelta(seconds=api.coin_idle_seconds)
    )
    metrics.series.set_function(lambda: store.series_count)
    hub = Hub(
        metrics=metrics,
        send_timeout=api.send_timeout,
        queue_size=api.client_queue_size,
        max_clients=limits.clients,
        max_per_address=api.max_clients_per_address,
    )
    admission = Admission.from_settings(settings)
    feed = MarketFeed(
        store, hub, metrics, api.snapshot_history, admission, api.snapshot_max_records
    )
    consumer: KafkaFeed | None = None
    if api.consume_windows:
        consumer = KafkaFeed(
            bootstrap=settings.kafka.bootstrap,
            security=settings.kafka.security,
            topic=settings.kafka.topic_windows,
            on_records=feed.ingest,
            admission=admission,
            status_topic=settings.kafka.topic_status,
            on_statuses=feed.statuses,
            metrics=metrics,
            # as much as the store keeps: a restarted server shows the same history
            replay_seconds=api.history_per_coin * settings.spark.window_seconds,
            replay_records=api.windows_replay,
        )
    token = api.token.get_secret_value() if api.token is not None else None
    origins = api.origins

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        if consumer is not None:
            consumer.start(asyncio.get_running_loop())
        log.info(
            "API ready: ingest %s, Kafka %s",
            "on" if api.ingest_enabled else "off",
            " and ".join(consumer.topics) if consumer else "not consumed",
        )
        try:
            yield
        finally:
            if consumer is not None:
                await asyncio.to_thread(consumer.stop)
            await hub.stop()

    app = FastAPI(
        title="CryptoPulse API",
        version="1.0",
        description="Live crypto market windows: ingest, WebSocket fan-out, history and metrics.",
        lifespan=lifespan,
        # Off by default: FastAPI's pages load Swagger UI / ReDoc from a CDN. /openapi.json stays.
        docs_url="/docs" if api.docs else None,
        redoc_url="/redoc" if api.docs else None,
    )
    app.state.feed = feed
    app.state.consumer = consumer
    app.state.metrics = metrics
    app.state.limits = limits
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )

    def host_refused(scope: Scope) -> None:
        if scope["type"] == "websocket":
            metrics.refused.labels("host").inc()
            return
        endpoint = "other"
        for route in app.router.routes:
            if route.matches(scope)[0] == Match.FULL:
                endpoint = getattr(route, "path", "") or "other"
                break
        metrics.rejected.labels(endpoint, HOST_REFUSED).inc()

    app.add_middleware(
        RequestLimit,
        limit=limits.requests,
        on_busy=lambda scope: metrics.rejected.labels("other", "busy").inc(),
    )
    app.add_middleware(  # outermost: the Host is checked before CORS and routing
        SecurityMiddleware,
        allowed_hosts=api.hosts,
        on_refused=host_refused,
        docs_paths=frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"} if api.docs else ()),
    )

    @app.exception_handler(ApiRejection)
    async def _rejected(request: Request, exc: ApiRejection) -> Response:
        metrics.rejected.labels(_endpoint(request), exc.reason).inc()
        return JSONResponse(
            {"detail": exc.detail, "reason": exc.reason},
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code < 500:
            metrics.rejected.labels(_endpoint(request), f"http_{exc.status_code}").inc()
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_params(request: Request, exc: RequestValidationError) -> Response:
        metrics.rejected.labels(_endpoint(request), "invalid").inc()
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        return JSONResponse({"detail": detail, "reason": "invalid"}, status_code=422)

    def authorize(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if token is None:
            return
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), token.encode()
        ):
            raise ApiRejection(
                401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    async def json_body(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiRejection(
                415, "unsupported_media_type", "Content-Type must be application/json"
            )
        limit = api.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiRejection(413, "too_large", f"body larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiRejection(413, "too_large", f"body larger than {limit} bytes")
        if not body.strip():
            raise ApiRejection(400, "empty", "empty body; expected JSON")
        return bytes(body)

    def parse(adapter: TypeAdapter[T], body: bytes, context: dict[str, Any] | None = None) -> T:
        """Strict JSON validation: no "1.5" or `true` where a number belongs (JSON Schema types).

        JSON Schema counts 3.0 as an integer, so a document whose only fault is an integral
        float for an integer field is validated again in lax mode, which accepts exactly that.
        """
        try:
            return adapter.validate_json(body, strict=True, context=context)
        except ValidationError as exc:
            detail = _validation_detail(exc)
            if any(e["type"] in ("json_invalid", "json_type") for e in detail):
                raise ApiRejection(400, "malformed_json", detail) from exc
            if not all(_integral_float(e) for e in exc.errors(include_url=False)):
                raise ApiRejection(422, "invalid", detail) from exc
        try:
            return adapter.validate_json(body, context=context)
        except ValidationError as exc:
            raise ApiRejection(422, "invalid", _validation_detail(exc)) from exc

    def schema_body(model: type[BaseModel]) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}

    errors: dict[int | str, dict[str, Any]] = {
        code: {"description": text}
        for code, text in (
            (400, "Malformed or empty JSON"),
            (401, "Missing or wrong bearer token"),
            (413, "Body too large"),
            (415, "Not JSON"),
            (422, "JSON that does not match the contract"),
        )
    }

    if api.ingest_enabled:

        @app.post(
            "/ingest",
            response_model=IngestResponse,
            responses=errors,
            openapi_extra=schema_body(IngestRequest),
            dependencies=[Depends(authorize)],
            tags=["ingest"],
        )
        async def ingest(request: Request) -> Response:
            """Store a batch of window aggregates and broadcast it (without waiting for clients).

            A body that does not match the contract is refused whole (4xx). Within a valid
            body, each record that makes no sense, has the wrong length or starts too far in
            the future is rejected with its reason and the others are stored: the answer is
            200 with the counts, even when every record was rejected.
            """
            started = time.perf_counter()
            batch = parse(
                _ingest_adapter, await json_body(request), context={DEFER_CONSISTENCY: True}
            )
            verdict = feed.admit(batch.data, "http", datetime.now(UTC))
            metrics.ingest_seconds.observe(time.perf_counter() - started)
            return _json(
                {
                    "received": len(batch.data),
                    "stored": len(batch.data) - verdict.rejected,
                    "rejected": verdict.rejected,
                    "reasons": dict(verdict.reasons),
                }
            )

    # With `api.protect_reads`, /api/* needs the same bearer token as the writes.
    reads: list[Any] = [Depends(authorize)] if api.protect_reads and token else []

    def ws_authorized(websocket: WebSocket) -> bool:
        """A browser cannot set Authorization on a WebSocket, and a `?token=` query would be
        written to access logs: the token travels as a subprotocol `token.<TOKEN>`."""
        if not api.protect_reads or token is None:
            return True
        offered = websocket.scope.get("subprotocols") or []
        expected = f"token.{token}".encode()
        return any(secrets.compare_digest(str(p).encode(), expected) for p in offered)

    def chosen(source: str | None) -> str | None:
        return source or store.default_source()

    @app.get(
        "/api/coins", response_model=list[WindowAggregate], tags=["market"], dependencies=reads
    )
    async def coins(source: SourceParam = None) -> Response:
        """The latest window of every coin of one source (default: the running source)."""
        name = chosen(source)
        return _records(store.latest(name) if name else [])

    @app.get("/api/sources", response_model=Sources, tags=["market"], dependencies=reads)
    async def sources() -> Response:
        """Every source with data or a status, and which one is shown by default."""
        infos = []
        for name in store.sources:
            status = store.statuses.get(name)
            end = store.newest_end(name)
            infos.append(
                SourceInfo(
                    source=name,
                    status=status,
                    coins=len(store.coins(name)),
                    newest_window_end=end.isoformat().replace("+00:00", "Z") if end else None,
                )
            )
        body = Sources(default=store.default_source(), sources=infos)
        return _json(body.model_dump(mode="json"))

    @app.get(
        "/api/history/{coin}",
        response_model=list[WindowAggregate],
        responses={404: {"description": "No data for this coin"}},
        tags=["market"],
        dependencies=reads,
    )
    async def history(
        coin: Annotated[str, Path(min_length=1, max_length=100, pattern=COIN_PATTERN)],
        limit: Annotated[int | None, Query(ge=1, le=MAX_HISTORY_LIMIT)] = None,
        source: SourceParam = None,
    ) -> Response:
        """The coin's recent windows from one source, oldest first (bounded per coin)."""
        name = chosen(source)
        records = store.history(name, coin, limit) if name else None
        if records is None:
            raise HTTPException(404, f"no data for coin {coin!r} from source {name!r}")
        return _records(records)

    @app.get("/api/snapshot", response_model=SnapshotMessage, tags=["market"], dependencies=reads)
    async def snapshot() -> Response:
        """What a new WebSocket client gets first."""
        messages, _ = feed.welcome()
        return Response(messages[0].payload, media_type="application/json")

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Response:
        consumer_state = None
        if consumer is not None:
            consumer_state = {
                "topic": consumer.topic,
                "group": consumer.group_id,
                "running": consumer.running,
                "assigned": consumer.assigned.is_set(),
                "last_error": consumer.last_error,
            }
        healthy = hub.running and (consumer is None or consumer.running)
        body = Health(
            status="ok" if healthy else "unhealthy",
            clients=len(hub),
            coins=len(store.coins()),
            version=store.version,
            ingest=api.ingest_enabled,
            consumer=consumer_state,
        )
        return _json(body.model_dump(), 200 if healthy else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        if not origin_allowed(websocket.headers.get("origin"), origins):
            metrics.refused.labels("origin").inc()
            await websocket.close(CLOSE_POLICY_VIOLATION, "origin not allowed")
            return
        subprotocols = websocket.scope.get("subprotocols") or []
        subprotocol = "cryptopulse" if "cryptopulse" in subprotocols else None
        if not ws_authorized(websocket):
            metrics.refused.labels("unauthorized").inc()
            # accepted first, so a browser sees why (a refused handshake shows it only 1006)
            await websocket.accept(subprotocol)
            await websocket.close(CLOSE_POLICY_VIOLATION, "missing or wrong token")
            return
        address = websocket.client.host if websocket.client else ""
        refused = hub.admit(address)
        if refused is not None:
            metrics.refused.labels(refused).inc()
            await websocket.accept(subprotocol)
            reason = (
                f"server full ({hub.max_clients} clients)"
                if refused == "full"
                else f"too many connections from your address ({api.max_clients_per_address})"
            )
            await websocket.close(CLOSE_TRY_AGAIN_LATER, reason)
            return
        try:
            await websocket.accept(subprotocol)
            welcome, version = feed.welcome()
            client = hub.register(channel_for(websocket), welcome, version)
            try:
                while True:  # clients have nothing to say; reading notices when they leave
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
            finally:
                hub.unregister(client)
        finally:
            hub.release(address)

    dist = api.web_dist
    if (dist / "index.html").is_file():
        app.mount("/", StaticFiles(directory=dist, html=True), name="web")
    else:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        async def index() -> HTMLResponse:
            return HTMLResponse(_NOT_BUILT.format(dist=html.escape(str(dist))))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (IngestRequest,):
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
