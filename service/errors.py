"""Every error of the HTTP API, mapped in one place to ``{"error": {"code", "message"}}`` with the right status.

Bad input is always a 4xx naming what was wrong; only a bug in this code can produce a 500 (logged with its
traceback, answered without one).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from index import StoreError
from recommender.errors import (
    ArticleNotFoundError,
    ConfigurationError,
    DamagedIndexError,
    FieldError,
    LiveWriteError,
    NotReadyError,
    RecommenderError,
    ReloadFailedError,
    StorageFullError,
)

from .routing import allowed_methods

__all__ = ["ApiError", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "not_ready",
    507: "insufficient_storage",
}


class ApiError(Exception):
    """Raised by routes and dependencies for errors that are not domain errors (auth, id mismatch...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers


def error_response(
    status: int, code: str, message: str, *, fields: list[str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return Response(orjson.dumps({"error": error}), status_code=status, media_type="application/json", headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header") and len(parts) > 1:
        return ".".join(parts[1:]) if parts[0] != "body" or len(parts) > 1 else "body"
    return ".".join(parts) or "request"


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}


def _not_an_object(value: Any, content_type: str | None) -> str:
    """Why a body that should be a JSON object is not one."""
    if isinstance(value, (bytes, bytearray)):
        # FastAPI parses JSON only for Content-Type application/json (or */*+json); anything else arrives as bytes.
        got = f"Content-Type: {content_type[:100]}" if content_type else "no Content-Type"
        return f"expected a JSON object with Content-Type: application/json, got {got}"
    kind = "null" if value is None else _JSON_KINDS.get(type(value), "something else")
    return f"expected a JSON object, got {kind}"


def _validation_error(exc: RequestValidationError, content_type: str | None = None) -> Response:
    errors = exc.errors()
    fields, messages = [], []
    for err in errors[:10]:
        loc = tuple(err.get("loc", ()))
        kind = err.get("type")
        if kind == "json_invalid":
            # loc is ("body", offset of the error): the field is the body itself.
            ctx = err.get("ctx") or {}
            where = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
            detail = f" ({ctx['error']}{where})" if ctx.get("error") else ""
            name, msg, field = "body", f"not valid JSON{detail}", "body"
        elif loc == ("body",) and kind in ("model_attributes_type", "model_type", "dict_type"):
            name, msg, field = "body", _not_an_object(err.get("input"), content_type), "body"
        else:
            name = _field_name(loc)
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            field = ".".join(str(p) for p in loc) or "request"
        fields.append(field)
        messages.append(f"{name}: {msg}")
    return error_response(422, "invalid_request", "; ".join(messages) or "invalid request", fields=fields)


def _domain_error(exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)
    if isinstance(exc, ArticleNotFoundError):
        return error_response(404, exc.code, str(exc))
    if isinstance(exc, FieldError):
        return error_response(422, "invalid_request", str(exc), fields=[exc.field])
    if isinstance(exc, (NotReadyError, ReloadFailedError)):
        return error_response(503, exc.code, str(exc))
    if isinstance(exc, DamagedIndexError):
        logger.error("%s", exc)
        return error_response(503, exc.code, str(exc))
    if isinstance(exc, LiveWriteError):
        # The change could not be made durable, so it was not made: 507 for a full disk (the operator must free
        # space), 503 for anything else (e.g. the index directory is gone). Reads keep working either way.
        logger.error("live change refused: %s", exc)
        return error_response(507 if isinstance(exc, StorageFullError) else 503, exc.code, str(exc))
    if isinstance(exc, ConfigurationError):
        # Request options are validated before they reach the engine, so this is the server's configuration
        # (e.g. the model is missing): the request was fine, the service cannot serve it.
        logger.error("configuration error: %s", exc)
        return error_response(503, exc.code, str(exc))
    if isinstance(exc, StoreError):
        logger.error("index error: %s", exc)
        return error_response(503, getattr(exc, "code", "index_error"), str(exc))
    if isinstance(exc, RecommenderError):
        return error_response(422, exc.code, str(exc))
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; the request was logged")


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        return _validation_error(exc, request.headers.get("content-type"))

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        if status == 400:
            # FastAPI's only 400: a body it could not decode (bad UTF-8, broken form): an invalid body, so 422.
            return error_response(422, "invalid_request", f"body: could not be parsed ({exc.detail})", fields=["body"])
        if status == 404 and isinstance(exc.detail, str) and exc.detail == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        else:
            message = str(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 405:
            headers["Allow"] = allowed_methods(request.scope)
        return error_response(status, _CODES.get(status, f"http_{status}"), message, headers=headers or None)

    async def on_domain(request: Request, exc: Exception) -> Response:
        return _domain_error(exc)

    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, on_domain)
    app.add_exception_handler(RecommenderError, on_domain)
    app.add_exception_handler(StoreError, on_domain)
    app.add_exception_handler(Exception, on_domain)
