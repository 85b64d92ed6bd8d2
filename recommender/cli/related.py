"""``recommender related``: the related box of one indexed article, as text or JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from ..options import RelatedOptions
from .common import IndexDirOpt, JsonOpt, run, settings_from

__all__ = ["related", "related_options"]

_FIELDS = RelatedOptions.model_fields
#: How click names each option in "Invalid value for ..." (the flags declared below).
_HINTS = {"k": "'-k' / '--k'"}


def _help(name: str, extra: str = "") -> str:
    return (_FIELDS[name].description or "") + extra


def related_options(**flags: Any) -> RelatedOptions:
    """The flags as :class:`RelatedOptions` (the API's options, with the same limits and messages); a bad value is a
    usage error naming the flag."""
    from pydantic import ValidationError

    given = {name: value for name, value in flags.items() if value not in (None, [], ())}
    try:
        return RelatedOptions(**given)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = str(error["loc"][0])
        message = str(error["msg"]).removeprefix("Value error, ")
        hint = _HINTS.get(name, f"'--{name.replace('_', '-')}'")
        raise typer.BadParameter(message, param_hint=hint) from None


def related(
    article_id: Annotated[
        Optional[str],
        typer.Argument(metavar="ID", help="Id of an indexed article (or give --url).", show_default=False),
    ] = None,
    url: Annotated[
        Optional[str], typer.Option(metavar="URL", help="The article's page URL instead of its id (any variant of it).")
    ] = None,
    index_dir: IndexDirOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", metavar="N", help=_help("k"))] = 6,
    section: Annotated[
        Optional[list[str]], typer.Option(metavar="NAME", help="Only these sections (repeatable).")
    ] = None,
    exclude_section: Annotated[
        Optional[list[str]], typer.Option(metavar="NAME", help="Never these sections (repeatable).")
    ] = None,
    tag: Annotated[
        Optional[list[str]], typer.Option(metavar="TAG", help="Only articles with one of these tags (repeatable).")
    ] = None,
    since: Annotated[Optional[str], typer.Option(metavar="DATE", help=_help("since"))] = None,
    until: Annotated[Optional[str], typer.Option(metavar="DATE", help=_help("until"))] = None,
    freshness: Annotated[Optional[float], typer.Option(metavar="DAYS", help=_help("freshness"))] = None,
    diversity: Annotated[
        Optional[float], typer.Option(metavar="X", help=_help("diversity", " Unset: the configuration's (0)."))
    ] = None,
    language: Annotated[Optional[str], typer.Option(metavar="CODE", help=_help("language"))] = None,
    window: Annotated[Optional[float], typer.Option(metavar="DAYS", help=_help("window"))] = None,
    exclude: Annotated[
        Optional[list[str]],
        typer.Option(metavar="ID,...", help="Never these article ids (comma-separated, repeatable)."),
    ] = None,
    min_relevance: Annotated[Optional[float], typer.Option(metavar="P", help=_help("min_relevance"))] = None,
    fill: Annotated[Optional[str], typer.Option(metavar="POLICY", help=_help("fill"))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the related articles of one indexed article, by id or by URL.

    Example: recommender related demo-006 --index-dir ./demo-index -k 6 --window 30 --exclude demo-003 --json
    """
    if (article_id is None) == (url is None):
        raise typer.BadParameter("give an article ID or --url URL (one of them)", param_hint="'ID' / '--url'")
    options = related_options(
        k=k, section=section, exclude_section=exclude_section, tag=tag, since=since, until=until,
        freshness=freshness, diversity=diversity, language=language, window=window, min_relevance=min_relevance, fill=fill,
        exclude=[part for value in exclude or () for part in value.split(",")],
    )  # fmt: skip
    settings = settings_from(index_dir=index_dir)

    def go():
        from ..engine import Recommender

        rec = Recommender.open(
            settings.index_dir,
            config=settings.ranking_config(),
            verify_digests=settings.verify_digests,
            relevance=settings.relevance(),
        )
        source_id = rec.resolve_url(url) if url is not None else article_id
        return rec, source_id, rec.related(source_id, options.k, filters=options.filters(), **options.overrides())

    rec, article_id, items = run(go)
    if as_json:
        from ..serving.payloads import related_payload

        typer.echo(json.dumps(related_payload(article_id, rec.version, items), indent=2, ensure_ascii=False))
        return
    source = rec.article(article_id)
    typer.echo(f"Related to {source.id}: {source.title}")
    for n, item in enumerate(items, 1):
        a = item.article
        date = a.published_at.date().isoformat() if a.published_at else "-"
        relevance = "  -  " if item.relevance is None else f"{item.relevance:.2f}"
        mark = "  (fallback)" if item.fallback else ""
        typer.echo(f"{n:2}. {item.score:.3f}  p={relevance}  {a.id}  [{a.section or '-'} {date}]  {a.title}{mark}")
    below = getattr(items, "below_floor", 0)
    if below:
        typer.echo(f"({below} more below the relevance floor)")
