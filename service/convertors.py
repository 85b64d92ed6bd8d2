"""Path convertors for article ids; imported before any route is declared (Starlette compiles paths then)."""

from starlette.convertors import PathConvertor, register_url_convertor

__all__: list[str] = []


class _AnyIdConvertor(PathConvertor):
    """Like ``path`` (ids may contain slashes), and any character, newlines included: a strange id is then
    answered by the route (404/422 naming the id), never by "no route"."""

    regex = r"(?s:.*)"


class _ArticleIdConvertor(PathConvertor):
    """As above but never ending in ``/related``: such paths belong to the read-only related route alone,
    so PUT/DELETE there is a 405 rather than a write to an ambiguous id."""

    regex = r"(?s:(?!.*/related$).*)"


register_url_convertor("any_id", _AnyIdConvertor())
register_url_convertor("article_id", _ArticleIdConvertor())
