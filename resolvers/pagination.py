"""Relay-style cursor connections (``edges { cursor node }``, ``nodes``, ``pageInfo``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import strawberry

from connectors.base import Page

T = TypeVar("T")

#: The page size when a client does not pass ``first``.
DEFAULT_PAGE_SIZE = 50


@strawberry.type(description="分页信息 (page info, Relay cursor connections)")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="连接中的一条边 (an edge of a connection)")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="分页结果 (a page of results with cursors)")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(resolver=lambda root: root.edge_list())
    nodes: list[T]
    page_info: PageInfo
    cursors: strawberry.Private[Sequence[str]]

    def edge_list(self) -> list[Edge[T]]:
        # Built only when selected: most lists select nodes, and a cursor costs its encoding.
        return [Edge(cursor=c, node=o) for c, o in zip(self.cursors, self.nodes, strict=True)]


def connection(objects: Sequence[T], page: Page) -> Connection[T]:
    """Wrap materialised records and the connector's page into a Relay connection."""
    if len(page.cursors) != len(objects):
        raise ValueError(f"a page of {len(objects)} records has {len(page.cursors)} cursors")
    return Connection(
        nodes=list(objects),
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        cursors=page.cursors,
    )


def check_first(first: int | None, maximum: int) -> int:
    """Validate ``first``: 1..maximum, default ``DEFAULT_PAGE_SIZE``; raises BAD_USER_INPUT."""
    from resolvers.errors import coded_error

    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if first < 1 or first > maximum:
        raise coded_error("BAD_USER_INPUT", f"first must be between 1 and {maximum}, got {first}")
    return first


__all__ = ["DEFAULT_PAGE_SIZE", "Connection", "Edge", "PageInfo", "check_first", "connection"]
