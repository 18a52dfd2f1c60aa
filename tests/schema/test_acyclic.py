"""The execution context's resolver helpers work, and refer to their executor only weakly."""

from __future__ import annotations

import asyncio
import copy
import inspect
import weakref
from typing import Any

from graphql import GraphQLField, GraphQLList, GraphQLObjectType, GraphQLSchema, GraphQLString, execute, parse

from schema.acyclic import AcyclicExecutionContext

SETTLED: list[str] = []


async def _value(text: str) -> str:
    await asyncio.sleep(0)
    return text


async def _side_effect(text: str) -> None:
    await asyncio.sleep(0)
    SETTLED.append(text)


async def _words(_root: object, info: Any) -> list[str]:
    info.async_helpers.track([_side_effect("tracked"), "not awaitable"])
    return list(await info.async_helpers.gather([_value("a"), _value("b")]))


SCHEMA = GraphQLSchema(GraphQLObjectType("Query", {"words": GraphQLField(GraphQLList(GraphQLString), resolve=_words)}))


async def test_resolvers_gather_and_track_through_the_helpers() -> None:
    SETTLED.clear()
    result = execute(SCHEMA, parse("{ words }"), executor_class=AcyclicExecutionContext)
    assert not isinstance(result, dict)
    outcome = await result  # type: ignore[misc]
    assert outcome.errors is None and outcome.data == {"words": ["a", "b"]}
    for _ in range(5):  # tracked work settles in the background
        await asyncio.sleep(0)
    assert SETTLED == ["tracked"]


def _built() -> AcyclicExecutionContext:
    executor = AcyclicExecutionContext.build(SCHEMA, parse("{ words }"))
    assert isinstance(executor, AcyclicExecutionContext)
    return executor


async def test_an_executor_is_freed_by_reference_counting() -> None:
    executor = _built()
    ref = weakref.ref(executor)
    helpers = executor.async_helpers
    del executor
    assert ref() is None  # no cycle: gone without a collection
    # Work tracked through helpers that outlived their executor is still settled.
    SETTLED.clear()
    helpers.track([_side_effect("late")])
    assert await helpers.gather([_value("x")]) == ["x"]
    for _ in range(5):
        await asyncio.sleep(0)
    assert SETTLED == ["late"]


async def test_a_sub_executor_has_helpers_of_its_own() -> None:
    original = _built()
    sub = copy.copy(original)
    assert sub.async_helpers is not original.async_helpers
    assert sub.background_futures is original.background_futures  # shared state stays shared
    del original
    futures = sub.background_futures
    sub.async_helpers.track([_side_effect("sub")])
    assert len(futures) == 1  # settled by the copy, in the shared set
    await asyncio.gather(*futures)
    assert "sub" in SETTLED


def test_work_tracked_without_a_running_loop_is_closed() -> None:
    helpers = _built().async_helpers  # the executor is gone at once
    work = _side_effect("never runs")
    helpers.track([work])
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED  # it could never run: no warning either
