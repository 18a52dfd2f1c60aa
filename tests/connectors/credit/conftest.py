"""The credit connector on the session's demo data, on SQLite and then on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.credit import CreditConnector
from tests.postgres import BACKENDS, demo_url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, demo_dir: Path) -> str:
    return demo_url(request, demo_dir, "credit")  # a sync fixture: it may start PostgreSQL's loop


@pytest.fixture
async def credit(url: str) -> AsyncIterator[CreditConnector]:
    connector = CreditConnector(url)
    await connector.open()
    yield connector
    await connector.aclose()
