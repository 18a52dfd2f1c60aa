"""Independent reference computations for the spatial tests: no connector code, only pyproj,
shapely and the published GCJ-02 formula written out again."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio  # type: ignore[import-untyped]
import shapely
from pyproj import Geod, Transformer

GEOD = Geod(ellps="WGS84")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02, the published formula (scalar)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = (dlon * 180.0) / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def from_wgs84(geometry: Any, crs: str) -> Any:
    """Geometry (or an array of them) from EPSG:4326 to ``crs``: PROJ, or the GCJ-02 formula."""
    if crs == "EPSG:4326":
        return geometry
    if crs == "GCJ-02":
        return shapely.transform(geometry, lambda c: np.array([gcj02(float(x), float(y)) for x, y in c]).reshape(-1, 2))
    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geometry, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def layer(path: Path, name: str, on: dt.date | None = None) -> Any:
    """The layer's versions valid on ``on`` (today by default), read straight from the GeoPackage."""
    frame = pyogrio.read_dataframe(path, layer=name)
    day = (on or today()).isoformat()
    valid = (frame["valid_from"] <= day) & (frame["valid_to"].isna() | (frame["valid_to"] > day))
    return frame[valid].reset_index(drop=True)


def geodesic_m(a: tuple[float, float], lon: Any, lat: Any) -> Any:
    """Geodesic distances in metres from the point ``a`` (lon, lat) on the WGS 84 ellipsoid."""
    n = len(lon)
    return GEOD.inv(np.full(n, a[0]), np.full(n, a[1]), np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))[2]


__all__ = ["GEOD", "from_wgs84", "gcj02", "geodesic_m", "layer", "today"]
