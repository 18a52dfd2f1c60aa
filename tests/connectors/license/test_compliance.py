"""The license store connector passes the SDK's compliance suite on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.license import LicenseConnector
from connectors.testing import ConnectorComplianceSuite
from tests.postgres import BACKENDS, demo_url


class TestLicenseEnterprises(ConnectorComplianceSuite):
    entity = "Enterprise"
    filter_field = "enterprises.district_code"
    filter_value = "330203"

    @pytest.fixture(params=BACKENDS)
    def url(self, request: pytest.FixtureRequest, demo_dir: Path) -> str:
        """The demo database on each backend (the same rows: ``tests/postgres.py`` copies them)."""
        return demo_url(request, demo_dir, "license")

    @pytest.fixture
    async def connector(self, url: str) -> AsyncIterator[LicenseConnector]:
        connector = LicenseConnector(url)
        await connector.open()
        yield connector
        await connector.aclose()

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        with sqlite3.connect(demo_dir / "license.sqlite") as conn:
            mine = conn.execute("SELECT uscc FROM enterprises WHERE district_code = '330203' LIMIT 3").fetchall()
            other = conn.execute("SELECT uscc FROM enterprises WHERE district_code != '330203' LIMIT 3").fetchall()
        return [r[0] for r in mine + other]
