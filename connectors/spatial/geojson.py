"""GeoJSON in and out: strict parsing of client geometry with messages a caller can act on.

Client geometry (RFC 7946 geometry objects: Point, MultiPoint, LineString, MultiLineString,
Polygon, MultiPolygon) is checked before it is used: structure and types, finite numbers, closed
rings of at least four positions, the vertex limit, the CRS's valid area, and OGC validity
(no self-intersections) — each failure an ``InvalidArgument`` (``BAD_USER_INPUT``) naming what is
wrong and where. Client geometry only ever selects features; it never decides jurisdiction (the
policy's ``within_districts`` filter uses the stored district boundaries).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from connectors.errors import InvalidArgument
from connectors.spatial import crs as crs_mod

_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
#: JSON text longer than this is refused before parsing (the HTTP body limit applies as well).
MAX_TEXT = 2_000_000


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def add(self, n: int, what: str) -> None:
        self.count += n
        if self.count > self.limit:
            raise InvalidArgument(f"{what} has more than {self.limit} vertices (the configured limit): simplify it")


def _position(value: object, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise InvalidArgument(f"invalid GeoJSON: {where} must be a position [x, y]")
    if len(value) > 3:
        raise InvalidArgument(f"invalid GeoJSON: {where} has {len(value)} numbers; a position is [x, y] or [x, y, z]")
    numbers: list[float] = []
    for n in value[:2]:
        if isinstance(n, bool) or not isinstance(n, int | float):
            raise InvalidArgument(f"invalid GeoJSON: {where} holds {n!r}, not a number")
        number = float(n)
        if not math.isfinite(number):
            raise InvalidArgument(
                f"invalid GeoJSON: {where} holds a non-finite coordinate ({number}); NaN and infinity are not positions"
            )
        numbers.append(number)
    return numbers[0], numbers[1]


def _positions(value: object, where: str, counter: _Counter, minimum: int) -> list[tuple[float, float]]:
    if not isinstance(value, list | tuple):
        raise InvalidArgument(f"invalid GeoJSON: {where} must be an array of positions")
    counter.add(len(value), "the geometry")
    out = [_position(p, f"{where}[{i}]") for i, p in enumerate(value)]
    if len(out) < minimum:
        raise InvalidArgument(f"invalid GeoJSON: {where} needs at least {minimum} positions, has {len(out)}")
    return out


def _ring(value: object, where: str, counter: _Counter) -> list[tuple[float, float]]:
    ring = _positions(value, where, counter, 4)
    if ring[0] != ring[-1]:
        raise InvalidArgument(
            f"invalid GeoJSON: {where} is not closed: its first position {list(ring[0])} differs from its last "
            f"{list(ring[-1])} (a linear ring repeats its first position at the end)"
        )
    return ring


def _rings(value: object, where: str, counter: _Counter) -> list[list[tuple[float, float]]]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidArgument(f"invalid GeoJSON: {where} must be a non-empty array of linear rings")
    return [_ring(r, f"{where}[{i}]", counter) for i, r in enumerate(value)]


def _list(value: object, where: str) -> Sequence[object]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidArgument(f"invalid GeoJSON: {where} must be a non-empty array")
    return value


def _decode(value: object) -> Mapping[str, Any]:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InvalidArgument(f"invalid GeoJSON: longer than {MAX_TEXT} characters")
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidArgument(f"invalid GeoJSON: not JSON ({exc.args[0] if exc.args else exc})") from exc
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            'invalid GeoJSON: a geometry is an object such as {"type": "Point", "coordinates": [121.55, 29.87]}'
        )
    return value


def parse(value: object, crs: str, *, max_vertices: int, what: str = "geometry") -> shapely.Geometry:
    """A client GeoJSON geometry (object or JSON text) in ``crs``, checked, in the storage CRS."""
    doc = _decode(value)
    kind = doc.get("type")
    if kind == "Feature":
        raise InvalidArgument(f'invalid GeoJSON: {what} must be a geometry object, not a Feature: pass its "geometry"')
    if kind not in _TYPES:
        raise InvalidArgument(f"invalid GeoJSON: {what} has type {kind!r}; one of {', '.join(_TYPES)}")
    if "coordinates" not in doc:
        raise InvalidArgument(f'invalid GeoJSON: {what} ({kind}) has no "coordinates"')
    coords = doc["coordinates"]
    counter = _Counter(max_vertices)
    geometry: shapely.Geometry
    if kind == "Point":
        counter.add(1, what)
        geometry = shapely.Point(_position(coords, f"{what}.coordinates"))
    elif kind == "MultiPoint":
        geometry = shapely.MultiPoint(_positions(coords, f"{what}.coordinates", counter, 1))
    elif kind == "LineString":
        geometry = shapely.LineString(_positions(coords, f"{what}.coordinates", counter, 2))
    elif kind == "MultiLineString":
        lines = _list(coords, f"{what}.coordinates")
        geometry = shapely.MultiLineString(
            [_positions(line, f"{what}.coordinates[{i}]", counter, 2) for i, line in enumerate(lines)]
        )
    elif kind == "Polygon":
        rings = _rings(coords, f"{what}.coordinates", counter)
        geometry = shapely.Polygon(rings[0], rings[1:])
    else:
        polygons = _list(coords, f"{what}.coordinates")
        parts = [_rings(p, f"{what}.coordinates[{i}]", counter) for i, p in enumerate(polygons)]
        geometry = shapely.MultiPolygon([shapely.Polygon(r[0], r[1:]) for r in parts])
    if not shapely.is_valid(geometry):
        reason = shapely.is_valid_reason(geometry)
        raise InvalidArgument(f"invalid {what}: {kind} is not a valid geometry ({reason})")
    return crs_mod.to_storage(geometry, crs)


def parse_point(value: object, crs: str, what: str = "point") -> shapely.Point:
    """A client GeoJSON Point in ``crs``, in the storage CRS."""
    doc = _decode(value)
    if doc.get("type") != "Point":
        raise InvalidArgument(f"invalid GeoJSON: {what} must be a Point, got {doc.get('type')!r}")
    geometry = parse(doc, crs, max_vertices=1, what=what)
    if not isinstance(geometry, shapely.Point):  # pragma: no cover - parse keeps the type
        raise InvalidArgument(f"{what} must be a Point")
    return geometry


def parse_bbox(value: Sequence[float], crs: str) -> shapely.Geometry:
    """``[xmin, ymin, xmax, ymax]`` in ``crs`` as a storage-CRS polygon (densified edges)."""
    if len(value) != 4:
        raise InvalidArgument(f"bbox must be [xmin, ymin, xmax, ymax] (4 numbers), got {len(value)}")
    xmin, ymin, xmax, ymax = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise InvalidArgument("bbox holds a non-finite number")
    if xmin > xmax or ymin > ymax:
        raise InvalidArgument(
            f"bbox min > max: [{xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}] must be [xmin, ymin, xmax, ymax]"
        )
    box: shapely.Geometry = shapely.box(xmin, ymin, xmax, ymax)
    crs_mod.check_area(shapely.get_coordinates(box), crs)
    if crs != crs_mod.STORAGE and crs != "EPSG:4326":
        # A box in Mercator or GCJ-02 has curved sides in longitude/latitude: keep them by densifying.
        span = max(xmax - xmin, ymax - ymin)
        if span > 0:
            box = shapely.segmentize(box, span / 16)
    return crs_mod.convert(box, crs, crs_mod.STORAGE)


def vertex_count(geometry: shapely.Geometry) -> int:
    """How many positions a geometry holds."""
    return int(shapely.get_num_coordinates(geometry))


def to_geojson(geometry: shapely.Geometry, crs: str) -> dict[str, Any]:
    """A stored geometry as a GeoJSON geometry object in ``crs``, rounded to about 1 cm."""
    out = crs_mod.round_for(crs_mod.convert(geometry, crs_mod.STORAGE, crs), crs)
    mapped: dict[str, Any] = json.loads(shapely.to_geojson(out))
    return mapped


def to_geojson_many(geometries: Sequence[shapely.Geometry], crs: str) -> list[dict[str, Any]]:
    """Several stored geometries as GeoJSON in ``crs`` (one transform call for all positions)."""
    if not geometries:
        return []
    array = np.asarray(geometries, dtype=object)
    decimals = crs_mod.CRSS[crs].decimals
    if crs_mod.plain_points(array):
        # Plain 2-D points (POIs, locations, devices): the objects built straight from one array of
        # coordinates, ~9x faster than writing and re-reading GeoJSON text, and equal to it.
        coordinates = np.round(crs_mod.convert_coords(shapely.get_coordinates(array), crs_mod.STORAGE, crs), decimals)
        return [{"type": "Point", "coordinates": xy} for xy in coordinates.tolist()]
    converted = shapely.transform(array, lambda c: np.round(crs_mod.convert_coords(c, crs_mod.STORAGE, crs), decimals))
    return [json.loads(text) for text in shapely.to_geojson(converted)]


__all__ = ["MAX_TEXT", "parse", "parse_bbox", "parse_point", "to_geojson", "to_geojson_many", "vertex_count"]
