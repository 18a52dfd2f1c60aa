"""The spatial connector on PostGIS: the embedded engine's contract and results, answered in SQL.

Selected by the connector's configuration: ``[connectors.spatial] url = "postgresql+asyncpg://..."``
(a ``path`` to a GeoPackage selects the embedded engine). The schema is ``connectors.spatial.tables``
(Alembic history ``connectors/spatial/migrations``); ``connectors.spatial.pgload`` fills it.

Arguments are checked by the same code as on the embedded engine (``SpatialConnector`` helpers),
so bad input gets the same ``BAD_USER_INPUT`` message on both. Then every question is one SQL
statement (a batch of keys is one statement too):

* ``bbox`` / ``intersects`` -> ``ST_Intersects(geom, :g)``; ``within`` -> ``ST_Contains(:g, geom)``;
  ``asOf`` -> ``validity @> :day``: the GiST index on ``(geom, validity)`` serves both.
* ``near`` -> ``ST_DWithin(geom_m, :p, :r)`` on the UTM 51N column, ordered by ``ST_Distance``,
  keyset-paged on ``(distance, layer, fid)``; ``nearest`` -> KNN ``ORDER BY geom_m <-> :p``.
  Distances are metres between the same UTM coordinates the embedded engine measures.
* policy row filters -> ``connectors.spatial.sqlfilters`` (``within_districts`` is
  ``ST_Intersects`` with the listed districts' stored boundaries, collected once per statement).
* readings downsampled with ``date_bin`` (buckets aligned to the city's midnight, UTC+8).

One difference in order, not in content: ``near`` pages are ordered by the exact distance, the
embedded engine's by the distance rounded to the centimetre (both then by layer and fid): two
features less than a centimetre apart in distance may come in the other order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import shapely
from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Float,
    Interval,
    LargeBinary,
    Select,
    and_,
    bindparam,
    event,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import JSON, FetchRequest, Health, Page, Record, RowFilter, SearchRequest
from connectors.errors import ConnectorConfigError, ConnectorUnavailable, InvalidArgument
from connectors.spatial import crs as crs_mod, geojson
from connectors.spatial.connector import (
    DEVICES,
    DISTRICTS,
    ENTERPRISES,
    SHANGHAI,
    Predicate,
    SpatialConnector,
    _no_districts,
    _today,
    capped,
)
from connectors.spatial.filters import Categorical, Target, select as select_rows
from connectors.spatial.sqlfilters import where as filter_where
from connectors.spatial.store import FILTERABLE, OPTIONAL_FIELDS, day_number, from_day_number
from connectors.spatial.tables import METRIC_SRID, STORAGE_SRID, spatial_features, spatial_layers, spatial_readings
from connectors.sql import encode_cursor, key_in, make_engine, storable

F = spatial_features
_ORIGIN = dt.datetime(1970, 1, 1, tzinfo=SHANGHAI)  # buckets start at the city's midnight


@dataclass(frozen=True)
class LayerMeta:
    """A layer as ``spatial_layers`` describes it."""

    name: str
    title: str
    geometry_type: str
    filterable: frozenset[str]


def _geometry(geometry: shapely.Geometry, srid: int) -> ColumnElement[Any]:
    """A bound client geometry (already in ``srid``'s coordinates) as a PostGIS value."""
    return func.ST_GeomFromWKB(bindparam(None, shapely.to_wkb(geometry), type_=LargeBinary), srid)


def _date(day: int) -> ColumnElement[Any]:
    return bindparam(None, from_day_number(day), type_=Date)


def _valid_on(day: int, table: Any = F) -> ColumnElement[bool]:
    result: ColumnElement[bool] = table.c.validity.op("@>")(_date(day))
    return result


_COLUMNS = (F.c.layer, F.c.fid, F.c.kind, F.c.name, F.c.district_code, F.c.valid_from, F.c.valid_to, F.c.properties)


def _wanted(fields: frozenset[str] | None) -> tuple[tuple[ColumnElement[Any], ...], bool]:
    """The columns Feature records carrying ``fields`` read, and whether they need the geometry;
    ``None`` (not known) reads everything."""
    if fields is None:
        return _COLUMNS, True
    return tuple(c for c in _COLUMNS if c.name not in OPTIONAL_FIELDS or c.name in fields), "geometry" in fields


class PostgisSpatialConnector(SpatialConnector):
    """The spatio-temporal cloud's layers in PostGIS (same entities, queries and results)."""

    def __init__(self, url: str, options: Mapping[str, JSON] | None = None) -> None:
        super().__init__(Path("postgis"), options)
        self.url = url
        self.options: Mapping[str, JSON] = dict(options or {})
        self._engine: AsyncEngine | None = None
        self._layers: dict[str, LayerMeta] = {}

    @classmethod
    def from_url(cls, url: str, config: Mapping[str, JSON]) -> Self:
        """From ``[connectors.spatial]`` with a PostgreSQL ``url`` (pool options as for every connector)."""
        if "path" in config:
            raise ConnectorConfigError("spatial: give either 'url' (PostGIS) or 'path' (GeoPackage), not both")
        return cls(url, config)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._engine is not None:
            return
        engine = make_engine(self.info.name, self.url, self.options)
        event.listen(engine.sync_engine, "connect", _session_settings)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(spatial_layers))).mappings().all()
        except Exception as exc:
            # The gateway still starts; this connector answers CONNECTOR_UNAVAILABLE and /readyz says why.
            await engine.dispose()
            self._error = f"spatial database unavailable or not migrated: {type(exc).__name__}"
            return
        layers = {
            str(r["name"]): LayerMeta(
                name=str(r["name"]),
                title=str(r["title"]),
                geometry_type=str(r["geometry_type"]),
                filterable=frozenset(c for c in str(r["filterable"]).split(",") if c in FILTERABLE),
            )
            for r in rows
        }
        if DISTRICTS not in layers:
            await engine.dispose()
            self._error = "the spatial database has no districts layer: jurisdiction filters need it"
            return
        self._engine, self._layers, self._error = engine, layers, ""

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def health(self) -> Health:
        if self._engine is None:
            return Health(ok=False, detail=self._error or "spatial connector is not open")
        try:
            async with self._engine.connect() as conn:
                await conn.execute(select(literal(1)))
        except Exception as exc:
            return Health(ok=False, detail=f"{type(exc).__name__}")
        return Health(ok=True)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise ConnectorUnavailable(self._error or "spatial connector is not open")
        return self._engine

    async def _rows(self, query: Select[Any]) -> list[Mapping[str, Any]]:
        try:
            async with self.engine.connect() as conn:
                return list((await conn.execute(query)).mappings().all())
        except ConnectorUnavailable:
            raise
        except Exception as exc:  # driver errors: the backend is unavailable, not the gateway
            raise ConnectorUnavailable(f"spatial database error: {type(exc).__name__}") from exc

    # --- filters -------------------------------------------------------------------------------

    def _in(self, column: ColumnElement[Any], keys: Sequence[object]) -> ColumnElement[bool]:
        return key_in(column, keys, "postgresql")

    def _district_clause(self, adcodes: tuple[str, ...], layer: str) -> ColumnElement[bool]:
        """The row intersects the stored boundary of one of ``adcodes`` valid today.

        The boundaries are collected once per statement (an uncorrelated subquery: an InitPlan),
        so ``ST_Intersects`` gets its GiST index condition ``geom && $0`` -- alone for an
        officer's whole list, beside the client's bbox for a narrower one -- and PostGIS prepares
        the district geometry once for all rows. No district found: an empty collection, which
        intersects nothing (so ``not within_districts`` keeps every row, as on the embedded engine).
        """
        del layer  # the caller's statement restricts the layer
        district = F.alias("district")
        today = day_number(_today())
        empty = func.ST_GeomFromText("GEOMETRYCOLLECTION EMPTY", STORAGE_SRID)
        boundaries = (
            select(func.coalesce(func.ST_Collect(district.c.geom), empty))
            .where(district.c.layer == DISTRICTS, self._in(district.c.fid, list(adcodes)), _valid_on(today, district))
            .scalar_subquery()
        )
        result: ColumnElement[bool] = func.ST_Intersects(F.c.geom, boundaries)
        return result

    def _policy(self, row_filter: RowFilter, layer: str, prefix: str = "features") -> ColumnElement[bool]:
        """The row filter over one layer's rows (its filterable columns, as on the embedded engine)."""
        meta = self._layers[layer]
        fields: dict[str, ColumnElement[Any] | str | None] = {
            f"{prefix}.{name}": F.c[name] for name in FILTERABLE if name in meta.filterable
        }
        fields[f"{prefix}.geometry"] = None
        if prefix == "features":
            fields["features.layer"] = layer  # known per layer: decided before SQL
        return filter_where(row_filter, fields, lambda adcodes: self._district_clause(adcodes, layer))

    def _policies(self, row_filter: RowFilter, layers: Sequence[str], prefix: str = "features") -> ColumnElement[bool]:
        """Rows of ``layers`` the filter selects: per layer, since layers differ in their columns
        (the caller restricts the rows to ``layers``)."""
        if len(layers) == 1:
            return self._policy(row_filter, layers[0], prefix)
        return or_(false(), *(and_(F.c.layer == name, self._policy(row_filter, name, prefix)) for name in layers))

    def _layers_in(self, layers: Sequence[str]) -> ColumnElement[bool]:
        return F.c.layer == layers[0] if len(layers) == 1 else self._in(F.c.layer, layers)

    def _validate(self, entity: str, row_filter: RowFilter) -> None:
        if entity == "Feature":
            for name in self._layers:
                self._policy(row_filter, name)

    # --- records -------------------------------------------------------------------------------

    @staticmethod
    def _select(*extra: ColumnElement[Any], fields: frozenset[str] | None = None) -> Select[Any]:
        """Feature rows with the columns ``fields`` need (every column when ``None``)."""
        columns, geometry = _wanted(fields)
        if geometry:
            columns = (*columns, func.ST_AsBinary(F.c.geom, type_=LargeBinary).label("wkb"))
        return select(*columns, *extra)

    @staticmethod
    def _records(rows: Sequence[Mapping[str, Any]], crs: str, distances: Sequence[float] | None = None) -> list[Record]:
        """Feature records of rows from :meth:`_select`, with what the rows carry: the optional
        fields and the GeoJSON geometry only when read (the keys in the embedded engine's order)."""
        if rows and "wkb" in rows[0]:
            shapes: Sequence[object] = geojson.to_geojson_many(
                list(shapely.from_wkb([bytes(r["wkb"]) for r in rows])), crs
            )
        else:
            shapes = [None] * len(rows)  # not selected: neither read nor built
        out: list[Record] = []
        for i, (row, shape) in enumerate(zip(rows, shapes, strict=True)):
            record: dict[str, Any] = {"id": f"{row['layer']}:{row['fid']}", "fid": row["fid"], "layer": row["layer"]}
            if "kind" in row:
                record["kind"] = row["kind"]
            if "name" in row:
                record["name"] = row["name"]
            record["district_code"] = row["district_code"]
            if "valid_from" in row:
                record["valid_from"] = row["valid_from"]
            record["valid_to"] = row["valid_to"]
            if "properties" in row:
                record["properties"] = dict(row["properties"])
            record["geometry"] = shape
            record["crs"] = crs
            record["distance_meters"] = None if distances is None else round(float(distances[i]), 2)
            out.append(record)
        return out

    async def _current_rows(
        self,
        layer: str,
        keys: Sequence[str],
        day: int,
        row_filter: RowFilter,
        prefix: str = "features",
        fields: frozenset[str] | None = None,
    ) -> dict[str, Mapping[str, Any]]:
        """Per key of ``layer``: its version valid on ``day`` if the filter allows it (else absent),
        with the columns Feature ``fields`` need.

        The version is found first and the filter applied to it, as on the embedded engine.
        """
        allowed = self._policy(row_filter, layer, prefix).label("allowed")
        query = (
            self._select(allowed, fields=fields)
            .where(F.c.layer == layer, self._in(F.c.fid, keys), _valid_on(day))
            .order_by(F.c.fid, F.c.valid_from)
        )
        found: dict[str, Mapping[str, Any]] = {}
        for row in await self._rows(query):
            found.setdefault(str(row["fid"]), row)
        return {fid: row for fid, row in found.items() if row["allowed"] is True}

    # --- fetch_many ------------------------------------------------------------------------------

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        keys = list(request.keys)
        today = day_number(_today())
        crs = crs_mod.DEFAULT
        _ = self.engine  # CONNECTOR_UNAVAILABLE before anything else when not open
        if request.entity == "Feature":
            self._validate(request.entity, request.row_filter)
            wanted: dict[str, list[str]] = {}
            for key in keys:
                layer, _, fid = key.partition(":")
                if layer in self._layers:
                    wanted.setdefault(layer, []).append(fid)
            found: dict[str, Record] = {}
            for layer, fids in wanted.items():
                rows = await self._current_rows(layer, fids, today, request.row_filter, fields=request.fields)
                for record in self._records(list(rows.values()), crs):
                    found[str(record["id"])] = record
            return [found.get(k) for k in keys]
        if request.entity == "District":
            groups = await self._related_districts_pg(keys, "adcode", request.row_filter, crs, today)
            return [g[0] if g else None for g in groups]
        if request.entity == "Device":
            return [g[0] if g else None for g in await self._devices(keys, request.row_filter, crs, today)]
        if request.entity == "Layer":
            layers = {r["name"]: r for r in await self._layer_records_pg(request.row_filter, crs)}
            return [layers.get(k) for k in keys]
        raise InvalidArgument(f"spatial does not serve {request.entity}")

    # --- fetch_related ---------------------------------------------------------------------------

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        return capped(await self._fetch_related_pg(request), request.limit)

    async def _fetch_related_pg(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        _ = self.engine  # CONNECTOR_UNAVAILABLE before anything else when not open (as embedded)
        keys = list(request.keys)
        crs = self._crs(request.args.get("crs"))
        day = self._as_of(request.args.get("as_of"))
        entity, by = request.entity, request.by
        if entity == "Feature" and by == "uscc":
            self._layer_name(ENTERPRISES, self._layers)
            rows = await self._current_rows(ENTERPRISES, keys, day, request.row_filter, fields=request.fields)
            records = {str(r["fid"]): r for r in self._records(list(rows.values()), crs)}
            return [[records[k]] if k in records else [] for k in keys]
        if entity == "Feature" and by == "history":
            self._validate("Feature", request.row_filter)
            return await self._history(keys, request.row_filter, crs, request.fields)
        if entity == "District" and by in ("adcode", "uscc"):
            return await self._related_districts_pg(keys, by, request.row_filter, crs, day)
        if entity == "Device" and by == "id":
            return await self._devices(keys, request.row_filter, crs, day)
        if entity == "DeviceReading" and by == "device_id":
            return await self._readings_pg(keys, request.row_filter, request.args)
        raise InvalidArgument(f"spatial cannot relate {entity} by {by}")

    async def _history(
        self, keys: Sequence[str], row_filter: RowFilter, crs: str, fields: frozenset[str] | None
    ) -> list[list[Record]]:
        wanted: dict[str, list[str]] = {}
        for key in keys:
            layer, _, fid = key.partition(":")
            if layer in self._layers:
                wanted.setdefault(layer, []).append(fid)
        grouped: dict[str, list[Record]] = {}
        for layer, fids in wanted.items():
            query = (
                self._select(fields=fields)
                .where(F.c.layer == layer, self._in(F.c.fid, fids), self._policy(row_filter, layer))
                .order_by(F.c.fid, F.c.valid_from)
            )
            for record in self._records(await self._rows(query), crs):
                grouped.setdefault(str(record["id"]), []).append(record)
        return [grouped.get(k, []) for k in keys]

    async def _related_districts_pg(
        self, keys: Sequence[str], by: str | None, row_filter: RowFilter, crs: str, day: int
    ) -> list[list[Record]]:
        if by != "uscc":
            rows = await self._current_rows(DISTRICTS, keys, day, row_filter, "districts")
            records = {str(r["adcode"]): r for r in self._district_list(list(rows.values()), crs)}
            return [[records[k]] if k in records else [] for k in keys]
        # The district holding each enterprise's location on ``day``: the first (by adcode) whose
        # boundary intersects it, then the row filter on that district (as on the embedded engine).
        e = F.alias("e")
        d = (
            select(
                *[c.label(c.name) for c in _COLUMNS],
                func.ST_AsBinary(F.c.geom, type_=LargeBinary).label("wkb"),
                self._policy(row_filter, DISTRICTS, "districts").label("allowed"),
            )
            .where(F.c.layer == DISTRICTS, _valid_on(day), func.ST_Intersects(F.c.geom, e.c.geom))
            .order_by(F.c.fid, F.c.valid_from)
            .limit(1)
            .lateral("hit")
        )
        query = (
            select(e.c.fid.label("uscc"), *[d.c[c.name] for c in _COLUMNS], d.c.wkb, d.c.allowed)
            .select_from(e.join(d, true()))
            .where(e.c.layer == ENTERPRISES, self._in(e.c.fid, keys), _valid_on(day, e))
            .order_by(e.c.fid, e.c.valid_from)
        )
        by_uscc: dict[str, Mapping[str, Any]] = {}
        for row in await self._rows(query):
            by_uscc.setdefault(str(row["uscc"]), row)
        visible = {u: r for u, r in by_uscc.items() if r["allowed"] is True}
        records = dict(zip(visible, self._district_list(list(visible.values()), crs), strict=True))
        return [[records[k]] if k in records else [] for k in keys]

    def _district_list(self, rows: Sequence[Mapping[str, Any]], crs: str) -> list[Record]:
        return [self._as_district(r, crs) for r in self._records(rows, crs)]

    async def _devices(self, keys: Sequence[str], row_filter: RowFilter, crs: str, day: int) -> list[list[Record]]:
        if DEVICES not in self._layers:
            return [[] for _ in keys]
        rows = await self._current_rows(DEVICES, keys, day, row_filter, "devices")
        records = {str(r["id"]): r for r in (self._as_device(x, crs) for x in self._records(list(rows.values()), crs))}
        return [[records[k]] if k in records else [] for k in keys]

    # --- readings --------------------------------------------------------------------------------

    async def _readings_pg(
        self, keys: Sequence[str], row_filter: RowFilter, args: Mapping[str, JSON]
    ) -> list[list[Record]]:
        start, end, step = self._reading_window(args)
        if DEVICES not in self._layers:
            return [[] for _ in keys]
        # A device's latest version decides (as on the embedded engine), whatever the window.
        allowed = self._policy(row_filter, DEVICES, "readings").label("allowed")
        latest = (
            select(F.c.fid, allowed)
            .where(F.c.layer == DEVICES, self._in(F.c.fid, keys))
            .order_by(F.c.fid, F.c.valid_from.desc())
        )
        newest: dict[str, bool] = {}
        for row in await self._rows(latest):
            newest.setdefault(str(row["fid"]), row["allowed"] is True)
        devices = sorted(fid for fid, ok in newest.items() if ok)
        grouped: dict[str, list[Record]] = {k: [] for k in keys}
        if devices:
            for record in await self._query_readings_pg(devices, start, end, step):
                grouped[str(record["device_id"])].append(record)
        return [grouped[k] for k in keys]

    async def _query_readings_pg(self, devices: Sequence[str], start: int, end: int, step: int | None) -> list[Record]:
        r = spatial_readings
        window = and_(
            self._in(r.c.device_id, devices),
            r.c.ts >= dt.datetime.fromtimestamp(start, dt.UTC),
            r.c.ts < dt.datetime.fromtimestamp(end, dt.UTC),
        )
        if step is None:
            counts = await self._rows(
                select(r.c.device_id, func.count().label("n"))
                .where(window)
                .group_by(r.c.device_id)
                .order_by(r.c.device_id)
            )
            over = [(c["device_id"], c["n"]) for c in counts if c["n"] > self.max_readings]
            if over:
                raise InvalidArgument(
                    f"{over[0][1]} readings of device {over[0][0]} between from and to; the limit is "
                    f'{self.max_readings}: pass every (e.g. "1h") to downsample'
                )
            rows = await self._rows(
                select(r.c.device_id, r.c.ts, r.c.value).where(window).order_by(r.c.device_id, r.c.ts)
            )
            return [
                {
                    "device_id": x["device_id"],
                    "ts": x["ts"].astimezone(SHANGHAI),
                    "value": x["value"],
                    "min": x["value"],
                    "max": x["value"],
                    "count": 1,
                }
                for x in rows
            ]
        stride = bindparam(None, dt.timedelta(seconds=step), type_=Interval)
        bucket = func.date_bin(stride, r.c.ts, bindparam(None, _ORIGIN, type_=DateTime(timezone=True))).label("b")
        query = (
            select(
                r.c.device_id,
                bucket,
                func.avg(r.c.value, type_=Float).label("avg"),
                func.min(r.c.value).label("lo"),
                func.max(r.c.value).label("hi"),
                func.count().label("n"),
            )
            .where(window)
            .group_by(r.c.device_id, bucket)
            .order_by(r.c.device_id, bucket)
        )
        return [
            {
                "device_id": x["device_id"],
                "ts": x["b"].astimezone(SHANGHAI),
                "value": round(float(x["avg"]), 4),
                "min": x["lo"],
                "max": x["hi"],
                "count": x["n"],
            }
            for x in await self._rows(query)
        ]

    # --- search ----------------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> Page:
        _ = self.engine
        where = request.where
        crs = self._crs(where.get("crs"))
        if request.entity == "Feature":
            return await self._search_features_pg(request, crs)
        if request.entity == "District":
            day = self._as_of(where.get("as_of"))
            if where.get("point") is not None:
                point = geojson.parse_point(where["point"], crs)
                query = (
                    select(F.c.fid)
                    .where(
                        F.c.layer == DISTRICTS,
                        _valid_on(day),
                        func.ST_Intersects(F.c.geom, _geometry(point, STORAGE_SRID)),
                    )
                    .order_by(F.c.fid, F.c.valid_from)
                    .limit(1)
                )
            else:
                query = select(F.c.fid).where(F.c.layer == DISTRICTS, _valid_on(day)).order_by(F.c.fid, F.c.valid_from)
            adcodes = [str(r["fid"]) for r in await self._rows(query)]
            groups = await self._related_districts_pg(adcodes, "adcode", request.row_filter, crs, day)
            return self._page_by([r for g in groups for r in g], "adcode", request)
        if request.entity == "Layer":
            return self._page_by(await self._layer_records_pg(request.row_filter, crs), "name", request)
        raise InvalidArgument(f"spatial cannot search {request.entity}")

    async def _layer_records_pg(self, row_filter: RowFilter, crs: str) -> list[Record]:
        names = sorted(self._layers)
        # The layer list is small and held in memory: the embedded engine's evaluator decides it.
        target = Target(columns={"layers.name": Categorical.of(list(names))}, in_districts=_no_districts)
        chosen = select_rows(row_filter, target, np.arange(len(names), dtype=np.intp))
        allowed_names = [n for n, ok in zip(names, chosen.tolist(), strict=True) if ok]
        today = _date(day_number(_today()))
        summary = (
            select(
                F.c.layer,
                func.count().label("versions"),
                func.count().filter(F.c.validity.op("@>")(today)).label("current"),
                func.min(F.c.valid_from).label("first"),
                func.max(F.c.valid_from).label("last_from"),
                func.max(F.c.valid_to).label("last_to"),
                func.min(func.ST_XMin(F.c.geom)).label("xmin"),
                func.min(func.ST_YMin(F.c.geom)).label("ymin"),
                func.max(func.ST_XMax(F.c.geom)).label("xmax"),
                func.max(func.ST_YMax(F.c.geom)).label("ymax"),
            )
            .where(self._in(F.c.layer, allowed_names))
            .group_by(F.c.layer)
        )
        stats = {str(r["layer"]): r for r in await self._rows(summary)} if allowed_names else {}
        out: list[Record] = []
        for name in allowed_names:
            meta = self._layers[name]
            row = stats.get(name)
            if row is None:
                out.append(self._layer_record(name, meta.title, meta.geometry_type, crs, (0, 0, 0, 0), None))
                continue
            first = day_number(row["first"])
            last = max(day_number(row["last_from"]), day_number(row["last_to"]) if row["last_to"] else 0)
            bounds = (float(row["xmin"]), float(row["ymin"]), float(row["xmax"]), float(row["ymax"]))
            summary_values = (int(row["versions"]), int(row["current"]), first, last)
            out.append(self._layer_record(name, meta.title, meta.geometry_type, crs, summary_values, bounds))
        return out

    async def _search_features_pg(self, request: SearchRequest, crs: str) -> Page:
        where = request.where
        day = self._as_of(where.get("as_of"))
        if where.get("layer") is not None:
            layers = [self._layer_name(where["layer"], self._layers)]
        else:
            layers = sorted(self._layers)
        if where.get("nearest") is not None:
            return await self._nearest_pg(layers, where["nearest"], request, crs, day)
        shapes, centre, radius, criteria = self._feature_query(where, crs)
        after = self._after(request.after, near=centre is not None)
        conditions: list[ColumnElement[bool]] = [self._layers_in(layers), _valid_on(day)]
        conditions.extend(self._spatial(shapes))
        for column, value in criteria:
            conditions.append(F.c[column] == value if storable(value) else false())
        conditions.append(self._policies(request.row_filter, layers))
        if centre is None:
            if after is not None:
                conditions.append(tuple_(F.c.layer, F.c.fid) > tuple_(literal(after[1]), literal(after[2])))
            query = self._select(fields=request.fields).where(*conditions).order_by(F.c.layer, F.c.fid, F.c.valid_from)
            rows = await self._rows(query.limit(request.first + 1))
            page = rows[: request.first]
            return Page(
                records=self._records(page, crs),
                cursors=[encode_cursor("-", r["layer"], r["fid"]) for r in page],
                has_next_page=len(rows) > request.first,
            )
        metric = crs_mod.to_metric(centre)
        if not all(map(_finite, shapely.get_coordinates(metric)[0])):
            raise InvalidArgument("near.point is too far from the city for metric distances")
        point = _geometry(metric, METRIC_SRID)
        distance = func.ST_Distance(F.c.geom_m, point, type_=Float).label("distance")
        conditions.append(func.ST_DWithin(F.c.geom_m, point, radius))
        # The embedded engine's lon/lat search box, surely holding every position within the
        # radius: redundant, but it lets the (geom, validity) index serve the search together with
        # a district officer's boundaries (both index conditions of one GiST scan).
        box = _geometry(self._search_box(centre, radius), STORAGE_SRID)
        conditions.append(F.c.geom.op("&&")(box))
        if after is not None:
            conditions.append(
                tuple_(func.ST_Distance(F.c.geom_m, point), F.c.layer, F.c.fid)
                > tuple_(bindparam(None, after[0], type_=Float), literal(after[1]), literal(after[2]))
            )
        query = self._select(distance, fields=request.fields).where(*conditions).order_by(distance, F.c.layer, F.c.fid)
        rows = await self._rows(query.limit(request.first + 1))
        page = rows[: request.first]
        return Page(
            records=self._records(page, crs, [float(r["distance"]) for r in page]),
            cursors=[encode_cursor(repr(float(r["distance"])), r["layer"], r["fid"]) for r in page],
            has_next_page=len(rows) > request.first,
        )

    @staticmethod
    def _spatial(shapes: Sequence[tuple[shapely.Geometry, Predicate]]) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for geometry, predicate in shapes:
            bound = _geometry(geometry, STORAGE_SRID)
            # "contains": the query polygon contains the feature (within); else they intersect.
            out.append(
                func.ST_Contains(bound, F.c.geom) if predicate == "contains" else func.ST_Intersects(F.c.geom, bound)
            )
        return out

    async def _nearest_pg(self, layers: Sequence[str], spec: JSON, request: SearchRequest, crs: str, day: int) -> Page:
        point, k = self._nearest_spec(spec, request, crs)
        metric = crs_mod.to_metric(point)
        if not all(map(_finite, shapely.get_coordinates(metric)[0])):
            raise InvalidArgument("near.point is too far from the city for metric distances")
        bound = _geometry(metric, METRIC_SRID)
        distance = func.ST_Distance(F.c.geom_m, bound, type_=Float)
        base = self._select(distance.label("distance"), fields=request.fields).where(
            self._layers_in(layers), _valid_on(day), self._policies(request.row_filter, layers)
        )
        # KNN: the GiST index yields rows by distance, so ORDER BY holds the distance alone (no
        # radius in SQL: the k nearest within the limit are the k nearest, cut at the limit below).
        # One row more tells whether the k-th ties with the next; then every row at exactly that
        # distance is read so that ties are broken by (layer, fid) as on the embedded engine.
        rows = list(await self._rows(base.order_by(F.c.geom_m.op("<->")(bound)).limit(k + 1)))
        if len(rows) > k and float(rows[k]["distance"]) == float(rows[k - 1]["distance"]):
            edge = float(rows[k - 1]["distance"])
            closer = [r for r in rows if float(r["distance"]) < edge]
            tied = await self._rows(base.where(func.ST_DWithin(F.c.geom_m, bound, edge), distance == edge))
            rows = closer + list(tied)
        rows = [r for r in rows if float(r["distance"]) <= self.max_radius_m]
        rows = sorted(rows, key=lambda r: (float(r["distance"]), r["layer"], r["fid"]))[:k]
        distances = [round(float(r["distance"]), 2) for r in rows]
        return Page(
            records=self._records(rows, crs, distances),
            cursors=[encode_cursor(repr(d), r["layer"], r["fid"]) for d, r in zip(distances, rows, strict=True)],
            has_next_page=False,
        )


def _session_settings(dbapi_connection: Any, _record: Any) -> None:
    """Per new connection: no JIT. PostGIS declares its predicates expensive, so even an indexed
    lookup of a few rows is costed above ``jit_above_cost`` and would spend seconds compiling."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET jit = off")
    finally:
        cursor.close()


def _finite(value: float) -> bool:
    return bool(abs(float(value)) < float("inf"))


__all__ = ["LayerMeta", "PostgisSpatialConnector"]
