"""How the API refuses: one exception with a status, a machine-readable reason (a bounded metric
label) and a detail, and the handlers that answer and count every refusal."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response

from cryptopulse.api.metrics import ApiMetrics


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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text}
    for code, text in (
        (400, "Malformed or empty JSON"),
        (401, "Missing or wrong bearer token"),
        (413, "Body too large"),
        (415, "Not JSON"),
        (422, "JSON that does not match the contract"),
    )
}
"""The refusals of a JSON-body endpoint, for the OpenAPI document."""


def endpoint_of(request: Request) -> str:
    """The route's path template (bounded label values), or "other" for unknown paths."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


def install_error_handlers(app: FastAPI, metrics: ApiMetrics) -> None:
    """Answer refusals as `{"detail", "reason"}` JSON and count each by endpoint and reason."""

    @app.exception_handler(ApiRejection)
    async def _rejected(request: Request, exc: ApiRejection) -> Response:
        metrics.rejected.labels(endpoint_of(request), exc.reason).inc()
        return JSONResponse(
            {"detail": exc.detail, "reason": exc.reason},
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code < 500:
            metrics.rejected.labels(endpoint_of(request), f"http_{exc.status_code}").inc()
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_params(request: Request, exc: RequestValidationError) -> Response:
        metrics.rejected.labels(endpoint_of(request), "invalid").inc()
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        return JSONResponse({"detail": detail, "reason": "invalid"}, status_code=422)
