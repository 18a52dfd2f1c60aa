"""An execution context that reference counting frees when its operation ends.

graphql-core 3.3's executor keeps ``async_helpers``, the helpers every resolver's ``info``
carries, as a tuple of its own bound methods: a reference cycle through the executor. Everything
the executor holds then waits for the cyclic collector (its collected fields, the request
context, the decisions and record plans, about 180 objects a dossier), and each young collection
walked the garbage of the last few dozen requests: 3 ms pauses, about 5% of the dossier's CPU.
Here the helpers refer to the executor weakly. A field error makes another cycle (graphql-core
keeps it among the executor's collected errors, and its traceback holds the executor's frames):
the gate (``schema.gate``) releases those tracebacks when the operation ends. The request
lifetime tests check both with the collector off.

A resolver runs inside a call or coroutine of its executor, so the executor is alive while a
resolver uses its helpers; work tracked through an ``info`` kept past that (a background task) is
still settled. Sub-executors (``@defer``, ``@stream``, subscription events) are shallow copies:
each gets helpers bound to itself, so a copy never depends on the original outliving it.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, Self

from graphql.pyutils import gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

#: Work tracked through helpers whose executor is gone (an ``info`` kept past its resolver): still
#: settled, and referenced until then.
_ORPHANED: set[asyncio.Future[Any]] = set()


def _helpers(executor: StrawberryGraphQLCoreExecutionContext) -> GraphQLResolveInfoHelpers:
    ref = weakref.ref(executor)

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        live = ref()
        return gather_with_cancel(*values) if live is None else live.gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        live = ref()
        if live is not None:
            live.track_async_work(values)
            return
        awaitables = [v for v in values if inspect.isawaitable(v)]
        if not awaitables:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop: they can never run; close them, as graphql-core does
            for awaitable in awaitables:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
            return
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _ORPHANED.add(future)
        future.add_done_callback(_ORPHANED.discard)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context whose resolver helpers do not keep it alive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _helpers(self)

    def __copy__(self) -> Self:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.async_helpers = _helpers(clone)
        return clone


__all__ = ["AcyclicExecutionContext"]
