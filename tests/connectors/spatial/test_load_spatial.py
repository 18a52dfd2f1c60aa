"""``citygraph load spatial``: GeoPackage, Shapefile and GeoJSON into PostGIS, validated feature by
feature, never half-loaded, resumable; what it loads serves exactly like the embedded engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pyogrio  # type: ignore[import-untyped]
import pytest

from connectors.base import SearchRequest
from connectors.demo_pg import dsn
from connectors.load import LoadError, load, load_command
from connectors.spatial import SpatialConnector
from tests.postgres import PgServer, throwaway_database


@pytest.fixture
def target(pg_server: PgServer) -> Iterator[str]:
    with throwaway_database(pg_server, "load_spatial") as url:
        yield url


def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn(url))
        try:
            return [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(run())


def feature(fid: str | None, coordinates: Any, shape: str = "Point", **properties: Any) -> dict[str, Any]:
    props = {"valid_from": "2020-01-01", **properties} | ({"fid": fid} if fid is not None else {})
    geometry = None if coordinates is None else {"type": shape, "coordinates": coordinates}
    return {"type": "Feature", "properties": props, "geometry": geometry}


BOWTIE = [[[121.5, 29.8], [121.6, 29.9], [121.6, 29.8], [121.5, 29.9], [121.5, 29.8]]]
FEATURES = [
    feature("S1", [121.55, 29.87], kind="school", height="12 m"),
    feature("S2", BOWTIE, "Polygon"),
    feature("S3", [29.87, 121.55]),  # latitude first
    feature("S4", [121.5, 29.8], valid_from="2020-13-01"),
    feature(None, [121.5, 29.8]),
    feature("S1", [121.5, 29.8]),  # the same version again
    feature("S7", None, valid_to="2019-01-01"),
    feature("S8", [121.5, 29.8], district_code="110101"),
    feature("S9", [121.52, 29.85], valid_to="2024-01-01"),
]
EXPECTED = [
    "feature 2: geom: invalid geometry: Self-intersection[121.55 29.85]",
    "feature 3: geom: position [29.87, 121.55] is outside the valid area of EPSG:4490",
    "feature 4: valid_from: not a real date: '2020-13-01'",
    "feature 5: fid: required, but empty",
    "feature 6: fid: duplicate version S1 from 2020-01-01: feature 1 has it already",
    "feature 7: geom: required, but empty",
    "feature 7: valid_to: 2019-01-01 is not after valid_from 2020-01-01",
    "feature 8: district_code: unknown district '110101'",
]


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_bad_features_are_reported_by_number_and_refuse_loads_nothing(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_geojson(tmp_path / "schools.geojson", FEATURES)
    assert load_command("spatial", path, target) == 1
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(EXPECTED) + 1 and "refused, nothing was loaded" in printed[-1]
    assert all(line.startswith(prefix) for line, prefix in zip(printed, EXPECTED, strict=False))
    assert fetch(target, "SELECT count(*) FROM spatial_features") == [(0,)]
    assert fetch(target, "SELECT count(*) FROM spatial_layers") == [(0,)]

    report = load("spatial", None, path, target, on_error="skip")
    assert (report.rows_loaded, report.bad_row_count, report.unit) == (2, 7, "feature")
    rows = fetch(target, "SELECT fid, valid_to::text, properties::text FROM spatial_features ORDER BY fid")
    assert rows == [("S1", None, '{"height": "12 m"}'), ("S9", "2024-01-01", '{"height": null}')]
    assert fetch(target, "SELECT name, geometry_type, filterable FROM spatial_layers") == [
        ("schools", "Point", "kind,district_code")
    ]


@pytest.fixture(scope="module")
def exports(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's districts and pois as a department would send them: a GeoPackage, a Shapefile in
    Web Mercator, a GeoJSON file."""
    folder = tmp_path_factory.mktemp("exports")
    gpkg = demo_dir / "spatial.gpkg"
    out: dict[str, Path] = {}
    for name in ("districts", "pois"):
        frame = pyogrio.read_dataframe(gpkg, layer=name)
        out[name] = folder / f"{name}.gpkg"
        pyogrio.write_dataframe(frame, out[name], layer=name, driver="GPKG", layer_options={"FID": "ogc_fid"})
    pois = pyogrio.read_dataframe(gpkg, layer="pois")
    out["shapefile"] = folder / "pois_mercator.shp"
    columns = ["fid", "kind", "name", "valid_from", "valid_to", "geometry"]  # Shapefile names: 10 characters
    pyogrio.write_dataframe(pois.to_crs("EPSG:3857")[columns], out["shapefile"], driver="ESRI Shapefile")
    return out


async def _pages(connector: SpatialConnector, where: dict[str, Any]) -> list[Any]:
    await connector.open()
    try:
        page = await connector.search(SearchRequest("Feature", None, {}, where, first=500))
        return list(page.records)
    finally:
        await connector.aclose()


def test_loaded_layers_serve_like_the_embedded_engine(
    target: str, demo_dir: Path, exports: dict[str, Path], tmp_path: Path
) -> None:
    for name in ("districts", "pois"):
        report = load("spatial", None, exports[name], target, batch_size=100)
        assert report.ok and report.rows_loaded > 10
    where = {"layer": "pois", "bbox": [121.4, 29.7, 121.7, 30.0], "crs": "GCJ-02"}
    embedded = asyncio.run(_pages(SpatialConnector.from_config({}, demo_dir), where))
    postgis = asyncio.run(_pages(SpatialConnector.from_config({"url": target}, demo_dir), where))
    assert embedded and json.dumps(embedded, default=str) == json.dumps(postgis, default=str)
    # the Shapefile came in Web Mercator: back in CGCS2000 to a few nanodegrees
    report = load("spatial", None, exports["shapefile"], target)
    assert report.ok and report.rows_loaded == len(pyogrio.read_dataframe(exports["pois"]))
    [(worst,)] = fetch(
        target,
        """SELECT max(ST_Distance(a.geom, b.geom)) FROM spatial_features a JOIN spatial_features b
           ON a.fid = b.fid AND a.valid_from = b.valid_from WHERE a.layer = 'pois' AND b.layer = 'pois_mercator'""",
    )
    assert worst < 1e-8


def crash_after(batches: int) -> Callable[[int, int], None]:
    def hook(done: int, _last: int) -> None:
        if done == batches:
            raise RuntimeError(f"killed after {done} batches")

    return hook


def test_a_crash_leaves_whole_batches_and_a_rerun_resumes(target: str, exports: dict[str, Path]) -> None:
    total = len(pyogrio.read_dataframe(exports["pois"]))
    with pytest.raises(RuntimeError, match="killed after 2 batches"):
        load("spatial", None, exports["pois"], target, batch_size=40, after_batch=crash_after(2))
    assert fetch(target, "SELECT count(*) FROM spatial_features") == [(80,)]
    report = load("spatial", None, exports["pois"], target, batch_size=40)
    assert (report.resumed_from_line, report.rows_before, report.rows_loaded) == (81, 80, total - 80)
    assert fetch(target, "SELECT count(*), count(DISTINCT (fid, valid_from)) FROM spatial_features") == [(total, total)]


def test_files_that_cannot_be_loaded_are_refused_whole(target: str, tmp_path: Path, exports: dict[str, Path]) -> None:
    frame = pyogrio.read_dataframe(exports["pois"]).set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(frame[["fid", "valid_from", "geometry"]], tmp_path / "no_crs.shp")
    with pytest.raises(LoadError, match="declares no coordinate reference system"):
        load("spatial", None, tmp_path / "no_crs.shp", target)
    with pytest.raises(LoadError, match="spatial loads into PostgreSQL with PostGIS"):
        load("spatial", None, exports["pois"], f"sqlite:///{tmp_path / 'x.sqlite'}")
    two = tmp_path / "two.gpkg"
    for name in ("a", "b"):
        pyogrio.write_dataframe(
            frame.set_crs("EPSG:4490").iloc[:3], two, layer=name, driver="GPKG", layer_options={"FID": "ogc_fid"}
        )
    with pytest.raises(LoadError, match="holds the layers a, b: pass --table LAYER"):
        load("spatial", None, two, target)
    assert load("spatial", "b", two, target).rows_loaded == 3
