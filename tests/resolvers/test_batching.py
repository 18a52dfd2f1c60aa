"""The request's batch loader: one read per key, one batch per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from resolvers.batching import BatchLoader


class Source:
    """Records ``key.upper()``; a key starting with ``!`` reads as an error value."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: BaseException | None = None
        self.started = asyncio.Event()

    async def fetch(self, keys: list[str]) -> Sequence[object]:
        self.calls.append(list(keys))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [ValueError(k) if k.startswith("!") else k.upper() for k in keys]


async def test_keys_of_one_turn_are_read_once_in_one_call() -> None:
    source = Source()
    loader = BatchLoader(source.fetch)
    first = loader.load_many(["a", None, "b", "a"])
    second = loader.load_many(["c", "b"])
    assert await first == ["A", None, "B", "A"]
    assert await second == ["C", "B"]
    assert source.calls == [["a", "b", "c"]]


async def test_values_are_kept_for_the_request_errors_included() -> None:
    source = Source()
    loader = BatchLoader(source.fetch)
    [record, error] = await loader.load_many(["a", "!x"])
    assert record == "A" and isinstance(error, ValueError)
    [again, same] = await loader.load_many(["a", "!x"])
    assert again == "A" and same is error  # a value, handed out again and not read again
    assert source.calls == [["a", "!x"]]


async def test_loads_queued_before_the_dispatch_meet_and_later_ones_wait_for_the_read_in_flight() -> None:
    source = Source()
    source.gate = asyncio.Event()
    loader = BatchLoader(source.fetch)
    late: list[object] = []
    early = loader.load_many(["a"])
    # Another resolver of the same level, one callback later: still the same batch.
    asyncio.get_running_loop().call_soon(lambda: late.append(loader.load_many(["b"])))
    await source.started.wait()
    assert source.calls == [["a", "b"]]
    in_flight = loader.load_many(["a", "c"])  # "a" is being read: only "c" is queued
    for _ in range(5):
        await asyncio.sleep(0)
    source.gate.set()
    assert await early == ["A"] and await late[0] == ["B"]  # type: ignore[misc]
    assert await in_flight == ["A", "C"]
    assert source.calls == [["a", "b"], ["c"]]


@pytest.mark.parametrize("fail", [RuntimeError("backend down"), None])
async def test_a_failed_read_fails_its_keys_and_is_not_kept(fail: BaseException | None) -> None:
    source = Source()
    loader: BatchLoader[str, object]
    if fail is None:  # a fetch that breaks the contract: fewer values than keys

        async def short(keys: list[str]) -> Sequence[object]:
            source.calls.append(list(keys))
            return []

        loader = BatchLoader(short)
    else:
        source.fail = fail
        loader = BatchLoader(source.fetch)
    results = await loader.load_many(["a", None, "b"])
    assert results[1] is None
    assert all(isinstance(r, RuntimeError if fail else TypeError) for r in (results[0], results[2]))
    assert results[0] is results[2]
    await loader.load_many(["a"])
    assert source.calls == [["a", "b"], ["a"]]  # read again


async def test_a_cancelled_waiter_does_not_cancel_the_read_others_wait_for() -> None:
    source = Source()
    source.gate = asyncio.Event()
    loader = BatchLoader(source.fetch)
    doomed = asyncio.ensure_future(loader.load_many(["a"]))
    kept = loader.load_many(["a"])
    await source.started.wait()
    doomed.cancel()
    await asyncio.sleep(0)
    source.gate.set()
    assert await kept == ["A"] and doomed.cancelled()


async def test_a_cancelled_read_is_raised_not_handed_out_as_a_value() -> None:
    source = Source()
    source.fail = asyncio.CancelledError()
    loader = BatchLoader(source.fetch)
    with pytest.raises(asyncio.CancelledError):
        await loader.load_many(["a"])
    source.fail = None
    assert await loader.load_many(["a"]) == ["A"]  # not kept: read again


async def test_one_key_loads_share_the_batch_and_raise_error_values() -> None:
    source = Source()
    loader = BatchLoader(source.fetch)
    a, bad, listed = loader.load("a"), loader.load("!x"), loader.load_many(["b", "a"])
    assert await a == "A" and await listed == ["B", "A"]
    with pytest.raises(ValueError, match="!x"):
        await bad
    assert await loader.load("b") == "B"  # kept
    with pytest.raises(ValueError, match="!x"):
        await loader.load("!x")
    assert source.calls == [["a", "!x", "b"]]


async def test_one_key_loads_join_the_read_in_flight_and_share_its_failure() -> None:
    source = Source()
    source.gate = asyncio.Event()
    source.fail = RuntimeError("backend down")
    loader = BatchLoader(source.fetch)
    early = loader.load("a")
    await source.started.wait()
    late = loader.load("a")  # in flight: waits for that read, no second one
    source.gate.set()
    for future in (early, late):
        with pytest.raises(RuntimeError, match="backend down"):
            await future
    assert source.calls == [["a"]]


def test_a_shared_error_does_not_grow_its_traceback_with_every_parent() -> None:
    from resolvers.loaders import first

    error = RuntimeError("one error for every parent")
    depths = []
    for _ in range(5):
        try:
            first([error])
        except RuntimeError as raised:
            assert raised is error
            depth, tb = 0, raised.__traceback__
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)
    assert depths == [depths[0]] * 5
