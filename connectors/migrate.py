"""Schema migrations with Alembic: one history per connector and one for the audit trail.

Each component keeps its history in its own package (``connectors/credit/migrations``,
``connectors/license/migrations``, ``audit/migrations``) and records its revision in its own
version table (``citygraph_<component>_version``), so several components may share one database.
Autogenerate and :func:`schema_diff` only look at the tables of the component's ``metadata``:
another component's tables in the same database are never proposed for dropping.

Migrations run on the async engine of the URL (asyncpg for PostgreSQL, aiosqlite for SQLite)
through ``AsyncConnection.run_sync``, Alembic's documented asyncio recipe: no synchronous
PostgreSQL driver is needed. On PostgreSQL an upgrade holds a transaction-scoped advisory lock,
so gateway replicas starting together migrate one after the other; on SQLite it does not
(DDL there is not transactional under the Python driver: run one migrating process at a time).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.sql import async_url

#: Component name -> the package holding its Alembic environment (``env.py``, ``versions/``).
COMPONENTS: Mapping[str, str] = MappingProxyType(
    {
        "credit": "connectors.credit.migrations",
        "license": "connectors.license.migrations",
        "video": "connectors.video.migrations",
        "audit": "audit.migrations",
    }
)

#: Components whose schema needs PostgreSQL with PostGIS (the embedded spatial engine reads a
#: GeoPackage and has no SQL schema): migrated only when configured with a PostgreSQL URL.
POSTGIS_COMPONENTS: Mapping[str, str] = MappingProxyType({"spatial": "connectors.spatial.migrations"})

# Where each component's target metadata lives (imported lazily: the audit trail does not need the connectors).
_METADATA = {
    "credit": "connectors.credit.tables",
    "license": "connectors.license.tables",
    "video": "connectors.video.tables",
    "audit": "audit.trail",
    "spatial": "connectors.spatial.tables",
}

#: Advisory lock key held while a PostgreSQL upgrade runs: ASCII "CGMIGRAT", the same in every process.
PG_MIGRATION_LOCK_KEY = 0x43_47_4D_49_47_52_41_54


def version_table(component: str) -> str:
    """The table recording ``component``'s revision."""
    return f"citygraph_{component}_version"


def component_for(metadata: MetaData) -> str:
    """The component whose schema ``metadata`` is; ``ValueError`` if it has no migration history."""
    for component, module in _METADATA.items():
        if importlib.import_module(module).metadata is metadata:
            return component
    raise ValueError(f"no migration history for this metadata (tables: {', '.join(sorted(metadata.tables))})")


def _package(component: str) -> str:
    try:
        return COMPONENTS[component] if component in COMPONENTS else POSTGIS_COMPONENTS[component]
    except KeyError:
        raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}") from None


def alembic_config(component: str, url: str | None = None) -> Config:
    """An Alembic ``Config`` for ``component`` (for ``alembic.command`` calls such as ``revision``).

    The URL travels in ``config.attributes`` rather than the ini options, whose interpolation
    would mangle a ``%`` in a password.
    """
    module = importlib.import_module(_package(component))
    if module.__file__ is None:
        raise RuntimeError(f"{module.__name__} is not a regular package")
    config = Config()
    config.set_main_option("script_location", str(Path(module.__file__).parent))
    # New revisions (``alembic.command.revision``) come out linted and formatted like the rest.
    config.set_section_option("post_write_hooks", "hooks", "ruff_check, ruff_format")
    for hook, arguments in (("ruff_check", "check --fix --quiet"), ("ruff_format", "format --quiet")):
        config.set_section_option("post_write_hooks", f"{hook}.type", "module")
        config.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
        config.set_section_option("post_write_hooks", f"{hook}.options", f"{arguments} REVISION_SCRIPT_FILENAME")
    config.attributes["component"] = component
    if url is not None:
        config.attributes["url"] = async_url(url)
    return config


def _unversioned(connection: Connection, component: str) -> bool:
    """Whether the component's tables exist without a migration history (``create_all`` made them:
    the demo generators, ``AuditTrail.open``). Raises ``RuntimeError`` if they differ from its schema."""
    inspector = inspect(connection)
    if inspector.has_table(version_table(component)):
        return False
    metadata: MetaData = importlib.import_module(_METADATA[component]).metadata
    present = sorted(name for name in metadata.tables if inspector.has_table(name))
    if not present:
        return False
    diff = schema_diff(connection, metadata)
    if diff:
        raise RuntimeError(
            f"{component}: table(s) {', '.join(present)} exist without a migration history and differ from the "
            f"schema ({len(diff)} difference(s), first: {diff[0]!r}); bring them in line by hand or start empty"
        )
    return True


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
    config.attributes["connection"] = connection
    if _unversioned(connection, config.attributes["component"]):
        # Adopt a database that create_all built: it is the head schema, so record that, then carry on.
        command.stamp(config, "head")
    command.upgrade(config, revision)


async def migrate_async(component: str, url: str, revision: str = "head") -> None:
    """Upgrade ``component``'s schema at ``url`` to ``revision``, in one transaction where the
    backend allows it. ``url`` may name a sync or an async driver (see ``connectors.sql.async_url``).

    A database whose tables ``metadata.create_all`` made (demo data, an audit trail opened before
    migrations existed) is adopted: stamped at head if its schema equals ``metadata``, else
    ``RuntimeError``. For use inside a running event loop; ``ValueError`` for an unknown component.
    """
    config = alembic_config(component, url)
    if component in POSTGIS_COMPONENTS and make_url(config.attributes["url"]).get_backend_name() != "postgresql":
        raise ValueError(
            f"{component} migrates only a PostgreSQL database with PostGIS, not {make_url(url).drivername}://"
        )
    engine = create_async_engine(config.attributes["url"], poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


def migrate(component: str, url: str) -> None:
    """``alembic upgrade head`` for ``component`` ("credit", "license" or "audit") at ``url``.

    Idempotent: an up-to-date schema is left alone. Must be called outside a running event loop
    (use :func:`migrate_async` inside one).
    """
    asyncio.run(migrate_async(component, url))


def include_name(metadata: MetaData) -> Callable[[str | None, str, Mapping[str, Any]], bool]:
    """An Alembic ``include_name`` hook: reflected tables count only if ``metadata`` declares them."""

    def include(name: str | None, type_: str, _parent: Mapping[str, Any]) -> bool:
        return type_ != "table" or name in metadata.tables

    return include


def schema_diff(connection: Connection, metadata: MetaData) -> list[Any]:
    """Alembic's autogenerate differences between the live schema and ``metadata`` ([] when equal)."""
    migration = MigrationContext.configure(
        connection, opts={"include_name": include_name(metadata), "compare_type": True}
    )
    return list(compare_metadata(migration, metadata))


def run_env(metadata: MetaData, *, component: str) -> None:
    """The body of every ``env.py``: run the migrations of ``component`` whose target is ``metadata``.

    Uses the connection :func:`migrate_async` passes in ``config.attributes``; otherwise (the
    ``alembic`` command line) the URL from ``config.attributes["url"]``, ``-x url=...`` or
    ``sqlalchemy.url``, online on an async engine or offline as SQL text.
    """
    config = context.config
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table(component),
        "include_name": include_name(metadata),
        "compare_type": True,
    }

    def run(connection: Connection) -> None:
        # SQLite cannot ALTER most things: later revisions rebuild tables in "batch" mode there.
        context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite", **options)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError(f"{component} migrations: no database URL (pass -x url=... or set sqlalchemy.url)")
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(online())


__all__ = [
    "alembic_config",
    "COMPONENTS",
    "component_for",
    "include_name",
    "migrate",
    "migrate_async",
    "PG_MIGRATION_LOCK_KEY",
    "POSTGIS_COMPONENTS",
    "run_env",
    "schema_diff",
    "version_table",
]
