"""``within``: a timeout armed only when the call suspends, with the same deadline either way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from resolvers.deadline import within


@pytest.fixture
def armed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The deadlines of the timers ``within`` armed."""
    seen: list[float] = []
    original = asyncio.timeout_at

    def counting(when: float) -> asyncio.Timeout:
        seen.append(when)
        return original(when)

    monkeypatch.setattr(asyncio, "timeout_at", counting)  # as resolvers.deadline reads it
    yield seen


async def _at_once(value: str) -> str:
    return value


async def _after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


async def test_a_call_that_never_suspends_arms_no_timer(armed: list[float]) -> None:
    assert await within(_at_once("row"), 5.0) == "row"
    assert armed == []


async def test_a_call_that_suspends_finishes_under_the_timer(armed: list[float]) -> None:
    loop = asyncio.get_running_loop()
    before = loop.time()
    assert await within(_after(0.01, "late row"), 5.0) == "late row"
    assert len(armed) == 1 and before + 5.0 <= armed[0] <= loop.time() + 5.0


async def test_a_slow_call_times_out_and_is_cancelled() -> None:
    cleaned: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")
        return "never"

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(slow(), 0.05)
    assert time.monotonic() - start < 2
    assert cleaned == ["finally"]


async def test_time_before_the_first_suspension_counts_towards_the_deadline() -> None:
    async def busy_then_wait() -> str:
        time.sleep(0.3)  # noqa: ASYNC251 - an inline read holding the loop: no timer could interrupt it
        await asyncio.sleep(5)
        return "too late"

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(busy_then_wait(), 0.4)
    # 0.4 s from the start, not 0.4 s after the busy part (0.7 s)
    assert time.monotonic() - start < 0.6


async def test_errors_before_and_after_suspending_propagate() -> None:
    async def fails_at_once() -> None:
        raise ValueError("bad argument")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise LookupError("backend gone")

    with pytest.raises(ValueError, match="bad argument"):
        await within(fails_at_once(), 5.0)
    with pytest.raises(LookupError, match="backend gone"):
        await within(fails_later(), 5.0)


async def test_an_outer_cancellation_reaches_the_call_and_is_not_a_timeout() -> None:
    seen: list[str] = []

    async def recovers() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(0)  # it may still await while it cleans up
            seen.append("cleaned up")
            raise
        return "never"

    task = asyncio.ensure_future(within(recovers(), 5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # a CancelledError, not a TimeoutError
    assert seen == ["cancelled", "cleaned up"]


async def test_a_cancellation_between_steps_is_thrown_into_the_call() -> None:
    steps: list[int] = []

    async def spins() -> str:
        for step in range(1000):
            steps.append(step)
            await asyncio.sleep(0)  # suspends without a future to cancel
        return "finished"

    task = asyncio.ensure_future(within(spins(), 5.0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(steps) < 1000


async def test_values_sent_and_exceptions_caught_inside_reach_the_coroutine() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    failing: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def reads() -> str:
        first = await future
        try:
            await failing
        except KeyError:
            return first + " recovered"
        return "unreachable"

    task = asyncio.ensure_future(within(reads(), 5.0))
    await asyncio.sleep(0)
    future.set_result("value")
    await asyncio.sleep(0)
    failing.set_exception(KeyError("x"))
    assert await task == "value recovered"


async def test_other_awaitables_take_the_timer_at_once(armed: list[float]) -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result("done")
    assert await within(future, 5.0) == "done"
    assert len(armed) == 1
