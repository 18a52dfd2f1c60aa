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


def _frames(error: BaseException) -> list[str]:
    names, tb = [], error.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


async def test_a_kept_error_is_handed_out_with_the_traceback_it_was_kept_with() -> None:
    """One error object is every parent's: each raise starts from where it came from."""
    from resolvers.loaders import first

    async def fetch(keys: list[str]) -> Sequence[object]:
        try:
            raise RuntimeError("connector unavailable")
        except RuntimeError as error:  # as the loaders do: a failure becomes every key's value
            return [error] * len(keys)

    loader = BatchLoader(fetch)
    one_key, many_keys = [], []
    for _ in range(4):  # each way on its own: neither may lean on the other's reset
        try:
            await asyncio.wait_for(loader.load("a"), 5)
        except RuntimeError as raised:
            one_key.append(_frames(raised))
    for _ in range(4):
        try:
            first(await asyncio.wait_for(loader.load_many(["a"]), 5))
        except RuntimeError as raised:
            many_keys.append(_frames(raised))
    assert all("fetch" in frames for frames in one_key + many_keys)
    assert one_key == [one_key[0]] * 4 and many_keys == [many_keys[0]] * 4  # no growth


async def test_a_failed_fetch_reaches_every_waiter_with_its_origin() -> None:
    source = Source()
    source.gate = asyncio.Event()
    source.fail = RuntimeError("backend down")
    loader = BatchLoader(source.fetch)
    doomed, kept, listed = loader.load("a"), loader.load("a"), loader.load_many(["a", "b"])
    await source.started.wait()
    queued = loader.load_many(["a", "c"])  # "a" in flight, "c" in the next batch, which fails too
    doomed.cancel()  # a cancelled one-key waiter must not stop the others being told
    source.gate.set()
    with pytest.raises(RuntimeError, match="backend down") as raised:
        await asyncio.wait_for(kept, 5)
    assert "fetch" in _frames(raised.value)
    [a, b] = await asyncio.wait_for(listed, 5)
    assert a is b is raised.value
    [a2, c] = await asyncio.wait_for(queued, 5)
    assert a2 is c is source.fail  # both batches failed; each key got its own batch's failure
    assert source.calls == [["a", "b"], ["c"]]


async def test_a_none_key_is_none_for_one_key_loads_too() -> None:
    source = Source()
    loader = BatchLoader(source.fetch)
    assert await asyncio.wait_for(loader.load(None), 5) is None
    assert source.calls == []
