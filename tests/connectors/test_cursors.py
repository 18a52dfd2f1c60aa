"""Cursors are encoded only when read: a connection whose edges are not selected encodes one
cursor (``pageInfo.endCursor``), not one per record."""

from __future__ import annotations

from connectors.base import Page
from connectors.sql import Cursors, decode_cursor, encode_cursor
from resolvers.pagination import connection


def _counted(items: list[tuple[str, int]]) -> tuple[Cursors[tuple[str, int]], list[int]]:
    reads: list[int] = []

    def parts(item: tuple[str, int]) -> tuple[object, ...]:
        reads.append(item[1])
        return item

    return Cursors(items, parts), reads


def test_cursors_read_as_the_list_they_stand_for() -> None:
    items = [("2025-01-0" + str(i), i) for i in range(1, 6)]
    cursors, reads = _counted(items)
    assert reads == [] and len(cursors) == 5
    expected = [encode_cursor(*item) for item in items]
    assert cursors[0] == expected[0] and cursors[-1] == expected[-1] and cursors[1:3] == expected[1:3]
    assert list(cursors) == expected and cursors == expected and cursors != expected[:4]
    assert [decode_cursor(c, 2) for c in cursors] == [[d, str(i)] for d, i in items]
    assert Cursors([], lambda item: item) == []


def test_a_connection_encodes_edges_only_when_they_are_read() -> None:
    items = [("a", 1), ("b", 2), ("c", 3)]
    cursors, reads = _counted(items)
    nodes = [object(), object(), object()]
    made = connection(nodes, Page(records=[{}, {}, {}], cursors=cursors, has_next_page=True))
    assert made.page_info.end_cursor == encode_cursor("c", 3) and reads == [3]
    assert made.nodes == nodes
    edges = made.edge_list()
    assert [e.cursor for e in edges] == [encode_cursor(*i) for i in items] and [e.node for e in edges] == nodes
