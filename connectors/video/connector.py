"""The video resource library connector (视频资源库): SQLAlchemy 2 async, SQLite by default, any URL.

Entities and how the gateway reaches them (``FetchRequest.by`` / ``SearchRequest.where``):

* ``Camera`` — key device id; related ``by="near"`` with keys ``"<lon>,<lat>"`` (EPSG:4326) and
  ``args`` ``radius_m`` (cameras within the radius, nearest first, with ``distance_meters``);
  search ``where``: ``district``, ``status``, ``owner``, ``kind``, ``near`` ``{point, radius_m}``,
  ``within`` (a GeoJSON (Multi)Polygon), ``crs``.
* ``Recording`` — key recording id; related ``by="device_id"`` with ``args`` ``from``, ``to``
  (ISO instants; the recordings overlapping ``[from, to)``, oldest first).
* ``LiveStream`` — related ``by="device_id"`` (``args`` ``protocol``): the stream source of a
  camera the row filter allows. ``Playback`` — related ``by="recording_id"``: a recording's source.
  The gateway signs the URL (:mod:`connectors.video.streams`); the connector never sees a principal.

Distances are metric: a bounding box in degrees (surely containing the radius) selects candidates
in SQL on the ``(lon, lat)`` index, then the exact distance in UTM 51N (the spatial connector's
metric CRS) decides. Every row filter names ``cameras.*`` columns (recordings and streams are
filtered by their camera): ``device_id``, ``district_code``, ``owner``, ``status``, ``kind``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import shapely
from sqlalchemy import ColumnElement, Select, and_, false, or_, select

from connectors.base import (
    JSON,
    Capabilities,
    ConnectorInfo,
    FetchRequest,
    Page,
    Record,
    SchemaContribution,
    SearchRequest,
)
from connectors.errors import ConnectorConfigError, InvalidArgument
from connectors.spatial import crs as crs_mod, geojson
from connectors.sql import Database, DatabaseBacked, decode_cursor, encode_cursor, key_in, storable, utc
from connectors.video.streams import MAX_TTL_S, StreamSigner, load_key
from connectors.video.tables import cameras, metadata, recordings
from policies.ucast import FieldMap, to_sqlalchemy

_CAMERA_FIELDS: FieldMap = {
    "cameras.device_id": cameras.c.device_id,
    "cameras.district_code": cameras.c.district_code,
    "cameras.owner": cameras.c.owner,
    "cameras.status": cameras.c.status,
    "cameras.kind": cameras.c.kind,
}
#: Columns a policy row filter may name, per entity (anything else is refused).
FILTER_FIELDS: Mapping[str, FieldMap] = {
    "Camera": _CAMERA_FIELDS,
    "Recording": _CAMERA_FIELDS,
    "LiveStream": _CAMERA_FIELDS,
    "Playback": _CAMERA_FIELDS,
}

#: Defaults of the ``[connectors.video]`` options.
DEFAULTS: dict[str, JSON] = {
    "max_radius_m": 5000.0,  # near / nearbyCameras radius
    "max_window_s": 7 * 86_400,  # hard ceiling of a recordings window, whatever the policy says
    "url_ttl_max_s": MAX_TTL_S,  # no URL lives longer, whatever the policy says
    "hls_base_url": "https://media.citygraph.invalid/hls",
    "rtsp_base_url": "rtsp://media.citygraph.invalid:554",
    "stream_key_env": "CITYGRAPH_STREAM_KEY",
}
# Metres per degree: at least this much of latitude anywhere; longitude scales with cos(latitude).
_M_PER_DEG_LAT = 110_000.0
_M_PER_DEG_LON_EQUATOR = 111_320.0
_PROTOCOLS = ("HLS", "RTSP")


def _utc(value: object) -> object:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return utc(value)
    return value


def _instant(value: object, name: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidArgument(f"{name}: {value[:40]!r} is not an RFC 3339 date-time") from exc
    else:
        raise InvalidArgument(f"{name} must be an RFC 3339 date-time with a zone, e.g. 2026-11-27T08:00:00+08:00")
    if moment.tzinfo is None:
        raise InvalidArgument(f"{name} needs a time zone (e.g. +08:00 or Z)")
    return moment.astimezone(dt.UTC)


def _number(config: Mapping[str, JSON], key: str) -> float:
    value = config.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConnectorConfigError(f"video: {key!r} must be a positive number, got {value!r}")
    return float(value)


def _text(config: Mapping[str, JSON], key: str) -> str:
    value = config.get(key, DEFAULTS[key])
    if not isinstance(value, str) or not value:
        raise ConnectorConfigError(f"video: {key!r} must be a non-empty string")
    return value


def search_box(lon: float, lat: float, radius: float) -> tuple[float, float, float, float]:
    """A longitude/latitude box surely containing every position within ``radius`` metres."""
    margin = radius * 1.01 + 1.0  # UTM scale error (< 0.1 %) and rounding
    dlat = margin / _M_PER_DEG_LAT
    lat_edge = min(89.0, abs(lat) + dlat)
    dlon = min(180.0, margin / (_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat_edge))))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _in_box(box: tuple[float, float, float, float]) -> ColumnElement[bool]:
    c = cameras.c
    return and_(c.lon >= box[0], c.lon <= box[2], c.lat >= box[1], c.lat <= box[3])


class VideoConnector(DatabaseBacked):
    """Cameras, their recordings, and the sources of their live and recorded streams."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="video",
        department="video",
        version="1.0.0",
        entities=("Camera", "Recording", "LiveStream", "Playback"),
        description="视频资源库 (video resource library): cameras, recordings, signed stream access",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        fetch_by_keys=True, fetch_related=True, search=True, pagination=True
    )

    def __init__(self, url: str, options: Mapping[str, JSON] | None = None, data_dir: Path | None = None) -> None:
        self.url = url
        self.options = dict(options or {})
        self.max_radius_m = _number(self.options, "max_radius_m")
        self.max_window_s = int(_number(self.options, "max_window_s"))
        self.url_ttl_max_s = int(_number(self.options, "url_ttl_max_s"))
        if self.url_ttl_max_s > 3600:
            raise ConnectorConfigError("video: 'url_ttl_max_s' must be at most 3600 seconds")
        self.base_urls = {"HLS": _text(self.options, "hls_base_url"), "RTSP": _text(self.options, "rtsp_base_url")}
        self.key_env = _text(self.options, "stream_key_env")
        key_file = self.options.get("stream_key_file")
        if key_file is not None and not isinstance(key_file, str):
            raise ConnectorConfigError("video: 'stream_key_file' must be a path")
        self.key_file = Path(key_file) if key_file else (data_dir or Path("var")) / "dev-stream-key"
        self._signer: StreamSigner | None = None
        self.db = Database(self.info.name, url, self.options, metadata, cameras)

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        url = config.get("url", f"sqlite+aiosqlite:///{data_dir / 'video.sqlite'}")
        if not isinstance(url, str) or "://" not in url:
            raise ConnectorConfigError(
                "video: 'url' must be a SQLAlchemy URL such as sqlite+aiosqlite:///var/video.sqlite"
            )
        return cls(url, config, data_dir)

    def schema(self) -> SchemaContribution:
        from connectors.video.types import (
            Camera,
            LiveStream,
            Playback,
            Recording,
            VideoDistrictFields,
            VideoEnterpriseFields,
            VideoQuery,
        )

        return SchemaContribution(
            query=VideoQuery,
            types=(Camera, Recording, LiveStream, Playback),
            entity_fields={"Enterprise": VideoEnterpriseFields, "District": VideoDistrictFields},
            keys={"Camera": "device_id", "Recording": "id", "LiveStream": "device_id", "Playback": "recording_id"},
        )

    @property
    def signer(self) -> StreamSigner:
        """The stream URL signer (key from ``stream_key_env``, else the dev key file)."""
        if self._signer is None:
            self._signer = StreamSigner(load_key(self.key_env, self.key_file), max_ttl_s=self.url_ttl_max_s)
        return self._signer

    async def open(self) -> None:
        self.db.open()
        _ = self.signer  # a missing or short key fails startup, not the first stream request

    async def _rows(self, query: Select[Any]) -> list[dict[str, Any]]:
        return await self.db.rows(query)

    def _in(self, column: ColumnElement[Any], keys: Sequence[object]) -> ColumnElement[bool]:
        return key_in(column, keys, self.engine.dialect.name)

    @staticmethod
    def _cameras(rows: Sequence[Mapping[str, Any]], distances: Sequence[float] | None = None) -> list[Record]:
        points = [shapely.Point(r["lon"], r["lat"]) for r in rows]
        shapes = geojson.to_geojson_many(points, crs_mod.DEFAULT)
        out: list[Record] = []
        for i, (row, shape) in enumerate(zip(rows, shapes, strict=True)):
            record = {k: v for k, v in row.items() if k not in ("lon", "lat")}
            record["last_heartbeat"] = _utc(record["last_heartbeat"])
            record["location"] = shape
            record["distance_meters"] = None if distances is None else round(float(distances[i]), 2)
            out.append(record)
        return out

    @staticmethod
    def _recording(row: Mapping[str, Any]) -> Record:
        return {k: _utc(v) for k, v in row.items()}

    # --- fetch_many ------------------------------------------------------------------------------

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        keys = list(request.keys)
        where = to_sqlalchemy(request.row_filter, FILTER_FIELDS.get(request.entity, {}))
        if request.entity == "Camera":
            rows = await self._rows(select(cameras).where(self._in(cameras.c.device_id, keys), where))
            found = {str(r["device_id"]): r for r in self._cameras(rows)}
        elif request.entity == "Recording":
            query = (
                select(recordings)
                .join(cameras, cameras.c.device_id == recordings.c.device_id)
                .where(self._in(recordings.c.id, keys), where)
            )
            found = {str(r["id"]): self._recording(r) for r in await self._rows(query)}
        else:
            raise InvalidArgument(f"video does not serve {request.entity} by key")
        return [found.get(k) for k in keys]

    # --- fetch_related ---------------------------------------------------------------------------

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        keys = list(request.keys)
        where = to_sqlalchemy(request.row_filter, FILTER_FIELDS.get(request.entity, {}))
        if request.entity == "Camera" and request.by == "near":
            return await self._near_many(keys, request.args.get("radius_m"), where, request.limit)
        if request.entity == "Recording" and request.by == "device_id":
            return await self._recordings(keys, request.args, where, request.limit)
        if request.entity == "LiveStream" and request.by == "device_id":
            protocol = request.args.get("protocol", "HLS")
            if protocol not in _PROTOCOLS:
                raise InvalidArgument("protocol must be HLS or RTSP")
            stream_query: Select[Any] = select(cameras.c.device_id, cameras.c.status).where(
                self._in(cameras.c.device_id, keys), where
            )
            found = {str(r["device_id"]): r for r in await self._rows(stream_query)}
            return [
                [{"device_id": k, "protocol": protocol, "camera_status": found[k]["status"]}] if k in found else []
                for k in keys
            ]
        if request.entity == "Playback" and request.by == "recording_id":
            query: Select[Any] = (
                select(recordings.c.id, recordings.c.device_id, recordings.c.start_at, recordings.c.end_at)
                .join(cameras, cameras.c.device_id == recordings.c.device_id)
                .where(self._in(recordings.c.id, keys), where)
            )
            found = {str(r["id"]): r for r in await self._rows(query)}
            return [
                [
                    {
                        "recording_id": k,
                        "device_id": found[k]["device_id"],
                        "start_at": _utc(found[k]["start_at"]),
                        "end_at": _utc(found[k]["end_at"]),
                    }
                ]
                if k in found
                else []
                for k in keys
            ]
        raise InvalidArgument(f"video cannot relate {request.entity} by {request.by}")

    async def _recordings(
        self, keys: list[str], args: Mapping[str, JSON], where: ColumnElement[bool], limit: int | None
    ) -> list[list[Record]]:
        start = _instant(args.get("from"), "from")
        end = _instant(args.get("to"), "to")
        if end <= start:
            raise InvalidArgument("to must be after from")
        if (end - start).total_seconds() > self.max_window_s:
            raise InvalidArgument(f"the window is longer than {self.max_window_s // 3600} hours")
        r = recordings.c
        query = (
            select(recordings)
            .join(cameras, cameras.c.device_id == r.device_id)
            .where(self._in(r.device_id, keys), r.start_at < end, r.end_at > start, where)
            .order_by(r.device_id, r.start_at)
        )
        grouped: dict[str, list[Record]] = {k: [] for k in keys}
        for row in await self._rows(query):
            group = grouped[str(row["device_id"])]
            if limit is None or len(group) < limit:
                group.append(self._recording(row))
        return [grouped[k] for k in keys]

    def radius(self, value: object, name: str = "radiusMeters") -> float:
        """A validated radius in metres (BAD_USER_INPUT with the limit otherwise)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument(f"{name} must be a finite number of metres")
        if value < 0 or value > self.max_radius_m:
            raise InvalidArgument(f"{name} must be between 0 and {self.max_radius_m:g} metres, got {value:g}")
        return float(value)

    @staticmethod
    def _centre(key: str) -> tuple[float, float] | None:
        lon_text, _, lat_text = key.partition(",")
        try:
            lon, lat = float(lon_text), float(lat_text)
        except ValueError:
            return None
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -80 <= lat <= 84):
            return None
        x, y = crs_mod.convert_coords(np.array([[lon, lat]]), crs_mod.DEFAULT, crs_mod.STORAGE)[0]
        return float(x), float(y)

    async def _near_many(
        self, keys: list[str], radius_value: JSON | None, where: ColumnElement[bool], limit: int | None
    ) -> list[list[Record]]:
        """Cameras within the radius of each centre: one statement for every centre of the batch."""
        radius = self.radius(radius_value)
        centres = [self._centre(k) for k in keys]
        boxes = [search_box(c[0], c[1], radius) for c in centres if c is not None]
        if not boxes:
            return [[] for _ in keys]
        rows = await self._rows(select(cameras).where(or_(*(_in_box(b) for b in boxes)), where))
        return [self._within(rows, centre, radius, limit) if centre is not None else [] for centre in centres]

    def _within(
        self, rows: Sequence[Mapping[str, Any]], centre: tuple[float, float], radius: float, limit: int | None
    ) -> list[Record]:
        ranked = self._ranked(rows, centre, radius)
        if limit is not None:
            ranked = ranked[:limit]
        return self._cameras([row for _, row in ranked], [d for d, _ in ranked])

    @staticmethod
    def _ranked(
        rows: Sequence[Mapping[str, Any]], centre: tuple[float, float], radius: float
    ) -> list[tuple[float, Mapping[str, Any]]]:
        """(distance in metres, row) of the rows within ``radius`` of ``centre``, nearest first."""
        box = search_box(centre[0], centre[1], radius)
        candidates = [r for r in rows if box[0] <= r["lon"] <= box[2] and box[1] <= r["lat"] <= box[3]]
        if not candidates:
            return []
        coords = np.array([[centre[0], centre[1]]] + [[r["lon"], r["lat"]] for r in candidates])
        metric = crs_mod.convert_coords(coords, crs_mod.STORAGE, crs_mod.METRIC)
        distances = np.hypot(metric[1:, 0] - metric[0, 0], metric[1:, 1] - metric[0, 1])
        ranked = [(float(d), r) for d, r in zip(distances.tolist(), candidates, strict=True) if d <= radius]
        ranked.sort(key=lambda pair: (round(pair[0], 2), str(pair[1]["device_id"])))
        return ranked

    # --- search ----------------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> Page:
        if request.entity != "Camera":
            raise InvalidArgument(f"video cannot search {request.entity}")
        where = request.where
        c = cameras.c
        conditions: list[ColumnElement[bool]] = [to_sqlalchemy(request.row_filter, FILTER_FIELDS["Camera"])]
        for key, column in (("district", c.district_code), ("status", c.status), ("owner", c.owner), ("kind", c.kind)):
            value = where.get(key)
            if isinstance(value, str):
                # A value no column can hold matches nothing (PostgreSQL would refuse the parameter).
                conditions.append(column == value if storable(value) else false())
        given_crs = where.get("crs")
        crs = crs_mod.normalise_crs(given_crs) if isinstance(given_crs, str) else crs_mod.DEFAULT
        polygon: shapely.Geometry | None = None
        if where.get("within") is not None:
            polygon = geojson.parse(where["within"], crs, max_vertices=10_000, what="within")
            if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon):
                raise InvalidArgument(f"within needs a Polygon or MultiPolygon, got a {type(polygon).__name__}")
            xmin, ymin, xmax, ymax = polygon.bounds
            conditions.append(_in_box((xmin, ymin, xmax, ymax)))
        near = where.get("near")
        if near is not None:
            if not isinstance(near, Mapping):
                raise InvalidArgument("near must be {point, radiusMeters}")
            point = geojson.parse_point(near.get("point"), crs, "near.point")
            radius = self.radius(near.get("radius_m"), "near.radiusMeters")
            centre = (point.x, point.y)
            conditions.append(_in_box(search_box(centre[0], centre[1], radius)))
            return await self._search_near(request, conditions, polygon, centre, radius)
        if request.after:
            (last,) = decode_cursor(request.after, 1)
            conditions.append(c.device_id > last)
        query = select(cameras).where(and_(*conditions)).order_by(c.device_id)
        if polygon is None:
            query = query.limit(request.first + 1)
        rows = [r for r in await self._rows(query) if polygon is None or self._inside(polygon, r)]
        page = rows[: request.first]
        return Page(
            records=self._cameras(page),
            cursors=[encode_cursor(r["device_id"]) for r in page],
            has_next_page=len(rows) > request.first,
        )

    @staticmethod
    def _inside(polygon: shapely.Geometry, row: Mapping[str, Any]) -> bool:
        return bool(shapely.intersects_xy(polygon, row["lon"], row["lat"]))

    async def _search_near(
        self,
        request: SearchRequest,
        conditions: list[ColumnElement[bool]],
        polygon: shapely.Geometry | None,
        centre: tuple[float, float],
        radius: float,
    ) -> Page:
        rows = [
            r
            for r in await self._rows(select(cameras).where(and_(*conditions)))
            if polygon is None or self._inside(polygon, r)
        ]
        ranked = [(round(d, 2), r) for d, r in self._ranked(rows, centre, radius)]
        if request.after:
            distance, device_id = decode_cursor(request.after, 2)
            try:
                after = (float(distance), device_id)
            except ValueError as exc:
                raise InvalidArgument("after: not a cursor issued by this API") from exc
            ranked = [(d, r) for d, r in ranked if (d, str(r["device_id"])) > after]
        page = ranked[: request.first]
        return Page(
            records=self._cameras([r for _, r in page], [d for d, _ in page]),
            cursors=[encode_cursor(repr(d), r["device_id"]) for d, r in page],
            has_next_page=len(ranked) > request.first,
        )


__all__ = ["DEFAULTS", "FILTER_FIELDS", "VideoConnector", "search_box"]
