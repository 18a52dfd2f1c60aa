"""The spatial connector passes the SDK's compliance suite (features and devices) on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyogrio  # type: ignore[import-untyped]
import pytest

from connectors.base import JSON
from connectors.spatial import SpatialConnector
from connectors.testing import ConnectorComplianceSuite
from tests.postgres import BACKENDS


def _current(demo_dir: Path, layer: str) -> list[tuple[str, str]]:
    frame = pyogrio.read_dataframe(demo_dir / "spatial.gpkg", layer=layer, read_geometry=False)
    frame = frame[frame["valid_to"].isna()]
    return [(str(f), str(d)) for f, d in zip(frame["fid"], frame["district_code"], strict=True)]


@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest) -> dict[str, JSON]:
    """The demo GeoPackage (the default path), then the same data in PostGIS."""
    return {} if request.param == "sqlite" else {"url": request.getfixturevalue("pg_demo").spatial}


@pytest.fixture
async def opened(config: dict[str, JSON], demo_dir: Path) -> AsyncIterator[SpatialConnector]:
    connector = SpatialConnector.from_config(config, demo_dir)
    await connector.open()
    yield connector
    await connector.aclose()


class TestSpatialFeatures(ConnectorComplianceSuite):
    entity = "Feature"
    filter_field = "features.district_code"
    filter_value = "330203"

    @pytest.fixture
    def connector(self, opened: SpatialConnector) -> SpatialConnector:
        return opened

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        rows = _current(demo_dir, "parcels")
        mine = [f"parcels:{f}" for f, d in rows if d == "330203"][:3]
        other = [f"parcels:{f}" for f, d in rows if d != "330203"][:2]
        return [*mine, *other, f"pois:{_current(demo_dir, 'pois')[0][0]}"]


class TestSpatialDevices(ConnectorComplianceSuite):
    entity = "Device"
    filter_field = "devices.district_code"
    filter_value = "330203"

    @pytest.fixture
    def connector(self, opened: SpatialConnector) -> SpatialConnector:
        return opened

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        rows = _current(demo_dir, "iot_devices")
        return [f for f, d in rows if d == "330203"][:3] + [f for f, d in rows if d != "330203"][:3]

    @property
    def search_entity(self) -> str:
        return "District"
