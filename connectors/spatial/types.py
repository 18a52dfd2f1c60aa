"""The spatio-temporal cloud's part of the graph: features, districts, layers, IoT devices.

Scalar fields are plain attributes filled from records; root and link fields go through the
``resolvers`` loaders with their ``crs`` and ``asOf`` as loader arguments (one batch per distinct
argument set). Geometry is the ``GeoJSON`` scalar: a GeoJSON geometry object, in and out, in the
CRS the field's ``crs`` argument names (``EPSG:4326`` by default).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Annotated, Any, NewType, cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON as JSONScalar
from strawberry.types import Info

from connectors.base import JSON
from resolvers import (
    Connection,
    RequestContext,
    check_coordinate,
    check_first,
    coded_error,
    connection,
    context_of,
    load_related,
    search_page,
)
from schema.directives import classified, resolved
from schema.scalars import SCALAR_MAP, USCC, Adcode

if TYPE_CHECKING:
    from schema.entities import District, Enterprise

CONNECTOR = "spatial"
DistrictRef = Annotated["District", strawberry.lazy("schema.entities")]
EnterpriseRef = Annotated["Enterprise", strawberry.lazy("schema.entities")]

GeoJSON = NewType("GeoJSON", object)


def _finite(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _parse_geojson(value: object) -> object:
    # Structure, rings, CRS area and validity are checked where the CRS is known (the connector);
    # here only what can never be a geometry is refused: before any policy input is built from it
    # (an infinite number, e.g. the literal 1e400, is not even JSON).
    if not isinstance(value, dict | str):
        raise GraphQLError(
            'invalid GeoJSON: a geometry is an object such as {"type": "Point", "coordinates": [121.55, 29.87]}',
            extensions={"code": "BAD_USER_INPUT"},
        )
    if not _finite(value):
        raise GraphQLError(
            "invalid GeoJSON: a non-finite coordinate (NaN or infinity) is not a position",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return value


# The schema builder passes SCALAR_MAP to strawberry; registering here adds GeoJSON when this
# connector's types are imported (they are, before the schema is built).
SCALAR_MAP.setdefault(
    GeoJSON,
    strawberry.scalar(
        name="GeoJSON",
        description=(
            "GeoJSON 几何对象 (an RFC 7946 geometry object: Point, MultiPoint, LineString, MultiLineString, "
            "Polygon, MultiPolygon), positions [x, y] = [longitude, latitude] or metres in the CRS named by the "
            "field's crs argument; also accepted as JSON text"
        ),
        serialize=lambda v: v,
        parse_value=_parse_geojson,
    ),
)

CRS_HELP = "坐标系 (CRS): EPSG:4326 (WGS 84, default), EPSG:4490 (CGCS2000), EPSG:3857 (Web Mercator) or GCJ-02"


def _args(crs: str | None, as_of: dt.date | None = None) -> dict[str, JSON]:
    args: dict[str, JSON] = {}
    if crs is not None:
        args["crs"] = crs
    if as_of is not None:
        args["as_of"] = as_of.isoformat()
    return args


def _first(items: list[object]) -> object | None:
    return items[0] if items else None


def _district_owner(ctx: RequestContext) -> str:
    owner = ctx.runtime.owners.get("District")
    if owner is None:
        raise coded_error("FORBIDDEN", "No connector serves District here.")
    return owner


async def _district(ctx: RequestContext, by: str, key: str, coordinate: str, args: dict[str, JSON]) -> object | None:
    owner = _district_owner(ctx)
    check_coordinate(ctx, owner, "District", coordinate)
    return _first(await load_related(ctx, owner, "District", by, key, args))


@strawberry.type(description="物联网读数 (an IoT reading, or the aggregate of a downsampling bucket)")
class DeviceReading:
    ts: dt.datetime = classified(1, "时间 (time, or the start of the bucket; RFC 3339, +08:00)")
    value: float = classified(1, "读数 (value; the bucket's mean when downsampled)")
    min: float = classified(1, "最小值 (minimum in the bucket)")
    max: float = classified(1, "最大值 (maximum in the bucket)")
    count: int = classified(1, "读数个数 (readings in the bucket)")
    device_id: strawberry.Private[str]


@strawberry.type(
    description="物联网设备 (an IoT device of the public facilities: street light, waste bin, water-level sensor)"
)
class Device:
    id: strawberry.ID = classified(1, "设备编号 (device id)")
    kind: str = classified(1, "设备类型 (STREET_LIGHT, WASTE_BIN, WATER_LEVEL)")
    name: str = classified(1, "名称 (name)")
    status: str = classified(1, "状态 (ONLINE, OFFLINE, REMOVED)")
    unit: str = classified(1, "读数单位 (unit of its readings: W, %, m)")
    district_code: Adcode | None = classified(1, "所在行政区 (district adcode)")
    installed_on: dt.date = classified(1, "安装日期 (installed on)")
    removed_on: dt.date | None = classified(1, "拆除日期 (removed on; null while in service)")
    geometry: GeoJSON = classified(1, "位置 (location, GeoJSON in crs)")
    crs: str = classified(1, "几何所用坐标系 (the CRS of geometry)")

    @resolved(
        1, "读数 (readings between from and to; every: downsample into averaged buckets)", resource="DeviceReading"
    )
    async def readings(
        self,
        info: Info,
        from_: Annotated[
            dt.datetime | None, strawberry.argument(name="from", description="起 (from, inclusive; default to - 1 day)")
        ] = None,
        to: Annotated[dt.datetime | None, strawberry.argument(description="止 (to, exclusive; default now)")] = None,
        every: Annotated[
            str | None,
            strawberry.argument(
                description='降采样间隔 (bucket length: "15m", "1h", "1d"; days start at midnight +08:00)'
            ),
        ] = None,
    ) -> list[DeviceReading]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "DeviceReading", "Device.readings")
        args: dict[str, JSON] = {}
        if from_ is not None:
            args["from"] = from_.isoformat()
        if to is not None:
            args["to"] = to.isoformat()
        if every is not None:
            args["every"] = every
        readings = await load_related(ctx, CONNECTOR, "DeviceReading", "device_id", str(self.id), args)
        return cast(list[DeviceReading], readings)


@strawberry.type(description="地理要素 (a feature of a layer: one version, valid from validFrom until validTo)")
class Feature:
    id: strawberry.ID = classified(1, "要素编号 (feature id, layer:fid)")
    layer: str = classified(1, "图层 (layer)")
    kind: str | None = classified(1, "类别 (kind: land use, POI category, device type, district level)")
    name: str | None = classified(1, "名称 (name)")
    properties: JSONScalar = classified(1, "属性 (the layer's other attributes, a JSON object)")
    geometry: GeoJSON = classified(1, "几何 (geometry, GeoJSON in crs)")
    crs: str = classified(1, "几何所用坐标系 (the CRS of geometry)")
    valid_from: dt.date = classified(1, "生效日期 (valid from, inclusive)")
    valid_to: dt.date | None = classified(1, "失效日期 (valid to, exclusive; null while valid)")
    district_code: Adcode | None = classified(1, "所在行政区 (adcode of the district holding it today)")
    distance_meters: float | None = classified(
        1, "距离（米）(distance from the query point in metres, UTM 51N; near and nearest only)"
    )
    fid: strawberry.Private[str]

    @resolved(1, "所在行政区 (its district, as it was when this version was last valid)", resource="District")
    async def district(
        self, info: Info, crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None
    ) -> DistrictRef | None:
        if self.district_code is None:
            return None
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
        as_of = min(today, self.valid_to - dt.timedelta(days=1)) if self.valid_to is not None else today
        result = await _district(context_of(info), "adcode", self.district_code, "Feature.district", _args(crs, as_of))
        return cast(DistrictRef | None, result)

    @resolved(1, "历史版本 (every version of this feature, oldest first)", resource="Feature")
    async def history(
        self, info: Info, crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None
    ) -> list[Feature]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Feature", "Feature.history")
        return cast(list[Feature], await load_related(ctx, CONNECTOR, "Feature", "history", str(self.id), _args(crs)))

    @resolved(1, "物联网设备 (the device, for a feature of iot_devices)", resource="Device")
    async def device(
        self, info: Info, crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None
    ) -> Device | None:
        if self.layer != "iot_devices":
            return None
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Device", "Feature.device")
        return cast(Device | None, _first(await load_related(ctx, CONNECTOR, "Device", "id", self.fid, _args(crs))))


@strawberry.type(description="图层 (a layer: its CRS, extent, size and time range)")
class Layer:
    name: str = classified(1, "图层名 (layer name)")
    title: str = classified(1, "标题 (title)")
    geometry_type: str = classified(1, "几何类型 (geometry type)")
    crs: str = classified(1, "extent 所用坐标系 (the CRS of extent)")
    storage_crs: str = classified(1, "存储坐标系 (the CRS the layer is stored in)")
    extent: list[float] | None = classified(1, "范围 [xmin, ymin, xmax, ymax] (extent in crs)")
    feature_count: int = classified(1, "现势要素数 (features valid today)")
    version_count: int = classified(1, "版本数 (feature versions, past ones included)")
    valid_from: dt.date | None = classified(1, "最早生效日期 (earliest valid-from)")
    last_change: dt.date | None = classified(1, "最近变更日期 (latest valid-from or valid-to)")


@strawberry.type
class SpatialDistrictFields:
    """``District``: the districts layer (owned by this connector)."""

    adcode: Adcode = classified(1, "行政区划代码 (adcode)")
    name: str = classified(1, "名称 (name)")
    name_en: str = classified(1, "英文名 (English name)")
    level: str = classified(1, "级别 (district, county, county_city)")
    area_km2: float | None = classified(1, "面积（平方公里）(area in km², UTM 51N)")
    boundary: GeoJSON = classified(1, "边界 (boundary, GeoJSON MultiPolygon in crs; demo boundaries are not official)")
    crs: str = classified(1, "边界所用坐标系 (the CRS of boundary)")
    valid_from: dt.date = classified(1, "生效日期 (valid from)")
    valid_to: dt.date | None = classified(1, "失效日期 (valid to; null while valid)")

    @resolved(1, "辖区内企业 (enterprises registered in the district, by USCC)", resource="Enterprise")
    async def enterprises(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[EnterpriseRef]:
        ctx = context_of(info)
        owner = ctx.runtime.owners.get("Enterprise")
        if owner is None:
            raise coded_error("FORBIDDEN", "No connector serves Enterprise here.")
        check_coordinate(ctx, owner, "Enterprise", "District.enterprises")
        size = check_first(first, ctx.runtime.max_page_size)
        objects, page = await search_page(
            ctx, owner, "Enterprise", where={"district": self.adcode}, first=size, after=after
        )
        return connection(objects, page)


@strawberry.type
class SpatialEnterpriseFields:
    """Links the spatio-temporal cloud adds to ``Enterprise`` (owned by the license store)."""

    uscc: USCC = classified(1, "统一社会信用代码 (Unified Social Credit Code)")

    @resolved(1, "企业位置 (the enterprise's location, a feature of enterprise_locations)", resource="Feature")
    async def location(
        self,
        info: Info,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
    ) -> Feature | None:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Feature", "Enterprise.location")
        found = await load_related(ctx, CONNECTOR, "Feature", "uscc", self.uscc, _args(crs, as_of))
        return cast(Feature | None, _first(found))

    @resolved(1, "所在行政区 (the district holding the enterprise's location)", resource="District")
    async def district(
        self,
        info: Info,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
    ) -> DistrictRef | None:
        result = await _district(context_of(info), "uscc", self.uscc, "Enterprise.district", _args(crs, as_of))
        return cast(DistrictRef | None, result)


@strawberry.input(description="附近 (within a radius of a point)")
class NearInput:
    point: GeoJSON = strawberry.field(description="中心点 (a GeoJSON Point in crs)")
    radius_meters: float = strawberry.field(description="半径（米）(radius in metres, 0 to the configured limit)")


@strawberry.input(description="要素筛选 (feature filter); all criteria must hold")
class FeatureFilter:
    kind: str | None = None
    district: Adcode | None = None


def _where(**values: Any) -> dict[str, JSON]:
    return {k: v for k, v in values.items() if v is not None}


@strawberry.type
class SpatialQuery:
    @resolved(1, "要素查询 (features by layer, place and time; Relay cursor pagination)", resource="Feature")
    async def features(
        self,
        info: Info,
        layer: Annotated[str | None, strawberry.argument(description="图层 (layer; all layers when omitted)")] = None,
        bbox: Annotated[
            list[float] | None,
            strawberry.argument(description="[xmin, ymin, xmax, ymax] in crs: features intersecting it"),
        ] = None,
        within: Annotated[
            GeoJSON | None, strawberry.argument(description="features within this (Multi)Polygon")
        ] = None,
        intersects: Annotated[
            GeoJSON | None, strawberry.argument(description="features intersecting this geometry")
        ] = None,
        near: Annotated[
            NearInput | None, strawberry.argument(description="features within radiusMeters, nearest first")
        ] = None,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
        filter: FeatureFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> Connection[Feature]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Feature", "Query.features")
        size = check_first(first, ctx.runtime.max_page_size)
        where = _where(
            layer=layer,
            bbox=list(bbox) if bbox is not None else None,
            within=within,
            intersects=intersects,
            near={"point": near.point, "radius_m": near.radius_meters} if near is not None else None,
            as_of=as_of.isoformat() if as_of is not None else None,
            kind=filter.kind if filter is not None else None,
            district=filter.district if filter is not None else None,
            crs=crs,
        )
        objects, page = await search_page(ctx, CONNECTOR, "Feature", where=where, first=size, after=after)
        return connection(cast(list[Feature], objects), page)

    @resolved(1, "最近的 k 个要素 (the k nearest features of a layer, nearest first, in metres)", resource="Feature")
    async def nearest(
        self,
        info: Info,
        layer: str,
        point: GeoJSON,
        k: int = 5,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> list[Feature]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Feature", "Query.nearest")
        if k < 1:
            raise coded_error("BAD_USER_INPUT", f"k must be at least 1, got {k}")
        where = _where(
            layer=layer, nearest={"point": point, "k": k}, as_of=as_of.isoformat() if as_of else None, crs=crs
        )
        objects, _ = await search_page(ctx, CONNECTOR, "Feature", where=where, first=k, after=None)
        return cast(list[Feature], objects)

    @resolved(1, "按坐标查询行政区 (the district at a point)", resource="District")
    async def district_at(
        self,
        info: Info,
        point: GeoJSON,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> DistrictRef | None:
        ctx = context_of(info)
        owner = _district_owner(ctx)
        check_coordinate(ctx, owner, "District", "Query.districtAt")
        where = _where(point=point, as_of=as_of.isoformat() if as_of else None, crs=crs)
        objects, _ = await search_page(ctx, owner, "District", where=where, first=1, after=None)
        return cast(DistrictRef | None, _first(objects))

    @resolved(1, "按代码查询行政区 (a district by adcode)", resource="District")
    async def district(
        self,
        info: Info,
        adcode: Adcode,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> DistrictRef | None:
        return cast(
            DistrictRef | None, await _district(context_of(info), "adcode", adcode, "Query.district", _args(crs, as_of))
        )

    @resolved(1, "行政区列表 (the districts as of a date, by adcode)", resource="District")
    async def districts(
        self,
        info: Info,
        as_of: Annotated[dt.date | None, strawberry.argument(description="时点 (as of a date; default today)")] = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> list[DistrictRef]:
        ctx = context_of(info)
        owner = _district_owner(ctx)
        check_coordinate(ctx, owner, "District", "Query.districts")
        where = _where(as_of=as_of.isoformat() if as_of else None, crs=crs)
        objects, _ = await search_page(ctx, owner, "District", where=where, first=ctx.runtime.max_page_size, after=None)
        return cast(list[DistrictRef], objects)

    @resolved(1, "图层列表 (the layers you may read: CRS, extent, feature count, time range)", resource="Layer")
    async def layers(
        self, info: Info, crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None
    ) -> list[Layer]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Layer", "Query.layers")
        objects, _ = await search_page(
            ctx, CONNECTOR, "Layer", where=_where(crs=crs), first=ctx.runtime.max_page_size, after=None
        )
        return cast(list[Layer], objects)

    @resolved(1, "按编号查询物联网设备 (an IoT device by id)", resource="Device")
    async def device(
        self,
        info: Info,
        id: strawberry.ID,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> Device | None:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Device", "Query.device")
        return cast(Device | None, _first(await load_related(ctx, CONNECTOR, "Device", "id", str(id), _args(crs))))


__all__ = [
    "CRS_HELP",
    "Device",
    "DeviceReading",
    "Feature",
    "FeatureFilter",
    "GeoJSON",
    "Layer",
    "NearInput",
    "SpatialDistrictFields",
    "SpatialEnterpriseFields",
    "SpatialQuery",
]
