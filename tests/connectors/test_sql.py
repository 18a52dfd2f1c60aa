"""Engines from connector config on PostgreSQL: pool settings, plain URLs, cancelled statements."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.pool import QueuePool

from connectors.credit import CreditConnector
from connectors.errors import ConnectorConfigError
from connectors.sql import make_engine, storable, utc
from tests.postgres import PgDemo


async def test_pool_settings_come_from_the_connector_config(pg_demo: PgDemo) -> None:
    plain = pg_demo.credit.replace("postgresql+asyncpg://", "postgresql://")  # a URL without a driver
    connector = CreditConnector(plain, {"pool_size": 3, "max_overflow": 1, "pool_timeout": 0.5, "pool_recycle": 600})
    await connector.open()
    try:
        pool = connector.engine.pool
        assert connector.engine.dialect.driver == "asyncpg" and isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (3, 1, 0.5, 600)
        assert (await connector.health()).ok
        # Four connections are the most this pool opens: a fifth caller waits pool_timeout, then fails.
        held = [await connector.engine.connect() for _ in range(4)]
        try:
            with pytest.raises(Exception, match="QueuePool limit"):
                await connector.engine.connect()
        finally:
            for conn in held:
                await conn.close()
    finally:
        await connector.aclose()


@pytest.mark.parametrize("value", ["5", True, [5], 2.5])
def test_pool_settings_of_the_wrong_type_are_refused(value: object) -> None:
    key = "pool_size" if not isinstance(value, float) else "max_overflow"
    with pytest.raises(ConnectorConfigError, match=key):
        make_engine("credit", "postgresql+asyncpg://db/credit", {key: value})  # type: ignore[dict-item]


async def test_a_cancelled_statement_leaves_the_pool_usable(pg_demo: PgDemo) -> None:
    """The loaders cancel a connector call at its ``timeout_s``: the statement must stop on the
    server and the one pooled connection must serve the next request."""
    connector = CreditConnector(pg_demo.credit, {"pool_size": 1, "max_overflow": 0})
    await connector.open()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connector._rows(select(func.pg_sleep(30))), 0.2)
        assert (await connector.health()).ok
        assert time.monotonic() - started < 5
        async with connector.engine.connect() as conn:
            sleeping = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
                )
            )
            assert sleeping.scalar() == 0
    finally:
        await connector.aclose()


@pytest.mark.parametrize(
    "naive",
    [
        dt.datetime(2025, 3, 1, 8, 30, 12, 123456),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2025, 11, 2, 1, 30, fold=1),  # fold is kept, as replace() keeps it
    ],
)
def test_utc_is_the_moment_with_the_utc_zone(naive: dt.datetime) -> None:
    aware = utc(naive)
    expected = naive.replace(tzinfo=dt.UTC)
    assert (aware, aware.tzinfo, aware.fold, type(aware)) == (expected, dt.UTC, expected.fold, dt.datetime)
    assert aware.isoformat() == expected.isoformat()


def test_storable_refuses_nul_and_lone_surrogates_and_takes_the_rest() -> None:
    assert storable("91330203MA2C4CE03N") and storable("") and storable("宁波市 ✓")
    assert not storable("9133\x00") and not storable("宁波\x00")  # NUL: ASCII or not
    assert not storable("\ud800") and not storable("a\udfffb")  # lone surrogates are not UTF-8
