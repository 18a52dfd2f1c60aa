"""Spatial files for ``citygraph load spatial``: GeoPackage, Shapefile and GeoJSON, feature by feature.

``connectors.load`` does the loading (validation pass, batches, progress rows, resume, reports);
this module gives it what is spatial about the files:

* :func:`read` reads one layer with pyogrio into records of ``spatial_features``: the columns
  ``fid`` and ``valid_from`` (required), ``kind``, ``name``, ``district_code``, ``uscc``,
  ``valid_to`` (optional), every other attribute into ``properties``, and the geometry, tagged
  with the file's CRS. A file without a CRS is refused (GeoJSON excepted: RFC 7946 is WGS 84), as
  is a CRS PROJ cannot transform to CGCS2000.
* :func:`converter` checks one feature's geometry: present, well-formed (closed rings, no
  self-intersection, finite coordinates), inside the valid area of CGCS2000 after transformation
  (a file in the wrong CRS lands far from China or nowhere), then stores it as EWKB twice: in the
  storage CRS and in UTM 51N, with the transformation the embedded engine uses.
* :func:`check_versions` refuses a feature version (layer, fid, valid_from) already in the file
  or in the database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import shapely
from sqlalchemy import Column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.errors import InvalidArgument
from connectors.identifiers import NINGBO_DISTRICTS
from connectors.spatial import crs as crs_mod
from connectors.spatial.demo import FORMER
from connectors.spatial.store import FILTERABLE, _plain
from connectors.spatial.tables import METRIC_SRID, STORAGE_SRID, Geometry, spatial_features

#: Attributes that are columns of ``spatial_features``; the rest go into ``properties``.
COLUMNS = ("fid", "kind", "name", "district_code", "uscc", "valid_from", "valid_to")
SUFFIXES = frozenset({".gpkg", ".shp", ".geojson", ".json"})


class Shape(NamedTuple):
    """A feature's geometry as read, with the CRS of its file."""

    geometry: Any
    crs: str


@dataclass(frozen=True)
class Layer:
    """What a file's layer tells about itself."""

    name: str
    title: str
    geometry_type: str
    filterable: str  # which of kind, district_code, uscc the file has, comma-separated


class Unloadable(ValueError):
    """The file cannot be loaded as a whole (no CRS, unknown CRS, no such layer...)."""


def layer_name(path: Path, layer: str | None) -> str:
    """The layer to read: ``layer``, else the file's only layer (a GeoPackage may hold several)."""
    import pyogrio  # type: ignore[import-untyped]

    try:
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise Unloadable(f"{path.name}: not a readable GeoPackage, Shapefile or GeoJSON file ({exc})") from None
    if layer is not None:
        if layer not in names and len(names) != 1:
            raise Unloadable(f"{path.name} has no layer {layer!r}; its layers: {', '.join(names)}")
        return layer
    if len(names) != 1:
        raise Unloadable(f"{path.name} holds the layers {', '.join(names)}: pass --table LAYER to choose one")
    return path.name.split(".")[0] if path.suffix.lower() != ".gpkg" else names[0]


def _source_crs(frame: Any, path: Path) -> str:
    if frame.crs is None:
        if path.suffix.lower() in (".geojson", ".json"):
            return "EPSG:4326"  # RFC 7946: GeoJSON coordinates are WGS 84
        raise Unloadable(f"{path.name} declares no coordinate reference system: add one (e.g. a .prj file)")
    epsg = frame.crs.to_epsg()
    name = f"EPSG:{epsg}" if epsg is not None else frame.crs.to_wkt()
    try:
        crs_mod.transformer(name, crs_mod.STORAGE)
    except Exception as exc:
        raise Unloadable(f"{path.name}: cannot transform its CRS ({frame.crs.name}) to CGCS2000: {exc}") from None
    return name


def _cell(value: Any) -> Any:
    """A cell as the loader checks it: missing (None, NaN, NaT) as None, a date-time at midnight as
    its date (GIS formats often type dates so), other date-times as ISO text (refused for dates)."""
    import pandas as pd  # type: ignore[import-untyped]

    if value is None or (not isinstance(value, str | bytes | Mapping | list) and bool(pd.isna(value))):
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return _plain(value)


def read(path: Path, layer: str) -> tuple[Layer, list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The layer's description, the loader's header and (feature number, values) for each feature."""
    import pyogrio

    gpkg = path.suffix.lower() == ".gpkg"
    try:
        frame = pyogrio.read_dataframe(path, layer=layer if gpkg else None, fid_as_index=gpkg)
    except Exception as exc:
        raise Unloadable(f"{path.name}: cannot read layer {layer!r} ({exc})") from None
    if gpkg and "fid" not in frame.columns:
        frame["fid"] = [str(i) for i in frame.index]  # the GeoPackage's own feature id
    crs = _source_crs(frame, path)
    geometry_column = frame.geometry.name
    attributes = [c for c in frame.columns if c != geometry_column]
    present = [c for c in COLUMNS if c in attributes]
    extra = [c for c in attributes if c not in COLUMNS]
    types = frame.geometry.geom_type.dropna()
    info = Layer(
        name=layer,
        title=layer,
        geometry_type=str(types.mode().iloc[0]) if len(types) else "Unknown",
        filterable=",".join(c for c in FILTERABLE if c in present),
    )
    header = ["layer", *present, "properties", "geom", "geom_m"]
    columns = {c: frame[c].to_numpy(dtype=object) for c in attributes}
    geometries = frame.geometry.to_numpy()

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for i in range(len(frame)):
            values: dict[str, Any] = {"layer": layer}
            for c in present:
                values[c] = _cell(columns[c][i])
            values["properties"] = {c: _plain(_cell(columns[c][i])) for c in extra}
            # A missing geometry is reported once, for geom; geom_m follows it (see converter).
            values["geom"] = None if geometries[i] is None else Shape(geometries[i], crs)
            values["geom_m"] = Shape(geometries[i], crs)
            yield i + 1, values

    return info, header, rows()


def _storage(raw: object) -> Any:
    if not isinstance(raw, Shape) or raw.geometry is None:
        raise ValueError("not a geometry")
    geometry = raw.geometry
    coords = shapely.get_coordinates(geometry)
    if not np.all(np.isfinite(coords)):
        raise ValueError("the geometry holds a non-finite coordinate (NaN or infinity)")
    if shapely.is_empty(geometry):
        raise ValueError("the geometry is empty")
    if not shapely.is_valid(geometry):
        raise ValueError(f"invalid geometry: {shapely.is_valid_reason(geometry)}")
    stored = crs_mod.convert(geometry, raw.crs, crs_mod.STORAGE) if raw.crs != crs_mod.STORAGE else geometry
    moved = shapely.get_coordinates(stored)
    if not np.all(np.isfinite(moved)):
        raise ValueError(f"the geometry cannot be transformed from {raw.crs} to CGCS2000 (wrong CRS?)")
    try:
        crs_mod.check_area(moved, crs_mod.STORAGE)
    except InvalidArgument as exc:
        raise ValueError(f"{exc} after transformation from {raw.crs}: is the file's CRS right?") from None
    return stored


def _ewkb(geometry: Any, srid: int) -> bytes:
    return bytes(shapely.to_wkb(shapely.set_srid(geometry, srid), include_srid=True))


def converter(column: Column[Any], bad: Callable[[str], Exception]) -> Callable[[object], object] | None:
    """The conversion of a ``spatial_features`` geometry, properties or district cell (historical
    layers keep the district codes abolished in 2016), ``None`` for other columns; a problem
    raises ``bad(reason)``."""
    if isinstance(column.type, Geometry):
        metric = column.type.srid == METRIC_SRID

        def geometry(raw: object) -> object:
            try:
                stored = _storage(raw)
            except ValueError as exc:
                if metric:  # reported for geom already: the row is refused
                    return None
                raise bad(str(exc)) from None
            if not metric:
                return _ewkb(stored, STORAGE_SRID)
            projected = crs_mod.metric_array(np.asarray([stored], dtype=object))[0]
            if not all(math.isfinite(v) for v in shapely.bounds(projected)):
                raise bad("the geometry cannot be projected to UTM 51N")
            return _ewkb(projected, METRIC_SRID)

        return geometry
    if column.name == "district_code":

        def district(raw: object) -> object:
            code = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
            if not isinstance(code, str) or (code not in NINGBO_DISTRICTS and code not in FORMER):
                current = ", ".join(sorted(NINGBO_DISTRICTS))
                raise bad(
                    f"unknown district {code!r}: not a Ningbo district code, current ({current}) "
                    f"or abolished in 2016 ({', '.join(sorted(FORMER))})"
                )
            return code

        return district
    if column.name == "properties":

        def properties(raw: object) -> object:
            if not isinstance(raw, Mapping):
                raise bad("properties must be an object")
            return json.dumps(raw, ensure_ascii=False)

        return properties
    return None


def row_problems(values: Mapping[str, Any], failed: set[str]) -> list[tuple[str, str]]:
    """Checks across a feature's columns (on the ones that converted)."""
    start, end = values.get("valid_from"), values.get("valid_to")
    if "valid_from" not in failed and "valid_to" not in failed and start is not None and end is not None:
        if end <= start:
            return [("valid_to", f"{end} is not after valid_from {start}")]
    return []


async def check_versions(conn: AsyncConnection, seen: dict[object, int], rows: list[Any]) -> None:
    """Refuse a version (layer, fid, valid_from) the file repeats or the database already holds."""
    good = []
    for row in rows:
        if row.problems:
            continue
        key = (row.values["layer"], row.values["fid"], row.values["valid_from"])
        first = seen.setdefault(key, row.line)
        if first != row.line:
            row.problems.append(("fid", f"duplicate version {key[1]} from {key[2]}: feature {first} has it already"))
        else:
            good.append((key, row))
    if not good:
        return
    f = spatial_features
    wanted = [key for key, _ in good]
    result = await conn.execute(
        select(f.c.layer, f.c.fid, f.c.valid_from).where(tuple_(f.c.layer, f.c.fid, f.c.valid_from).in_(wanted))
    )
    present = {tuple(r) for r in result}
    for key, row in good:
        if key in present:
            row.problems.append(("fid", f"{key[1]} from {key[2]} is already in layer {key[0]}"))


async def save_layer(conn: AsyncConnection, layer: Layer) -> None:
    """Describe the layer in ``spatial_layers`` (insert, or update a reloaded one)."""
    from sqlalchemy.dialects import postgresql

    from connectors.spatial.tables import spatial_layers

    values = {
        "name": layer.name,
        "title": layer.title,
        "geometry_type": layer.geometry_type,
        "filterable": layer.filterable,
    }
    statement = postgresql.insert(spatial_layers).values(values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"geometry_type": layer.geometry_type, "filterable": layer.filterable}
        )
    )


__all__ = [
    "COLUMNS",
    "SUFFIXES",
    "Layer",
    "Shape",
    "Unloadable",
    "check_versions",
    "converter",
    "layer_name",
    "read",
    "row_problems",
    "save_layer",
]
