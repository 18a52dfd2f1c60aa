"""GraphQL fields -> per-request loaders -> connectors (no SQL and no policy calls here)."""

from __future__ import annotations

from strawberry.types import Info

from resolvers.context import RequestContext, Runtime
from resolvers.errors import coded_error
from resolvers.loaders import check_coordinate, load_entity, load_one, load_related, search_page
from resolvers.pagination import Connection, Edge, PageInfo, check_first, connection


def context_of(info: Info) -> RequestContext:
    """The request context; executing without one is a programming error, so it denies."""
    ctx = info.context
    if not isinstance(ctx, RequestContext):
        raise coded_error("FORBIDDEN", "No request context: every read needs a policy decision.")
    return ctx


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
    "load_entity",
    "load_one",
    "load_related",
    "search_page",
]
