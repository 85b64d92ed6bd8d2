"""Editorial control (admin, bearer token): pins, blocks of articles, sections and pairs. Each change is logged and
fsynced before the answer, applied at once, and folded into the next build (like article writes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from recommender.article import ID_PATTERN
from recommender.editorial import MAX_PINS, EditorialChange
from recommender.errors import ArticleNotFoundError
from recommender.serving import LiveIndex

from .. import convertors  # noqa: F401 - the id convertors, before the routes are declared
from ..deps import LiveDep, require_admin
from ..http import json_response
from ..schemas import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1/editorial", tags=["editorial"], dependencies=[Depends(require_admin)])

AnyId = Annotated[str, PathParam(description="An article id (may contain slashes).")]
Section = Annotated[str, PathParam(max_length=200, description="A section name (any case).")]
PairId = Annotated[str, Query(max_length=256, pattern=ID_PATTERN, description="An article id of the pair.")]


class Pins(BaseModel):
    ids: list[Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]] = Field(
        max_length=MAX_PINS, description=f"Article ids shown first, in this order (at most {MAX_PINS})."
    )


class EditorialState(BaseModel):
    pins: dict[str, list[str]]
    blocks: dict[str, Any] = Field(description="articles, sections (lower case) and pairs")


class EditorialWritten(BaseModel):
    editorial: EditorialState
    wal_seq: int = Field(description="Change-log sequence number of this change (it is durable).")


def _written(live: LiveIndex, change: EditorialChange) -> Response:
    state = live.change_editorial(change)
    return json_response({"editorial": state.to_dict(), "wal_seq": live.snapshot.seq})


_WRITE = {"response_model": EditorialWritten, "responses": error_responses(401, 403, 404, 422, 503, 507)}


@router.get(
    "",
    response_model=EditorialState,
    summary="The editorial state served now",
    responses=error_responses(401, 403, 503),
)
def get_editorial(live: LiveDep) -> Response:
    return json_response(live.editorial().to_dict(), headers={"Cache-Control": "no-store"})


@router.put("/pins/{source_id:any_id}", summary="Pin articles for a source article (replaces its pins)", **_WRITE)
def put_pins(source_id: AnyId, body: Pins, live: LiveDep) -> Response:
    # An article is never in its own box: pinning it to itself is left out (not an error).
    ids = tuple(i for i in dict.fromkeys(body.ids) if i != source_id)
    return _written(live, EditorialChange("pins", (source_id,), ids))


@router.delete("/pins/{source_id:any_id}", summary="Remove a source article's pins", **_WRITE)
def delete_pins(source_id: AnyId, live: LiveDep) -> Response:
    if not live.editorial().pins_for(source_id):
        raise ArticleNotFoundError(source_id, what="no pins for article")
    return _written(live, EditorialChange("pins", (source_id,), ()))


@router.put("/blocks/articles/{article_id:any_id}", summary="Never recommend this article anywhere", **_WRITE)
def block_article(article_id: AnyId, live: LiveDep) -> Response:
    return _written(live, EditorialChange("article", (article_id,), True))


@router.delete("/blocks/articles/{article_id:any_id}", summary="Lift an article's block", **_WRITE)
def unblock_article(article_id: AnyId, live: LiveDep) -> Response:
    if article_id not in live.editorial().blocked_ids:
        raise ArticleNotFoundError(article_id, what="no block for article")
    return _written(live, EditorialChange("article", (article_id,), False))


@router.put("/blocks/sections/{section}", summary="Never recommend articles of this section", **_WRITE)
def block_section(section: Section, live: LiveDep) -> Response:
    return _written(live, EditorialChange("section", (section.strip().lower(),), True))


@router.delete("/blocks/sections/{section}", summary="Lift a section's block", **_WRITE)
def unblock_section(section: Section, live: LiveDep) -> Response:
    if section.strip().lower() not in live.editorial().blocked_sections:
        raise ArticleNotFoundError(section, what="no block for section")
    return _written(live, EditorialChange("section", (section.strip().lower(),), False))


@router.put("/blocks/pairs", summary="Never show these two articles together", **_WRITE)
def block_pair(a: PairId, b: PairId, live: LiveDep) -> Response:
    if a == b:  # an article is never shown with itself already: nothing to block, nothing logged
        return json_response({"editorial": live.editorial().to_dict(), "wal_seq": live.snapshot.seq})
    return _written(live, EditorialChange("pair", tuple(sorted((a, b))), True))


@router.delete("/blocks/pairs", summary="Lift a pair's block", **_WRITE)
def unblock_pair(a: PairId, b: PairId, live: LiveDep) -> Response:
    pair = tuple(sorted((a, b)))
    if pair not in live.editorial().blocked_pairs:
        raise ArticleNotFoundError(f"{a} + {b}", what="no block for pair")
    return _written(live, EditorialChange("pair", pair, False))
