"""The spatial demo set in PostGIS: ``citygraph demo-data --to`` copies it bit for bit, and
``citygraph migrate`` covers the spatial schema when the connector's URL is PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pyogrio  # type: ignore[import-untyped]
import pytest
import shapely
from typer.testing import CliRunner

from connectors.migrate import migrate
from gateway import cli
from tests.conftest import SECRET
from tests.connectors.spatial.test_load_spatial import fetch
from tests.postgres import PgServer, throwaway_database

runner = CliRunner()


@pytest.fixture
def target(pg_server: PgServer) -> Iterator[str]:
    with throwaway_database(pg_server, "pgload") as url:
        yield url


def test_demo_data_to_postgresql_copies_the_spatial_layers_exactly(target: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(cli, ["demo-data", "--scale", "40", "--out", str(out), "--to", target])
    assert result.exit_code == 0, result.output
    gpkg = out / "spatial.gpkg"
    names = sorted(str(n) for n, kind in pyogrio.list_layers(gpkg) if kind is not None)  # not iot_readings
    assert [r[0] for r in fetch(target, "SELECT name FROM spatial_layers ORDER BY name")] == names
    for name in names:
        frame = pyogrio.read_dataframe(gpkg, layer=name)
        rows = fetch(
            target,
            f"SELECT fid, valid_from::text, ST_AsBinary(geom) FROM spatial_features WHERE layer = '{name}' "
            "ORDER BY fid, valid_from",
        )
        stored = {(f, v): g for f, v, g in rows}
        assert len(stored) == len(frame)
        for fid, valid_from, geometry in zip(frame["fid"], frame["valid_from"], frame.geometry, strict=True):
            assert shapely.equals_exact(shapely.from_wkb(stored[(fid, valid_from)]), geometry, 0.0)
    with sqlite3.connect(gpkg) as conn:
        (readings,) = conn.execute("SELECT count(*) FROM iot_readings").fetchone()
    assert fetch(target, "SELECT count(*) FROM spatial_readings") == [(readings,)]


def test_migrate_covers_the_spatial_schema_of_a_postgresql_url(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYGRAPH_AUTH__SECRET", SECRET)
    result = runner.invoke(cli, ["migrate", "spatial"])
    assert result.exit_code != 0 and "unknown component 'spatial'" in result.output  # a GeoPackage: nothing to migrate
    monkeypatch.setenv("CITYGRAPH_CONNECTORS__SPATIAL__URL", target)
    for _ in range(2):  # idempotent
        result = runner.invoke(cli, ["migrate", "spatial"])
        assert result.exit_code == 0 and "spatial: at head" in result.output, result.output
    indexes = fetch(target, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'spatial_features'")
    gist = {name for name, definition in indexes if "USING gist" in definition}
    assert gist == {"ix_spatial_features_geom", "ix_spatial_features_geom_m"}
    assert fetch(target, "SELECT version_num FROM citygraph_spatial_version") == [("spatial_0002",)]
    # The layer leads both GiST indexes (btree_gist), so one scan answers layer, place and day.
    assert all("(layer, geom" in d for name, d in indexes if name in gist), indexes
    with pytest.raises(ValueError, match="spatial migrates only a PostgreSQL database with PostGIS"):
        migrate("spatial", f"sqlite:///{tmp_path / 'x.sqlite'}")
