"""The routes of API v1, one module per audience: related (the site), events (readers' browsers), articles
(pickers and the page), admin (the CMS and operators, behind a token), ops (probes, metrics, status, the page)."""

from fastapi import APIRouter

from .. import convertors  # noqa: F401 - registers the id convertors before any route is declared
from . import admin, articles, events, ops, related

router = APIRouter()
for module in (related, events, articles, admin, ops):
    router.include_router(module.router)

__all__ = ["router"]
