"""The credit connector passes the SDK's compliance suite on SQLite and PostgreSQL (and so does the fake)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.credit import CreditConnector
from connectors.testing import ConnectorComplianceSuite, FakeConnector
from tests.postgres import BACKENDS, demo_url


class TestCreditEnterprises(ConnectorComplianceSuite):
    entity = "Enterprise"
    filter_field = "credit_subjects.district_code"
    filter_value = "330203"

    @property
    def search_entity(self) -> str:
        return "CreditRecord"

    @pytest.fixture(params=BACKENDS)
    def url(self, request: pytest.FixtureRequest, demo_dir: Path) -> str:
        """The demo database on each backend (the same rows: ``tests/postgres.py`` copies them)."""
        return demo_url(request, demo_dir, "credit")

    @pytest.fixture
    async def connector(self, url: str) -> AsyncIterator[CreditConnector]:
        connector = CreditConnector(url)
        await connector.open()
        yield connector
        await connector.aclose()

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
            rows = (
                conn.execute("SELECT uscc FROM credit_subjects WHERE district_code = '330203' LIMIT 3").fetchall()
                + conn.execute("SELECT uscc FROM credit_subjects WHERE district_code != '330203' LIMIT 3").fetchall()
            )
        return [r[0] for r in rows]


class TestFakeConnector(ConnectorComplianceSuite):
    entity = "Item"
    filter_field = "item.district"
    filter_value = "330203"

    @pytest.fixture
    async def connector(self) -> AsyncIterator[FakeConnector]:
        yield FakeConnector({"Item": [{"id": f"k{i}", "district": "330203" if i % 2 else "330205"} for i in range(10)]})

    @pytest.fixture
    def sample_keys(self) -> list[str]:
        return ["k1", "k2", "k3"]
