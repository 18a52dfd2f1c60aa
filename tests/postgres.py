"""PostgreSQL for the tests: throw-away databases on 127.0.0.1:5432 holding the SQLite fixtures' data.

Loaded by ``tests/conftest.py`` as a plugin. PostgreSQL is required, like Python: this machine and
CI run it, so when it cannot be reached every test that needs it FAILS with the reason (never a
silent skip that would let a PostgreSQL regression through). ``CITYGRAPH_TEST_PG`` overrides the
server (a ``postgresql://user@host:port`` URL without a database).

Each database is named ``citygraph_test_<random>`` (other test runs on the same server keep their
own) and dropped when its fixture ends, whatever the outcome; only a killed run leaves one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from audit import AuditTrail, VerifyReport
from connectors.credit.tables import metadata as credit_metadata
from connectors.demo_pg import copy_sqlite_to, dsn
from connectors.license.tables import metadata as license_metadata
from connectors.migrate import migrate
from connectors.spatial.pgload import copy_gpkg_to
from connectors.video.tables import metadata as video_metadata
from tests.conftest import LiveServer, make_settings, serve

#: The backends every dual-backend test runs on (fixture params and test ids).
BACKENDS = ("sqlite", "postgresql")

# Who to log in as and where, in order: the `postgres` superuser, else the machine's `root` role.
_ADMIN_CANDIDATES = (("postgres", "postgres"), ("postgres", "test"), ("root", "test"), ("root", "postgres"))


@dataclass(frozen=True)
class PgServer:
    """A reachable server and the role and maintenance database that can create databases on it."""

    host: str
    port: int
    user: str
    admin_db: str

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    async def admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(host=self.host, port=self.port, user=self.user, database=self.admin_db)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()


class PgUnavailable(Exception):
    """No candidate role could connect and create databases; the message says why for each."""


async def _find_server(host: str, port: int, users: tuple[tuple[str, str], ...]) -> PgServer:
    errors: list[str] = []
    for user, database in users:
        try:
            conn = await asyncpg.connect(host=host, port=port, user=user, database=database, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            errors.append(f"{user}@{database}: {type(exc).__name__}: {exc}")
            continue
        try:
            can_create = await conn.fetchval(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            )
        finally:
            await conn.close()
        if can_create:
            return PgServer(host, port, user, database)
        errors.append(f"{user}@{database}: role may not CREATE DATABASE")
    raise PgUnavailable("; ".join(errors))


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    """The PostgreSQL server for the tests; fails (never skips) when it cannot be used."""
    override = os.environ.get("CITYGRAPH_TEST_PG")
    url = make_url(override or "postgresql://postgres@127.0.0.1:5432")
    host, port = url.host or "127.0.0.1", url.port or 5432
    users = ((url.username, url.database or "postgres"),) if override and url.username else _ADMIN_CANDIDATES
    try:
        return asyncio.run(_find_server(host, port, users))
    except PgUnavailable as exc:
        pytest.fail(
            f"PostgreSQL is required for the tests and is not usable at {host}:{port} ({exc}). "
            "Start it (e.g. `service postgresql start`) or point CITYGRAPH_TEST_PG at one; "
            "the PostgreSQL tests never skip.",
            pytrace=False,
        )


@contextlib.contextmanager
def throwaway_database(server: PgServer, purpose: str, **settings: str) -> Iterator[str]:
    """A new, empty database for the block (its async URL); dropped afterwards even on failure.

    ``settings`` become the database's defaults (``ALTER DATABASE ... SET name = value``).
    """
    name = f"citygraph_test_{secrets.token_hex(4)}_{purpose}"
    defaults = [f"ALTER DATABASE \"{name}\" SET {key} = '{value}'" for key, value in settings.items()]
    asyncio.run(server.admin(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'", *defaults))
    try:
        # PostGIS for the spatial schema (`make test` installs it); its migration may then run as any role.
        asyncio.run(execute(server.url(name), "CREATE EXTENSION IF NOT EXISTS postgis"))
        yield server.url(name)
    finally:
        # FORCE: a connection a failed test left open must not keep the database alive.
        asyncio.run(server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def execute(url: str, statement: str, *params: object) -> None:
    """Run one statement at ``url`` outside the code under test (asyncpg ``$n`` placeholders)."""
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(statement, *params)
    finally:
        await conn.close()


@dataclass(frozen=True)
class PgDemo:
    """Async URLs of the PostgreSQL databases holding the demo data of ``demo_dir``."""

    credit: str
    license: str
    spatial: str
    video: str


@pytest.fixture(scope="session")
def pg_demo(pg_server: PgServer, demo_dir: Path) -> Iterator[PgDemo]:
    """The session's demo data (scale 300, seed 7: credit, license, video) copied into PostgreSQL by
    ``copy_sqlite_to``, and its GeoPackage into PostGIS by ``copy_gpkg_to``.

    The connectors share one database here (each component has its own version table), which
    also proves their migrations coexist; production may as well give each its own.
    """
    with throwaway_database(pg_server, "demo") as url:
        copy_sqlite_to(url, demo_dir / "credit.sqlite", credit_metadata)
        copy_sqlite_to(url, demo_dir / "license.sqlite", license_metadata)
        copy_sqlite_to(url, demo_dir / "video.sqlite", video_metadata)
        copy_gpkg_to(url, demo_dir / "spatial.gpkg")
        yield PgDemo(credit=url, license=url, spatial=url, video=url)


def pg_connectors(pg: PgDemo, stream_key_file: Path) -> dict[str, dict[str, Any]]:
    """The SQL connectors' settings on ``pg``'s databases, small pools each; the video library signs
    stream URLs with the key in ``stream_key_file`` (generated there on first use)."""
    pool = {"pool_size": 2, "max_overflow": 4, "pool_timeout": 10}
    return {
        "credit": {"url": pg.credit, **pool},
        "license": {"url": pg.license, **pool},
        "video": {"url": pg.video, "stream_key_file": str(stream_key_file), **pool},
    }


@pytest.fixture(scope="module")
def live_pg(pg_server: PgServer, pg_demo: PgDemo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Like ``live``, with both connectors and the audit trail (its own, migrated) on PostgreSQL,
    plus the video library (``live`` leaves it off), its stream key in the module's data folder."""
    with throwaway_database(pg_server, "audit") as audit_url:
        migrate("audit", audit_url)
        data_dir = tmp_path_factory.mktemp("pg-data")  # holds only the stream key: every URL is PostgreSQL
        connectors = pg_connectors(pg_demo, data_dir / "stream-key")
        settings = make_settings(data_dir, connectors=connectors, audit={"url": audit_url})
        with serve(settings) as server:
            yield server
        # The module's audited reads went to PostgreSQL, under the advisory lock, as one chain.
        report = asyncio.run(_verify(audit_url))
        assert report.ok and report.checked > 0, report


async def _verify(url: str) -> VerifyReport:
    async with AuditTrail(url) as trail:
        return await trail.verify()


@pytest.fixture(scope="module", params=BACKENDS)
def live_each(request: pytest.FixtureRequest) -> LiveServer:
    """``live_sqlite``, then ``live_pg``: a module whose ``live`` is this runs every test on both."""
    server: LiveServer = request.getfixturevalue(f"live_{'sqlite' if request.param == 'sqlite' else 'pg'}")
    return server


def demo_url(request: pytest.FixtureRequest, demo_dir: Path, name: str) -> str:
    """The async URL of connector ``name``'s demo data on ``request.param``'s backend (a fixture
    parametrised by ``BACKENDS``): the SQLite file, or its copy in PostgreSQL (``pg_demo``)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{demo_dir / f'{name}.sqlite'}"
    demo: PgDemo = request.getfixturevalue("pg_demo")
    url: str = getattr(demo, name)
    return url


__all__ = [
    "BACKENDS",
    "demo_url",
    "execute",
    "live_each",
    "live_pg",
    "pg_connectors",
    "pg_demo",
    "pg_server",
    "PgDemo",
    "PgServer",
    "throwaway_database",
]
