"""GraphQL fields -> per-request loaders -> connectors (no SQL and no policy calls here)."""

from __future__ import annotations

from strawberry.types import Info

from resolvers.context import RequestContext, Runtime
from resolvers.errors import coded_error
from resolvers.loaders import (
    check_coordinate,
    first,
    load_entities,
    load_entity,
    load_many,
    load_one,
    load_related,
    load_related_many,
    search_page,
)
from resolvers.pagination import Connection, Edge, PageInfo, check_first, connection


def context_of(info: Info) -> RequestContext:
    """The request context; executing without one is a programming error, so it denies."""
    return request_context(info.context)


def request_context(value: object) -> RequestContext:
    """``value`` as the request context (a batch resolver's first argument); anything else denies."""
    if not isinstance(value, RequestContext):
        raise coded_error("FORBIDDEN", "No request context: every read needs a policy decision.")
    return value


__all__ = [
    "Connection",
    "Edge",
    "PageInfo",
    "RequestContext",
    "Runtime",
    "check_coordinate",
    "check_first",
    "coded_error",
    "connection",
    "context_of",
    "first",
    "load_entities",
    "load_entity",
    "load_many",
    "load_one",
    "load_related",
    "load_related_many",
    "request_context",
    "search_page",
]
