"""CRS handling: GCJ-02 forward and inverse, PROJ round trips, valid areas, names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from connectors.errors import InvalidArgument
from connectors.spatial import crs
from tests.connectors.spatial.reference import gcj02

GEOD = Geod(ellps="WGS84")


# A grid over Ningbo and its sea, 28.8-30.5 N, 120.7-122.3 E.
LON, LAT = (a.ravel() for a in np.meshgrid(np.linspace(120.7, 122.3, 33), np.linspace(28.8, 30.5, 35)))


def test_gcj02_forward_matches_the_published_formula() -> None:
    lon, lat = crs.wgs84_to_gcj02(LON, LAT)
    for i in range(0, len(LON), 37):
        expected = gcj02(float(LON[i]), float(LAT[i]))
        assert (lon[i], lat[i]) == pytest.approx(expected, abs=1e-12)
    # In and around Ningbo the offset is a few hundred metres, to the east.
    assert (lon > LON).all()
    offset = GEOD.inv(LON, LAT, lon, lat)[2]
    assert 300 < offset.min() and offset.max() < 800


def test_gcj02_round_trip_is_under_a_centimetre_in_ningbo() -> None:
    g_lon, g_lat = crs.wgs84_to_gcj02(LON, LAT)
    w_lon, w_lat = crs.gcj02_to_wgs84(g_lon, g_lat)
    error = GEOD.inv(LON, LAT, w_lon, w_lat)[2]
    assert error.max() < 0.01  # metres; the issue asks for < 1 m
    # and the other way round: a GCJ-02 position read back from WGS 84
    back = crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(LON, LAT))
    assert GEOD.inv(LON, LAT, back[0], back[1])[2].max() < 0.01


@pytest.mark.parametrize("name", ["EPSG:4326", "EPSG:4490", "EPSG:3857", "GCJ-02"])
def test_every_crs_round_trips_through_storage(name: str) -> None:
    coords = np.column_stack([LON, LAT])
    there = crs.convert_coords(coords, crs.STORAGE, name)
    back = crs.convert_coords(there, name, crs.STORAGE)
    assert GEOD.inv(LON, LAT, back[:, 0], back[:, 1])[2].max() < 0.01
    if name == "EPSG:3857":
        expected = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(LON, LAT)
        assert np.allclose(there[:, 0], expected[0], atol=1e-6) and np.allclose(there[:, 1], expected[1], atol=1e-6)


def test_metric_distances_are_metres_not_degrees() -> None:
    a, b = shapely.Point(121.55, 29.87), shapely.Point(121.60, 29.90)
    metric = shapely.distance(crs.to_metric(a), crs.to_metric(b))
    geodesic = GEOD.inv(121.55, 29.87, 121.60, 29.90)[2]
    assert abs(metric - geodesic) / geodesic < 2e-4  # UTM 51N scale error in Ningbo


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (None, "EPSG:4326"),
        ("wgs84", "EPSG:4326"),
        ("CGCS2000", "EPSG:4490"),
        ("epsg:3857", "EPSG:3857"),
        ("gcj02", "GCJ-02"),
    ],
)
def test_crs_names(given: str | None, canonical: str) -> None:
    assert crs.normalise_crs(given) == canonical


def test_unknown_crs_names_the_accepted_ones() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown CRS 'EPSG:2000'.*EPSG:4490.*GCJ-02"):
        crs.normalise_crs("EPSG:2000")


@pytest.mark.parametrize(
    ("name", "position"),
    [("EPSG:4326", (29.87, 121.55)), ("EPSG:4490", (10.0, 10.0)), ("EPSG:3857", (3e7, 0.0)), ("GCJ-02", (-74.0, 40.7))],
)
def test_positions_outside_the_valid_area_are_refused(name: str, position: tuple[float, float]) -> None:
    with pytest.raises(InvalidArgument, match="outside the valid area of " + name):
        crs.check_area(np.array([position]), name)


def test_plain_points_and_a_point_layers_metric_positions(demo_dir: Path) -> None:
    from connectors.spatial.store import load

    points = np.array([shapely.Point(121.5, 29.9), shapely.Point(121.6, 29.8)], dtype=object)
    assert crs.plain_points(points)
    for other in (shapely.Point(121.5, 29.9, 3.0), shapely.Point(), shapely.box(121.0, 29.0, 121.1, 29.1)):
        assert not crs.plain_points(np.array([points[0], other], dtype=object))
    assert not crs.plain_points(np.array([], dtype=object))

    store = load(demo_dir / "spatial.gpkg")
    pois, parcels = store.layers["pois"], store.layers["parcels"]
    xy = pois.metric_points()
    assert xy is not None and xy.shape == (len(pois), 2)
    # Row for row the positions the general path measures from (metric_array), bit for bit.
    expected = shapely.get_coordinates(crs.metric_array(pois.geometries))
    assert np.array_equal(xy, expected)
    assert pois.metric_points() is xy  # computed once
    assert parcels.metric_points() is None  # polygons: distances stay with shapely
