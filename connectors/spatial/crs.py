"""Coordinate reference systems: the four the API speaks, the storage CRS and the metric one.

Input and output geometry may be in

* ``EPSG:4326`` — WGS 84 longitude/latitude (the default; GeoJSON's own CRS),
* ``EPSG:4490`` — CGCS2000 longitude/latitude (China's official geodetic datum since 2008),
* ``EPSG:3857`` — Web Mercator metres (tiles of most web maps),
* ``GCJ-02`` — the obfuscated "Mars" coordinates Chinese web maps (AMap, Tencent) use. PROJ does
  not provide it; :func:`wgs84_to_gcj02` is the published forward formula and
  :func:`gcj02_to_wgs84` its inverse by fixed-point iteration (round trip well under 1 m).

The layers are stored in CGCS2000 (``EPSG:4490``) longitude/latitude. PROJ transforms CGCS2000 to
WGS 84 as a no-op (the datums differ by centimetres), so positions in degrees compare directly.
Distances and radii are computed in ``EPSG:32651`` (WGS 84 / UTM zone 51N, 120°E-126°E, which
covers all of Ningbo): never in degrees. UTM's scale error there is below 0.02 %.

Positions are ``[x, y]`` = ``[longitude, latitude]`` in every CRS (``always_xy``), as in GeoJSON.
Every input position must lie in its CRS's valid area, checked *before* transforming, so swapped
coordinates or a wrong ``crs:`` are reported instead of producing a plausible wrong answer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from connectors.errors import InvalidArgument

Coords = NDArray[np.float64]

STORAGE = "EPSG:4490"
METRIC = "EPSG:32651"
DEFAULT = "EPSG:4326"
GCJ02 = "GCJ-02"


@dataclass(frozen=True, slots=True)
class CrsInfo:
    """A CRS the API accepts: its canonical name, what it is, and where its coordinates are valid."""

    name: str
    title: str
    bounds: tuple[float, float, float, float]  # valid area in the CRS's own units (xmin, ymin, xmax, ymax)
    units: str
    decimals: int  # output precision: 7 decimals of a degree ~ 1 cm; 2 of a metre = 1 cm


_MERCATOR_MAX = 20037508.342789244
#: The accepted CRSs. GCJ-02 is defined only inside China: the box is the one every published
#: implementation uses to decide "out of China" (there the offset is not applied).
CRSS: dict[str, CrsInfo] = {
    "EPSG:4326": CrsInfo("EPSG:4326", "WGS 84 longitude/latitude", (-180.0, -90.0, 180.0, 90.0), "degrees", 7),
    "EPSG:4490": CrsInfo("EPSG:4490", "CGCS2000 longitude/latitude", (73.62, 16.7, 134.77, 53.56), "degrees", 7),
    "EPSG:3857": CrsInfo(
        "EPSG:3857",
        "Web Mercator",
        (-_MERCATOR_MAX, -_MERCATOR_MAX, _MERCATOR_MAX, _MERCATOR_MAX),
        "metres",
        2,
    ),
    GCJ02: CrsInfo(
        GCJ02, "GCJ-02 (AMap/Tencent web-map coordinates)", (72.004, 0.8293, 137.8347, 55.8271), "degrees", 7
    ),
}

_ALIASES = {
    "EPSG:4326": "EPSG:4326",
    "WGS84": "EPSG:4326",
    "WGS 84": "EPSG:4326",
    "CRS84": "EPSG:4326",
    "EPSG:4490": "EPSG:4490",
    "CGCS2000": "EPSG:4490",
    "EPSG:3857": "EPSG:3857",
    "WEBMERCATOR": "EPSG:3857",
    "WEB_MERCATOR": "EPSG:3857",
    "GCJ-02": GCJ02,
    "GCJ02": GCJ02,
    "GCJ_02": GCJ02,
}


def normalise_crs(name: str | None) -> str:
    """The canonical name of an accepted CRS (``None`` is the default); raises ``InvalidArgument``."""
    if name is None:
        return DEFAULT
    canonical = _ALIASES.get(name.strip().upper())
    if canonical is None:
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise InvalidArgument(
            f"unknown CRS {shown!r}: use EPSG:4326 (WGS 84, the default), EPSG:4490 (CGCS2000), "
            "EPSG:3857 (Web Mercator) or GCJ-02"
        )
    return canonical


# --- GCJ-02 --------------------------------------------------------------------------------------
# The published forward transform (the "eviltransform" formula): Krasovsky ellipsoid constants.
_A = 6378245.0
_EE = 0.00669342162296594323


def _gcj_delta(lon: Coords, lat: Coords) -> tuple[Coords, Coords]:
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    shared = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + shared
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + shared
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: Coords, lat: Coords) -> tuple[Coords, Coords]:
    """WGS 84 longitude/latitude to GCJ-02 (arrays; the offset is a few hundred metres in China)."""
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: Coords, lat: Coords, *, tolerance: float = 1e-10, max_iterations: int = 30
) -> tuple[Coords, Coords]:
    """The inverse of :func:`wgs84_to_gcj02` by fixed-point iteration: w = g - delta(w).

    The offset changes by less than 1e-4 of a degree per degree, so each step gains about four
    digits; ``tolerance`` (degrees, ~1e-5 m) is reached in three to five iterations.
    """
    w_lon, w_lat = lon.copy(), lat.copy()
    for _ in range(max_iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - lon, f_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if (
            float(np.max(np.abs(e_lon), initial=0.0)) < tolerance
            and float(np.max(np.abs(e_lat), initial=0.0)) < tolerance
        ):
            break
    return w_lon, w_lat


# --- transforms ----------------------------------------------------------------------------------
# pyproj transformers are not shared between threads: one set per thread (queries run in workers).
_local = threading.local()


def transformer(source: str, target: str) -> Transformer:
    """A cached (per thread) PROJ transformer, positions as (x, y) = (lon, lat)."""
    cache: dict[tuple[str, str], Transformer] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    found = cache.get((source, target))
    if found is None:
        found = cache[(source, target)] = Transformer.from_crs(source, target, always_xy=True)
    return found


def _xy(coords: Coords) -> tuple[Coords, Coords]:
    return np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1])


def convert_coords(coords: Coords, source: str, target: str) -> Coords:
    """Positions (an ``(n, 2)`` array) from ``source`` to ``target`` (canonical names)."""
    if source == target or len(coords) == 0:
        return coords
    x, y = _xy(coords)
    if source == GCJ02:
        x, y = gcj02_to_wgs84(x, y)
        source = "EPSG:4326"
    if target == GCJ02:
        if source != "EPSG:4326":
            x, y = transformer(source, "EPSG:4326").transform(x, y)
        x, y = wgs84_to_gcj02(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    elif source != target:
        x, y = transformer(source, target).transform(x, y)
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def _apply(geometry: shapely.Geometry, fn: Callable[[Coords], Coords]) -> shapely.Geometry:
    out: shapely.Geometry = shapely.transform(geometry, fn)
    return out


def convert(geometry: shapely.Geometry, source: str, target: str) -> shapely.Geometry:
    """A geometry from ``source`` to ``target``, position by position."""
    if source == target:
        return geometry
    return _apply(geometry, lambda c: convert_coords(c, source, target))


def check_area(coords: Coords, crs: str) -> None:
    """Refuse positions outside ``crs``'s valid area (a wrong CRS or swapped lon/lat)."""
    info = CRSS[crs]
    xmin, ymin, xmax, ymax = info.bounds
    outside = (coords[:, 0] < xmin) | (coords[:, 0] > xmax) | (coords[:, 1] < ymin) | (coords[:, 1] > ymax)
    if outside.any():
        x, y = coords[int(np.argmax(outside))]
        hint = " (GeoJSON positions are [longitude, latitude])" if info.units == "degrees" else ""
        raise InvalidArgument(
            f"position [{x:g}, {y:g}] is outside the valid area of {crs} ({info.title}: "
            f"x {xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g}){hint}"
        )


def to_storage(geometry: shapely.Geometry, crs: str) -> shapely.Geometry:
    """A client geometry in ``crs`` (checked against its valid area) in the storage CRS."""
    check_area(shapely.get_coordinates(geometry), crs)
    return convert(geometry, crs, STORAGE)


def to_metric(geometry: shapely.Geometry) -> shapely.Geometry:
    """A stored geometry in the metric CRS (UTM 51N), for distances and radii."""
    return convert(geometry, STORAGE, METRIC)


def plain_points(geometries: NDArray[np.object_]) -> bool:
    """Whether every one of ``geometries`` is a non-empty 2-D point: their positions are then one
    (n, 2) array (``shapely.get_coordinates``), row for row."""
    return bool(
        len(geometries)
        and np.all(shapely.get_type_id(geometries) == 0)
        and not np.any(shapely.has_z(geometries) | shapely.is_empty(geometries))
    )


def metric_array(geometries: NDArray[np.object_]) -> NDArray[np.object_]:
    """Many stored geometries in the metric CRS at once (one PROJ call for all their positions)."""
    if len(geometries) == 0:
        return geometries
    out: NDArray[np.object_] = shapely.transform(geometries, lambda c: convert_coords(c, STORAGE, METRIC))
    return out


def round_for(geometry: shapely.Geometry, crs: str) -> shapely.Geometry:
    """Positions rounded to the CRS's output precision (about 1 cm)."""
    decimals = CRSS[crs].decimals
    return _apply(geometry, lambda c: np.round(c, decimals))


__all__ = [
    "CRSS",
    "DEFAULT",
    "GCJ02",
    "METRIC",
    "STORAGE",
    "CrsInfo",
    "check_area",
    "convert",
    "convert_coords",
    "gcj02_to_wgs84",
    "metric_array",
    "normalise_crs",
    "round_for",
    "to_metric",
    "to_storage",
    "transformer",
    "wgs84_to_gcj02",
]
