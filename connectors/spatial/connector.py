"""The spatio-temporal cloud connector (时空信息云): layers in space and time, on geopandas/shapely.

The embedded engine (``connectors.spatial.store``) serves a GeoPackage: every vector layer in
memory with a shapely ``STRtree``, readings aggregated by SQLite on disk. Work runs in a worker
thread so the event loop (and the gateway's per-connector timeout) stays responsive.

Entities and how the gateway reaches them (``FetchRequest.by`` / ``SearchRequest.where``):

* ``Feature`` — key ``"<layer>:<fid>"`` (the version valid today); related ``by="uscc"`` (an
  enterprise's location), ``by="history"`` (every version of a feature, oldest first); search
  ``where``: ``layer``, ``bbox``, ``within``, ``intersects``, ``near`` ``{point, radius_m}``,
  ``nearest`` ``{point, k}``, ``as_of``, ``kind``, ``district``, ``crs``.
* ``District`` — key adcode; related ``by="adcode"`` or ``by="uscc"`` (the district holding an
  enterprise's location); search ``where``: ``point`` (district at a point) or nothing (all).
* ``Layer`` — key layer name; search lists the layers.
* ``Device`` — key device id (the ``iot_devices`` layer); related ``by="id"``.
* ``DeviceReading`` — related ``by="device_id"`` with ``args`` ``from``, ``to`` (ISO instants),
  ``every`` (``"15m"``, ``"1h"``, ``"1d"``: averaged buckets) under the device's row filter.

Every call takes ``crs`` and ``as_of`` in ``args``/``where`` where geometry or time matter.
Filterable fields for policies: ``features.{layer,kind,district_code,uscc,geometry}``,
``devices.{kind,district_code,geometry}``, ``readings.{kind,district_code,geometry}``,
``districts.{kind,district_code,geometry}``, ``layers.name``; ``*.geometry`` takes only the
``within_districts`` operator (see ``connectors.spatial.filters``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Self, TypeVar, cast

import numpy as np
import shapely
from numpy.typing import NDArray

from connectors.base import (
    JSON,
    Capabilities,
    ConnectorInfo,
    FetchRequest,
    Health,
    Page,
    Record,
    RowFilter,
    SchemaContribution,
    SearchRequest,
)
from connectors.errors import ConnectorConfigError, ConnectorUnavailable, FilterError, InvalidArgument
from connectors.spatial import crs as crs_mod, geojson
from connectors.spatial.filters import GEOMETRY, Categorical, Indices, Mask, Target, select
from connectors.spatial.store import (
    Layer,
    Store,
    day_number,
    from_day_number,
    layer_summaries,
    open_store,
)
from connectors.sql import Cursors, decode_cursor, encode_cursor, storable

T = TypeVar("T")
Predicate = Literal["intersects", "contains"]
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DEVICES = "iot_devices"
ENTERPRISES = "enterprise_locations"
DISTRICTS = "districts"

_EVERY = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# Metres per degree of latitude is at least this anywhere on the ellipsoid (110 574 at the equator).
_M_PER_DEG_LAT = 110_000.0
_M_PER_DEG_LON_EQUATOR = 111_320.0

#: Defaults of the ``[connectors.spatial]`` options.
DEFAULTS: dict[str, float] = {
    "max_vertices": 10_000,  # positions in one client geometry
    "max_radius_m": 50_000.0,  # near: radiusMeters; nearest: how far it looks
    "max_k": 100,  # nearest: k
    "max_readings": 10_000,  # readings or buckets per device in one response
}


class FeatureQuery(NamedTuple):
    """A feature search's checked geometry and attribute arguments (``nearest`` and paging aside)."""

    shapes: list[tuple[shapely.Geometry, Predicate]]
    centre: shapely.Point | None
    radius: float
    criteria: list[tuple[str, str]]


def _today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def _feature_target(layer: Layer, in_districts: Callable[[tuple[str, ...]], Mask], prefix: str) -> Target:
    columns: dict[str, Categorical | str] = {f"{prefix}.{name}": column for name, column in layer.columns.items()}
    columns[f"{prefix}.geometry"] = GEOMETRY
    if prefix == "features":
        columns["features.layer"] = Categorical.constant(layer.name, len(layer))
    return Target(columns=columns, in_districts=in_districts)


def _option(config: Mapping[str, JSON], key: str) -> float:
    value = config.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConnectorConfigError(f"spatial: {key!r} must be a positive number, got {value!r}")
    return float(value)


def capped(groups: Sequence[Sequence[Record]], limit: int | None) -> list[Sequence[Record]]:
    """Each key's records cut to the first ``limit`` in their order (the policy's ``max_rows`` per
    parent key, shared by both backends): a feature's versions oldest first, a device's readings
    by time. Cut after the read: a key holds a few rows, except a long history or a reading
    series, which ``max_readings`` bounds."""
    if limit is None:
        return list(groups)
    return [group if len(group) <= limit else list(group[:limit]) for group in groups]


class SpatialConnector:
    """Districts, parcels, POIs, enterprise locations and IoT devices, in space and time."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="spatial",
        department="spatial",
        version="1.0.0",
        entities=("Feature", "District", "Layer", "Device", "DeviceReading"),
        description="时空信息云 (spatio-temporal information cloud): layers, places, IoT readings",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        fetch_by_keys=True, fetch_related=True, search=True, pagination=True
    )

    def __init__(self, path: Path, options: Mapping[str, JSON] | None = None) -> None:
        self.path = path
        options = dict(options or {})
        self.max_vertices = int(_option(options, "max_vertices"))
        self.max_radius_m = _option(options, "max_radius_m")
        self.max_k = int(_option(options, "max_k"))
        self.max_readings = int(_option(options, "max_readings"))
        self._store: Store | None = None
        self._error = ""

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        url = config.get("url")
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("postgresql", "postgres:")):
                raise ConnectorConfigError(
                    "spatial: 'url' must be a PostgreSQL (PostGIS) URL such as postgresql+asyncpg://..."
                )
            from connectors.spatial.postgis import PostgisSpatialConnector

            return cast(Self, PostgisSpatialConnector.from_url(url, config))
        path = config.get("path", str(data_dir / "spatial.gpkg"))
        if not isinstance(path, str) or not path.endswith(".gpkg"):
            raise ConnectorConfigError("spatial: 'path' must name a GeoPackage file such as var/spatial.gpkg")
        return cls(Path(path), config)

    def schema(self) -> SchemaContribution:
        from connectors.spatial.types import (
            Device,
            DeviceReading,
            Feature,
            Layer as LayerType,
            SpatialDistrictFields,
            SpatialEnterpriseFields,
            SpatialQuery,
        )

        return SchemaContribution(
            query=SpatialQuery,
            types=(Feature, LayerType, Device, DeviceReading),
            entity_fields={"District": SpatialDistrictFields, "Enterprise": SpatialEnterpriseFields},
            keys={"Feature": "id", "District": "adcode", "Layer": "name", "Device": "id", "DeviceReading": "device_id"},
            owns={"District": 10},
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._store is not None:
            return
        try:
            self._store = await asyncio.to_thread(open_store, self.path)
            self._error = ""
        except ConnectorUnavailable as exc:
            # The gateway still starts; this connector's fields answer CONNECTOR_UNAVAILABLE and
            # /readyz says why.
            self._error = str(exc)
        except Exception as exc:
            self._error = f"cannot read {self.path.name}: {type(exc).__name__}"

    async def aclose(self) -> None:
        self._store = None

    async def health(self) -> Health:
        if self._store is None:
            return Health(ok=False, detail=self._error or "spatial connector is not open")
        return Health(ok=True)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise ConnectorUnavailable(self._error or "spatial connector is not open")
        return self._store

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._store is None:  # fail before a thread is taken
            raise ConnectorUnavailable(self._error or "spatial connector is not open")
        return await asyncio.to_thread(fn)

    # --- shared helpers ------------------------------------------------------------------------

    def _layer(self, name: object) -> Layer:
        return self.store.layers[self._layer_name(name, self.store.layers)]

    @staticmethod
    def _layer_name(name: object, known: Collection[str]) -> str:
        """``name`` if it is one of the ``known`` layers, else ``InvalidArgument`` listing them."""
        if not isinstance(name, str) or name not in known:
            shown = name if isinstance(name, str) and len(name) <= 40 and storable(name) else "?"
            raise InvalidArgument(f"unknown layer {shown!r}: one of {', '.join(sorted(known))}")
        return name

    def _in_districts(self, layer: Layer) -> Callable[[tuple[str, ...]], Mask]:
        districts = self.store.layers[DISTRICTS]
        today = day_number(_today())
        return lambda adcodes: layer.membership(adcodes, districts, today)

    def _allowed(self, layer: Layer, row_filter: RowFilter, rows: Indices, prefix: str = "features") -> Mask:
        return select(row_filter, _feature_target(layer, self._in_districts(layer), prefix), rows)

    @staticmethod
    def _crs(value: object) -> str:
        if value is not None and not isinstance(value, str):
            raise InvalidArgument("crs must be a string such as EPSG:4326")
        return crs_mod.normalise_crs(value)

    @staticmethod
    def _as_of(value: object) -> int:
        if value is None:
            return day_number(_today())
        if isinstance(value, dt.date):
            return day_number(value)
        if isinstance(value, str):
            try:
                return day_number(dt.date.fromisoformat(value))
            except ValueError as exc:
                raise InvalidArgument(f"asOf: {value!r} is not a date (YYYY-MM-DD)") from exc
        raise InvalidArgument("asOf must be a date (YYYY-MM-DD)")

    def _features(
        self,
        layer: Layer,
        rows: Sequence[int],
        crs: str,
        distances: Sequence[float] | None = None,
        fields: frozenset[str] | None = None,
    ) -> list[Record]:
        """Feature records of ``rows``; with ``fields`` (selected fields) only what they need."""
        if fields is None or "geometry" in fields:
            shapes: Sequence[object] = geojson.to_geojson_many([layer.geometries[r] for r in rows], crs)
        else:
            shapes = [None] * len(rows)  # not selected: no GeoJSON built
        records = layer.records(rows, fields)
        for i, (record, shape) in enumerate(zip(records, shapes, strict=True)):
            record["geometry"] = shape
            record["crs"] = crs
            record["distance_meters"] = None if distances is None else round(float(distances[i]), 2)
        return list(records)  # as list[Record] (list is invariant)

    def _district_records(self, rows: Sequence[int], crs: str) -> list[Record]:
        return [self._as_district(r, crs) for r in self._features(self.store.layers[DISTRICTS], rows, crs)]

    @staticmethod
    def _as_district(record: Record, crs: str) -> Record:
        """A ``District`` record from a feature record of the districts layer."""
        props = cast(Mapping[str, Any], record["properties"])
        return {
            "adcode": record["fid"],
            "name": record["name"],
            "name_en": props.get("name_en") or "",
            "level": record["kind"] or "district",
            "area_km2": props.get("area_km2"),
            "boundary": record["geometry"],
            "crs": crs,
            "valid_from": record["valid_from"],
            "valid_to": record["valid_to"],
        }

    def _device_records(self, rows: Sequence[int], crs: str) -> list[Record]:
        return [self._as_device(r, crs) for r in self._features(self.store.layers[DEVICES], rows, crs)]

    @staticmethod
    def _as_device(record: Record, crs: str) -> Record:
        """A ``Device`` record from a feature record of the iot_devices layer."""
        props = cast(Mapping[str, Any], record["properties"])
        return {
            "id": record["fid"],
            "kind": record["kind"],
            "name": record["name"],
            "status": props.get("status") or "UNKNOWN",
            "unit": props.get("unit") or "",
            "district_code": record["district_code"],
            "installed_on": record["valid_from"],
            "removed_on": record["valid_to"],
            "geometry": record["geometry"],
            "crs": crs,
        }

    @staticmethod
    def _current(layer: Layer, fid: str, day: int) -> int | None:
        for row in layer.versions(fid):
            if layer.valid_from[row] <= day < layer.valid_to[row]:
                return row
        return None

    # --- fetch_many ------------------------------------------------------------------------------

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        return await self._run(lambda: self._fetch_many(request))

    def _fetch_many(self, request: FetchRequest) -> list[Record | None]:
        keys = list(request.keys)
        today = day_number(_today())
        crs = crs_mod.DEFAULT
        if request.entity == "Feature":
            self._validate(request.entity, request.row_filter)
            wanted: dict[str, list[tuple[int, int]]] = {}  # layer -> (position, row)
            for position, key in enumerate(keys):
                layer_name, _, fid = key.partition(":")
                layer = self.store.layers.get(layer_name)
                row = self._current(layer, fid, today) if layer is not None else None
                if layer is not None and row is not None:
                    wanted.setdefault(layer_name, []).append((position, row))
            found: list[Record | None] = [None] * len(keys)
            for layer_name, pairs in wanted.items():
                layer = self.store.layers[layer_name]
                rows = np.array([row for _, row in pairs], dtype=np.intp)
                allowed = self._allowed(layer, request.row_filter, rows)
                kept = [pair for pair, ok in zip(pairs, allowed.tolist(), strict=True) if ok]
                records = self._features(layer, [row for _, row in kept], crs, fields=request.fields)
                for (position, _), record in zip(kept, records, strict=True):
                    found[position] = record
            return found
        if request.entity == "District":
            return [
                r[0] if r else None for r in self._related_districts(keys, "adcode", request.row_filter, crs, today)
            ]
        if request.entity == "Device":
            return [r[0] if r else None for r in self._related_devices(keys, request.row_filter, crs, today)]
        if request.entity == "Layer":
            layers = {r["name"]: r for r in self._layer_records(request.row_filter, crs)}
            return [layers.get(k) for k in keys]
        raise InvalidArgument(f"spatial does not serve {request.entity}")

    def _validate(self, entity: str, row_filter: RowFilter) -> None:
        """Refuse a bad filter even when no key matched a row (a forged filter is always a deny)."""
        if entity == "Feature":
            for layer in self.store.layers.values():
                self._allowed(layer, row_filter, np.zeros(0, dtype=np.intp))

    # --- fetch_related ---------------------------------------------------------------------------

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        return capped(await self._run(lambda: self._fetch_related(request)), request.limit)

    def _fetch_related(self, request: FetchRequest) -> list[list[Record]]:
        keys = list(request.keys)
        crs = self._crs(request.args.get("crs"))
        day = self._as_of(request.args.get("as_of"))
        entity, by = request.entity, request.by
        if entity == "Feature" and by == "uscc":
            layer = self._layer(ENTERPRISES)
            out: list[list[Record]] = []
            rows = [self._current(layer, k, day) for k in keys]
            present = np.array([r for r in rows if r is not None], dtype=np.intp)
            allowed = dict(
                zip(present.tolist(), self._allowed(layer, request.row_filter, present).tolist(), strict=True)
            )
            for row in rows:
                if row is None or not allowed[row]:
                    out.append([])
                else:
                    out.append(self._features(layer, [row], crs, fields=request.fields))
            return out
        if entity == "Feature" and by == "history":
            history: list[list[Record]] = []
            self._validate("Feature", request.row_filter)
            for key in keys:
                layer_name, _, fid = key.partition(":")
                of = self.store.layers.get(layer_name)
                versions = np.array(of.versions(fid) if of is not None else [], dtype=np.intp)
                if of is None or len(versions) == 0:
                    history.append([])
                    continue
                keep = versions[self._allowed(of, request.row_filter, versions)]
                history.append(self._features(of, keep.tolist(), crs, fields=request.fields))
            return history
        if entity == "District" and by in ("adcode", "uscc"):
            return self._related_districts(keys, by, request.row_filter, crs, day)
        if entity == "Device" and by == "id":
            return self._related_devices(keys, request.row_filter, crs, day)
        if entity == "DeviceReading" and by == "device_id":
            return self._readings(keys, request.row_filter, request.args)
        raise InvalidArgument(f"spatial cannot relate {entity} by {by}")

    def _related_districts(
        self, keys: Sequence[str], by: str | None, row_filter: RowFilter, crs: str, day: int
    ) -> list[list[Record]]:
        layer = self.store.layers[DISTRICTS]
        rows: list[int | None]
        if by == "uscc":
            places = self.store.layers[ENTERPRISES]
            rows = []
            for key in keys:
                at = self._current(places, key, day)
                rows.append(None if at is None else self._district_at(places.geometries[at], day))
        else:
            rows = [self._current(layer, k, day) for k in keys]
        present = np.array([r for r in rows if r is not None], dtype=np.intp)
        target = _feature_target(layer, self._in_districts(layer), "districts")
        allowed = dict(zip(present.tolist(), select(row_filter, target, present).tolist(), strict=True))
        visible = [r for r in rows if r is not None and allowed[r]]
        records = dict(zip(visible, self._district_records(visible, crs), strict=True))
        return [[records[r]] if r is not None and r in records else [] for r in rows]

    def _district_at(self, point: shapely.Geometry, day: int) -> int | None:
        layer = self.store.layers[DISTRICTS]
        hits = np.sort(layer.tree.query(point, predicate="intersects"))
        current = hits[layer.valid_at(hits, day)]
        return int(current[0]) if len(current) else None

    def _related_devices(self, keys: Sequence[str], row_filter: RowFilter, crs: str, day: int) -> list[list[Record]]:
        layer = self.store.layers.get(DEVICES)
        if layer is None:
            return [[] for _ in keys]
        rows = [self._current(layer, k, day) for k in keys]
        present = np.array([r for r in rows if r is not None], dtype=np.intp)
        allowed = dict(
            zip(present.tolist(), self._allowed(layer, row_filter, present, "devices").tolist(), strict=True)
        )
        visible = [r for r in rows if r is not None and allowed[r]]
        records = dict(zip(visible, self._device_records(visible, crs), strict=True))
        return [[records[r]] if r is not None and r in records else [] for r in rows]

    # --- readings --------------------------------------------------------------------------------

    @staticmethod
    def _instant(value: object, name: str, default: dt.datetime) -> int:
        if value is None:
            return int(default.timestamp())
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise InvalidArgument(f"{name}: {value!r} is not an RFC 3339 date-time") from exc
        else:
            raise InvalidArgument(f"{name} must be a date-time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=SHANGHAI)  # the city's wall time
        return int(moment.timestamp())

    def _reading_window(self, args: Mapping[str, JSON]) -> tuple[int, int, int | None]:
        """``(start, end, step)`` in Unix seconds from ``from``, ``to`` and ``every`` (checked)."""
        now = dt.datetime.now(SHANGHAI)
        end = self._instant(args.get("to"), "to", now)
        start = self._instant(args.get("from"), "from", now - dt.timedelta(days=1))
        if start >= end:
            raise InvalidArgument("from must be before to")
        every = args.get("every")
        step: int | None = None
        if every is not None:
            match = _EVERY.match(every) if isinstance(every, str) else None
            if match is None:
                raise InvalidArgument(f'every: {every!r} is not a duration such as "15m", "1h" or "1d"')
            step = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            if step < 60:
                raise InvalidArgument('every: buckets are at least 1 minute ("1m")')
            buckets = (end - start) // step + 1
            if buckets > self.max_readings:
                raise InvalidArgument(
                    f"every: {every} makes {buckets} buckets between from and to; the limit is {self.max_readings}: "
                    "choose a longer bucket"
                )
        return start, end, step

    def _readings(self, keys: Sequence[str], row_filter: RowFilter, args: Mapping[str, JSON]) -> list[list[Record]]:
        start, end, step = self._reading_window(args)
        layer = self.store.layers.get(DEVICES)
        if layer is None:
            return [[] for _ in keys]
        rows = [layer.versions(k)[-1] if len(layer.versions(k)) else None for k in keys]
        present = np.array([r for r in rows if r is not None], dtype=np.intp)
        allowed = dict(
            zip(present.tolist(), self._allowed(layer, row_filter, present, "readings").tolist(), strict=True)
        )
        devices = sorted({k for k, r in zip(keys, rows, strict=True) if r is not None and allowed[r]})
        grouped: dict[str, list[Record]] = {k: [] for k in keys}
        if devices:
            for record in self._query_readings(devices, start, end, step):
                grouped[str(record["device_id"])].append(record)
        return [grouped[k] for k in keys]

    def _query_readings(self, devices: Sequence[str], start: int, end: int, step: int | None) -> list[Record]:
        marks = ",".join("?" * len(devices))
        conn = self.store.readings_connection()
        try:
            if step is None:
                counts = conn.execute(
                    f"SELECT device_id, count(*) FROM iot_readings WHERE device_id IN ({marks}) "  # noqa: S608 - placeholders only
                    "AND ts >= ? AND ts < ? GROUP BY device_id",
                    (*devices, start, end),
                ).fetchall()
                over = [(d, n) for d, n in counts if n > self.max_readings]
                if over:
                    raise InvalidArgument(
                        f"{over[0][1]} readings of device {over[0][0]} between from and to; the limit is "
                        f'{self.max_readings}: pass every (e.g. "1h") to downsample'
                    )
                rows = conn.execute(
                    f"SELECT device_id, ts, value FROM iot_readings WHERE device_id IN ({marks}) "  # noqa: S608
                    "AND ts >= ? AND ts < ? ORDER BY device_id, ts",
                    (*devices, start, end),
                ).fetchall()
                return [
                    {"device_id": d, "ts": _moment(ts), "value": v, "min": v, "max": v, "count": 1} for d, ts, v in rows
                ]
            # Buckets aligned to the city's midnight (UTC+8), so "1d" means a calendar day there.
            offset = 8 * 3600
            rows = conn.execute(
                f"SELECT device_id, (ts + ?) / ? AS b, avg(value), min(value), max(value), count(*) "  # noqa: S608
                f"FROM iot_readings WHERE device_id IN ({marks}) AND ts >= ? AND ts < ? "
                "GROUP BY device_id, b ORDER BY device_id, b",
                (offset, step, *devices, start, end),
            ).fetchall()
            return [
                {
                    "device_id": d,
                    "ts": _moment(b * step - offset),
                    "value": round(float(avg), 4),
                    "min": lo,
                    "max": hi,
                    "count": n,
                }
                for d, b, avg, lo, hi, n in rows
            ]
        finally:
            conn.close()

    # --- search ----------------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> Page:
        return await self._run(lambda: self._search(request))

    def _search(self, request: SearchRequest) -> Page:
        where = request.where
        crs = self._crs(where.get("crs"))
        if request.entity == "Feature":
            return self._search_features(request, crs)
        if request.entity == "District":
            day = self._as_of(where.get("as_of"))
            layer = self.store.layers[DISTRICTS]
            if where.get("point") is not None:
                point = geojson.parse_point(where["point"], crs)
                row = self._district_at(point, day)
                rows = [] if row is None else [row]
            else:
                every = np.arange(len(layer), dtype=np.intp)
                rows = every[layer.valid_at(every, day)].tolist()
            records = [
                r
                for group in self._related_districts(
                    [layer.fids[r] for r in rows], "adcode", request.row_filter, crs, day
                )
                for r in group
            ]
            return self._page_by(records, "adcode", request)
        if request.entity == "Layer":
            return self._page_by(self._layer_records(request.row_filter, crs), "name", request)
        raise InvalidArgument(f"spatial cannot search {request.entity}")

    @staticmethod
    def _page_by(records: list[Record], key: str, request: SearchRequest) -> Page:
        records = sorted(records, key=lambda r: str(r[key]))
        if request.after:
            (last,) = decode_cursor(request.after, 1)
            records = [r for r in records if str(r[key]) > last]
        page = records[: request.first]
        return Page(
            records=page, cursors=[encode_cursor(r[key]) for r in page], has_next_page=len(records) > request.first
        )

    def _layer_records(self, row_filter: RowFilter, crs: str) -> list[Record]:
        names = sorted(self.store.layers)
        column = Categorical.of(list(names))
        target = Target(columns={"layers.name": column}, in_districts=_no_districts)
        allowed = select(row_filter, target, np.arange(len(names), dtype=np.intp))
        summaries = layer_summaries(self.store, day_number(_today()))
        out: list[Record] = []
        for name, ok in zip(names, allowed.tolist(), strict=True):
            if not ok:
                continue
            layer = self.store.layers[name]
            xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(layer.geometries))
            bounds = (xmin, ymin, xmax, ymax) if len(layer) else None
            out.append(self._layer_record(name, layer.title, layer.geometry_type, crs, summaries[name], bounds))
        return out

    @staticmethod
    def _layer_record(
        name: str,
        title: str,
        geometry_type: str,
        crs: str,
        summary: tuple[int, int, int, int],
        bounds: tuple[float, float, float, float] | None,
    ) -> Record:
        """A ``Layer`` record: ``summary`` is (versions, valid today, first valid_from, last change)
        as day numbers, ``bounds`` the storage-CRS extent of every version (``None`` when empty)."""
        versions, current, first, last = summary
        extent = None
        if bounds is not None:
            box = shapely.segmentize(
                shapely.box(*bounds), max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 16 or 1.0
            )
            extent = [
                round(float(v), crs_mod.CRSS[crs].decimals)
                for v in shapely.bounds(crs_mod.convert(box, crs_mod.STORAGE, crs))
            ]
        return {
            "name": name,
            "title": title,
            "geometry_type": geometry_type,
            "crs": crs,
            "storage_crs": crs_mod.STORAGE,
            "extent": extent,
            "feature_count": current,
            "version_count": versions,
            "valid_from": from_day_number(first) if versions else None,
            "last_change": from_day_number(last) if versions else None,
        }

    def _feature_query(self, where: Mapping[str, JSON], crs: str) -> FeatureQuery:
        """The checked arguments of a feature search other than ``nearest`` (both backends)."""
        shapes = self._query_geometries(where, crs)
        centre: shapely.Point | None = None
        radius = 0.0
        near = where.get("near")
        if near is not None:
            if not isinstance(near, Mapping):
                raise InvalidArgument("near must be {point, radiusMeters}")
            centre = geojson.parse_point(near.get("point"), crs, "near.point")
            radius = self._radius(near.get("radius_m"), "near.radiusMeters")
        criteria: list[tuple[str, str]] = []
        for key, column in (("kind", "kind"), ("district", "district_code")):
            value = where.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise InvalidArgument(f"filter.{key} must be a string")
                criteria.append((column, value))
        return FeatureQuery(shapes, centre, radius, criteria)

    def _search_features(self, request: SearchRequest, crs: str) -> Page:
        where = request.where
        day = self._as_of(where.get("as_of"))
        if where.get("layer") is not None:
            layers = [self._layer(where["layer"])]
        else:
            layers = [self.store.layers[n] for n in sorted(self.store.layers)]
        if where.get("nearest") is not None:
            return self._nearest(layers, where["nearest"], request, crs, day)
        shapes, centre, radius, criteria = self._feature_query(where, crs)
        after = self._after(request.after, near=centre is not None)

        def matching(layer: Layer) -> tuple[Indices, np.ndarray]:
            if centre is not None:
                restrict = self._spatial_rows(layer, shapes) if shapes else None
                rows, distances = self._within_radius(layer, restrict, centre, radius)
            else:
                rows = self._spatial_rows(layer, shapes)
                distances = np.zeros(len(rows))
            keep = layer.valid_at(rows, day)
            for column, value in criteria:
                keep &= self._equals(layer, column, rows, value)
            rows, distances = rows[keep], distances[keep]
            allowed = self._allowed(layer, request.row_filter, rows)
            return rows[allowed], distances[allowed]

        chosen: list[tuple[float, Layer, int]] = []
        if centre is None:
            # Identifier order: layers by name, rows by fid (each layer is stored sorted), so a page
            # is the next first+1 matches after the cursor; nothing else is materialised.
            for layer in layers:
                if after is not None and layer.name < after[1]:
                    continue
                rows, _ = matching(layer)
                if after is not None and layer.name == after[1]:
                    rows = rows[np.asarray(layer.fids[rows] > after[2], dtype=np.bool_)] if len(rows) else rows
                chosen.extend((0.0, layer, int(r)) for r in rows[: request.first + 1 - len(chosen)])
                if len(chosen) > request.first:
                    break
        else:
            chosen = _closest([(layer, *matching(layer)) for layer in layers], after, request.first + 1)
        page = chosen[: request.first]
        records = self._records_of(page, crs, with_distance=centre is not None, fields=request.fields)
        near = centre is not None
        cursors = Cursors(page, lambda c: (repr(c[0]) if near else "-", c[1].name, str(c[1].fids[c[2]])))
        return Page(records=records, cursors=cursors, has_next_page=len(chosen) > request.first)

    def _query_geometries(self, where: Mapping[str, JSON], crs: str) -> list[tuple[shapely.Geometry, Predicate]]:
        shapes: list[tuple[shapely.Geometry, Predicate]] = []
        bbox = where.get("bbox")
        if bbox is not None:
            if not isinstance(bbox, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in bbox
            ):
                raise InvalidArgument("bbox must be [xmin, ymin, xmax, ymax]")
            shapes.append((geojson.parse_bbox([float(v) for v in bbox], crs), "intersects"))
        within = where.get("within")
        if within is not None:
            polygon = geojson.parse(within, crs, max_vertices=self.max_vertices, what="within")
            if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon):
                raise InvalidArgument(f"within needs a Polygon or MultiPolygon, got a {type(polygon).__name__}")
            shapes.append((polygon, "contains"))  # the query polygon contains the feature
        intersects = where.get("intersects")
        if intersects is not None:
            shape = geojson.parse(intersects, crs, max_vertices=self.max_vertices, what="intersects")
            shapes.append((shape, "intersects"))
        return shapes

    @staticmethod
    def _after(cursor: str | None, *, near: bool) -> tuple[float, str, str] | None:
        if not cursor:
            return None
        distance, layer, fid = decode_cursor(cursor, 3)
        if (distance == "-") == near:
            raise InvalidArgument("after: this cursor belongs to another kind of query")
        try:
            return (float(distance) if near else 0.0, layer, fid)
        except ValueError as exc:
            raise InvalidArgument("after: not a cursor issued by this API") from exc

    def _records_of(
        self,
        page: Sequence[tuple[float, Layer, int]],
        crs: str,
        *,
        with_distance: bool,
        fields: frozenset[str] | None = None,
    ) -> list[Record]:
        """Records for (distance, layer, row) in page order, geometry converted per layer at once."""
        by_layer: dict[str, list[int]] = {}
        for i, (_, layer, _) in enumerate(page):
            by_layer.setdefault(layer.name, []).append(i)
        out: list[Record | None] = [None] * len(page)
        for positions in by_layer.values():
            layer = page[positions[0]][1]
            rows = [page[i][2] for i in positions]
            distances = [page[i][0] for i in positions] if with_distance else None
            for i, record in zip(positions, self._features(layer, rows, crs, distances, fields), strict=True):
                out[i] = record
        return [r for r in out if r is not None]

    @staticmethod
    def _equals(layer: Layer, column: str, rows: Indices, value: str) -> Mask:
        found = layer.columns.get(column)
        if found is None or value not in found.categories:
            return np.zeros(len(rows), dtype=np.bool_)
        code = found.categories.index(value)
        result: Mask = found.codes[rows] == code
        return result

    @staticmethod
    def _spatial_rows(layer: Layer, geometries: Sequence[tuple[shapely.Geometry, Predicate]]) -> Indices:
        rows: Indices | None = None
        for geometry, predicate in geometries:
            hits = np.unique(layer.tree.query(geometry, predicate=predicate))
            rows = hits if rows is None else np.intersect1d(rows, hits, assume_unique=True)
        if rows is None:
            return np.arange(len(layer), dtype=np.intp)
        return rows.astype(np.intp)

    def _radius(self, value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument(f"{name} must be a finite number of metres")
        if value < 0:
            raise InvalidArgument(
                f"{name} is negative ({value:g}); give a radius between 0 and {self.max_radius_m:g} metres"
            )
        if value > self.max_radius_m:
            raise InvalidArgument(f"{name} is too large ({value:g} m); the limit is {self.max_radius_m:g} metres")
        return float(value)

    @staticmethod
    def _search_box(centre: shapely.Point, radius: float) -> shapely.Polygon:
        """A longitude/latitude box surely containing every position within ``radius`` metres."""
        margin = radius * 1.01 + 1.0  # UTM scale error (< 0.1 %) and rounding
        dlat = margin / _M_PER_DEG_LAT
        lat_edge = min(89.0, abs(centre.y) + dlat)
        dlon = min(180.0, margin / (_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat_edge))))
        box: shapely.Polygon = shapely.box(centre.x - dlon, centre.y - dlat, centre.x + dlon, centre.y + dlat)
        return box

    def _within_radius(
        self, layer: Layer, rows: Indices | None, centre: shapely.Point, radius: float
    ) -> tuple[Indices, np.ndarray]:
        """Rows within ``radius`` metres of ``centre`` (distances in UTM 51N), with their distances."""
        points = layer.metric_points()
        # A point intersects the (axis-aligned) search box exactly when its envelope does: for a
        # point layer the index's envelope test is the whole test, with no predicate to evaluate.
        predicate: Predicate | None = None if points is not None else "intersects"
        hits = np.unique(layer.tree.query(self._search_box(centre, radius), predicate=predicate)).astype(np.intp)
        if rows is not None:
            hits = np.intersect1d(hits, rows, assume_unique=True).astype(np.intp)
        if len(hits) == 0:
            return hits, np.zeros(0)
        metric_centre = crs_mod.to_metric(centre)
        if points is not None:  # a point layer: distances from positions projected once per layer
            cx, cy = shapely.get_coordinates(metric_centre)[0]
            dx, dy = points[hits, 0] - cx, points[hits, 1] - cy
            distances = np.sqrt(dx * dx + dy * dy)
        else:
            distances = shapely.distance(crs_mod.metric_array(layer.geometries[hits]), metric_centre)
        if not np.all(np.isfinite(distances)):
            raise InvalidArgument("near.point is too far from the city for metric distances")
        close = distances <= radius
        return hits[close], distances[close]

    def _nearest_spec(self, spec: JSON, request: SearchRequest, crs: str) -> tuple[shapely.Point, int]:
        """The checked point and k of ``nearest`` (k capped at ``first``)."""
        if not isinstance(spec, Mapping):
            raise InvalidArgument("nearest needs a point and k")
        point = geojson.parse_point(spec.get("point"), crs)
        k = spec.get("k")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.max_k:
            raise InvalidArgument(f"k must be between 1 and {self.max_k}, got {k!r}")
        return point, min(k, request.first)

    def _nearest(self, layers: Sequence[Layer], spec: JSON, request: SearchRequest, crs: str, day: int) -> Page:
        point, k = self._nearest_spec(spec, request, crs)
        radius = min(1000.0, self.max_radius_m)
        found: list[tuple[float, str, str, Layer, int]] = []
        while True:
            found = []
            for layer in layers:
                rows, distances = self._within_radius(layer, None, point, radius)
                keep = layer.valid_at(rows, day)
                rows, distances = rows[keep], distances[keep]
                allowed = self._allowed(layer, request.row_filter, rows)
                for row, distance in zip(rows[allowed].tolist(), distances[allowed].tolist(), strict=True):
                    found.append((distance, layer.name, str(layer.fids[row]), layer, row))
            # Everything within the radius is known, so the k closest of them are the k nearest.
            if len(found) >= k or radius >= self.max_radius_m:
                break
            radius = min(radius * 4, self.max_radius_m)
        found.sort(key=lambda c: (c[0], c[1], c[2]))
        page = [(round(d, 2), layer, row) for d, _, _, layer, row in found[:k]]
        records = self._records_of(page, crs, with_distance=True, fields=request.fields)
        cursors = Cursors(page, lambda c: (repr(c[0]), c[1].name, str(c[1].fids[c[2]])))
        return Page(records=records, cursors=cursors, has_next_page=False)


def _round_cm(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``round(v, 2)`` of each value, equal to Python's (which cursors and ordering use).

    ``rint(v * 100) / 100`` is the same float unless ``v * 100`` lies next to a half, where
    the product's rounding error can tip it: those few are rounded by Python itself."""
    scaled = values * 100.0
    out: NDArray[np.float64] = np.rint(scaled) / 100.0
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        out[i] = round(float(values[i]), 2)
    return out


def _closest(
    candidates: Sequence[tuple[Layer, Indices, NDArray[np.float64]]],
    after: tuple[float, str, str] | None,
    count: int,
) -> list[tuple[float, Layer, int]]:
    """The first ``count`` of (layer, rows, distances) in (distance to the cm, layer name, fid)
    order after the cursor position ``after``, as (rounded distance, layer, row).

    Sorted in numpy, not as Python tuples (thousands of candidates within a radius). Within a
    layer the row order is the fid order (layers are stored sorted by fid, then version), so
    (distance, layer name, row) sorts as (distance, layer name, fid) with a stable sort would."""
    if not candidates:
        return []
    candidates = sorted(candidates, key=lambda c: c[0].name)
    distances = _round_cm(np.concatenate([np.asarray(d, dtype=np.float64) for _, _, d in candidates]))
    rows = np.concatenate([np.asarray(r, dtype=np.intp) for _, r, _ in candidates])
    which = np.concatenate([np.full(len(r), i, dtype=np.intp) for i, (_, r, _) in enumerate(candidates)])
    if after is not None:
        distance, name, fid = after
        keep = distances > distance
        tied = distances == distance
        for i, (layer, layer_rows, _) in enumerate(candidates):
            mine = which == i
            if layer.name > name:
                keep |= tied & mine
            elif layer.name == name and len(layer_rows):
                later = np.zeros(len(rows), dtype=np.bool_)
                later[mine] = np.asarray(layer.fids[layer_rows] > fid, dtype=np.bool_)
                keep |= tied & later
        distances, rows, which = distances[keep], rows[keep], which[keep]
    order = np.lexsort((rows, which, distances))[:count]
    return [
        (d, candidates[w][0], r)
        for d, w, r in zip(distances[order].tolist(), which[order].tolist(), rows[order].tolist(), strict=True)
    ]


def _no_districts(adcodes: tuple[str, ...]) -> Mask:
    raise FilterError("layers have no geometry to filter by district")


def _moment(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), SHANGHAI)


__all__ = ["DEFAULTS", "FeatureQuery", "SpatialConnector"]
