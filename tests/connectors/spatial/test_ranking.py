"""``near`` ranking in numpy orders and pages exactly as Python tuples of (round(d, 2), layer, fid) do."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from connectors.spatial.connector import _closest, _round_cm


@dataclass
class _Layer:
    """What ranking reads of a layer: its name and its fids, sorted (one row per version)."""

    name: str
    fids: np.ndarray


def test_rounding_to_the_cm_is_pythons() -> None:
    rng = np.random.default_rng(3)
    halves = (np.arange(-2000, 200_000, 7) + 0.5) / 100  # k.xx5: where products round either way
    values = np.concatenate([rng.uniform(0, 50_000, 20_000), halves, [0.0, 0.005, 1.005, 2.675, 0.125, 1e6 + 0.015]])
    assert _round_cm(values).tolist() == [round(v, 2) for v in values.tolist()]


@settings(max_examples=300, deadline=None)
@given(floats=st.lists(st.floats(0, 1e7, allow_nan=False), max_size=50))
def test_rounding_agrees_on_any_distance(floats: list[float]) -> None:
    assert _round_cm(np.asarray(floats, dtype=np.float64)).tolist() == [round(v, 2) for v in floats]


def _reference(
    candidates: list[tuple[_Layer, np.ndarray, np.ndarray]], after: tuple[float, str, str] | None, count: int
) -> list[tuple[float, str, int]]:
    """The ranking as plain Python tuples, stably sorted (how the connector ranked before)."""
    ranked = [
        (round(d, 2), layer.name, str(layer.fids[r]), layer.name, r)
        for layer, rows, distances in sorted(candidates, key=lambda c: c[0].name)
        for r, d in zip(rows.tolist(), distances.tolist(), strict=True)
    ]
    ranked.sort(key=lambda c: (c[0], c[1], c[2]))
    if after is not None:
        ranked = [c for c in ranked if (c[0], c[1], c[2]) > after]
    return [(d, name, r) for d, _, _, name, r in ranked[:count]]


def _candidates(seed: int) -> list[tuple[_Layer, np.ndarray, np.ndarray]]:
    rng = random.Random(seed)
    out = []
    for name in rng.sample(["pois", "iot_devices", "parcels"], rng.randint(1, 3)):
        fids = np.asarray(sorted(f"F{rng.randint(0, 40):03d}" for _ in range(rng.randint(0, 60))), dtype=str)
        rows = np.asarray(sorted(rng.sample(range(len(fids)), rng.randint(0, len(fids)))), dtype=np.intp)
        # Few distinct distances, and some on a half centimetre: ties decided by layer, then fid.
        distances = np.asarray([rng.choice([0.0, 1.005, 12.5, 12.504, 12.496, 30.0]) for _ in rows], dtype=np.float64)
        out.append((_Layer(name, fids), rows, distances))
    return out


@pytest.mark.parametrize("seed", range(200))
def test_closest_ranks_and_pages_as_python_tuples(seed: int) -> None:
    candidates = _candidates(seed)
    every = _reference(candidates, None, 10_000)
    rng = random.Random(seed)
    afters: list[tuple[float, str, str] | None] = [None, (12.5, "m", "F020"), (0.0, "pois", "")]
    for d, name, row in rng.sample(every, min(3, len(every))):
        layer = next(c[0] for c in candidates if c[0].name == name)
        afters.append((d, name, str(layer.fids[row])))
    for after in afters:
        for count in (1, 7, 10_000):
            found = _closest(cast(Any, candidates), after, count)
            assert [(d, layer.name, r) for d, layer, r in found] == _reference(candidates, after, count)


def test_no_layers_no_candidates() -> None:
    assert _closest([], None, 10) == [] and _closest([], (1.0, "pois", "F001"), 10) == []
