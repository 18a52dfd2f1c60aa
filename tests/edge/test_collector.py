"""The serving collector settings: set while serving, undone however serving ends."""

from __future__ import annotations

import gc

import pytest

from edge.collector import YOUNG_THRESHOLD, serving_collector


def test_freezes_and_raises_the_young_threshold_then_restores_both() -> None:
    before = gc.get_threshold()
    kept = [object() for _ in range(10)]  # alive across the freeze, so it is frozen
    with serving_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert len(kept) == 10


def test_restores_when_serving_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), serving_collector():
        raise RuntimeError("start-up failed half-way")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
