"""The embedded engine: a GeoPackage's layers in memory, one STRtree each, readings on disk.

Each vector layer of the file becomes a :class:`Layer`: its feature versions sorted by
``(fid, valid_from)``, their geometries (CGCS2000 longitude/latitude) in a shapely 2 ``STRtree``,
validity intervals as day numbers, the filterable text columns as categoricals, and the other
columns as properties. Every layer has the columns ``fid``, ``kind``, ``name``,
``district_code``, ``valid_from`` and ``valid_to`` (ISO dates; empty ``valid_to`` = still valid).
The readings table (``iot_readings``) stays on disk and is aggregated by SQLite per request.

A loaded store is immutable and shared by every connector of the process that opens the same
file unchanged (same path, size and modification time): test servers and reloads reuse it.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from connectors.errors import ConnectorUnavailable
from connectors.spatial import crs as crs_mod
from connectors.spatial.filters import Categorical, Indices, Mask
from connectors.sql import storable

CORE = ("fid", "kind", "name", "district_code", "valid_from", "valid_to")
#: Text columns policies may filter on, when a layer has them (low cardinality, or small layers).
FILTERABLE = ("kind", "district_code", "uscc")
#: A Feature record's fields read only when selected (projection, on both backends); keys and what
#: links read (id, fid, layer, district_code, valid_to) are always there.
OPTIONAL_FIELDS = frozenset({"kind", "name", "valid_from", "properties"})
_EPOCH = dt.date(1970, 1, 1)
OPEN_END = np.iinfo(np.int64).max
READINGS = "iot_readings"


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


def from_day_number(n: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(n))


def _text_values(values: Any) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        else:
            out.append(str(v))
    return out


def _days(values: Sequence[str | None], missing: int) -> NDArray[np.int64]:
    """ISO dates as day numbers (vectorised); a missing date is ``missing``."""
    parsed = np.array([None if v is None else v[:10] for v in values], dtype="datetime64[D]")
    days = parsed.astype(np.int64)
    days[np.isnat(parsed)] = missing
    return days


def _plain(value: Any) -> Any:
    """A JSON-compatible Python value from what pyogrio read (numpy scalars, NaN as null)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


@dataclass
class Layer:
    """One layer's feature versions, sorted by (fid, valid_from), with their spatial index."""

    name: str
    title: str
    geometry_type: str
    fids: NDArray[np.str_]  # sorted
    geometries: NDArray[np.object_]
    valid_from: NDArray[np.int64]
    valid_to: NDArray[np.int64]  # OPEN_END when still valid
    names: list[str | None]
    columns: dict[str, Categorical]
    properties: dict[str, list[Any]]
    tree: shapely.STRtree
    _membership: dict[tuple[tuple[str, ...], int], Mask] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _metric_xy: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.fids)

    def versions(self, fid: str) -> range:
        """The rows of every version of ``fid``, oldest first (the layer is sorted by fid)."""
        if not fid or not storable(fid):
            return range(0)
        start = int(np.searchsorted(self.fids, fid, side="left"))
        end = int(np.searchsorted(self.fids, fid, side="right"))
        return range(start, end)

    def valid_at(self, rows: Indices, day: int) -> Mask:
        """Which of ``rows`` are valid on ``day`` (valid_from <= day < valid_to)."""
        result: Mask = (self.valid_from[rows] <= day) & (day < self.valid_to[rows])
        return result

    def text(self, column: str, row: int) -> str | None:
        found = self.columns.get(column)
        if found is None:
            return None
        code = int(found.codes[row])
        return found.categories[code] if code >= 0 else None

    def texts(self, column: str, rows: Indices) -> list[str | None]:
        """A text column's values of ``rows`` (None where null or absent from the layer)."""
        found = self.columns.get(column)
        if found is None:
            return [None] * len(rows)
        categories = found.categories
        return [categories[code] if code >= 0 else None for code in found.codes[rows].tolist()]

    def records(self, rows: Sequence[int], fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """The rows' values except the geometry (the caller adds it in the requested CRS), read
        column by column.

        With ``fields`` (the request's selected fields) kind, name, valid_from and properties are
        read only when selected; ``None`` (not known) reads them all. Keys and what links read
        (id, fid, layer, district_code, valid_to) are always there."""
        index = np.asarray(rows, dtype=np.intp)
        read = OPTIONAL_FIELDS if fields is None else OPTIONAL_FIELDS & fields
        fids: list[str] = self.fids[index].tolist()
        districts = self.texts("district_code", index)
        ends: list[int] = self.valid_to[index].tolist()
        kinds = self.texts("kind", index) if "kind" in read else None
        names = [self.names[r] for r in index.tolist()] if "name" in read else None
        starts: list[int] | None = self.valid_from[index].tolist() if "valid_from" in read else None
        properties = self.properties.items() if "properties" in read else None
        days: dict[int, dt.date | None] = {OPEN_END: None}  # few distinct days: each converted once

        def day(number: int) -> dt.date | None:
            if number not in days:
                days[number] = from_day_number(number)
            return days[number]

        out: list[dict[str, Any]] = []
        for i, row in enumerate(index.tolist()):
            fid = fids[i]
            # In the order the records have always had (callers may compare them as JSON text).
            record: dict[str, Any] = {"id": f"{self.name}:{fid}", "fid": fid, "layer": self.name}
            if kinds is not None:
                record["kind"] = kinds[i]
            if names is not None:
                record["name"] = names[i]
            record["district_code"] = districts[i]
            if starts is not None:
                record["valid_from"] = day(starts[i])
            record["valid_to"] = day(ends[i])
            if properties is not None:
                record["properties"] = {k: _plain(v[row]) for k, v in properties}
            out.append(record)
        return out

    def metric_points(self) -> NDArray[np.float64] | None:
        """Every row's position in the metric CRS as an (n, 2) array when the layer holds only
        plain 2-D points, else None. Computed once (one PROJ call), then kept: 16 bytes a row."""
        with self._lock:
            if self._metric_xy is None:
                if crs_mod.plain_points(self.geometries):
                    positions = shapely.get_coordinates(self.geometries)
                    self._metric_xy = crs_mod.convert_coords(positions, crs_mod.STORAGE, crs_mod.METRIC)
                else:
                    self._metric_xy = np.empty((0, 2))
            return self._metric_xy if len(self._metric_xy) else None

    def membership(self, adcodes: tuple[str, ...], districts: Layer, day: int) -> Mask:
        """Rows whose geometry intersects the stored boundary of any of ``adcodes`` valid on ``day``."""
        key = (adcodes, day)
        found = self._membership.get(key)
        if found is not None:
            return found
        mask = np.zeros(len(self), dtype=np.bool_)
        for adcode in adcodes:
            for row in districts.versions(adcode):
                if districts.valid_from[row] <= day < districts.valid_to[row]:
                    hits = self.tree.query(districts.geometries[row], predicate="intersects")
                    mask[hits] = True
        with self._lock:
            if len(self._membership) > 256:
                self._membership.clear()
            self._membership[key] = mask
        return mask


@dataclass
class Store:
    """All layers of one GeoPackage, and where its readings are."""

    path: Path
    layers: dict[str, Layer]
    has_readings: bool

    def layer(self, name: str) -> Layer:
        return self.layers[name]

    def readings_connection(self) -> sqlite3.Connection:
        """A read-only connection to the readings table (one per call; SQLite opens in ~0.1 ms)."""
        if not self.has_readings:
            raise ConnectorUnavailable(f"{self.path.name} has no {READINGS} table")
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)


def _layer_titles(path: Path) -> dict[str, tuple[str, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT table_name, data_type, coalesce(description, '') FROM gpkg_contents").fetchall()
    finally:
        conn.close()
    return {str(name): (str(kind), str(title)) for name, kind, title in rows}


def _load_layer(path: Path, name: str, title: str) -> Layer:
    import pyogrio  # type: ignore[import-untyped]

    frame = pyogrio.read_dataframe(path, layer=name)
    missing = [c for c in CORE if c not in frame.columns]
    if missing:
        raise ConnectorUnavailable(f"layer {name} lacks the columns {', '.join(missing)}")
    if frame.crs is not None and frame.crs.to_epsg() not in (4490, 4326):
        frame = frame.to_crs(crs_mod.STORAGE)
    # Sorted by (fid, valid_from) with numpy's string sort (C comparisons; ~1 s for a million rows).
    fids = np.asarray([f or "" for f in _text_values(frame["fid"].to_numpy(dtype=object))], dtype=str)
    starts = _days(_text_values(frame["valid_from"].to_numpy(dtype=object)), 0)
    order = np.lexsort((starts, fids))
    frame = frame.iloc[order].reset_index(drop=True)
    fids = fids[order]
    geometries = np.asarray(frame.geometry.to_numpy(), dtype=object)
    columns = {c: Categorical.of(frame[c].to_numpy(dtype=object)) for c in FILTERABLE if c in frame.columns}
    geometry_type = str(frame.geometry.geom_type.mode().iloc[0]) if len(frame) else "Unknown"
    return Layer(
        name=name,
        title=title or name,
        geometry_type=geometry_type,
        fids=fids,
        geometries=geometries,
        valid_from=_days(_text_values(frame["valid_from"].to_numpy(dtype=object)), 0),
        valid_to=_days(_text_values(frame["valid_to"].to_numpy(dtype=object)), int(OPEN_END)),
        names=_text_values(frame["name"].to_numpy(dtype=object)),
        columns=columns,
        properties={
            c: frame[c].to_numpy(dtype=object).tolist()
            for c in frame.columns
            if c not in CORE and c != frame.geometry.name
        },
        tree=shapely.STRtree(geometries),
    )


def load(path: Path) -> Store:
    """Read every vector layer of the GeoPackage at ``path`` and index it."""
    if not path.is_file():
        raise ConnectorUnavailable(
            f"{path} does not exist: run `citygraph demo-data` or configure [connectors.spatial] path"
        )
    contents = _layer_titles(path)
    layers = {
        name: _load_layer(path, name, title) for name, (kind, title) in sorted(contents.items()) if kind == "features"
    }
    if "districts" not in layers:
        raise ConnectorUnavailable(f"{path} has no districts layer: jurisdiction filters need it")
    return Store(path=path, layers=layers, has_readings=contents.get(READINGS, ("",))[0] == "attributes")


_CACHE: dict[tuple[str, int, int], Store] = {}
_CACHE_LOCK = threading.Lock()


def open_store(path: Path) -> Store:
    """The store for ``path``, loaded once per process while the file is unchanged."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        return load(resolved)  # raises with the fix-it message
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            for stale in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[stale]
            found = _CACHE[key] = load(resolved)
    return found


def layer_summaries(store: Store, today: int) -> Mapping[str, tuple[int, int, int, int]]:
    """Per layer: (versions, valid today, first valid_from, last change) as day numbers."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for name, layer in store.layers.items():
        rows = np.arange(len(layer))
        current = int(layer.valid_at(rows, today).sum())
        ends = layer.valid_to[layer.valid_to != OPEN_END]
        first = int(layer.valid_from.min()) if len(layer) else 0
        last = max(int(layer.valid_from.max()) if len(layer) else 0, int(ends.max()) if len(ends) else 0)
        out[name] = (len(layer), current, first, last)
    return out


__all__ = [
    "CORE",
    "FILTERABLE",
    "OPEN_END",
    "OPTIONAL_FIELDS",
    "READINGS",
    "Layer",
    "Store",
    "day_number",
    "from_day_number",
    "layer_summaries",
    "load",
    "open_store",
]
