"""PostGIS plans the policy-filtered spatial queries with the GiST indexes of the spatial schema.

Like ``tests/connectors/test_explain_pg.py`` for credit: a migrated database filled by SQL with
200 000 synthetic feature versions (100 000 parcels, 100 000 points of interest, ten district
rectangles over Ningbo), analysed; the exact statement the connector sends for a bbox, a ``near``,
a ``within`` and a district officer's ``within_districts``-filtered page is EXPLAINed with its
parameters. No planner setting is changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from connectors.base import JSON, SearchRequest
from connectors.spatial import SpatialConnector
from connectors.spatial.postgis import PostgisSpatialConnector
from tests.connectors.test_explain_pg import nodes, plan_of
from tests.postgres import PgServer, execute, throwaway_database

ADCODES = ["330203", "330205", "330206", "330211", "330212", "330213", "330225", "330226", "330281", "330282"]
FEATURES = 100_000
# Ten 0.2° x 0.3° rectangles: five columns from 121.0°E, two rows from 29.6°N.
_DISTRICTS = ", ".join(
    f"('{code}', {121.0 + 0.2 * (i % 5)}, {29.6 + 0.3 * (i // 5)})" for i, code in enumerate(ADCODES)
)
_POSITION = "121.0 + ((i::bigint * 7919) % 100000) / 100000.0, 29.6 + ((i::bigint * 104729) % 100000) / 100000.0 * 0.6"

FILL = [
    """INSERT INTO spatial_layers (name, title, geometry_type, filterable) VALUES
        ('districts', 'districts', 'MultiPolygon', 'kind,district_code'),
        ('parcels', 'parcels', 'Polygon', 'kind,district_code'),
        ('pois', 'pois', 'Point', 'kind,district_code')""",
    f"""INSERT INTO spatial_features (layer, fid, kind, name, district_code, valid_from, properties, geom, geom_m)
        SELECT 'districts', code, 'district', code, code, date '2001-01-01', '{{}}', g, ST_Transform(g, 32651)
        FROM (VALUES {_DISTRICTS}) AS d(code, x, y),
             LATERAL (SELECT ST_Multi(ST_MakeEnvelope(x, y, x + 0.2, y + 0.3, 4490)) AS g) AS s""",
    f"""INSERT INTO spatial_features (layer, fid, kind, name, district_code, valid_from, properties, geom, geom_m)
        SELECT 'parcels', 'P' || lpad(i::text, 7, '0'), 'RESIDENTIAL', NULL, NULL, date '2010-01-01', '{{}}',
               g, ST_Transform(g, 32651)
        FROM generate_series(1, {FEATURES}) AS i,
             LATERAL (SELECT ST_Expand(ST_SetSRID(ST_MakePoint({_POSITION}), 4490), 0.0003) AS g) AS s""",
    f"""INSERT INTO spatial_features (layer, fid, kind, name, district_code, valid_from, properties, geom, geom_m)
        SELECT 'pois', 'Q' || lpad(i::text, 7, '0'), 'school', NULL, NULL, date '2010-01-01', '{{}}',
               g, ST_Transform(g, 32651)
        FROM generate_series(1, {FEATURES}) AS i,
             LATERAL (SELECT ST_SetSRID(ST_MakePoint({_POSITION.replace("7919", "6007")}), 4490) AS g) AS s""",
    "ANALYZE",
]


@pytest.fixture(scope="module")
def big_db(pg_server: PgServer) -> Iterator[str]:
    """A migrated spatial database with enough features that index plans must win on cost."""
    with throwaway_database(pg_server, "explain_spatial") as url:
        from connectors.migrate import migrate

        migrate("spatial", url)

        async def fill() -> None:
            for statement in FILL:
                await execute(url, statement)

        asyncio.run(fill())
        yield url


@pytest.fixture
async def spatial(big_db: str) -> AsyncIterator[PostgisSpatialConnector]:
    connector = SpatialConnector.from_config({"url": big_db}, big_db)  # type: ignore[arg-type]
    assert isinstance(connector, PostgisSpatialConnector)
    await connector.open()
    yield connector
    await connector.aclose()


def layers(*names: str) -> dict[str, JSON]:
    return {"type": "field", "field": "features.layer", "operator": "in", "value": list(names)}


def officer(*adcodes: str) -> dict[str, JSON]:
    """What spatial.rego gives a district officer: some layers, drawn within their districts."""
    own = {"type": "field", "field": "features.geometry", "operator": "within_districts", "value": list(adcodes)}
    return {"type": "compound", "operator": "and", "value": [layers("parcels", "iot_devices"), own]}


def gist_scans(plan: dict[str, Any]) -> set[str]:
    """The GiST indexes of spatial_features the plan reads (index or bitmap index scans)."""
    return {
        n["Index Name"]
        for n in nodes(plan)
        if n.get("Index Name") in ("ix_spatial_features_geom", "ix_spatial_features_geom_m")
    }


def bitmap_ands(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """BitmapAnd nodes: a GiST scan intersected with a btree scan over the whole layer."""
    return [n for n in nodes(plan) if n["Node Type"] == "BitmapAnd"]


def seq_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes(plan) if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "spatial_features"]


async def _plan(connector: PostgisSpatialConnector, request: SearchRequest) -> dict[str, Any]:
    return await plan_of(connector.engine, lambda: connector.search(request))


POINT = {"type": "Point", "coordinates": [121.5, 29.9]}
SQUARE = [[121.40, 29.80], [121.44, 29.80], [121.44, 29.84], [121.40, 29.84], [121.40, 29.80]]


@pytest.mark.parametrize(
    ("where", "row_filter", "index"),
    [
        ({"layer": "pois", "bbox": [121.40, 29.80, 121.45, 29.85]}, layers("pois"), "ix_spatial_features_geom"),
        # near has two index conditions by design (ST_DWithin on geom_m, and the search box on geom
        # that lets an officer's boundaries share one scan): the planner may take either GiST index.
        ({"layer": "pois", "near": {"point": POINT, "radius_m": 800}}, layers("pois"), None),
        (
            {"layer": "parcels", "within": {"type": "Polygon", "coordinates": [SQUARE]}},
            layers("parcels"),
            "ix_spatial_features_geom",
        ),
        ({"layer": "parcels", "bbox": [121.0, 29.6, 122.0, 30.2]}, officer("330203"), "ix_spatial_features_geom"),
        ({"layer": "parcels"}, officer("330203"), "ix_spatial_features_geom"),
        ({"nearest": {"point": POINT, "k": 5}}, layers("pois"), "ix_spatial_features_geom_m"),
        (
            {"layer": "pois", "within": {"type": "Polygon", "coordinates": [SQUARE]}},
            layers("districts", "pois"),
            "ix_spatial_features_geom",
        ),
    ],
    ids=["bbox", "near", "within", "officer-bbox", "officer", "nearest", "within-big-layer"],
)
async def test_policy_filtered_spatial_queries_use_the_gist_indexes(
    spatial: PostgisSpatialConnector, where: dict[str, JSON], row_filter: dict[str, JSON], index: str | None
) -> None:
    plan = await _plan(spatial, SearchRequest("Feature", None, row_filter, where, first=50))
    assert (index in gist_scans(plan)) if index else gist_scans(plan), plan
    assert not seq_scans(plan), plan
    # Nor a btree scan over a whole layer ANDed with the GiST one (what the planner chose for a
    # `within` over a big layer while the layer was outside the GiST index: spatial_0002).
    assert not bitmap_ands(plan), plan
