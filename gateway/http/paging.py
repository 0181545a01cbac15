"""Reading the query string of a paged list (``?q=``/``?status=``, ``limit``, ``cursor``)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from msgspec import Meta

from gateway.http.bodies import convert

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: Page size of every list.
PageLimit = Annotated[int, Meta(ge=1, le=MAX_LIMIT)]

Query = TypeVar("Query")


def page_query(request: web.Request, query_type: type[Query], filters: tuple[str, ...]) -> Query:
    """The validated ``filters`` and ``limit`` of the request; 422 problems when unusable.

    An empty filter (``?q=``) counts as absent, as form-built URLs often send one; an empty
    ``limit`` is not a number and is refused.
    """
    query: dict[str, object] = {name: value for name in filters if (value := request.query.get(name))}
    if (limit := request.query.get("limit")) is not None:
        # Digits only: int() would also take " 5", "+5" and "1_0", which no client means to send.
        query["limit"] = int(limit) if limit.isascii() and limit.isdigit() and len(limit) <= 6 else limit
    return convert(query, query_type)
