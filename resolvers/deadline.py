"""Await a connector call under a timeout, arming the timer only if the call suspends.

Most reads a gateway makes finish without suspending: an inline SQLite read runs on the event
loop's thread, bounded by its own budget (``connectors.sql.Reader``). ``asyncio.timeout`` costs a
timer handle pushed onto the loop's heap and cancelled again, about 4 µs a call and 3% of the
dossier's CPU. :func:`within` first runs the coroutine up to its first suspension; only if it
suspends does it continue under ``asyncio.timeout_at`` with the deadline taken before it started,
so the time the call may take is the same either way. A step that never suspends cannot be
interrupted by ``asyncio.timeout`` either: nothing is lost.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await awaitable`` under a timeout of ``seconds`` (``TimeoutError`` when it expires)."""
    deadline = asyncio.get_running_loop().time() + seconds
    if not inspect.iscoroutine(awaitable):  # native only: asyncio's check also passes generators
        async with asyncio.timeout_at(deadline):
            return await awaitable
    try:
        first = awaitable.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    async with asyncio.timeout_at(deadline):
        return await _Resumed(awaitable, first)


class _Resumed(Awaitable[T]):
    """A coroutine that has already yielded ``first`` to the task, continued as ``await`` would:
    what the task throws in (a cancellation) goes to the coroutine; once the task resumes it
    normally, ``yield from`` delegates the rest (asyncio sends only ``None``)."""

    __slots__ = ("_coroutine", "_first")

    def __init__(self, coroutine: Coroutine[Any, Any, T], first: Any) -> None:
        self._coroutine = coroutine
        self._first = first

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, value = self._coroutine, self._first
        while True:
            try:
                yield value
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # thrown in by the task (a cancellation): the coroutine handles it
                try:
                    value = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                continue
            return (yield from coroutine.__await__())


__all__ = ["within"]
