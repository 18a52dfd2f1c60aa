"""The license store connector passes the SDK's compliance suite."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.license import LicenseConnector
from connectors.testing import ConnectorComplianceSuite


class TestLicenseEnterprises(ConnectorComplianceSuite):
    entity = "Enterprise"
    filter_field = "enterprises.district_code"
    filter_value = "330203"

    @pytest.fixture
    async def connector(self, demo_dir: Path) -> AsyncIterator[LicenseConnector]:
        connector = LicenseConnector(f"sqlite+aiosqlite:///{demo_dir / 'license.sqlite'}")
        await connector.open()
        yield connector
        await connector.aclose()

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        with sqlite3.connect(demo_dir / "license.sqlite") as conn:
            mine = conn.execute("SELECT uscc FROM enterprises WHERE district_code = '330203' LIMIT 3").fetchall()
            other = conn.execute("SELECT uscc FROM enterprises WHERE district_code != '330203' LIMIT 3").fetchall()
        return [r[0] for r in mine + other]
