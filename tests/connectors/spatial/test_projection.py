"""Feature records carry only what the operation selected (``SearchRequest.fields``): no GeoJSON
built and no properties read for a selection without them; ``None`` (not known) reads everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.base import JSON, FetchRequest, SearchRequest
from connectors.spatial import SpatialConnector

NEAR: dict[str, JSON] = {
    "layer": "pois",
    "near": {"point": {"type": "Point", "coordinates": [121.55, 29.87]}, "radius_m": 9000},
}
ALWAYS = {"id", "fid", "layer", "district_code", "valid_to", "crs", "distance_meters", "geometry"}
OPTIONAL = {"kind", "name", "valid_from", "properties"}


@pytest.fixture
async def spatial(demo_dir: Path) -> AsyncIterator[SpatialConnector]:
    connector = SpatialConnector.from_config({}, demo_dir)
    await connector.open()
    yield connector
    await connector.aclose()


async def _search(spatial: SpatialConnector, fields: frozenset[str] | None) -> list[dict[str, object]]:
    page = await spatial.search(SearchRequest("Feature", fields, {}, NEAR, first=50))
    assert len(page.records) > 5
    return [dict(r) for r in page.records]


async def test_unselected_values_are_not_read(spatial: SpatialConnector) -> None:
    full = await _search(spatial, None)
    assert all(set(r) == ALWAYS | OPTIONAL and r["geometry"] is not None for r in full)
    lean = await _search(spatial, frozenset({"name"}))
    assert all(set(r) == ALWAYS | {"name"} and r["geometry"] is None for r in lean)
    links_only = await _search(spatial, frozenset())
    assert all(set(r) == ALWAYS and r["geometry"] is None for r in links_only)
    # What is read is what the full read holds, row for row, in the same order.
    some = await _search(spatial, frozenset({"geometry", "properties", "valid_from"}))
    for part in (lean, links_only, some):
        assert [r["id"] for r in part] == [r["id"] for r in full]
        for p, w in zip(part, full, strict=True):
            assert all(v == w[k] for k, v in p.items() if not (k == "geometry" and v is None))


async def test_fetches_project_too(spatial: SpatialConnector) -> None:
    ids = [str(r["id"]) for r in await _search(spatial, None)][:5]
    [*lean] = await spatial.fetch_many(FetchRequest("Feature", ids, frozenset({"kind"}), {}))
    [*full] = await spatial.fetch_many(FetchRequest("Feature", ids, None, {}))
    assert all(r is not None and set(r) == ALWAYS | {"kind"} for r in lean)
    assert [r and r["kind"] for r in lean] == [r and r["kind"] for r in full]
