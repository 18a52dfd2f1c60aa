"""Client geometry is checked before use; each kind of bad input is refused with a clear message."""

from __future__ import annotations

import pytest
import shapely

from connectors.errors import InvalidArgument
from connectors.spatial import geojson

SQUARE = [[121.5, 29.8], [121.6, 29.8], [121.6, 29.9], [121.5, 29.9], [121.5, 29.8]]


def parse(value: object, crs: str = "EPSG:4326", limit: int = 100) -> shapely.Geometry:
    return geojson.parse(value, crs, max_vertices=limit)


def test_a_polygon_point_and_json_text_parse() -> None:
    polygon = parse({"type": "Polygon", "coordinates": [SQUARE]})
    assert isinstance(polygon, shapely.Polygon) and polygon.area == pytest.approx(0.01)
    assert shapely.equals(parse('{"type": "Point", "coordinates": [121.55, 29.87]}'), shapely.Point(121.55, 29.87))
    mercator = parse({"type": "Point", "coordinates": [13530884.1, 3486850.5]}, "EPSG:3857")
    assert isinstance(mercator, shapely.Point)
    assert mercator.x == pytest.approx(121.55, abs=1e-6) and mercator.y == pytest.approx(29.87, abs=1e-6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not JSON"),
        ([1, 2], "a geometry is an object"),
        ({"type": "Circle", "coordinates": [1, 2]}, "type 'Circle'"),
        ({"type": "Feature", "geometry": {}}, "not a Feature"),
        ({"type": "Point"}, 'no "coordinates"'),
        ({"type": "Point", "coordinates": [121.5]}, "must be a position"),
        ({"type": "Point", "coordinates": ["121.5", 29.8]}, "not a number"),
        ('{"type": "Point", "coordinates": [NaN, 29.8]}', "non-finite coordinate"),
        ({"type": "Point", "coordinates": [float("inf"), 29.8]}, "non-finite coordinate"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "is not closed"),
        ({"type": "Polygon", "coordinates": [[SQUARE[0], SQUARE[1], SQUARE[0]]]}, "at least 4 positions"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[121.5, 29.8], [121.6, 29.9], [121.6, 29.8], [121.5, 29.9], [121.5, 29.8]]],
            },
            "Self-intersection",
        ),
        (
            {"type": "Point", "coordinates": [29.87, 121.55]},
            r"outside the valid area of EPSG:4326.*\[longitude, latitude\]",
        ),
        ({"type": "MultiPolygon", "coordinates": []}, "non-empty array"),
    ],
)
def test_bad_geometry_is_refused_with_a_reason(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse(value)


def test_the_vertex_limit() -> None:
    ring = [[121.5 + 0.001 * i, 29.8] for i in range(50)] + [[121.55, 29.9], [121.5, 29.8]]
    assert isinstance(parse({"type": "Polygon", "coordinates": [ring]}, limit=100), shapely.Polygon)
    with pytest.raises(InvalidArgument, match="more than 20 vertices"):
        parse({"type": "Polygon", "coordinates": [ring]}, limit=20)


def test_points_must_be_points() -> None:
    with pytest.raises(InvalidArgument, match="must be a Point"):
        geojson.parse_point({"type": "Polygon", "coordinates": [SQUARE]}, "EPSG:4326")


def test_bbox() -> None:
    box = geojson.parse_bbox([121.5, 29.8, 121.6, 29.9], "EPSG:4326")
    assert tuple(shapely.bounds(box)) == pytest.approx((121.5, 29.8, 121.6, 29.9))
    with pytest.raises(InvalidArgument, match="min > max"):
        geojson.parse_bbox([121.6, 29.8, 121.5, 29.9], "EPSG:4326")
    with pytest.raises(InvalidArgument, match="4 numbers"):
        geojson.parse_bbox([121.6, 29.8, 121.5], "EPSG:4326")
    with pytest.raises(InvalidArgument, match="outside the valid area of GCJ-02"):
        geojson.parse_bbox([-74.1, 40.6, -73.9, 40.8], "GCJ-02")


def test_output_is_rounded_geojson_in_the_requested_crs() -> None:
    point = shapely.Point(121.551234567891, 29.87)
    assert geojson.to_geojson(point, "EPSG:4326") == {"type": "Point", "coordinates": [121.5512346, 29.87]}
    x, _ = geojson.to_geojson(point, "EPSG:3857")["coordinates"]
    assert x == round(x, 2) and 13_000_000 < x < 14_000_000


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4490", "EPSG:3857", "GCJ-02"])
def test_points_take_the_fast_path_with_the_same_output(crs: str) -> None:
    import json

    import numpy as np

    from connectors.spatial import crs as crs_mod

    rng = np.random.default_rng(5)
    points = [
        shapely.Point(x, y) for x, y in zip(rng.uniform(121.0, 122.0, 2000), rng.uniform(29.0, 30.5, 2000), strict=True)
    ]
    decimals = crs_mod.CRSS[crs].decimals

    def written(geometry: shapely.Geometry) -> object:  # the general path: GeoJSON text via GEOS
        def move(c: np.ndarray) -> np.ndarray:
            return np.round(crs_mod.convert_coords(c, crs_mod.STORAGE, crs), decimals)

        moved = shapely.transform(geometry, move)
        return json.loads(shapely.to_geojson(moved))

    assert geojson.to_geojson_many(points, crs) == [written(p) for p in points]
    # Mixed with a polygon, or a point with z: the general path, still equal.
    mixed = [*points[:3], shapely.box(121.1, 29.1, 121.2, 29.2), shapely.Point(121.5, 29.5, 7.0)]
    assert geojson.to_geojson_many(mixed, crs) == [written(g) for g in mixed]
