"""Engine benchmark of the spatial connector on a large layer: bbox, near and within (p50, p99).

    python -m connectors.spatial.bench --features 1000000 --runs 200

writes (once; ``--rebuild`` to redo) a GeoPackage with the current districts and a layer
``benchmark_points`` of ``--features`` points spread over the city like the demo's POIs, opens a
:class:`~connectors.spatial.SpatialConnector` on it and times ``search`` calls — the connector
contract the gateway calls, row filter included, geometry converted to GeoJSON — for random
queries inside the city: a 1 km bbox, ``near`` with a 500 m radius, ``within`` a ~1.4 km hexagon,
each with the public's layer filter and with a district officer's ``within_districts`` filter.
It does not go through HTTP or the policy engine (the gateway's own benchmark does that).

    python -m connectors.spatial.bench --features 1000000 --postgis postgresql://user@host/db

copies the GeoPackage into that PostGIS database first (once: an empty database, migrated by
``copy_gpkg_to``) and times the same queries on the PostGIS backend.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from connectors.base import JSON, SearchRequest
from connectors.spatial import crs as crs_mod
from connectors.spatial.connector import SpatialConnector
from connectors.spatial.demo import CENTROIDS, OUTLINE, _district_rows, district_boundaries
from connectors.spatial.postgis import PostgisSpatialConnector

LAYER = "benchmark_points"
KINDS = ("school", "clinic", "shop", "bus_stop", "office")


def build(path: Path, features: int, seed: int) -> float:
    """Write the benchmark GeoPackage; returns the seconds it took."""
    import geopandas as gpd  # type: ignore[import-untyped]
    import pyogrio  # type: ignore[import-untyped]

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    current, former = district_boundaries()
    rows = _district_rows(current, former)
    districts = gpd.GeoDataFrame(
        {
            k: [r[k].isoformat() if isinstance(r[k], dt.date) else r[k] for r in rows]
            for k in rows[0]
            if k != "geometry"
        },
        geometry=[r["geometry"] for r in rows],  # district_boundaries() works in the metric CRS
        crs=crs_mod.METRIC,
    ).to_crs(crs_mod.STORAGE)
    path.unlink(missing_ok=True)
    options = {"FID": "ogc_fid"}  # "fid" is a text column here
    pyogrio.write_dataframe(
        districts, path, layer="districts", driver="GPKG", promote_to_multi=True, layer_options=options
    )
    outline = crs_mod.to_metric(shapely.Polygon(OUTLINE))
    codes = sorted(CENTROIDS)
    sites = crs_mod.convert_coords(
        np.array([[CENTROIDS[c][1], CENTROIDS[c][0]] for c in codes]), crs_mod.STORAGE, crs_mod.METRIC
    )
    chosen: list[np.ndarray] = []
    have = 0
    while have < features:
        centre = sites[rng.integers(0, len(sites), size=features)]
        xy = centre + rng.normal(0.0, 9000.0, size=(features, 2))
        xy = xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])]
        chosen.append(xy)
        have += len(xy)
    metric = np.concatenate(chosen)[:features]
    lonlat = crs_mod.convert_coords(metric, crs_mod.METRIC, crs_mod.STORAGE)
    points = shapely.points(lonlat)
    current_rows = [r for r in rows if r["valid_to"] is None]
    tree = shapely.STRtree([r["geometry"] for r in current_rows])
    hit_points, hit_districts = tree.query(shapely.points(metric), predicate="within")
    district = np.full(features, None, dtype=object)
    district[hit_points] = np.array([r["fid"] for r in current_rows], dtype=object)[hit_districts]
    frame = gpd.GeoDataFrame(
        {
            "fid": [f"B{i:07d}" for i in range(features)],
            "kind": np.array(KINDS, dtype=object)[rng.integers(0, len(KINDS), size=features)],
            "name": [None] * features,
            "district_code": district,
            "valid_from": ["2020-01-01"] * features,
            "valid_to": [None] * features,
        },
        geometry=points,
        crs=crs_mod.STORAGE,
    )
    pyogrio.write_dataframe(frame, path, layer=LAYER, driver="GPKG", layer_options=options)
    return time.perf_counter() - started


def _hexagon(centre: tuple[float, float], radius_m: float) -> dict[str, JSON]:
    dlat = radius_m / 111_000.0
    dlon = radius_m / (111_000.0 * math.cos(math.radians(centre[1])))
    ring = [[centre[0] + dlon * math.cos(a), centre[1] + dlat * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 7)]
    ring[-1] = ring[0]
    return {"type": "Polygon", "coordinates": [ring]}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def run(path: Path, runs: int, seed: int, postgis: str | None = None) -> list[dict[str, Any]]:
    started = time.perf_counter()
    connector = SpatialConnector(path) if postgis is None else PostgisSpatialConnector(postgis)
    await connector.open()
    health = await connector.health()
    if not health.ok:
        raise SystemExit(health.detail)
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(seed + 1)
    sites = [(CENTROIDS[c][1], CENTROIDS[c][0]) for c in sorted(CENTROIDS)]
    public: dict[str, JSON] = {"type": "field", "field": "features.layer", "operator": "in", "value": [LAYER]}
    mine: dict[str, JSON] = {
        "type": "field",
        "field": "features.geometry",
        "operator": "within_districts",
        "value": ["330203", "330212"],
    }
    officer: dict[str, JSON] = {"type": "compound", "operator": "and", "value": [public, mine]}
    results: list[dict[str, Any]] = [{"query": "load", "p50_ms": loaded * 1000, "p99_ms": loaded * 1000, "rows": 0}]
    warm_up: dict[str, JSON] = {
        "layer": LAYER,
        "near": {"point": {"type": "Point", "coordinates": list(sites[0])}, "radius_m": 500.0},
    }
    for row_filter in (public, officer):  # transformers, thread pool, district lookups
        await connector.search(SearchRequest(entity="Feature", fields=None, row_filter=row_filter, where=warm_up))
    for name in ("bbox", "near", "within"):
        for who, row_filter in (("public", public), ("district officer", officer)):
            timings: list[float] = []
            found: list[int] = []
            for _ in range(runs):
                lon, lat = sites[int(rng.integers(0, len(sites)))]
                lon += float(rng.normal(0, 0.05))
                lat += float(rng.normal(0, 0.05))
                where: dict[str, JSON] = {"layer": LAYER}
                if name == "bbox":
                    where["bbox"] = [lon - 0.005, lat - 0.0045, lon + 0.005, lat + 0.0045]
                elif name == "near":
                    where["near"] = {"point": {"type": "Point", "coordinates": [lon, lat]}, "radius_m": 500.0}
                else:
                    where["within"] = _hexagon((lon, lat), 700.0)
                request = SearchRequest(entity="Feature", fields=None, row_filter=row_filter, where=where, first=100)
                t = time.perf_counter()
                page = await connector.search(request)
                timings.append((time.perf_counter() - t) * 1000)
                found.append(len(page.records))
            results.append(
                {
                    "query": f"{name} ({who})",
                    "p50_ms": statistics.median(timings),
                    "p99_ms": _percentile(timings, 0.99),
                    "rows": statistics.mean(found),
                }
            )
    await connector.aclose()
    return results


async def _has_layers(url: str) -> bool:
    import asyncpg

    from connectors.demo_pg import dsn

    conn = await asyncpg.connect(dsn(url))
    try:
        if not await conn.fetchval("SELECT to_regclass('spatial_layers') IS NOT NULL"):
            return False
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM spatial_layers)"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("var/spatial-bench.gpkg"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--postgis", metavar="URL", help="benchmark PostGIS: copy the GeoPackage into this database")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not args.out.exists():
        print(f"building {args.features} features into {args.out} ... {build(args.out, args.features, args.seed):.1f}s")
    if args.postgis is not None and not asyncio.run(_has_layers(args.postgis)):
        from connectors.spatial.pgload import copy_gpkg_to

        started = time.perf_counter()
        copied = copy_gpkg_to(args.postgis, args.out)
        print(f"copied {copied} rows into PostGIS in {time.perf_counter() - started:.1f}s")
    rows = asyncio.run(run(args.out, args.runs, args.seed, args.postgis))
    backend = "PostGIS" if args.postgis else "embedded (GeoPackage)"
    print(f"\n{backend}: {args.features} features, {args.runs} runs per query, first: 100, GeoJSON in EPSG:4326\n")
    print("| query | p50 ms | p99 ms | rows returned (mean) |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['query']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['rows']:.0f} |")


if __name__ == "__main__":
    main()
