"""The spatial demo data: deterministic, plausible districts, every feature where it says it is."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio  # type: ignore[import-untyped]
import pytest
import shapely

from connectors.identifiers import NINGBO_DISTRICTS
from connectors.spatial.demo import REFORM_DATE, generate

LAYERS = ("districts", "parcels", "pois", "enterprise_locations", "iot_devices")


def read(path: Path, layer: str) -> Any:
    return pyogrio.read_dataframe(path, layer=layer)


def current_districts(path: Path) -> dict[str, Any]:
    frame = pyogrio.read_dataframe(path, layer="districts")
    frame = frame[frame["valid_to"].isna()]
    return dict(zip(frame["fid"], frame.geometry, strict=True))


def test_same_seed_same_file_content(tmp_path: Path, demo_dir: Path) -> None:
    today = dt.date(2026, 6, 1)
    sizes: dict[str, Any] = {"parcels": 60, "pois": 40, "devices": 12, "days": 3}
    a = generate(tmp_path / "a.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, today=today, **sizes)
    b = generate(tmp_path / "b.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, today=today, **sizes)
    c = generate(tmp_path / "c.gpkg", credit_db=demo_dir / "credit.sqlite", seed=4, today=today, **sizes)
    assert a.features == b.features and a.readings == b.readings
    for layer in LAYERS:
        fa, fb = read(a.path, layer), read(b.path, layer)
        assert fa.drop(columns="geometry").equals(fb.drop(columns="geometry"))
        assert shapely.equals_exact(fa.geometry.values, fb.geometry.values, 1e-12).all()
    assert not read(a.path, "parcels").drop(columns="geometry").equals(read(c.path, "parcels").drop(columns="geometry"))


def test_ten_current_districts_partition_the_city(demo_dir: Path) -> None:
    districts = current_districts(demo_dir / "spatial.gpkg")
    assert set(districts) == set(NINGBO_DISTRICTS)
    for code, polygon in districts.items():
        assert shapely.is_valid(polygon) and isinstance(polygon, shapely.MultiPolygon), code
    union = shapely.union_all(list(districts.values()))
    codes = sorted(districts)
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            assert shapely.area(shapely.intersection(districts[a], districts[b])) < 1e-9, (a, b)
    # the outline covers roughly Ningbo's 9,800 km² (plus some shore)
    assert 1.0 < union.area < 1.4  # square degrees at 30°N: ~9,600-13,400 km²


def test_the_2016_reform_is_in_the_history(demo_dir: Path) -> None:
    frame = read(demo_dir / "spatial.gpkg", "districts")
    jiangdong = frame[frame["fid"] == "330204"]
    assert list(jiangdong["valid_to"]) == [REFORM_DATE.isoformat()] and list(jiangdong["name"]) == ["江东区"]
    assert len(frame[frame["fid"] == "330203"]) == 2


@pytest.mark.parametrize("layer", ["parcels", "pois", "enterprise_locations", "iot_devices"])
def test_every_feature_lies_in_its_district(demo_dir: Path, layer: str) -> None:
    districts = current_districts(demo_dir / "spatial.gpkg")
    frame = read(demo_dir / "spatial.gpkg", layer)
    for code, geometry in zip(frame["district_code"], frame.geometry, strict=True):
        assert shapely.contains(districts[code], geometry), (layer, code)
    starts = frame["valid_from"].to_numpy(dtype=object)
    ends = frame["valid_to"].to_numpy(dtype=object)
    assert all(e is None or e != e or s < e for s, e in zip(starts, ends, strict=True))


def test_parcels_lie_in_exactly_one_district_and_some_changed(demo_dir: Path) -> None:
    districts = current_districts(demo_dir / "spatial.gpkg")
    frame = read(demo_dir / "spatial.gpkg", "parcels")
    geometries = frame.geometry.values
    hits = sum(shapely.intersects(geometries, d).astype(int) for d in districts.values())
    assert (np.asarray(hits) == 1).all()
    assert frame["fid"].duplicated().any() and frame["valid_to"].notna().any()
    assert frame["fid"].str.len().eq(19).all()


def test_one_location_per_credit_subject(demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        subjects = dict(conn.execute("SELECT uscc, district_code FROM credit_subjects").fetchall())
    frame = read(demo_dir / "spatial.gpkg", "enterprise_locations")
    current = frame[frame["valid_to"].isna()]
    assert dict(zip(current["fid"], current["district_code"], strict=True)) == subjects


def test_readings_are_hourly_and_plausible(demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "spatial.gpkg") as conn:
        kinds = conn.execute(
            "SELECT d.kind, min(r.value), max(r.value), count(*) FROM iot_readings r "
            "JOIN iot_devices d ON d.fid = r.device_id GROUP BY d.kind"
        ).fetchall()
        gaps = conn.execute(
            "SELECT DISTINCT b.ts - a.ts FROM iot_readings a JOIN iot_readings b ON b.fid = a.fid + 1 "
            "AND b.device_id = a.device_id"
        ).fetchall()
        registered = conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'iot_readings'").fetchone()
    ranges = {kind: (lo, hi) for kind, lo, hi, _ in kinds}
    assert set(ranges) == {"STREET_LIGHT", "WASTE_BIN", "WATER_LEVEL"}
    assert 0 <= ranges["WASTE_BIN"][0] and ranges["WASTE_BIN"][1] <= 100
    assert ranges["STREET_LIGHT"][1] <= 250 and 1 < ranges["WATER_LEVEL"][0] < ranges["WATER_LEVEL"][1] < 6
    assert gaps == [(3600,)] and registered == ("attributes",)


def _boundary_file(path: Path, districts: dict[str, Any], driver: str = "GeoJSON") -> Path:
    """The given metric-free (EPSG:4490) polygons written as a WGS 84 boundary file by adcode."""
    import geopandas as gpd  # type: ignore[import-untyped]

    frame = gpd.GeoDataFrame(
        {"adcode": list(districts), "name": [NINGBO_DISTRICTS[c][0] for c in districts]},
        geometry=list(districts.values()),
        crs="EPSG:4490",
    ).to_crs("EPSG:4326")
    frame.to_file(path, driver=driver, engine="pyogrio")
    return path


def test_a_boundary_file_replaces_the_voronoi_partition(tmp_path: Path, demo_dir: Path) -> None:
    # "Official" boundaries that differ from the demo's: each district shrunk by 300 m.
    demo = current_districts(demo_dir / "spatial.gpkg")
    from connectors.spatial import crs as crs_mod

    shrunk = {
        code: crs_mod.convert(
            shapely.buffer(crs_mod.convert(g, crs_mod.STORAGE, crs_mod.METRIC), -300.0), crs_mod.METRIC, crs_mod.STORAGE
        )
        for code, g in demo.items()
    }
    source = _boundary_file(tmp_path / "districts.geojson", shrunk)
    sizes: dict[str, Any] = {"parcels": 80, "pois": 60, "devices": 12, "days": 1}
    stats = generate(tmp_path / "s.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, boundaries=source, **sizes)
    written = current_districts(stats.path)
    assert set(written) == set(NINGBO_DISTRICTS)
    for code, polygon in written.items():
        # The file's polygon (through WGS 84 and back), not the Voronoi cell it was shrunk from.
        assert shapely.hausdorff_distance(polygon, shrunk[code]) < 1e-6, code
        assert shapely.area(polygon) < shapely.area(demo[code])
    # Every other layer is placed inside the file's districts.
    for layer in ("pois", "enterprise_locations", "iot_devices"):
        frame = read(stats.path, layer)
        frame = frame[frame["valid_to"].isna()]
        for code, geometry in zip(frame["district_code"], frame.geometry, strict=True):
            assert shapely.covers(written[code], geometry), (layer, code)


def test_a_bad_boundary_file_is_refused_with_every_problem(tmp_path: Path, demo_dir: Path) -> None:
    demo = current_districts(demo_dir / "spatial.gpkg")
    codes = sorted(demo)
    bowtie = shapely.Polygon([(121.4, 29.8), (121.5, 29.9), (121.5, 29.8), (121.4, 29.9), (121.4, 29.8)])
    broken = {c: demo[c] for c in codes[2:]}
    broken[codes[2]] = bowtie  # self-intersecting
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"adcode": [*broken, "110101"]}, geometry=[*broken.values(), demo[codes[0]]], crs="EPSG:4490"
    )
    path = tmp_path / "bad.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    with pytest.raises(ValueError) as refused:
        generate(tmp_path / "s.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, boundaries=path)
    message = str(refused.value)
    assert "feature 1: invalid polygon (Self-intersection" in message
    assert "feature 9: adcode '110101' is not one of Ningbo's ten districts" in message
    assert f"districts missing: {codes[0]}, {codes[1]}" in message
    assert not (tmp_path / "s.gpkg").exists()
    no_adcode = tmp_path / "no-adcode.geojson"
    gpd.GeoDataFrame({"code": codes}, geometry=[demo[c] for c in codes], crs="EPSG:4490").to_file(
        no_adcode, driver="GeoJSON", engine="pyogrio"
    )
    with pytest.raises(ValueError, match="no 'adcode' column"):
        generate(tmp_path / "s.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, boundaries=no_adcode)
    with pytest.raises(ValueError, match="cannot read the boundary file"):
        generate(tmp_path / "s.gpkg", credit_db=demo_dir / "credit.sqlite", seed=3, boundaries=tmp_path / "nope.shp")


def test_demo_data_cli_refuses_a_bad_boundary_file_before_writing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway import cli

    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}')
    result = CliRunner().invoke(
        cli, ["demo-data", "--scale", "20", "--out", str(tmp_path / "out"), "--districts", str(bad)]
    )
    assert result.exit_code == 2, result.output
    assert "no 'adcode' column" in result.output or "districts missing" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layer", LAYERS)
def test_every_version_holds_for_a_day_and_is_unique(layer: str, tmp_path: Path, demo_dir: Path) -> None:
    # Enough enterprises, parcels and points of interest that a same-day change would show up
    # (one did at 340,000 enterprises, and PostGIS refused the copy).
    made = generate(tmp_path / "v.gpkg", credit_db=demo_dir / "credit.sqlite", parcels=3000, pois=3000, days=1)
    frame = read(made.path, layer)
    ended = frame[frame["valid_to"].notna()]
    assert (ended["valid_to"] > ended["valid_from"]).all()
    assert not frame.duplicated(subset=["fid", "valid_from"]).any()
