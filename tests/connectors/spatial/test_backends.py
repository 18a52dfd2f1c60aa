"""The embedded engine (GeoPackage) and PostGIS answer every kind of spatial call identically.

Both serve the session's demo data (PostGIS holds it through ``copy_gpkg_to``). Records are
compared whole (geometry in the requested CRS, properties, validity, distances), pages walked to
the end, and bad input and bad row filters must fail with the same error and message on both.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import JSON, FetchRequest, Page, SearchRequest
from connectors.errors import ConnectorConfigError, ConnectorUnavailable, FilterError, InvalidArgument
from connectors.spatial import SpatialConnector
from connectors.spatial.postgis import PostgisSpatialConnector
from tests.postgres import PgDemo, PgServer, throwaway_database

Pair = tuple[SpatialConnector, SpatialConnector]
POINT: dict[str, JSON] = {"type": "Point", "coordinates": [121.55, 29.87]}
SQUARE: dict[str, JSON] = {
    "type": "Polygon",
    "coordinates": [[[121.45, 29.8], [121.65, 29.8], [121.65, 29.95], [121.45, 29.95], [121.45, 29.8]]],
}
OWN: dict[str, JSON] = {
    "type": "field",
    "field": "features.geometry",
    "operator": "within_districts",
    "value": ["330203", "330212"],
}
OFFICER: dict[str, JSON] = {
    "type": "compound",
    "operator": "and",
    "value": [{"type": "field", "field": "features.layer", "operator": "in", "value": ["parcels", "iot_devices"]}, OWN],
}
PUBLIC: dict[str, JSON] = {"type": "field", "field": "features.layer", "operator": "in", "value": ["districts", "pois"]}


@pytest.fixture
def pg_url(pg_demo: PgDemo) -> str:
    return pg_demo.spatial


@pytest.fixture
async def both(demo_dir: Path, pg_url: str) -> AsyncIterator[Pair]:
    embedded = SpatialConnector.from_config({"max_readings": 1000}, demo_dir)
    postgis = SpatialConnector.from_config({"url": pg_url, "max_readings": 1000}, demo_dir)
    assert isinstance(postgis, PostgisSpatialConnector) and not isinstance(embedded, PostgisSpatialConnector)
    await embedded.open()
    await postgis.open()
    yield embedded, postgis
    await embedded.aclose()
    await postgis.aclose()


def canonical(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


async def walk(connector: SpatialConnector, request: SearchRequest) -> tuple[list[Any], list[bool]]:
    """Every record of every page, following the cursors."""
    records: list[Any] = []
    flags: list[bool] = []
    after = None
    while True:
        page: Page = await connector.search(
            SearchRequest(request.entity, request.fields, request.row_filter, request.where, request.first, after)
        )
        records.extend(page.records)
        flags.append(page.has_next_page)
        if not page.has_next_page:
            return records, flags
        after = page.end_cursor


SEARCHES: list[tuple[str, dict[str, JSON], dict[str, JSON]]] = [
    ("Feature", {"layer": "pois", "bbox": [121.45, 29.8, 121.65, 29.95]}, {}),
    ("Feature", {"bbox": [121.45, 29.8, 121.65, 29.95], "crs": "EPSG:4490"}, {}),
    ("Feature", {"bbox": [13_520_000, 3_480_000, 13_540_000, 3_500_000], "crs": "EPSG:3857"}, PUBLIC),
    ("Feature", {"layer": "parcels"}, OFFICER),
    ("Feature", {"layer": "parcels", "as_of": "2012-01-01"}, OFFICER),
    ("Feature", {"layer": "parcels", "within": SQUARE, "crs": "GCJ-02"}, {}),
    ("Feature", {"layer": "parcels", "intersects": SQUARE, "kind": "residential"}, {}),
    ("Feature", {"layer": "pois", "near": {"point": POINT, "radius_m": 6000}, "crs": "EPSG:4490"}, {}),
    ("Feature", {"near": {"point": POINT, "radius_m": 3000}, "bbox": [121.5, 29.8, 121.6, 29.9]}, OFFICER),
    ("Feature", {"nearest": {"point": POINT, "k": 7}, "crs": "GCJ-02"}, PUBLIC),
    ("Feature", {"layer": "enterprise_locations", "district": "330205"}, {}),
    ("District", {}, {}),
    ("District", {"as_of": "2010-01-01", "crs": "EPSG:3857"}, {}),
    ("District", {"point": POINT}, {}),
    ("Layer", {"crs": "GCJ-02"}, {}),
    ("Layer", {}, {"type": "field", "field": "layers.name", "operator": "in", "value": ["pois", "districts"]}),
]


def _projected(records: list[Any], like: list[Any]) -> list[Any]:
    """``records`` (every column) cut down to the keys of ``like`` (projected), geometry as built."""
    return [{k: (v if k != "geometry" or p[k] is not None else None) for k, v in r.items() if k in p}
            for r, p in zip(records, like, strict=True)]  # fmt: skip


PROJECTIONS = [frozenset(), frozenset({"name"}), frozenset({"geometry", "properties", "kind", "valid_from"})]
ALWAYS = {"id", "fid", "layer", "district_code", "valid_to", "crs", "distance_meters", "geometry"}


@pytest.mark.parametrize("fields", PROJECTIONS)
@pytest.mark.parametrize(("entity", "where", "row_filter"), [s for s in SEARCHES if s[0] == "Feature"])
async def test_projected_searches_serve_what_full_searches_serve(
    both: Pair, fields: frozenset[str], entity: str, where: dict[str, JSON], row_filter: dict[str, JSON]
) -> None:
    """Both engines read only the selected fields (the geometry only when selected), and serve
    the same records as each other and as a full read, cut down."""
    embedded, postgis = both
    (lean, flags_a), (pg_lean, flags_b), (full, flags_c) = [
        await walk(c, SearchRequest(entity, f, row_filter, where, first=17))
        for c, f in ((embedded, fields), (postgis, fields), (postgis, None))
    ]
    assert lean and flags_a == flags_b == flags_c
    assert all(set(r) <= ALWAYS | fields for r in lean)
    assert all((r["geometry"] is not None) == ("geometry" in fields) for r in pg_lean)
    assert canonical(pg_lean) == canonical(lean) == canonical(_projected(full, lean))
    assert [list(r) for r in pg_lean] == [list(r) for r in lean]  # the same keys in the same order


@pytest.mark.parametrize("fields", PROJECTIONS)
async def test_projected_fetches_serve_what_full_fetches_serve(both: Pair, fields: frozenset[str]) -> None:
    embedded, postgis = both
    features = [f"parcels:{k}" for k in await _keys(embedded, "parcels", 30)] + ["nope:1"]
    enterprises = await _keys(embedded, "enterprise_locations", 20)
    many = FetchRequest("Feature", features, fields, {})
    lean, pg_lean = await embedded.fetch_many(many), await postgis.fetch_many(many)
    full = await postgis.fetch_many(FetchRequest("Feature", features, None, {}))
    found = [r for r in lean if r is not None]
    assert found and all(set(r) <= ALWAYS | fields for r in found)
    assert canonical(pg_lean) == canonical(lean)
    assert [list(r or ()) for r in pg_lean] == [list(r or ()) for r in lean]  # key order too
    assert canonical(found) == canonical(_projected([r for r in full if r is not None], found))
    for by, keys, args in (("history", features, {"crs": "EPSG:3857"}), ("uscc", enterprises, {})):
        related = FetchRequest("Feature", keys, fields, {}, by=by, args=args)
        groups, pg_groups = await embedded.fetch_related(related), await postgis.fetch_related(related)
        full_groups = await postgis.fetch_related(FetchRequest("Feature", keys, None, {}, by=by, args=args))
        flat = [r for g in groups for r in g]
        assert flat and all(set(r) <= ALWAYS | fields for r in flat), by
        assert canonical(pg_groups) == canonical(groups), by
        assert [list(r) for g in pg_groups for r in g] == [list(r) for r in flat], by
        assert canonical(flat) == canonical(_projected([r for g in full_groups for r in g], flat)), by


@pytest.mark.parametrize(("entity", "where", "row_filter"), SEARCHES)
async def test_searches_are_identical(
    both: Pair, entity: str, where: dict[str, JSON], row_filter: dict[str, JSON]
) -> None:
    request = SearchRequest(entity, None, row_filter, where, first=17)
    (a, flags_a), (b, flags_b) = [await walk(c, request) for c in both]
    assert a and canonical(a) == canonical(b) and flags_a == flags_b


async def _keys(connector: SpatialConnector, layer: str, n: int) -> list[str]:
    page = await connector.search(SearchRequest("Feature", None, {}, {"layer": layer}, first=n))
    return [str(r["fid"]) for r in page.records]


async def test_fetches_are_identical(both: Pair) -> None:
    embedded, _ = both
    features = [f"parcels:{k}" for k in await _keys(embedded, "parcels", 60)] + ["nope:1", "parcels:", "pois:\x00"]
    enterprises = await _keys(embedded, "enterprise_locations", 40) + ["91330200MA2XXXXXX0"]
    devices = await _keys(embedded, "iot_devices", 30)
    window = {"from": (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).isoformat(), "every": "1d"}
    # The demo's readings end at local midnight, so the default window (the last 24 hours) holds
    # none from 23:00 to midnight in Shanghai: these windows start two days back instead.
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
    requests = [
        FetchRequest("Feature", features, None, OWN),
        FetchRequest("Feature", features, None, {}, by="history", args={"crs": "EPSG:3857"}),
        FetchRequest("Feature", enterprises, None, {}, by="uscc", args={"as_of": "2015-06-01"}),
        FetchRequest("District", ["330203", "330204", "330212", "x"], None, {}),
        FetchRequest("District", enterprises, None, {}, by="uscc"),
        FetchRequest("District", ["330204"], None, {}, by="adcode", args={"as_of": "2010-01-01"}),
        FetchRequest("Device", devices, None, {}),
        FetchRequest("Device", devices, None, OWN | {"field": "devices.geometry"}, by="id"),
        FetchRequest("Layer", ["pois", "parcels", "x"], None, {}),
        FetchRequest("DeviceReading", devices[:4], None, {}, by="device_id", args=window),
        FetchRequest("DeviceReading", devices[:4], None, {}, by="device_id", args={"from": recent, "every": "15m"}),
        FetchRequest("DeviceReading", devices[:2], None, {}, by="device_id", args={"from": recent}),
    ]
    for request in requests:
        results = [await (c.fetch_many(request) if request.by is None else c.fetch_related(request)) for c in both]
        assert canonical(results[0]) == canonical(results[1]), request
        assert any(results[0]), request


async def test_related_lists_hold_to_max_rows_per_key_on_both_backends(both: Pair) -> None:
    embedded, _ = both
    features = [f"parcels:{k}" for k in await _keys(embedded, "parcels", 300)]
    devices = await _keys(embedded, "iot_devices", 6)
    window = {"from": (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat(), "every": "1d"}
    for entity, keys, by, args, limit in (
        ("Feature", features, "history", {}, 1),
        ("DeviceReading", devices, "device_id", window, 5),
    ):
        every = await embedded.fetch_related(FetchRequest(entity, keys, None, {}, by=by, args=args))
        assert max(map(len, every)) > limit, entity  # the data holds more than the cap
        request = FetchRequest(entity, keys, None, {}, by=by, args=args, limit=limit)
        results = [await c.fetch_related(request) for c in both]
        assert canonical(results[0]) == canonical(results[1]), entity
        # The first ``limit`` of each key's list, in its order: oldest versions, earliest readings.
        assert canonical(results[0]) == canonical([list(group[:limit]) for group in every]), entity
        none = [await c.fetch_related(FetchRequest(entity, keys, None, {}, by=by, args=args, limit=0)) for c in both]
        assert all(group == [] for result in none for group in result), entity


BAD_SEARCHES: list[dict[str, JSON]] = [
    {"layer": "secret"},
    {"as_of": "yesterday"},
    {"bbox": [121.6, 29.8, 121.5, 29.9]},
    {"within": {"type": "Point", "coordinates": [121.5, 29.8]}},
    {"near": {"point": POINT, "radius_m": -1}},
    {"near": {"point": POINT, "radius_m": 1e9}},
    {"nearest": {"point": POINT, "k": 1000}},
    {"crs": "EPSG:27700"},
    {"kind": 7},
]


@pytest.mark.parametrize("where", BAD_SEARCHES)
async def test_bad_input_fails_the_same_way(both: Pair, where: dict[str, JSON]) -> None:
    messages = []
    for connector in both:
        with pytest.raises(InvalidArgument) as caught:
            await connector.search(SearchRequest("Feature", None, {}, where))
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


BAD_FILTERS: list[Any] = [
    None,
    {"type": "field", "field": "features.secret", "operator": "eq", "value": "x"},
    {"type": "field", "field": "features.kind", "operator": "within_districts", "value": ["330203"]},
    {"type": "field", "field": "features.geometry", "operator": "eq", "value": "330203"},
    {"type": "field", "field": "features.geometry", "operator": "within_districts", "value": "330203"},
    {"type": "field", "field": "features.kind", "operator": "eq", "value": 3},
    {"type": "field", "field": "features.kind", "operator": "eq", "value": "a\x00"},
    {"type": "compound", "operator": "xor", "value": []},
    {"type": "field", "field": "features.kind", "operator": "in", "value": ["x"] * 10_001},
]


@pytest.mark.parametrize("row_filter", BAD_FILTERS)
async def test_bad_row_filters_deny_the_same_way(both: Pair, row_filter: Any) -> None:
    failures: list[Sequence[str]] = []
    for connector in both:
        with pytest.raises(FilterError) as caught:
            await connector.search(SearchRequest("Feature", None, row_filter, {"layer": "parcels"}))
        failures.append((type(caught.value).__name__, str(caught.value)))
    assert failures[0] == failures[1]


async def test_a_layerless_query_over_layers_with_different_columns(both: Pair) -> None:
    # uscc is a column of enterprise_locations only: a filter on it is refused on both (fail closed).
    row_filter = {"type": "field", "field": "features.uscc", "operator": "eq", "value": "x"}
    for connector in both:
        with pytest.raises(FilterError, match="not filterable here"):
            await connector.fetch_many(FetchRequest("Feature", ["pois:1"], None, row_filter))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": "mysql://gis/spatial"}, "must be a PostgreSQL"),
        ({"url": "postgresql://gis/spatial", "path": "var/spatial.gpkg"}, "either 'url' (PostGIS) or 'path'"),
        ({"url": "postgresql://gis/spatial", "pool_size": "ten"}, "pool_size must be a number"),
    ],
)
async def test_a_bad_postgis_configuration_is_refused(config: dict[str, JSON], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError, match=re.escape(message)):
        connector = SpatialConnector.from_config(config, tmp_path)
        await connector.open()


async def test_an_unmigrated_database_is_unavailable_not_fatal(pg_empty: str, tmp_path: Path) -> None:
    connector = SpatialConnector.from_config({"url": pg_empty}, tmp_path)
    await connector.open()  # the gateway still starts
    health = await connector.health()
    assert not health.ok and "not migrated" in health.detail
    with pytest.raises(ConnectorUnavailable):
        await connector.search(SearchRequest("Feature", None, {}, {}))
    await connector.aclose()


@pytest.fixture
def pg_empty(pg_server: PgServer) -> Iterator[str]:
    with throwaway_database(pg_server, "spatial_empty") as url:
        yield url
