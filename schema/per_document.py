"""Results computed once per parsed document, keyed by the document object itself (or one of its
nodes, such as the operation an executor runs: as stable, and as cheap to hash).

The parser cache hands out one ``DocumentNode`` per query text, so the document's identity is a
key that costs nothing to hash. graphql-core's AST nodes hash by value, recursively: strawberry's
``ValidationCache`` (an ``lru_cache`` over the document) re-hashed the whole tree on every request,
about 1% of the dossier's CPU. Each entry holds the schema and the document themselves, and a hit
requires both to be the very same objects, so a recycled ``id()`` can never match.

Nothing is kept for a document parsed from a text longer than :data:`CACHED_QUERY_CHARS`: the
parse caches (``schema.gate``, ``edge.graphql_http``) parse such a text anew for every request, so
its entry could never be hit again, and would keep the text alive through the nodes' locations
(up to the 1 MB body limit each, in caches of thousands of entries).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from graphql import GraphQLSchema, Node

V = TypeVar("V")

#: Query texts up to this length are parsed once and their documents shared between requests;
#: longer ones are parsed on every request, and nothing is cached per document for them.
CACHED_QUERY_CHARS = 20_000


class PerDocument(Generic[V]):
    """A bounded LRU of values per (schema, document, ``extra``); safe to share between threads
    (apps may run on several threads' event loops in one process)."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[int, int, Hashable], tuple[GraphQLSchema, Node, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, schema: GraphQLSchema, document: Node, extra: Hashable, compute: Callable[[], V]) -> V:
        """The value for this schema, document and ``extra``; ``compute()`` on a miss (outside the
        lock: two threads may both compute it, and either result is kept)."""
        loc = document.loc
        if loc is not None and len(loc.source.body) > CACHED_QUERY_CHARS:
            return compute()  # a document no request will bring again (see the module docstring)
        key = (id(schema), id(document), extra)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is schema and entry[1] is document:
                self._entries.move_to_end(key)
                return entry[2]
        value = compute()
        with self._lock:
            self._entries[key] = (schema, document, value)
            if len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["CACHED_QUERY_CHARS", "PerDocument"]
