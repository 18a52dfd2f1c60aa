"""Deterministic demo data for the spatio-temporal cloud: a GeoPackage of Ningbo's layers.

:func:`generate` reads the credit demo's enterprises (:mod:`connectors.credit.demo`) and writes
``spatial.gpkg`` (CGCS2000, ``EPSG:4490``) with these layers, each feature a *version* with a
validity interval ``[valid_from, valid_to)`` (``valid_to`` empty: still valid):

* ``districts`` — the ten districts of :data:`connectors.identifiers.NINGBO_DISTRICTS`, a Voronoi
  partition (computed in UTM 51N) around each district's approximate area centroid, clipped to a
  hand-drawn outline of the city. Plausible, **not** official boundaries — unless a boundary file
  is given (``boundaries=``, ``citygraph demo-data --districts FILE``: :func:`read_boundaries`),
  whose polygons are used as they are and every other layer is placed in them. Before the demo's
  :data:`REFORM_DATE` the city had the pre-2016 layout: 江东区 (330204) existed, 海曙区 was the old
  city core and 鄞州区 surrounded it, and 奉化 was 奉化市 (330283) — versions with their own
  adcodes and intervals, so ``asOf`` and ``districtAt`` answer for the past too.
* ``parcels`` — cadastral parcels (宗地) on a 500 m grid near the district centres, each wholly
  inside one district, with a 19-character parcel code, land use (GB/T 21010 classes) and area;
  some changed land use (two versions), some were retired, some registered recently.
* ``pois`` — schools, clinics, parks, metro and bus stops, petrol stations, service centres and
  markets, named after the district's real towns and subdistricts; some closed, some new.
* ``enterprise_locations`` — one point per credit-platform enterprise (keyed by USCC), inside its
  registered district; some moved (two versions, same district).
* ``iot_devices`` — street lights, smart waste bins and water-level sensors; some decommissioned.
* ``iot_readings`` — an attribute table (device_id, ts = Unix seconds, value) of hourly readings
  over the last ``days`` days: lamp power (W, on at night), bin fill level (%, emptied every
  morning), river level (m, tidal with rain surges).

The content is a pure function of the credit data, ``seed``, ``today`` and the sizes (one numpy
``Generator`` seeded with ``seed``). The file is written next to the target and moved into place.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from connectors.identifiers import NINGBO_DISTRICTS
from connectors.spatial import crs as crs_mod

#: The demo's date of the 2016 adjustment of Ningbo's districts (approximate).
REFORM_DATE = dt.date(2016, 10, 1)
#: Valid-from of boundaries that did not change.
EPOCH = dt.date(2001, 1, 1)

#: Approximate area centroids (latitude, longitude) of the current districts.
CENTROIDS: dict[str, tuple[float, float]] = {
    "330203": (29.84, 121.45),  # 海曙区 (since 2016 reaching west to 鄞江, 章水, 龙观)
    "330205": (29.95, 121.53),  # 江北区
    "330206": (29.87, 121.92),  # 北仑区
    "330211": (29.97, 121.67),  # 镇海区
    "330212": (29.78, 121.65),  # 鄞州区
    "330213": (29.61, 121.36),  # 奉化区
    "330225": (29.45, 121.86),  # 象山县
    "330226": (29.30, 121.43),  # 宁海县
    "330281": (29.98, 121.14),  # 余姚市
    "330282": (30.19, 121.30),  # 慈溪市
}
#: Before the reform: the old city core of 海曙, 江东 east of the river, 鄞州 around them.
OLD_CENTROIDS: dict[str, tuple[float, float]] = {
    "330203": (29.875, 121.535),
    "330204": (29.865, 121.595),
    "330212": (29.77, 121.52),
}
#: Names of the divisions that no longer exist (adcode -> Chinese, English).
FORMER: dict[str, tuple[str, str]] = {"330204": ("江东区", "Jiangdong"), "330283": ("奉化市", "Fenghua (city)")}

#: A hand-drawn outline of the city's land area (longitude, latitude), clockwise from the north-west.
OUTLINE: tuple[tuple[float, float], ...] = (
    (120.92, 30.18),
    (121.02, 30.30),
    (121.20, 30.36),
    (121.40, 30.33),
    (121.60, 30.12),
    (121.75, 30.02),
    (121.95, 29.96),
    (122.15, 29.92),
    (122.05, 29.80),
    (121.95, 29.72),
    (121.98, 29.58),
    (122.05, 29.40),
    (121.97, 29.20),
    (121.88, 29.08),
    (121.70, 29.02),
    (121.55, 29.05),
    (121.35, 29.00),
    (121.18, 29.12),
    (121.10, 29.40),
    (121.10, 29.55),
    (120.98, 29.70),
    (120.85, 29.85),
    (120.82, 30.05),
    (120.92, 30.18),
)

#: Rough share of parcels, POIs and devices per district (urban weight).
_WEIGHTS = {
    "330203": 12,
    "330205": 8,
    "330206": 12,
    "330211": 7,
    "330212": 18,
    "330213": 6,
    "330225": 6,
    "330226": 6,
    "330281": 11,
    "330282": 14,
}

#: Real towns and subdistricts (街道/镇) per district, for names and addresses.
PLACES: dict[str, tuple[str, ...]] = {
    "330203": (
        "鼓楼",
        "南门",
        "月湖",
        "白云",
        "段塘",
        "望春",
        "集士港",
        "古林",
        "高桥",
        "横街",
        "石碶",
        "章水",
        "鄞江",
        "龙观",
    ),
    "330205": ("中马", "白沙", "孔浦", "文教", "甬江", "庄桥", "洪塘", "慈城"),
    "330206": ("新碶", "大碶", "小港", "霞浦", "柴桥", "戚家山", "梅山", "白峰", "春晓"),
    "330211": ("招宝山", "蛟川", "骆驼", "庄市", "贵驷", "澥浦", "九龙湖"),
    "330212": (
        "百丈",
        "东胜",
        "明楼",
        "白鹤",
        "福明",
        "东柳",
        "东郊",
        "钟公庙",
        "首南",
        "中河",
        "下应",
        "潘火",
        "邱隘",
        "五乡",
        "姜山",
        "云龙",
        "咸祥",
        "瞻岐",
        "塘溪",
        "东钱湖",
    ),
    "330213": ("锦屏", "岳林", "江口", "西坞", "萧王庙", "溪口", "莼湖", "松岙", "裘村", "大堰", "尚田"),
    "330225": (
        "丹东",
        "丹西",
        "爵溪",
        "石浦",
        "西周",
        "贤庠",
        "墙头",
        "泗洲头",
        "定塘",
        "涂茨",
        "大徐",
        "新桥",
        "晓塘",
        "鹤浦",
    ),
    "330226": (
        "跃龙",
        "桃源",
        "梅林",
        "桥头胡",
        "长街",
        "力洋",
        "一市",
        "岔路",
        "前童",
        "黄坛",
        "大佳何",
        "强蛟",
        "西店",
        "深甽",
        "胡陈",
        "茶院",
        "越溪",
    ),
    "330281": (
        "凤山",
        "阳明",
        "梨洲",
        "兰江",
        "低塘",
        "朗霞",
        "临山",
        "黄家埠",
        "小曹娥",
        "泗门",
        "马渚",
        "牟山",
        "丈亭",
        "三七市",
        "河姆渡",
        "大隐",
        "陆埠",
        "梁弄",
        "大岚",
    ),
    "330282": (
        "浒山",
        "白沙路",
        "古塘",
        "宗汉",
        "坎墩",
        "观海卫",
        "掌起",
        "附海",
        "桥头",
        "匡堰",
        "逍林",
        "新浦",
        "胜山",
        "横河",
        "崇寿",
        "庵东",
        "长河",
        "周巷",
        "龙山",
    ),
}

# GB/T 21010-2017 classes: (code, Chinese, English kind, weight, right type)
_LAND_USES: tuple[tuple[str, str, str, int], ...] = (
    ("0701", "城镇住宅用地", "residential", 34),
    ("0702", "农村宅基地", "rural_homestead", 10),
    ("05", "商业服务业用地", "commercial", 12),
    ("0601", "工业用地", "industrial", 22),
    ("0602", "仓储用地", "warehouse", 4),
    ("08", "公共管理与公共服务用地", "public_service", 8),
    ("0810", "公园与绿地", "green", 6),
    ("01", "耕地", "farmland", 4),
)

# POI categories: (kind, Chinese category, weight, name template)
_POI_KINDS: tuple[tuple[str, str, int, str], ...] = (
    ("school", "学校", 14, "{place}{n}小学"),
    ("clinic", "医疗卫生", 10, "{place}社区卫生服务中心"),
    ("park", "公园", 8, "{place}公园"),
    ("metro_station", "地铁站", 5, "{place}站"),
    ("bus_stop", "公交站", 30, "{place}{n}号公交站"),
    ("petrol_station", "加油站", 6, "中国石化{place}加油站"),
    ("service_centre", "便民服务中心", 7, "{place}便民服务中心"),
    ("market", "菜市场", 10, "{place}菜场"),
)

# IoT device kinds: (kind, Chinese, weight, fid prefix, unit)
_DEVICE_KINDS: tuple[tuple[str, str, int, str, str], ...] = (
    ("STREET_LIGHT", "智慧路灯", 50, "SL", "W"),
    ("WASTE_BIN", "智能垃圾桶", 35, "WB", "%"),
    ("WATER_LEVEL", "水位监测站", 15, "WL", "m"),
)

_SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class SpatialDemoStats:
    """What :func:`generate` wrote: features per layer, readings, the path and the time it took."""

    features: dict[str, int]
    readings: int
    path: Path
    seconds: float


def default_sizes(enterprises: int) -> dict[str, int]:
    """Layer sizes for a credit demo of ``enterprises`` (2000 by default)."""
    return {
        "parcels": max(400, enterprises * 3 // 2),
        "pois": max(300, enterprises),
        "devices": max(60, enterprises // 10),
        "days": 60 if enterprises < 1000 else 90,
    }


# --- geometry helpers ----------------------------------------------------------------------------


def _to_metric(lonlat: NDArray[np.float64]) -> NDArray[np.float64]:
    return crs_mod.convert_coords(lonlat, crs_mod.STORAGE, crs_mod.METRIC)


def _metric_geom(geometry: shapely.Geometry) -> shapely.Geometry:
    return crs_mod.convert(geometry, crs_mod.STORAGE, crs_mod.METRIC)


def _storage_geom(geometry: Any) -> Any:
    return shapely.transform(geometry, lambda c: crs_mod.convert_coords(c, crs_mod.METRIC, crs_mod.STORAGE))


def _sites(centroids: dict[str, tuple[float, float]]) -> tuple[list[str], NDArray[np.float64]]:
    codes = sorted(centroids)
    lonlat = np.array([[centroids[c][1], centroids[c][0]] for c in codes], dtype=np.float64)
    return codes, _to_metric(lonlat)


def _voronoi(codes: Sequence[str], sites: NDArray[np.float64], region: shapely.Geometry) -> dict[str, shapely.Geometry]:
    cells = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=region, ordered=True)
    out: dict[str, shapely.Geometry] = {}
    for code, cell in zip(codes, shapely.get_parts(cells), strict=True):
        clipped = shapely.intersection(cell, region)
        out[code] = shapely.make_valid(shapely.normalize(clipped))
    return out


def district_boundaries(
    current: dict[str, shapely.Geometry] | None = None,
) -> tuple[dict[str, shapely.Geometry], dict[str, shapely.Geometry]]:
    """(current, former) district polygons in the metric CRS, by adcode.

    ``current`` defaults to the Voronoi partition of the city outline. ``former`` holds the
    pre-reform versions of the divisions that changed: 海曙, 鄞州, 江东 (the old 海曙+鄞州 area
    re-partitioned around the old sites) and 奉化市 (奉化区's area, old code).
    """
    if current is None:
        outline = _metric_geom(shapely.Polygon(OUTLINE))
        codes, sites = _sites(CENTROIDS)
        current = _voronoi(codes, sites, outline)
    region = shapely.union(current["330203"], current["330212"])
    old_codes, old_sites = _sites(OLD_CENTROIDS)
    former = _voronoi(old_codes, old_sites, region)
    former["330283"] = current["330213"]
    return current, former


def read_boundaries(path: Path) -> dict[str, shapely.Geometry]:
    """The current district polygons of a boundary file, by adcode, in the metric CRS.

    Any format pyogrio reads (GeoPackage, Shapefile, GeoJSON, ...), one layer (the first), with an
    ``adcode`` column naming each of the ten districts of ``NINGBO_DISTRICTS`` exactly once and
    (Multi)Polygon geometries that are valid and non-empty, in a declared CRS (GeoJSON is WGS 84).
    Raises ``ValueError`` saying what is wrong, feature by feature.
    """
    import geopandas as gpd  # type: ignore[import-untyped]

    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # the reader's own error names the problem (missing file, bad format)
        raise ValueError(f"{path}: cannot read the boundary file: {exc}") from exc
    if frame.crs is None:
        raise ValueError(f"{path}: the boundary file declares no coordinate reference system")
    if "adcode" not in frame.columns:
        raise ValueError(f"{path}: the boundary file has no 'adcode' column (columns: {', '.join(frame.columns)})")
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, (code, geometry) in enumerate(zip(frame["adcode"], frame.geometry, strict=True), start=1):
        code = str(code).strip()
        if code not in NINGBO_DISTRICTS:
            problems.append(f"feature {number}: adcode {code!r} is not one of Ningbo's ten districts")
        elif code in seen:
            problems.append(f"feature {number}: adcode {code} is already feature {seen[code]}")
        else:
            seen[code] = number
        if geometry is None or geometry.is_empty:
            problems.append(f"feature {number}: no geometry")
        elif geometry.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"feature {number}: a {geometry.geom_type}, not a polygon")
        elif not shapely.is_valid(geometry):
            problems.append(f"feature {number}: invalid polygon ({shapely.is_valid_reason(geometry)})")
    missing = sorted(set(NINGBO_DISTRICTS) - set(seen))
    if missing:
        problems.append(f"districts missing: {', '.join(missing)}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    # Edges are straight in the file's CRS: densified first (~100 m), they stay where the file
    # draws them through the metric CRS the generator works in and back (a 30 km edge of a
    # geographic polygon otherwise bends by about 10 m, enough to put an edge feature outside).
    frame = frame.set_geometry(frame.geometry.segmentize(0.001 if frame.crs.is_geographic else 100.0))
    metric = frame.to_crs(crs_mod.METRIC)
    return {
        str(code).strip(): shapely.make_valid(shapely.normalize(geometry))
        for code, geometry in zip(metric["adcode"], metric.geometry, strict=True)
    }


def _random_points_in(
    rng: np.random.Generator,
    polygon: shapely.Geometry,
    centre: NDArray[np.float64],
    sigma: float,
    count: int,
) -> NDArray[np.float64]:
    """``count`` metric points inside ``polygon``, normally distributed around ``centre``."""
    shapely.prepare(polygon)
    found: list[NDArray[np.float64]] = []
    have = 0
    while have < count:
        batch = rng.normal(centre, sigma, size=(max(64, (count - have) * 3), 2))
        inside = batch[shapely.contains_xy(polygon, batch[:, 0], batch[:, 1])]
        found.append(inside)
        have += len(inside)
        sigma *= 1.05  # a district whose centre sits near its edge still fills up
    return np.concatenate(found)[:count] if found else np.zeros((0, 2))


def _spread(rng: np.random.Generator, total: int) -> dict[str, int]:
    codes = sorted(_WEIGHTS)
    weights = np.array([_WEIGHTS[c] for c in codes], dtype=np.float64)
    counts = rng.multinomial(total, weights / weights.sum())
    return dict(zip(codes, (int(c) for c in counts), strict=True))


def _day(rng: np.random.Generator, lo: dt.date, hi: dt.date) -> dt.date:
    return lo + dt.timedelta(days=int(rng.integers(0, max(1, (hi - lo).days))))


def _after(start: dt.date, floor: dt.date) -> dt.date:
    """The earliest day a version starting ``start`` may end (or be succeeded): the later of the
    next day and ``floor``. A version holds at least a day, so (layer, fid, valid_from) stays
    unique, as PostGIS enforces."""
    return max(start + dt.timedelta(days=1), floor)


# --- layers --------------------------------------------------------------------------------------

_Row = dict[str, Any]


def _district_rows(current: dict[str, shapely.Geometry], former: dict[str, shapely.Geometry]) -> list[_Row]:
    rows: list[_Row] = []

    def add(code: str, geometry: shapely.Geometry, start: dt.date, end: dt.date | None) -> None:
        cn, en = NINGBO_DISTRICTS.get(code) or FORMER[code]
        level = "county" if cn.endswith("县") else "county_city" if cn.endswith("市") else "district"
        area = float(shapely.area(geometry)) / 1e6
        rows.append(
            {
                "fid": code,
                "kind": level,
                "name": cn,
                "district_code": code,
                "valid_from": start,
                "valid_to": end,
                "name_en": en,
                "adcode": code,
                "area_km2": round(area, 2),
                "geometry": geometry,
            }
        )

    for code, geometry in current.items():
        if code in former and code != "330213":
            add(code, former[code], EPOCH, REFORM_DATE)
            add(code, geometry, REFORM_DATE, None)
        elif code == "330213":
            add(code, geometry, REFORM_DATE, None)
        else:
            add(code, geometry, EPOCH, None)
    add("330204", former["330204"], EPOCH, REFORM_DATE)
    add("330283", former["330283"], EPOCH, REFORM_DATE)
    return rows


def _parcel_rows(
    rng: np.random.Generator, current: dict[str, shapely.Geometry], count: int, today: dt.date
) -> list[_Row]:
    cell = 500.0
    codes, sites = _sites(CENTROIDS)
    centre = dict(zip(codes, sites, strict=True))
    uses = _LAND_USES
    use_weights = np.array([u[3] for u in uses], dtype=np.float64)
    use_weights /= use_weights.sum()
    rows: list[_Row] = []
    taken: set[tuple[int, int]] = set()
    for code, wanted in _spread(rng, count).items():
        polygon = current[code]
        shapely.prepare(polygon)
        sequence = 0
        attempts = 0
        while sequence < wanted and attempts < 50:
            attempts += 1
            points = rng.normal(centre[code], 7000.0, size=(wanted * 2, 2))
            for x, y in points:
                if sequence >= wanted:
                    break
                i, j = int(x // cell), int(y // cell)
                if (i, j) in taken:
                    continue
                inset = rng.uniform(25.0, 70.0)
                x0, y0 = i * cell + inset, j * cell + inset
                x1, y1 = (i + 1) * cell - inset, (j + 1) * cell - inset
                jitter = rng.uniform(-20.0, 20.0, size=(4, 2))
                ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + jitter
                parcel = shapely.Polygon(ring)
                if not shapely.contains(polygon, parcel):
                    continue
                taken.add((i, j))
                sequence += 1
                use = uses[int(rng.choice(len(uses), p=use_weights))]
                state = "GB" if use[0] not in ("0702", "01") else "JC"
                zone = 1 + int(rng.integers(0, 12))
                fid = f"{code}{zone:03d}{1 + int(rng.integers(0, 20)):03d}{state}{sequence:05d}"
                start = _day(rng, dt.date(2006, 1, 1), dt.date(2021, 1, 1))
                base = {
                    "fid": fid,
                    "district_code": code,
                    "parcel_code": fid,
                    "right_type": "国有建设用地使用权" if state == "GB" else "集体土地所有权",
                    "area_m2": round(float(parcel.area), 1),
                    "geometry": parcel,
                }
                roll = rng.random()
                if roll < 0.12:  # land use changed once
                    changed = _day(rng, _after(start, dt.date(2018, 1, 1)), today)
                    new = uses[int(rng.choice(len(uses), p=use_weights))]
                    if new == use:
                        new = uses[(uses.index(use) + 1) % len(uses)]
                    rows.append(_parcel(base, use, start, changed))
                    rows.append(_parcel(base, new, changed, None))
                elif roll < 0.16:  # retired (merged into a road or a neighbouring parcel)
                    rows.append(_parcel(base, use, start, _day(rng, _after(start, dt.date(2019, 1, 1)), today)))
                elif roll < 0.21:  # registered recently
                    rows.append(_parcel(base, use, _day(rng, dt.date(2024, 1, 1), today), None))
                else:
                    rows.append(_parcel(base, use, start, None))
    return rows


def _parcel(base: _Row, use: tuple[str, str, str, int], start: dt.date, end: dt.date | None) -> _Row:
    return {
        **base,
        "kind": use[2],
        "name": f"{base['parcel_code']} {use[1]}",
        "land_use": use[1],
        "land_use_code": use[0],
        "valid_from": start,
        "valid_to": end,
    }


def _poi_rows(rng: np.random.Generator, current: dict[str, shapely.Geometry], count: int, today: dt.date) -> list[_Row]:
    codes, sites = _sites(CENTROIDS)
    centre = dict(zip(codes, sites, strict=True))
    weights = np.array([k[2] for k in _POI_KINDS], dtype=np.float64)
    weights /= weights.sum()
    rows: list[_Row] = []
    serial = 0
    for code, wanted in _spread(rng, count).items():
        points = _random_points_in(rng, current[code], centre[code], 6000.0, wanted)
        for x, y in points:
            serial += 1
            kind, category, _, template = _POI_KINDS[int(rng.choice(len(_POI_KINDS), p=weights))]
            place = str(rng.choice(PLACES[code]))
            number: object = str(rng.choice(("中心", "实验", "第二"))) if kind == "school" else int(rng.integers(1, 40))
            name = template.format(place=place, n=number)
            district = NINGBO_DISTRICTS[code][0]
            start = _day(rng, dt.date(2005, 1, 1), dt.date(2022, 1, 1))
            end: dt.date | None = None
            roll = rng.random()
            if roll < 0.06:
                end = _day(rng, _after(start, dt.date(2020, 1, 1)), today)
            elif roll < 0.12:
                start = _day(rng, dt.date(2024, 1, 1), today)
            rows.append(
                {
                    "fid": f"POI{serial:07d}",
                    "kind": kind,
                    "name": name,
                    "district_code": code,
                    "valid_from": start,
                    "valid_to": end,
                    "category": category,
                    "address": f"宁波市{district}{place}{'街道' if code in ('330203', '330205', '330212') else '镇'}",
                    "geometry": shapely.Point(x, y),
                }
            )
    return rows


def _enterprise_rows(
    rng: np.random.Generator,
    current: dict[str, shapely.Geometry],
    enterprises: Sequence[tuple[str, str, str]],
    today: dt.date,
) -> list[_Row]:
    codes, sites = _sites(CENTROIDS)
    centre = dict(zip(codes, sites, strict=True))
    by_district: dict[str, list[tuple[str, str]]] = {}
    for uscc, name, code in enterprises:
        by_district.setdefault(code, []).append((uscc, name))
    rows: list[_Row] = []
    for code in sorted(by_district):
        members = by_district[code]
        if code not in current:
            continue  # a division the map does not know: no location
        points = _random_points_in(rng, current[code], centre[code], 8000.0, 2 * len(members))
        for k, (uscc, name) in enumerate(members):
            start = _day(rng, dt.date(2008, 1, 1), dt.date(2023, 1, 1))
            base = {"fid": uscc, "kind": "enterprise", "name": name, "district_code": code, "uscc": uscc}
            if rng.random() < 0.08:
                moved = _day(rng, _after(start, dt.date(2019, 1, 1)), today)
                old = shapely.Point(points[2 * k + 1])
                rows.append({**base, "valid_from": start, "valid_to": moved, "geometry": old})
                rows.append({**base, "valid_from": moved, "valid_to": None, "geometry": shapely.Point(points[2 * k])})
            else:
                rows.append({**base, "valid_from": start, "valid_to": None, "geometry": shapely.Point(points[2 * k])})
    return rows


def _device_rows(
    rng: np.random.Generator, current: dict[str, shapely.Geometry], count: int, today: dt.date
) -> list[_Row]:
    codes, sites = _sites(CENTROIDS)
    centre = dict(zip(codes, sites, strict=True))
    weights = np.array([k[2] for k in _DEVICE_KINDS], dtype=np.float64)
    weights /= weights.sum()
    rows: list[_Row] = []
    serial: dict[str, int] = {}
    for code, wanted in _spread(rng, count).items():
        points = _random_points_in(rng, current[code], centre[code], 5000.0, wanted)
        for x, y in points:
            kind, cn, _, prefix, unit = _DEVICE_KINDS[int(rng.choice(len(_DEVICE_KINDS), p=weights))]
            serial[prefix] = serial.get(prefix, 0) + 1
            place = str(rng.choice(PLACES[code]))
            installed = _day(rng, dt.date(2019, 1, 1), today - dt.timedelta(days=400))
            end = (
                _day(rng, today - dt.timedelta(days=200), today - dt.timedelta(days=10))
                if rng.random() < 0.04
                else None
            )
            rated = int(rng.choice([100, 150, 250])) if kind == "STREET_LIGHT" else None
            rows.append(
                {
                    "fid": f"{prefix}-{code}-{serial[prefix]:05d}",
                    "kind": kind,
                    "name": f"{place}{cn}{serial[prefix]:04d}",
                    "district_code": code,
                    "valid_from": installed,
                    "valid_to": end,
                    "unit": unit,
                    "status": "OFFLINE"
                    if end is None and rng.random() < 0.05
                    else ("ONLINE" if end is None else "REMOVED"),
                    "rated_power_w": rated,
                    "geometry": shapely.Point(x, y),
                }
            )
    return rows


def _readings(
    rng: np.random.Generator, devices: Sequence[_Row], days: int, today: dt.date
) -> list[tuple[str, int, float]]:
    """Hourly readings of every device over the ``days`` days before ``today`` (local midnight)."""
    end = int(dt.datetime.combine(today, dt.time(0), _SHANGHAI).timestamp())
    start = end - days * 86_400
    hours = np.arange(start, end, 3600, dtype=np.int64)
    local_hour = ((hours + 8 * 3600) // 3600) % 24
    out: list[tuple[str, int, float]] = []
    for device in sorted(devices, key=lambda d: str(d["fid"])):
        lo = int(dt.datetime.combine(device["valid_from"], dt.time(0), _SHANGHAI).timestamp())
        hi = (
            end
            if device["valid_to"] is None
            else int(dt.datetime.combine(device["valid_to"], dt.time(0), _SHANGHAI).timestamp())
        )
        if device["status"] == "OFFLINE":
            hi = min(hi, end - int(rng.integers(2, 20)) * 86_400)
        mask = (hours >= lo) & (hours < hi)
        ts = hours[mask]
        if len(ts) == 0:
            continue
        hour = local_hour[mask]
        kind = device["kind"]
        if kind == "STREET_LIGHT":
            on = (hour >= 18) | (hour < 6)
            values = np.where(
                on, device["rated_power_w"] * rng.uniform(0.93, 1.0, len(ts)), rng.uniform(0.0, 2.0, len(ts))
            )
        elif kind == "WASTE_BIN":
            rate = rng.uniform(2.0, 6.0)
            since_emptied = (hour - 6) % 24
            values = np.clip(since_emptied * rate + rng.normal(0.0, 3.0, len(ts)), 0.0, 100.0)
        else:
            tide = 0.6 * np.sin(2 * np.pi * (ts - start) / (12.42 * 3600) + rng.uniform(0, 2 * np.pi))
            surge = np.zeros(len(ts))
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.integers(0, len(ts)))
                width = int(rng.integers(12, 72))
                surge[at : at + width] += np.linspace(rng.uniform(0.5, 1.5), 0.0, len(surge[at : at + width]))
            values = 2.2 + tide + surge + rng.normal(0.0, 0.03, len(ts))
        values = np.round(values, 2)
        fid = str(device["fid"])
        out.extend(zip([fid] * len(ts), ts.tolist(), values.tolist(), strict=True))
    return out


# --- writing -------------------------------------------------------------------------------------

#: Layer titles (gpkg_contents.description) and geometry types.
LAYERS: dict[str, tuple[str, str]] = {
    "districts": ("行政区划 (districts)", "MultiPolygon"),
    "parcels": ("宗地 (cadastral parcels)", "Polygon"),
    "pois": ("兴趣点 (points of interest)", "Point"),
    "enterprise_locations": ("企业位置 (enterprise locations)", "Point"),
    "iot_devices": ("物联网设备 (IoT devices)", "Point"),
}


def _write_layer(path: Path, name: str, rows: Sequence[_Row]) -> None:
    import geopandas as gpd
    import pyogrio  # type: ignore[import-untyped]

    title, kind = LAYERS[name]
    metric = np.array([r["geometry"] for r in rows], dtype=object)
    if kind == "MultiPolygon":
        metric = np.array(
            [shapely.multipolygons(shapely.get_parts(g)) if g.geom_type == "Polygon" else g for g in metric],
            dtype=object,
        )
    geometry = _storage_geom(metric)
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key in row:
            if key != "geometry" and key not in columns:
                columns[key] = []
    for row in rows:
        for key, values in columns.items():
            value = row.get(key)
            values.append(value.isoformat() if isinstance(value, dt.date) else value)
    frame = gpd.GeoDataFrame(columns, geometry=list(geometry), crs=crs_mod.STORAGE)
    pyogrio.write_dataframe(
        frame,
        path,
        layer=name,
        driver="GPKG",
        geometry_type=kind,
        layer_options={"IDENTIFIER": name, "DESCRIPTION": title, "FID": "ogc_fid"},
    )


def _write_readings(path: Path, readings: Sequence[tuple[str, int, float]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.execute(
            "CREATE TABLE iot_readings (fid INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, "
            "ts INTEGER NOT NULL, value DOUBLE NOT NULL)"
        )
        conn.executemany("INSERT INTO iot_readings (device_id, ts, value) VALUES (?, ?, ?)", readings)
        conn.execute("CREATE INDEX ix_iot_readings_device_ts ON iot_readings (device_id, ts)")
        conn.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
            "VALUES ('iot_readings', 'attributes', 'iot_readings', ?)",
            ("物联网读数 (IoT readings: device_id, ts = Unix seconds UTC, value in the device's unit)",),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _read_enterprises(credit_db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(f"file:{credit_db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT uscc, name, district_code FROM credit_subjects ORDER BY uscc").fetchall()
    finally:
        conn.close()
    return [(str(u), str(n), str(d)) for u, n, d in rows]


def generate(
    path: Path | str,
    *,
    credit_db: Path | str,
    seed: int = 7,
    today: dt.date | None = None,
    parcels: int | None = None,
    pois: int | None = None,
    devices: int | None = None,
    days: int | None = None,
    boundaries: Path | None = None,
) -> SpatialDemoStats:
    """Write a fresh ``spatial.gpkg`` (replacing any file at ``path``); sizes default by scale.

    ``boundaries``: a district boundary file (:func:`read_boundaries`) instead of the Voronoi
    partition; ``ValueError`` when it is unusable, before anything is written.
    """
    started = time.perf_counter()
    path = Path(path)
    today = today if today is not None else dt.datetime.now(_SHANGHAI).date()
    enterprises = _read_enterprises(Path(credit_db))
    sizes = default_sizes(len(enterprises))
    for key, value in (("parcels", parcels), ("pois", pois), ("devices", devices), ("days", days)):
        if value is not None:
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
            sizes[key] = value
    rng = np.random.default_rng(seed)
    current, former = district_boundaries(read_boundaries(Path(boundaries)) if boundaries is not None else None)
    layers = {
        "districts": _district_rows(current, former),
        "parcels": _parcel_rows(rng, current, sizes["parcels"], today),
        "pois": _poi_rows(rng, current, sizes["pois"], today),
        "enterprise_locations": _enterprise_rows(rng, current, enterprises, today),
        "iot_devices": _device_rows(rng, current, sizes["devices"], today),
    }
    readings = _readings(rng, layers["iot_devices"], sizes["days"], today)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the GPKG driver creates the file itself
    try:
        for name, rows in layers.items():
            _write_layer(tmp, name, rows)
        _write_readings(tmp, readings)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return SpatialDemoStats(
        features={name: len(rows) for name, rows in layers.items()},
        readings=len(readings),
        path=path,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "CENTROIDS",
    "EPOCH",
    "FORMER",
    "LAYERS",
    "OUTLINE",
    "PLACES",
    "REFORM_DATE",
    "SpatialDemoStats",
    "default_sizes",
    "district_boundaries",
    "generate",
    "read_boundaries",
]
