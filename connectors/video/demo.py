"""Deterministic demo data for the video resource library: cameras along streets and at enterprises.

:func:`generate` writes ``video.sqlite`` (the :mod:`connectors.video.tables` schema):

* street cameras — per district, straight streets (mostly on a north/east grid) through the
  district's busy area, a camera at every junction-like interval of 150-400 m inside the district;
  owned by public security (社会治安, industry 00), transport (交通路面/卡口, 04/05) or urban
  management (城市管理, 08);
* enterprise cameras — around a share of the spatial connector's enterprise locations, 20-250 m
  away: the enterprise's own (industry 42/50/53, owner ``enterprise``) and police cameras at gates;
* recordings — one segment per camera per local day over the last ``days`` days (gaps for cameras
  that went offline or faulty), with size, storage tier by age and retention end.

Device ids are valid GB/T 28181 ids (:func:`connectors.identifiers.make_gb28181`). The content is a
pure function of the enterprise locations, ``seed``, ``today`` and the sizes.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import create_engine

from connectors.identifiers import NINGBO_DISTRICTS, make_gb28181
from connectors.spatial import crs as crs_mod
from connectors.spatial.demo import CENTROIDS, district_boundaries
from connectors.video.tables import cameras, metadata, recordings

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
STREETS = (
    "中山", "解放", "人民", "文化", "建设", "环城", "兴宁", "百丈", "世纪", "钱湖",
    "天童", "福明", "宁穿", "四明", "前河", "长春", "海晏", "联丰", "学士", "桑田",
)  # fmt: skip
_STREET_OWNERS = (("public_security", "00", 0.45), ("transport", "04", 0.2), ("transport", "05", 0.07))
_BITRATE_BPS = {"FIXED": 4_000_000, "DOME": 4_000_000, "PTZ": 6_000_000}
_RETENTION_DAYS = {"public_security": 90, "transport": 90, "urban_management": 30, "enterprise": 30}


@dataclass(frozen=True, slots=True)
class VideoDemoStats:
    """What :func:`generate` wrote."""

    cameras: int
    recordings: int
    path: Path
    seconds: float


def _enterprise_points(spatial_gpkg: Path) -> list[tuple[str, str, NDArray[np.float64]]]:
    """(uscc, district, metric position) of every enterprise location valid today."""
    import pyogrio  # type: ignore[import-untyped]

    frame = pyogrio.read_dataframe(
        spatial_gpkg, layer="enterprise_locations", columns=["uscc", "district_code", "valid_to"]
    )
    frame = frame[frame["valid_to"].isna()].sort_values("uscc")
    lonlat = shapely.get_coordinates(np.asarray(frame.geometry.values, dtype=object))
    metric = crs_mod.convert_coords(lonlat, crs_mod.STORAGE, crs_mod.METRIC)
    return [
        (str(u), str(d), metric[i]) for i, (u, d) in enumerate(zip(frame["uscc"], frame["district_code"], strict=True))
    ]


class _Ids:
    def __init__(self) -> None:
        self.serial = 0

    def next(self, adcode: str, industry: str, rng: np.random.Generator, network: int) -> str:
        self.serial += 1
        type_code = "132" if rng.random() < 0.85 else "131"
        return make_gb28181(adcode, int(rng.integers(1, 31)), industry, type_code, network, self.serial)


def _camera(
    rng: np.random.Generator,
    ids: _Ids,
    adcode: str,
    position: NDArray[np.float64],
    owner: str,
    industry: str,
    name: str,
) -> dict[str, Any]:
    network = {"public_security": 0, "transport": 0, "urban_management": 6, "enterprise": 8}[owner]
    roll = rng.random()
    kind = "FIXED" if roll < 0.6 else ("DOME" if roll < 0.85 else "PTZ")
    roll = rng.random()
    status = "ONLINE" if roll < 0.88 else ("OFFLINE" if roll < 0.96 else "FAULT")
    return {
        "device_id": ids.next(adcode, industry, rng, network),
        "name": name,
        "x": float(position[0]),
        "y": float(position[1]),
        "district_code": adcode,
        "owner": owner,
        "owner_uscc": None,
        "kind": kind,
        "status": status,
    }


def _street_cameras(rng: np.random.Generator, ids: _Ids, count: int) -> list[dict[str, Any]]:
    current, _ = district_boundaries()
    codes = sorted(CENTROIDS)
    centres = crs_mod.convert_coords(
        np.array([[CENTROIDS[c][1], CENTROIDS[c][0]] for c in codes]), crs_mod.STORAGE, crs_mod.METRIC
    )
    out: list[dict[str, Any]] = []
    per_district = max(1, count // len(codes))
    for code, centre in zip(codes, centres, strict=True):
        polygon = current[code]
        shapely.prepare(polygon)
        district = NINGBO_DISTRICTS[code][0]
        placed = 0
        street = 0
        while placed < per_district and street < 500:
            street += 1
            start = rng.normal(centre, 3000.0)
            bearing = rng.choice([0.0, 90.0]) + rng.normal(0.0, 8.0)
            direction = np.array([np.sin(np.radians(bearing)), np.cos(np.radians(bearing))])
            length = rng.uniform(1500.0, 6000.0)
            name = STREETS[int(rng.integers(len(STREETS)))] + ("路" if bearing < 45 else "街")
            along = 0.0
            junction = 0
            while along < length and placed < per_district:
                along += rng.uniform(150.0, 400.0)
                position = start + direction * along + rng.normal(0.0, 5.0, 2)
                if not shapely.contains_xy(polygon, position[0], position[1]):
                    continue
                junction += 1
                roll, acc = rng.random(), 0.0
                owner, industry = "urban_management", "08"
                for who, code_, share in _STREET_OWNERS:
                    acc += share
                    if roll < acc:
                        owner, industry = who, code_
                        break
                cross = STREETS[int(rng.integers(len(STREETS)))]
                label = f"{district}{name}与{cross}路口" if junction % 2 else f"{district}{name}{junction}号杆"
                out.append(_camera(rng, ids, code, position, owner, industry, label))
                placed += 1
    return out


def _enterprise_cameras(
    rng: np.random.Generator,
    ids: _Ids,
    enterprises: list[tuple[str, str, NDArray[np.float64]]],
    share: float,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for uscc, code, position in enterprises:
        if code not in NINGBO_DISTRICTS or rng.random() >= share:
            continue
        for k in range(1 + int(rng.random() < 0.4)):
            angle = rng.uniform(0.0, 2 * np.pi)
            offset = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(20.0, 250.0)
            if k == 0:
                industry = ("42", "50", "53")[int(rng.integers(3))]
                camera = _camera(rng, ids, code, position + offset, "enterprise", industry, f"企业{uscc[-6:]}大门")
                camera["owner_uscc"] = uscc
            else:
                camera = _camera(rng, ids, code, position + offset, "public_security", "01", f"企业{uscc[-6:]}周边治安")
            out.append(camera)
    return out


def _recordings(
    rng: np.random.Generator, rows: list[dict[str, Any]], today: dt.date, days: int
) -> list[dict[str, Any]]:
    midnight = dt.datetime.combine(today, dt.time(), SHANGHAI)
    out: list[dict[str, Any]] = []
    for camera in rows:
        down_since = int(rng.integers(0, 6)) if camera["status"] != "ONLINE" else -1
        bitrate = _BITRATE_BPS[camera["kind"]]
        keep = _RETENTION_DAYS[camera["owner"]]
        for back in range(days, 0, -1):
            if back <= down_since or rng.random() < 0.02:
                continue  # the camera was down, or the recorder missed the day
            start = midnight - dt.timedelta(days=back)
            end = start + dt.timedelta(days=1)
            start_utc = start.astimezone(dt.UTC).replace(tzinfo=None)
            tier = "HOT" if back <= 7 else ("WARM" if back <= 20 else "COLD")
            out.append(
                {
                    "id": f"{camera['device_id']}-{start_utc:%Y%m%d%H%M}",
                    "device_id": camera["device_id"],
                    "start_at": start_utc,
                    "end_at": end.astimezone(dt.UTC).replace(tzinfo=None),
                    "size_bytes": int(bitrate / 8 * 86_400 * rng.uniform(0.7, 1.1)),
                    "storage_tier": tier,
                    "retention_until": start_utc + dt.timedelta(days=keep),
                }
            )
    return out


def generate(
    path: Path | str,
    *,
    spatial_gpkg: Path | str,
    seed: int = 7,
    today: dt.date | None = None,
    street_cameras: int | None = None,
    days: int = 30,
    enterprise_share: float = 0.45,
) -> VideoDemoStats:
    """Write a fresh ``video.sqlite`` (replacing any file at ``path``) from the spatial demo's enterprises.

    ``street_cameras`` defaults to 1.1 per enterprise (at least 200); with the cameras around
    enterprises that is about 3 000 cameras for the default 2 000 enterprises. A share
    ``enterprise_share`` of the enterprises (0.45) get a gate camera, 40 % of those a second one.
    """
    started = time.perf_counter()
    path = Path(path)
    today = today if today is not None else dt.datetime.now(SHANGHAI).date()
    rng = np.random.default_rng(seed)
    enterprises = _enterprise_points(Path(spatial_gpkg))
    ids = _Ids()
    count = street_cameras if street_cameras is not None else max(200, len(enterprises) * 11 // 10)
    rows = _street_cameras(rng, ids, count) + _enterprise_cameras(rng, ids, enterprises, enterprise_share)
    positions = crs_mod.convert_coords(np.array([[r["x"], r["y"]] for r in rows]), crs_mod.METRIC, crs_mod.STORAGE)
    midnight = dt.datetime.combine(today, dt.time(), SHANGHAI).astimezone(dt.UTC).replace(tzinfo=None)
    for row, (lon, lat) in zip(rows, positions, strict=True):
        row["lon"], row["lat"] = round(float(lon), 7), round(float(lat), 7)
        del row["x"], row["y"]
        silent = 0 if row["status"] == "ONLINE" else int(rng.integers(3_600, 5 * 86_400))
        row["last_heartbeat"] = midnight - dt.timedelta(seconds=silent + int(rng.integers(0, 60)))
    segments = _recordings(rng, rows, today, days)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".sqlite", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        engine = create_engine(f"sqlite:///{tmp}")
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(cameras.insert(), rows)
            for i in range(0, len(segments), 20_000):
                conn.execute(recordings.insert(), segments[i : i + 20_000])
        engine.dispose()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return VideoDemoStats(cameras=len(rows), recordings=len(segments), path=path, seconds=time.perf_counter() - started)


__all__ = ["STREETS", "VideoDemoStats", "generate"]
