"""The spatio-temporal cloud over real HTTP with real tokens, checked against geometry computed
independently in the test (pyproj, shapely, the GCJ-02 formula written out again), on both
backends: the embedded engine (GeoPackage) and PostGIS."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely

from connectors.migrate import migrate
from tests.conftest import LiveServer, TokenFactory, make_settings, serve
from tests.connectors.spatial.reference import from_wgs84, geodesic_m, layer, today
from tests.postgres import BACKENDS, PgDemo, throwaway_database

CRSS = ["EPSG:4326", "EPSG:4490", "EPSG:3857", "GCJ-02"]
CENTRE = (121.55, 29.87)  # 天一广场, Haishu
MAX_VERTICES = 100
MAX_READINGS = 1000


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, demo_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The gateway on the embedded engine (GeoPackage, SQLite), then on PostGIS and PostgreSQL: every
    test of this module runs on both, against the same reference computations."""
    options = {"max_vertices": MAX_VERTICES, "max_readings": MAX_READINGS}
    if request.param == "sqlite":
        audit = tmp_path_factory.mktemp("spatial-audit") / "audit.sqlite"
        connectors = {
            "credit": {"url": f"sqlite+aiosqlite:///{demo_dir / 'credit.sqlite'}"},
            "license": {"url": f"sqlite+aiosqlite:///{demo_dir / 'license.sqlite'}"},
            "spatial": {"path": str(demo_dir / "spatial.gpkg"), **options},
        }
        settings = make_settings(demo_dir, connectors=connectors, audit={"url": f"sqlite+aiosqlite:///{audit}"})
        with serve(settings) as server:
            yield server
        return
    pg: PgDemo = request.getfixturevalue("pg_demo")
    with throwaway_database(request.getfixturevalue("pg_server"), "spatial_audit") as audit_url:
        migrate("audit", audit_url)
        connectors = {
            "credit": {"url": pg.credit},
            "license": {"url": pg.license},
            "spatial": {"url": pg.spatial, "pool_size": 2, "max_overflow": 4, **options},
        }
        data_dir = tmp_path_factory.mktemp("pg-spatial")  # nothing is read from it: every URL is PostgreSQL
        with serve(make_settings(data_dir, connectors=connectors, audit={"url": audit_url})) as server:
            yield server


@pytest.fixture(scope="module")
def gpkg(demo_dir: Path) -> Path:
    return demo_dir / "spatial.gpkg"


def data(response: httpx.Response | dict[str, Any]) -> dict[str, Any]:
    body = response if isinstance(response, dict) else response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


def in_crs(point: tuple[float, float], crs: str) -> list[float]:
    moved = from_wgs84(shapely.Point(point), crs)
    return [moved.x, moved.y]


def all_pages(live: LiveServer, query: str, bearer: str | None, variables: dict[str, Any]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = data(live.post(query, bearer, variables={**variables, "after": after}))["features"]
        nodes.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


FEATURES = """query($layer: String, $bbox: [Float!], $within: GeoJSON, $near: NearInput, $asOf: Date, $crs: String,
                    $after: String) {
  features(layer: $layer, bbox: $bbox, within: $within, near: $near, asOf: $asOf, crs: $crs, first: 200,
           after: $after) {
    nodes { id geometry crs distanceMeters kind validFrom validTo districtCode }
    pageInfo { hasNextPage endCursor } } }"""


def assert_geometry_in(node: dict[str, Any], stored: shapely.Geometry, crs: str) -> None:
    """The returned geometry is the stored one in ``crs`` (to ~1 cm)."""
    expected = np.asarray(shapely.get_coordinates(from_wgs84(stored, crs)))
    got = np.asarray(shapely.get_coordinates(shapely.from_geojson(json.dumps(node["geometry"]))))
    tolerance = 0.011 if crs == "EPSG:3857" else 1.1e-7
    assert node["crs"] == crs and got.shape == expected.shape and np.abs(got - expected).max() < tolerance


@pytest.mark.parametrize("crs", CRSS)
def test_features_in_a_bbox(live: LiveServer, gpkg: Path, crs: str) -> None:
    pois = layer(gpkg, "pois")
    lo, hi = in_crs((121.45, 29.80), crs), in_crs((121.65, 29.95), crs)
    box = shapely.box(lo[0], lo[1], hi[0], hi[1])
    in_query_crs = from_wgs84(pois.geometry.values, crs)
    expected = {f"pois:{fid}" for fid, g in zip(pois["fid"], in_query_crs, strict=True) if box.intersects(g)}
    nodes = all_pages(live, FEATURES, None, {"layer": "pois", "bbox": [*lo, *hi], "crs": crs})
    assert {n["id"] for n in nodes} == expected and len(expected) > 10
    stored = dict(zip(pois["fid"], pois.geometry, strict=True))
    for node in nodes[:20]:
        assert_geometry_in(node, stored[node["id"].split(":", 1)[1]], crs)


def planner(token: TokenFactory) -> str:
    return token(dept="natural_resources", roles=["staff"])


@pytest.mark.parametrize("crs", CRSS)
def test_parcels_within_a_polygon(live: LiveServer, token: TokenFactory, gpkg: Path, crs: str) -> None:
    parcels = layer(gpkg, "parcels")
    # A pentagon of ~9 km around the centre, drawn in WGS 84 and sent in the query's CRS.
    ring = [(CENTRE[0] + 0.09 * np.cos(a), CENTRE[1] + 0.08 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 6)[:-1]]
    polygon = from_wgs84(shapely.Polygon(ring), crs)
    coordinates = [[list(p) for p in polygon.exterior.coords]]
    in_query_crs = from_wgs84(parcels.geometry.values, crs)
    expected = {f"parcels:{fid}" for fid, g in zip(parcels["fid"], in_query_crs, strict=True) if polygon.contains(g)}
    straddling = {
        f"parcels:{fid}" for fid, g in zip(parcels["fid"], in_query_crs, strict=True) if polygon.intersects(g)
    }
    within = {"type": "Polygon", "coordinates": coordinates}
    nodes = all_pages(live, FEATURES, planner(token), {"layer": "parcels", "within": within, "crs": crs})
    assert {n["id"] for n in nodes} == expected and len(expected) > 5 and straddling > expected


@pytest.mark.parametrize("crs", CRSS)
def test_features_near_a_point_in_metres(live: LiveServer, gpkg: Path, crs: str) -> None:
    pois = layer(gpkg, "pois")
    radius = 9000.0
    distances = geodesic_m(CENTRE, pois.geometry.x, pois.geometry.y)
    near = {"point": {"type": "Point", "coordinates": in_crs(CENTRE, crs)}, "radiusMeters": radius}
    nodes = all_pages(live, FEATURES, None, {"layer": "pois", "near": near, "crs": crs})
    got = {n["id"]: n["distanceMeters"] for n in nodes}
    # UTM 51N is within 0.02 % of the ellipsoid here: only features on the rim may differ.
    sure = {f"pois:{f}" for f, d in zip(pois["fid"], distances, strict=True) if d < radius * 0.999}
    maybe = {f"pois:{f}" for f, d in zip(pois["fid"], distances, strict=True) if d <= radius * 1.001}
    assert sure <= set(got) <= maybe and len(sure) > 3
    truth = dict(zip((f"pois:{f}" for f in pois["fid"]), distances, strict=True))
    assert all(abs(d - truth[i]) < 1e-3 * truth[i] + 0.02 for i, d in got.items())
    assert [n["distanceMeters"] for n in nodes] == sorted(n["distanceMeters"] for n in nodes)


@pytest.mark.parametrize("crs", CRSS)
def test_nearest_k(live: LiveServer, gpkg: Path, crs: str) -> None:
    pois = layer(gpkg, "pois")
    point = (121.62, 29.91)
    distances = geodesic_m(point, pois.geometry.x, pois.geometry.y)
    order = np.argsort(distances)
    expected = [f"pois:{pois['fid'][i]}" for i in order[:5]]
    query = """query($p: GeoJSON!, $crs: String) {
      nearest(layer: "pois", point: $p, k: 5, crs: $crs) { id distanceMeters geometry crs } }"""
    variables = {"p": {"type": "Point", "coordinates": in_crs(point, crs)}, "crs": crs}
    nodes = data(live.post(query, variables=variables))["nearest"]
    assert [n["id"] for n in nodes] == expected
    for node, i in zip(nodes, order[:5], strict=True):
        assert abs(node["distanceMeters"] - distances[i]) < 1e-3 * distances[i]
        assert_geometry_in(node, pois.geometry[i], crs)


def test_as_of_a_past_date(live: LiveServer, token: TokenFactory, gpkg: Path) -> None:
    past = dt.date(2019, 6, 1)
    box = [121.3, 29.6, 121.8, 30.1]
    area = shapely.box(box[0], box[1], box[2], box[3])

    def expected(on: dt.date) -> dict[str, str]:
        frame = layer(gpkg, "parcels", on)
        return {
            f"parcels:{f}": k
            for f, k, g in zip(frame["fid"], frame["kind"], frame.geometry, strict=True)
            if area.intersects(g)
        }

    then, now = expected(past), expected(today())
    assert then != now and set(then) - set(now) and set(now) - set(then)  # the data has history here
    bearer = planner(token)
    got = all_pages(live, FEATURES, bearer, {"layer": "parcels", "bbox": box, "asOf": past.isoformat()})
    assert {n["id"]: n["kind"] for n in got} == then
    assert all(
        n["validFrom"] <= past.isoformat() and (n["validTo"] is None or n["validTo"] > past.isoformat()) for n in got
    )
    changed = [i for i in then if i in now and then[i] != now[i]]
    assert changed  # some parcel changed its land use since
    query = 'query($b: [Float!]) { features(layer: "parcels", bbox: $b, first: 500) { nodes { id history { kind } } } }'
    nodes = data(live.post(query, bearer, variables={"b": box}))["features"]["nodes"]
    versions = next(n["history"] for n in nodes if n["id"] == changed[0])
    assert [v["kind"] for v in versions] == [then[changed[0]], now[changed[0]]]


def test_district_at_a_point_then_and_now(live: LiveServer, gpkg: Path) -> None:
    districts = layer(gpkg, "districts", dt.date(2010, 1, 1))
    jiangdong = districts[districts["fid"] == "330204"].geometry.iloc[0]
    inside = jiangdong.representative_point()
    query = "query($p: GeoJSON!, $d: Date) { districtAt(point: $p, asOf: $d) { adcode name validTo } }"
    point = {"type": "Point", "coordinates": [inside.x, inside.y]}
    then = data(live.post(query, variables={"p": point, "d": "2010-01-01"}))["districtAt"]
    assert then == {"adcode": "330204", "name": "江东区", "validTo": "2016-10-01"}
    current = layer(gpkg, "districts")
    holder = next(f for f, g in zip(current["fid"], current.geometry, strict=True) if g.contains(inside))
    assert data(live.post(query, variables={"p": point, "d": None}))["districtAt"]["adcode"] == holder == "330212"


def instant(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone(dt.timedelta(hours=8))).isoformat()


def test_downsampled_readings(live: LiveServer, token: TokenFactory, gpkg: Path) -> None:
    with sqlite3.connect(gpkg) as conn:
        device, last = conn.execute(
            "SELECT r.device_id, max(r.ts) FROM iot_readings r JOIN iot_devices d ON d.fid = r.device_id "
            "WHERE d.kind = 'WATER_LEVEL' GROUP BY r.device_id ORDER BY r.device_id LIMIT 1"
        ).fetchone()
        end = last - last % 86_400 - 8 * 3600  # a local midnight
        start = end - 3 * 86_400 + 5 * 3600  # a partial first bucket
        raw = conn.execute(
            "SELECT ts, value FROM iot_readings WHERE device_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (device, start, end),
        ).fetchall()
    query = """query($id: ID!, $from: DateTime, $to: DateTime, $every: String) { device(id: $id) { id kind unit
      readings(from: $from, to: $to, every: $every) { ts value min max count } } }"""
    bearer = token(dept="water_resources")
    variables = {"id": device, "from": instant(start), "to": instant(end)}
    for every, step in (("6h", 6 * 3600), ("1d", 86_400)):
        got = data(live.post(query, bearer, variables={**variables, "every": every}))["device"]["readings"]
        buckets: dict[int, list[float]] = {}
        for ts, value in raw:
            buckets.setdefault((ts + 8 * 3600) // step * step - 8 * 3600, []).append(value)
        expected = [
            {
                "ts": instant(b),
                "value": pytest.approx(float(np.mean(v)), abs=1e-4),
                "min": min(v),
                "max": max(v),
                "count": len(v),
            }
            for b, v in sorted(buckets.items())
        ]
        assert got == expected
    day_buckets = data(live.post(query, bearer, variables={**variables, "every": "1d"}))["device"]["readings"]
    assert len(day_buckets) == 3 and day_buckets[0]["count"] == 19 and day_buckets[1]["count"] == 24
    plain = data(live.post(query, bearer, variables=variables))["device"]["readings"]
    assert [(r["ts"], r["value"]) for r in plain] == [(instant(ts), v) for ts, v in raw]


def test_reading_limits_need_every(live: LiveServer, token: TokenFactory, gpkg: Path) -> None:
    with sqlite3.connect(gpkg) as conn:
        device = conn.execute("SELECT device_id FROM iot_readings LIMIT 1").fetchone()[0]
    query = """query($id: ID!, $e: String) {
      device(id: $id) { readings(from: "2020-01-01T00:00:00+08:00", every: $e) { ts } } }"""
    bearer = token(dept="urban_management")
    for every, message in ((None, "pass every"), ("1h", "choose a longer bucket"), ("5x", "not a duration")):
        error = live.post(query, bearer, variables={"id": device, "e": every}).json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and message in error["message"]
    assert data(live.post(query, bearer, variables={"id": device, "e": "7d"}))["device"]["readings"]


def test_a_district_officer_sees_only_parcels_of_their_districts(
    live: LiveServer, token: TokenFactory, gpkg: Path
) -> None:
    mine = ["330205", "330211"]
    parcels = layer(gpkg, "parcels")
    current = layer(gpkg, "districts")
    jurisdiction = shapely.union_all([g for f, g in zip(current["fid"], current.geometry, strict=True) if f in mine])
    expected = {
        f"parcels:{f}" for f, g in zip(parcels["fid"], parcels.geometry, strict=True) if jurisdiction.intersects(g)
    }
    others = {f"parcels:{f}" for f in parcels["fid"]} - expected
    assert expected and len(others) > len(expected)  # other districts' parcels exist
    bearer = token(dept="natural_resources", roles=["district_officer"], districts=mine)
    got = all_pages(live, FEATURES, bearer, {"layer": "parcels"})
    assert {n["id"] for n in got} == expected and {n["districtCode"] for n in got} == set(mine)
    # a bbox over the whole city and a client polygon cannot widen it
    whole = all_pages(live, FEATURES, bearer, {"layer": "parcels", "bbox": [120, 28, 123, 31]})
    assert {n["id"] for n in whole} == expected
    # the same for devices, their readings, and the layer list
    devices = layer(gpkg, "iot_devices")
    theirs = next(f for f, d in zip(devices["fid"], devices["district_code"], strict=True) if d not in mine)
    body = live.post('{ device(id: "%s") { id readings(every: "1d") { value } } }' % theirs, bearer).json()
    assert data(body)["device"] is None
    names = [x["name"] for x in data(live.post("{ layers { name } }", bearer))["layers"]]
    assert names == ["districts", "enterprise_locations", "iot_devices", "parcels", "pois"]


def test_the_public_sees_no_parcels_or_devices(live: LiveServer, gpkg: Path) -> None:
    assert data(live.post('{ features(layer: "parcels") { nodes { id } } }'))["features"]["nodes"] == []
    assert data(live.post('{ features(layer: "iot_devices") { nodes { id } } }'))["features"]["nodes"] == []
    layers = data(live.post("{ layers { name featureCount extent } }"))["layers"]
    assert [x["name"] for x in layers] == ["districts", "enterprise_locations", "pois"]
    assert layers[0]["featureCount"] == 10


@pytest.fixture
def calls(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Connector calls per connector while the test runs."""
    counts: dict[str, int] = {}
    for name, connector in live.app.state.gateway.runtime.connectors.items():  # type: ignore[attr-defined]
        for method in ("fetch_many", "fetch_related", "search"):
            original = getattr(connector, method)

            async def counted(request: Any, original: Any = original, name: str = name) -> Any:
                counts[name] = counts.get(name, 0) + 1
                return await original(request)

            monkeypatch.setattr(connector, method, counted)
    return counts


DOSSIER = """query($n: Int) { enterprises(first: $n) { nodes { uscc name districtCode credit { rating }
  location { geometry district { adcode } } district { adcode name boundary } } } }"""


def test_registration_credit_and_location_with_district_boundary_batched(
    live: LiveServer, token: TokenFactory, calls: dict[str, int]
) -> None:
    bearer = token(dept="market_supervision")
    seen = []
    for n in (5, 40):
        calls.clear()
        nodes = data(live.post(DOSSIER, bearer, variables={"n": n}))["enterprises"]["nodes"]
        assert len(nodes) == n
        seen.append(dict(calls))
        for node in nodes:
            point = shapely.from_geojson(json.dumps(node["location"]["geometry"]))
            boundary = shapely.from_geojson(json.dumps(node["district"]["boundary"]))
            assert boundary.contains(point) and node["credit"]["rating"] in "ABCD"
            assert node["district"]["adcode"] == node["location"]["district"]["adcode"] == node["districtCode"]
    # license: the page; credit: profiles; spatial: locations, districts by USCC, districts by adcode
    assert seen[0] == seen[1] == {"license": 1, "credit": 1, "spatial": 3}


SQUARE = [[121.5, 29.8], [121.6, 29.8], [121.6, 29.9], [121.5, 29.9], [121.5, 29.8]]


@pytest.mark.parametrize(
    ("arguments", "variables", "message"),
    [
        ("within: $g", {"g": {"type": "Circle", "coordinates": [121.5, 29.8]}}, "invalid GeoJSON"),
        ("within: $g", {"g": {"type": "Polygon", "coordinates": [SQUARE[:-1]]}}, "is not closed"),
        (
            "within: $g",
            {
                "g": {
                    "type": "Polygon",
                    "coordinates": [[[121.5, 29.8], [121.6, 29.9], [121.6, 29.8], [121.5, 29.9], [121.5, 29.8]]],
                }
            },
            "Self-intersection",
        ),
        ("within: $g", {"g": '{"type": "Point", "coordinates": [NaN, 29.8]}'}, "non-finite"),
        (
            "within: $g",
            {"g": {"type": "Polygon", "coordinates": [[[29.8, 121.5], [29.9, 121.5], [29.9, 121.6], [29.8, 121.5]]]}},
            "outside the valid area of EPSG:4326",
        ),
        ('within: $g, crs: "EPSG:3857"', {"g": {"type": "Polygon", "coordinates": [SQUARE]}}, None),
        (
            'within: $g, crs: "GCJ-02"',
            {"g": {"type": "Polygon", "coordinates": [[[x + 200, y] for x, y in SQUARE]]}},
            "outside the valid area of GCJ-02",
        ),
        ('within: $g, crs: "EPSG:27700"', {"g": {"type": "Polygon", "coordinates": [SQUARE]}}, "unknown CRS"),
        (
            "within: $g",
            {
                "g": {
                    "type": "Polygon",
                    "coordinates": [
                        [[121.5 + i * 1e-4, 29.8] for i in range(MAX_VERTICES)] + [[121.55, 29.9], [121.5, 29.8]]
                    ],
                }
            },
            f"more than {MAX_VERTICES} vertices",
        ),
        ("near: {point: $g, radiusMeters: -1}", {"g": {"type": "Point", "coordinates": [121.55, 29.87]}}, "negative"),
        ("near: {point: $g, radiusMeters: 1e9}", {"g": {"type": "Point", "coordinates": [121.55, 29.87]}}, "too large"),
        ("near: {point: $g, radiusMeters: 10}", {"g": {"type": "Polygon", "coordinates": [SQUARE]}}, "must be a Point"),
        (
            "bbox: [121.6, 29.8, 121.5, 29.9], intersects: $g",
            {"g": {"type": "Point", "coordinates": [121.55, 29.87]}},
            "min > max",
        ),
        ('layer: "secret", intersects: $g', {"g": {"type": "Point", "coordinates": [121.55, 29.87]}}, "unknown layer"),
        ("intersects: $g", {"g": 42}, "invalid GeoJSON"),
    ],
)
def test_bad_input_is_bad_user_input(
    live: LiveServer, arguments: str, variables: dict[str, Any], message: str | None
) -> None:
    query = "query($g: GeoJSON!) { features(%s) { nodes { id } } }" % arguments
    body = live.post(query, variables=variables).json()
    if message is None:  # degrees sent as Web Mercator metres: a valid (tiny) polygon near 0,0 — no error, no data
        assert data(body)["features"]["nodes"] == []
        return
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and message in error["message"], error


def test_an_inline_infinite_coordinate_is_bad_user_input(live: LiveServer) -> None:
    body = live.post('{ nearest(layer: "pois", point: {type: "Point", coordinates: [1e400, 29.8]}) { id } }').json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "non-finite" in error["message"]


def test_districts_their_enterprises_and_a_device_link(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    now = data(live.post("{ districts { adcode name level } }"))["districts"]
    assert len(now) == 10 and {d["adcode"] for d in now} >= {"330203", "330225", "330282"}
    before = data(live.post('{ districts(asOf: "2010-01-01") { adcode name } }'))["districts"]
    assert {"330204", "330283"} <= {d["adcode"] for d in before} and "330213" not in {d["adcode"] for d in before}
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        registered = {r[0] for r in conn.execute("SELECT uscc FROM enterprises WHERE district_code = '330205'")}
    query = """{ district(adcode: "330205", crs: "EPSG:3857") {
      name crs boundary enterprises(first: 500) { nodes { uscc } } } }"""
    district = data(live.post(query, token(dept="market_supervision")))["district"]
    assert district["name"] == "江北区" and district["crs"] == "EPSG:3857"
    assert {n["uscc"] for n in district["enterprises"]["nodes"]} == registered
    x, y = district["boundary"]["coordinates"][0][0][0]
    assert 13_400_000 < x < 13_700_000 and 3_300_000 < y < 3_600_000  # Web Mercator metres around Ningbo
    bearer = token(dept="urban_management")
    devices = data(
        live.post('{ features(layer: "iot_devices", first: 3) { nodes { id device { id kind unit } } } }', bearer)
    )
    for node in devices["features"]["nodes"]:
        assert node["id"] == f"iot_devices:{node['device']['id']}" and node["device"]["unit"] in {"W", "%", "m"}


def test_a_lean_selection_serves_the_same_features(live: LiveServer, gpkg: Path) -> None:
    """Records carry only the selected fields (projection): what is selected, and what links read
    (a feature's district as of its last valid day), is what a full selection serves."""
    near = {"point": {"type": "Point", "coordinates": list(CENTRE)}, "radiusMeters": 9000}
    full_query = """query($near: NearInput, $after: String) { features(layer: "pois", near: $near, first: 50,
      after: $after) { nodes { id kind name properties geometry validFrom validTo districtCode distanceMeters
      district { adcode } } pageInfo { hasNextPage endCursor } } }"""
    full = all_pages(live, full_query, None, {"near": near})
    assert len(full) > 5
    for selection in ("id district { adcode }", "id name validFrom", "id properties geometry"):
        query = full_query.replace(full_query[full_query.index("nodes {") : full_query.index("pageInfo")],
                                   f"nodes {{ {selection} }} ")  # fmt: skip
        lean = all_pages(live, query, None, {"near": near})
        assert lean == [{k: node[k] for k in lean[0]} for node in full]
    names = dict(zip(layer(gpkg, "pois")["fid"], layer(gpkg, "pois")["name"], strict=True))
    assert all(node["name"] == names[node["id"].split(":", 1)[1]] for node in full)
