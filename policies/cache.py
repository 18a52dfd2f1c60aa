"""A per-process decision cache in front of any ``PolicyEngine``.

Keyed by everything a decision depends on: the whole input document (principal's claims,
purpose, case reference, resource and its fields, operation coordinates, arguments when the
policies can read them, the day) except the per-request ``context.request_id`` and
``context.now_ns``, plus the active policy revision — so a reload drops every entry, and no
entry can serve one principal's decision to another. Entries live ``ttl_s`` seconds, which bounds
how stale a time-based rule can be; engine failures (``POLICY_UNAVAILABLE``) are never cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

import orjson

from policies.decision import Decision
from policies.engine import EngineStatus, PolicyEngine

#: Context keys that change on every request and that policies must not need finer than ``ttl_s``.
VOLATILE = ("request_id", "now_ns")


def cache_key(input_doc: Mapping[str, object], revision: str, *, with_args: bool = True) -> bytes:
    """The canonical bytes a decision for ``input_doc`` under ``revision`` depends on.

    ``with_args=False`` leaves out ``operation.args``: only when the policies never read them.
    """
    context = input_doc.get("context")
    stable = dict(input_doc)
    if isinstance(context, Mapping):
        stable["context"] = {k: v for k, v in context.items() if k not in VOLATILE}
    operation = input_doc.get("operation")
    if not with_args and isinstance(operation, Mapping):
        stable["operation"] = {k: v for k, v in operation.items() if k != "args"}
    return revision.encode() + b"\0" + orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)


class CachingEngine:
    """Wraps an engine; see the module docstring for what the cache is keyed by."""

    def __init__(self, engine: PolicyEngine, *, ttl_s: float = 30.0, maxsize: int = 10_000) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.maxsize = maxsize
        self._entries: OrderedDict[bytes, tuple[float, Decision]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, input_doc: Mapping[str, object]) -> Decision | None:
        """The fresh cached decision for ``input_doc``, or ``None``; never calls the engine.

        A caller deciding many documents at once reads hits here without a task per decision
        (``schema.policy.decide_all``) and sends only the misses to ``decide``.
        """
        key = self._key(input_doc)
        return None if key is None else self._fresh(key[0])

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        key = self._key(input_doc)
        if key is None:
            return await self.engine.decide(input_doc)
        found = self._fresh(key[0])
        if found is not None:
            return found
        self.misses += 1
        asked = time.monotonic()  # the entry's life counts from the question, not the answer
        decision = await self.engine.decide(input_doc)
        cacheable = decision.allow or decision.code != "POLICY_UNAVAILABLE"
        if cacheable and self.engine.status().revision == key[1]:
            self._entries[key[0]] = (asked + self.ttl_s, decision)
            self._entries.move_to_end(key[0])
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return decision

    def _key(self, input_doc: Mapping[str, object]) -> tuple[bytes, str] | None:
        """The cache key and the revision it was made under; ``None``: decide uncached."""
        # The revision is read before and after everything else that depends on the bundle: a
        # reload landing in between (it swaps bundles from a worker thread) could otherwise pair
        # one bundle's "never reads args" with the next one's revision, or file a decision the
        # new bundle made under the old revision's key. Either way the decision goes uncached.
        revision = self.engine.status().revision
        try:
            # Arguments (a USCC, a page cursor) make every lookup unique; leave them out of the key
            # only when the engine says its policies cannot read them.
            with_args = getattr(self.engine, "reads_operation_args", True) is not False
            key = cache_key(input_doc, revision, with_args=with_args)
        except (TypeError, orjson.JSONEncodeError):
            return None  # not JSON: the engine refuses it (deny)
        if self.engine.status().revision != revision:
            return None
        return key, revision

    def _fresh(self, key: bytes) -> Decision | None:
        found = self._entries.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1]

    def status(self) -> EngineStatus:
        return self.engine.status()

    async def aclose(self) -> None:
        self._entries.clear()
        await self.engine.aclose()


__all__ = ["VOLATILE", "CachingEngine", "cache_key"]
