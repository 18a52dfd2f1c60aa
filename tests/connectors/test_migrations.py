"""Alembic histories: the migrated schema is exactly ``metadata`` on SQLite and PostgreSQL, and the
demo copy into PostgreSQL (``connectors/demo_pg.py``) is faithful."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from audit.trail import AuditTrail, metadata as audit_metadata
from connectors.credit.tables import credit_records, credit_subjects, metadata as credit_metadata
from connectors.demo_pg import copy_sqlite_to
from connectors.license.tables import metadata as license_metadata
from connectors.migrate import COMPONENTS, component_for, migrate, schema_diff, version_table
from connectors.sql import async_url
from connectors.video.tables import metadata as video_metadata
from tests.postgres import BACKENDS, PgServer, throwaway_database

METADATA: dict[str, MetaData] = {
    "credit": credit_metadata,
    "license": license_metadata,
    "video": video_metadata,
    "audit": audit_metadata,
}
HEADS = {"credit": "credit_0001", "license": "license_0001", "video": "video_0001", "audit": "audit_0001"}


@pytest.fixture(params=BACKENDS)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    with throwaway_database(server, "migrations") as url:
        yield url


async def _inspect(url: str, statement: str | None = None, only: str | None = None) -> dict[str, object]:
    """Per component (or ``only`` one): the schema differences from ``metadata``, and the recorded revision."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            if statement is not None:
                await conn.execute(text(statement))
            found: dict[str, object] = {}
            for component, metadata in METADATA.items():
                if only not in (None, component):
                    continue
                diff = await conn.run_sync(schema_diff, metadata)
                revision = (await conn.execute(text(f"SELECT version_num FROM {version_table(component)}"))).scalar()
                found[component] = (diff, revision)
            return found
    finally:
        await engine.dispose()


def test_every_component_migrates_to_exactly_its_metadata(empty_db: str) -> None:
    # All three in one database: each has its own version table and ignores the others' tables.
    for component in COMPONENTS:
        migrate(component, empty_db)
        migrate(component, empty_db)  # idempotent: already at head
    assert asyncio.run(_inspect(empty_db)) == {c: ([], head) for c, head in HEADS.items()}


def test_the_comparison_sees_a_missing_index(empty_db: str) -> None:
    """A control: the equality above would catch an index missing from a revision."""
    for component in COMPONENTS:
        migrate(component, empty_db)
    found = asyncio.run(_inspect(empty_db, "DROP INDEX ix_credit_records_district"))
    diff: list[tuple[str, Any]] = found["credit"][0]  # type: ignore[index]
    assert [(op, index.name) for op, index in diff] == [("add_index", "ix_credit_records_district")]


def test_unknown_components_and_metadata_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown component"):
        migrate("traffic", "sqlite://")
    with pytest.raises(ValueError, match="no migration history"):
        component_for(MetaData())
    assert {component_for(m) for m in METADATA.values()} == set(COMPONENTS)


def test_copy_into_postgresql_is_faithful(pg_server: PgServer, demo_dir: Path) -> None:
    source = demo_dir / "credit.sqlite"
    with sqlite3.connect(source) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in credit_metadata.tables}
    with throwaway_database(pg_server, "copy") as url:
        assert copy_sqlite_to(url, source, credit_metadata, batch_rows=97) == sum(counts.values())
        with pytest.raises(ValueError, match="already has rows"):
            copy_sqlite_to(url, source, credit_metadata)

        async def check() -> None:
            engine = create_async_engine(url)
            try:
                async with engine.begin() as conn:
                    for table in credit_metadata.sorted_tables:
                        assert (await conn.execute(select(func.count()).select_from(table))).scalar() == counts[
                            table.name
                        ]
                    # The id sequence was moved past the copied ids: a new record gets the next one.
                    uscc = (await conn.execute(select(credit_subjects.c.uscc).limit(1))).scalar()
                    row = (await conn.execute(select(credit_records).where(credit_records.c.uscc == uscc))).first()
                    assert row is not None
                    values = {k: v for k, v in row._mapping.items() if k != "id"}
                    new_id = (await conn.execute(insert(credit_records).values(values))).inserted_primary_key
                    assert new_id is not None and new_id[0] == counts["credit_records"] + 1
                    await conn.rollback()
            finally:
                await engine.dispose()

        asyncio.run(check())


def test_copy_refuses_what_it_cannot_do(tmp_path: Path, demo_dir: Path) -> None:
    with pytest.raises(FileNotFoundError):
        copy_sqlite_to("postgresql://postgres@127.0.0.1/x", tmp_path / "missing.sqlite", credit_metadata)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        copy_sqlite_to(f"sqlite:///{tmp_path / 'x.sqlite'}", demo_dir / "credit.sqlite", credit_metadata)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql+asyncpg://u:p%40ss@h:5432/db"),
        ("postgres://h/db", "postgresql+asyncpg://h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+asyncpg://h/db"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg://h/db"),
        ("sqlite:///var/x.sqlite", "sqlite+aiosqlite:///var/x.sqlite"),
        ("sqlite+aiosqlite:///var/x.sqlite", "sqlite+aiosqlite:///var/x.sqlite"),
        ("mysql+aiomysql://h/db", "mysql+aiomysql://h/db"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


def test_databases_made_by_create_all_are_adopted(tmp_path: Path, demo_dir: Path) -> None:
    """The demo files and audit trails that predate migrations get a history, data untouched."""
    for name in ("credit", "license"):
        shutil.copy(demo_dir / f"{name}.sqlite", tmp_path / f"{name}.sqlite")

    async def audit_made_by_open() -> None:
        async with AuditTrail(f"sqlite:///{tmp_path / 'audit.sqlite'}"):
            pass

    asyncio.run(audit_made_by_open())
    for component in COMPONENTS:
        url = f"sqlite:///{tmp_path / f'{component}.sqlite'}"
        migrate(component, url)
        found = asyncio.run(_inspect(url, only=component))
        assert found == {component: ([], HEADS[component])}
    with sqlite3.connect(tmp_path / "credit.sqlite") as conn, sqlite3.connect(demo_dir / "credit.sqlite") as demo:
        count = "SELECT count(*) FROM credit_records"
        assert conn.execute(count).fetchone() == demo.execute(count).fetchone()


def test_a_differing_unversioned_schema_is_refused(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "credit.sqlite")) as conn:
        conn.execute("CREATE TABLE credit_subjects (uscc TEXT PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="exist without a migration history and differ"):
        migrate("credit", f"sqlite:///{tmp_path / 'credit.sqlite'}")
