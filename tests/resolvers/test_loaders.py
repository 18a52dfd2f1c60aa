"""Loaders' bookkeeping that the end-to-end tests cannot reach."""

from __future__ import annotations

from typing import Any, cast

import pytest

from resolvers import loaders


def test_related_objects_are_split_by_their_parents_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "_emit", lambda _ctx, _entity, rows, _connector: [f"o{r['n']}" for r in rows])
    groups = [[{"n": 1}, {"n": 2}], [], [{"n": 3}]]
    assert loaders._emit_groups(cast(Any, None), "License", groups, "license") == [["o1", "o2"], [], ["o3"]]


def test_a_missing_object_fails_the_batch_instead_of_shifting_records_to_other_parents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loaders, "_emit", lambda _ctx, _entity, rows, _connector: list(rows)[1:])
    with pytest.raises(RuntimeError, match="2 objects for 3 rows"):
        loaders._emit_groups(cast(Any, None), "License", [[{"n": 1}, {"n": 2}], [{"n": 3}]], "license")
