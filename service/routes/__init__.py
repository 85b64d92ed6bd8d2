"""The routes of API v1, one module per audience: related (the site), events (readers' browsers), articles
(pickers and the page), admin (the CMS and operators, behind a token), editorial (the newsroom's pins and blocks,
behind the token), ops (probes, metrics, status, the page), widget (the drop-in script)."""

from fastapi import APIRouter

from .. import convertors  # noqa: F401 - registers the id convertors before any route is declared
from . import admin, articles, editorial, events, ops, related, widget

router = APIRouter()
for module in (related, events, articles, admin, editorial, ops, widget):
    router.include_router(module.router)

__all__ = ["router"]
