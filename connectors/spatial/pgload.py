"""GeoPackage -> PostGIS: the embedded engine's layers and readings copied into the PostGIS schema.

:func:`copy_gpkg_to` is what ``citygraph demo-data --to postgresql://...`` runs for the spatial
demo set, and how the tests give the PostGIS backend exactly the data the GeoPackage holds: the
file is read by the embedded engine's own loader (``connectors.spatial.store.load``), so both
backends see the same feature versions, properties and geometries (bit for bit: geometries travel
as WKB). The metric geometry (``geom_m``) is computed here with ``crs.metric_array``, the
transformation the embedded engine measures with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import shapely

from connectors.demo_pg import dsn
from connectors.migrate import migrate_async
from connectors.spatial import crs as crs_mod
from connectors.spatial.store import CORE, FILTERABLE, OPEN_END, READINGS, Layer, _plain, from_day_number, load
from connectors.spatial.tables import METRIC_SRID, STORAGE_SRID

#: Feature versions (or readings) sent per ``COPY`` call.
BATCH_ROWS = 5000
FEATURE_COLUMNS = (
    "layer",
    "fid",
    "kind",
    "name",
    "district_code",
    "uscc",
    "valid_from",
    "valid_to",
    "properties",
    "geom",
    "geom_m",
)


async def geometry_codec(conn: asyncpg.Connection) -> None:
    """Let ``conn`` send and receive PostGIS geometries as EWKB bytes (their binary wire format)."""
    await conn.set_type_codec("geometry", schema="public", encoder=bytes, decoder=bytes, format="binary")


def _ewkb(geometries: np.ndarray, srid: int) -> list[bytes]:
    with_srid = shapely.set_srid(geometries, srid)
    return [bytes(b) for b in shapely.to_wkb(with_srid, include_srid=True)]


def feature_rows(layer: Layer, start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """The rows ``start:stop`` of ``layer`` as ``spatial_features`` values (:data:`FEATURE_COLUMNS`)."""
    geometries = layer.geometries[start:stop]
    storage = _ewkb(geometries, STORAGE_SRID)
    metric = _ewkb(crs_mod.metric_array(geometries), METRIC_SRID)
    for i, row in enumerate(range(start, stop)):
        end = int(layer.valid_to[row])
        props = {k: _plain(v[row]) for k, v in layer.properties.items()}
        yield (
            layer.name,
            str(layer.fids[row]),
            layer.text("kind", row),
            layer.names[row],
            layer.text("district_code", row),
            layer.text("uscc", row),
            from_day_number(int(layer.valid_from[row])),
            None if end == OPEN_END else from_day_number(end),
            json.dumps(props, ensure_ascii=False),
            storage[i],
            metric[i],
        )


def _filterable(layer: Layer) -> str:
    return ",".join(c for c in FILTERABLE if c in layer.columns)


async def copy_layers(conn: asyncpg.Connection, layers: Sequence[Layer], batch_rows: int = BATCH_ROWS) -> int:
    """Insert ``layers`` (metadata and every feature version) through ``conn``; rows copied."""
    copied = 0
    for layer in layers:
        await conn.execute(
            "INSERT INTO spatial_layers (name, title, geometry_type, filterable) VALUES ($1, $2, $3, $4)",
            layer.name,
            layer.title,
            layer.geometry_type,
            _filterable(layer),
        )
        for start in range(0, len(layer), batch_rows):
            rows = list(feature_rows(layer, start, min(start + batch_rows, len(layer))))
            await conn.copy_records_to_table("spatial_features", records=rows, columns=FEATURE_COLUMNS)
            copied += len(rows)
    return copied


def _readings(path: Path, batch_rows: int) -> Iterator[list[tuple[str, dt.datetime, float]]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = conn.execute(f"SELECT device_id, ts, value FROM {READINGS} ORDER BY device_id, ts")  # noqa: S608 - a constant
        while batch := cursor.fetchmany(batch_rows):
            yield [(str(d), dt.datetime.fromtimestamp(int(t), dt.UTC), float(v)) for d, t, v in batch]
    finally:
        conn.close()


async def copy_gpkg_to_async(url: str, path: Path, batch_rows: int = BATCH_ROWS) -> int:
    """:func:`copy_gpkg_to` inside a running event loop."""
    await migrate_async("spatial", url)
    store = await asyncio.to_thread(load, path)
    conn = await asyncpg.connect(dsn(url))
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM spatial_layers)"):
            raise ValueError("spatial_layers already has rows in the target database; copy into an empty one")
        await geometry_codec(conn)
        async with conn.transaction():
            copied = await copy_layers(conn, [store.layers[n] for n in sorted(store.layers)], batch_rows)
            if store.has_readings:
                for batch in _readings(path, batch_rows):
                    await conn.copy_records_to_table(
                        "spatial_readings", records=batch, columns=("device_id", "ts", "value")
                    )
                    copied += len(batch)
        for table in ("spatial_layers", "spatial_features", "spatial_readings"):
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return copied


def copy_gpkg_to(url: str, path: Path, *, batch_rows: int = BATCH_ROWS) -> int:
    """Migrate the spatial schema at the PostgreSQL ``url`` and copy the GeoPackage at ``path`` into it
    (every vector layer with the columns of ``store.CORE``, and the readings); rows copied.

    One transaction: a failure copies nothing. The target must hold no layers (``ValueError``).
    ``ConnectorUnavailable`` if the file is not a usable GeoPackage. Call outside an event loop.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    return asyncio.run(copy_gpkg_to_async(url, Path(path).resolve(), batch_rows))


__all__ = [
    "BATCH_ROWS",
    "CORE",
    "FEATURE_COLUMNS",
    "copy_gpkg_to",
    "copy_gpkg_to_async",
    "copy_layers",
    "feature_rows",
    "geometry_codec",
]
