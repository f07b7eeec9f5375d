"""Validating a JSON request body against the contract (pure: bytes in, model or refusal out)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from cryptopulse.api.errors import ApiRejection

T = TypeVar("T")


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)[:20]
    ]


def _integral_float(error: Any) -> bool:
    value = error.get("input")
    return bool(error["type"] == "int_type" and isinstance(value, float) and value.is_integer())


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
