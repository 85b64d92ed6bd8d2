"""For operators and the page: liveness and readiness probes, Prometheus metrics, the index status, the demo page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..deps import LiveDep
from ..errors import error_response
from ..http import json_response
from ..schemas import Health, IndexInfo, Readiness, error_responses

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


@router.get("/v1/index", response_model=IndexInfo, tags=["index"], summary="The served index version")
async def index_info(live: LiveDep) -> Response:
    return json_response(live.info(), headers={"Cache-Control": "no-store"})


@router.get("/healthz", response_model=Health, tags=["ops"], summary="200 while the process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["ops"],
    summary="200 only when an index is loaded",
    responses=error_responses(503),
)
async def readyz(live: LiveDep) -> Response:
    snap = live.current
    if snap is None:
        message = f"no index loaded: {live.reason}"
        return error_response(503, "not_ready", message, headers={"Cache-Control": "no-store"})
    # Still 200 when a newer version failed to load or the files are gone: this process answers correctly from
    # what it loaded, and taking it out of rotation would turn a bad build into an outage. load_error says why.
    return json_response(
        {
            "status": "ready",
            "version": snap.version,
            "published_version": live.directory.current(),
            "load_error": live.load_error,
            "model_state": live.model_state,
            "wal_errors": len(live.log.damage),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
