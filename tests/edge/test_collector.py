"""The serving collector settings: set while serving, undone however serving ends."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from edge.collector import YOUNG_THRESHOLD, serving_collector

#: A threshold unlike the serving one, so that "restored" cannot pass by coincidence.
_BEFORE = (700, 10, 10)


@pytest.fixture(autouse=True)
def known_threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(*_BEFORE)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_collects_freezes_and_raises_the_young_threshold_then_restores_both() -> None:
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    kept: list[list[int]] = [[] for _ in range(10)]  # tracked containers alive across the freeze
    with serving_collector():
        assert gone() is None  # start-up's garbage was collected before anything was frozen
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *_BEFORE[1:])
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        watched = {id(x) for x in gc.get_objects()}  # the generations the collector walks
        assert not any(id(x) in watched for x in kept)  # frozen: out of its sight
    assert gc.get_threshold() == _BEFORE
    assert gc.get_freeze_count() == 0


def test_restores_when_serving_fails() -> None:
    with pytest.raises(RuntimeError), serving_collector():
        raise RuntimeError("start-up failed half-way")
    assert gc.get_threshold() == _BEFORE
    assert gc.get_freeze_count() == 0
