"""The video resource library's part of the graph: cameras, recordings and signed stream access.

Scalar fields are plain attributes filled from records; root and link fields go through the
``resolvers`` loaders. ``Camera.liveStream`` and ``Recording.playback`` load the stream source
under their own decisions (``LiveStream``, ``Playback``), then sign a URL for this principal,
purpose and case (:func:`connectors.video.grants.issue`), one audit record per URL.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from connectors.base import JSON
from connectors.spatial.types import CRS_HELP, GeoJSON, NearInput
from connectors.video.grants import issue, window
from resolvers import (
    Connection,
    check_coordinate,
    check_first,
    coded_error,
    connection,
    context_of,
    load_one,
    load_related,
    search_page,
)
from schema.directives import PICategory, classified, resolved
from schema.scalars import USCC, Adcode, GBDeviceID

if TYPE_CHECKING:
    from schema.entities import District

CONNECTOR = "video"
DistrictRef = Annotated["District", strawberry.lazy("schema.entities")]
WHEREABOUTS = PICategory.WHEREABOUTS


@strawberry.enum(description="摄像机状态 (camera status): ONLINE 在线, OFFLINE 离线, FAULT 故障")
class CameraStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    FAULT = "FAULT"


@strawberry.enum(description="摄像机类型 (camera kind): FIXED 枪机, PTZ 云台, DOME 球机")
class CameraKind(StrEnum):
    FIXED = "FIXED"
    PTZ = "PTZ"
    DOME = "DOME"


@strawberry.enum(description="存储层级 (storage tier): HOT 热 (last 7 days), WARM 温, COLD 冷 (archive)")
class StorageTier(StrEnum):
    HOT = "HOT"
    WARM = "WARM"
    COLD = "COLD"


@strawberry.enum(description="流协议 (stream protocol): HLS (https, browsers) or RTSP (players, video walls)")
class StreamProtocol(StrEnum):
    HLS = "HLS"
    RTSP = "RTSP"


@strawberry.type(description="实时视频流 (a live stream URL signed for you, this purpose and case; short-lived)")
class LiveStream:
    url: str | None = classified(3, "签名地址 (signed URL; give it to the player as is)", pi=WHEREABOUTS)
    protocol: StreamProtocol | None = classified(3, "协议 (protocol)", pi=WHEREABOUTS)
    expires_at: dt.datetime | None = classified(3, "失效时间 (expires at, RFC 3339 +08:00)", pi=WHEREABOUTS)
    device_id: strawberry.Private[str]


@strawberry.type(description="录像回放 (a playback URL of one recording, signed for you, this purpose and case)")
class Playback:
    url: str | None = classified(3, "签名地址 (signed URL; give it to the player as is)", pi=WHEREABOUTS)
    expires_at: dt.datetime | None = classified(3, "失效时间 (expires at, RFC 3339 +08:00)", pi=WHEREABOUTS)
    start_at: dt.datetime | None = classified(3, "录像起 (recording start)", pi=WHEREABOUTS)
    end_at: dt.datetime | None = classified(3, "录像止 (recording end)", pi=WHEREABOUTS)
    recording_id: strawberry.Private[str]
    device_id: strawberry.Private[str]


@strawberry.type(description="录像 (a stored recording segment of a camera)")
class Recording:
    id: strawberry.ID | None = classified(2, "录像编号 (recording id)")
    start_at: dt.datetime | None = classified(2, "开始 (start, RFC 3339)")
    end_at: dt.datetime | None = classified(2, "结束 (end, RFC 3339)")
    size_bytes: float | None = classified(2, "大小（字节）(size in bytes)")
    storage_tier: StorageTier | None = classified(2, "存储层级 (storage tier)")
    retention_until: dt.datetime | None = classified(2, "保存期限 (kept until, then deleted)")
    device_id: strawberry.Private[str]

    @resolved(
        3, "回放地址 (a signed playback URL; needs a purpose and a case reference)", resource="Playback", pi=WHEREABOUTS
    )
    async def playback(self, info: Info) -> Playback | None:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "Playback", "Recording.playback")
        found = await load_related(ctx, CONNECTOR, "Playback", "recording_id", str(self.id))
        if not found:
            raise coded_error("FORBIDDEN", "Playback of this recording is not available to you.")
        stream = cast(Playback, found[0])
        path = f"playback/{stream.device_id}/{stream.recording_id}/index.m3u8"
        await issue(
            ctx, decision, stream, "Playback", "HLS", path, "Recording.playback", {"Recording": stream.recording_id}
        )
        return stream


@strawberry.type(description="摄像机 (a camera of the video resource library, by GB/T 28181 device id)")
class Camera:
    device_id: GBDeviceID = classified(1, "设备编码 (GB/T 28181 device id)")
    status: CameraStatus = classified(1, "状态 (status)")
    name: str | None = classified(2, "名称 (name, usually the place)")
    kind: CameraKind | None = classified(2, "类型 (kind)")
    location: GeoJSON | None = classified(2, "位置 (location, a GeoJSON Point in EPSG:4326)")
    district_code: Adcode | None = classified(2, "所在行政区 (district adcode)")
    owner: str | None = classified(
        2, "所属部门 (owning department: public_security, transport, urban_management, enterprise)"
    )
    last_heartbeat: dt.datetime | None = classified(2, "最近心跳 (last heartbeat, RFC 3339)")
    distance_meters: float | None = classified(2, "距离（米）(distance from the query point in metres; near only)")

    @resolved(1, "所在行政区 (its district, from the spatial connector)", resource="District")
    async def district(self, info: Info) -> DistrictRef | None:
        code: object = self.district_code
        if isinstance(code, GraphQLError):
            raise code  # whoever may not see the adcode may not see the district either
        if code is None:
            return None
        ctx = context_of(info)
        owner = ctx.runtime.owners.get("District")
        if owner is None:
            raise coded_error(
                "CONNECTOR_UNAVAILABLE", "Districts come from the spatial connector, which is not enabled."
            )
        check_coordinate(ctx, owner, "District", "Camera.district")
        found = await load_related(ctx, owner, "District", "adcode", str(code), {})
        return cast(DistrictRef | None, found[0] if found else None)

    @resolved(
        2,
        "录像 (recordings overlapping [from, to); the window is limited by policy)",
        resource="Recording",
        pi=WHEREABOUTS,
    )
    async def recordings(
        self,
        info: Info,
        from_: Annotated[
            dt.datetime | None,
            strawberry.argument(name="from", description="起 (from; default: to minus the policy's maximum)"),
        ] = None,
        to: Annotated[dt.datetime | None, strawberry.argument(description="止 (to, exclusive; default now)")] = None,
    ) -> list[Recording] | None:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "Recording", "Camera.recordings")
        start, end = window(decision, from_, to)
        args: dict[str, JSON] = {"from": start.isoformat(), "to": end.isoformat()}
        return cast(
            list[Recording], await load_related(ctx, CONNECTOR, "Recording", "device_id", str(self.device_id), args)
        )

    @resolved(3, "实时流 (a signed live-stream URL; needs a declared purpose)", resource="LiveStream", pi=WHEREABOUTS)
    async def live_stream(self, info: Info, protocol: StreamProtocol = StreamProtocol.HLS) -> LiveStream | None:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "LiveStream", "Camera.liveStream")
        found = await load_related(
            ctx, CONNECTOR, "LiveStream", "device_id", str(self.device_id), {"protocol": protocol.value}
        )
        if not found:
            raise coded_error("FORBIDDEN", "Live streams of this camera are not available to you.")
        stream = cast(LiveStream, found[0])
        status = getattr(stream, "camera_status", None)
        if status != CameraStatus.ONLINE.value:
            # A URL to a camera that sends nothing is no stream: nothing is signed, no grant written.
            state = status if status in (CameraStatus.OFFLINE.value, CameraStatus.FAULT.value) else "not ONLINE"
            raise coded_error("CAMERA_OFFLINE", f"This camera is {state}: no live stream can be issued for it now.")
        suffix = "/index.m3u8" if protocol is StreamProtocol.HLS else ""
        path = f"live/{stream.device_id}{suffix}"
        await issue(ctx, decision, stream, "LiveStream", protocol.value, path, "Camera.liveStream", {})
        return stream


@strawberry.input(description="摄像机筛选 (camera filter); all criteria must hold")
class CameraFilter:
    district: Adcode | None = None
    status: CameraStatus | None = None
    owner: str | None = None
    kind: CameraKind | None = None


def _where(**values: Any) -> dict[str, JSON]:
    return {k: v for k, v in values.items() if v is not None}


@strawberry.type
class VideoQuery:
    @resolved(1, "按设备编码查询摄像机 (a camera by GB/T 28181 device id)", resource="Camera")
    async def camera(self, info: Info, device_id: GBDeviceID) -> Camera | None:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Camera", "Query.camera")
        return cast(Camera | None, await load_one(ctx, CONNECTOR, "Camera", device_id))

    @resolved(
        1, "摄像机查询 (cameras by filter and place; near: nearest first; Relay cursor pagination)", resource="Camera"
    )
    async def cameras(
        self,
        info: Info,
        filter: CameraFilter | None = None,
        near: Annotated[NearInput | None, strawberry.argument(description="within radiusMeters, nearest first")] = None,
        within: Annotated[GeoJSON | None, strawberry.argument(description="cameras inside this (Multi)Polygon")] = None,
        first: int | None = None,
        after: str | None = None,
        crs: Annotated[str | None, strawberry.argument(description=CRS_HELP)] = None,
    ) -> Connection[Camera]:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "Camera", "Query.cameras")
        size = check_first(first, ctx.runtime.max_page_size)
        f = filter or CameraFilter()
        locating = near is not None or within is not None or any(v is not None for v in (f.district, f.owner, f.kind))
        if locating and decision.obligations.get("locate") is not True:
            raise coded_error("FORBIDDEN", "You may not list cameras by place, district, owner or kind.")
        where = _where(
            district=f.district,
            status=f.status.value if f.status else None,
            owner=f.owner,
            kind=f.kind.value if f.kind else None,
            near={"point": near.point, "radius_m": near.radius_meters} if near is not None else None,
            within=within,
            crs=crs,
        )
        objects, page = await search_page(ctx, CONNECTOR, "Camera", where=where, first=size, after=after)
        return connection(cast(list[Camera], objects), page)


@strawberry.type
class VideoEnterpriseFields:
    """Links the video library adds to ``Enterprise`` (owned by the license store)."""

    uscc: USCC = classified(1, "统一社会信用代码 (Unified Social Credit Code)")

    @resolved(
        2,
        "附近摄像机 (cameras within radiusMeters of the enterprise's location, nearest first; needs spatial)",
        resource="Camera",
        # It reads the enterprise's location feature and that feature's geometry: both decided
        # (and the geometry read, with projection) as if the operation had selected them.
        reads=("Enterprise.location", "Feature.geometry"),
    )
    async def nearby_cameras(
        self,
        info: Info,
        radius_meters: Annotated[float, strawberry.argument(description="半径（米）(radius in metres)")] = 300.0,
    ) -> list[Camera] | None:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "Camera", "Enterprise.nearbyCameras")
        if decision.obligations.get("locate") is not True:
            raise coded_error("FORBIDDEN", "You may not list cameras by place.")
        if "spatial" not in ctx.runtime.connectors:
            raise coded_error(
                "CONNECTOR_UNAVAILABLE",
                "nearbyCameras needs the enterprise's location from the spatial connector, which is not enabled here.",
            )
        check_coordinate(ctx, "spatial", "Feature", "Enterprise.location")
        located = await load_related(ctx, "spatial", "Feature", "uscc", self.uscc, {})
        if not located:
            return []
        geometry: Any = getattr(located[0], "geometry", None)
        if isinstance(geometry, GraphQLError):
            raise geometry
        lon, lat = geometry["coordinates"][:2]
        args: dict[str, JSON] = {"radius_m": radius_meters}
        found = await load_related(ctx, CONNECTOR, "Camera", "near", f"{lon!r},{lat!r}", args)
        return cast(list[Camera], found)


@strawberry.type
class VideoDistrictFields:
    """Links the video library adds to ``District`` (owned by the spatial connector)."""

    @resolved(2, "辖区内摄像机 (cameras in the district, by device id)", resource="Camera")
    async def cameras(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Camera] | None:
        ctx = context_of(info)
        decision = check_coordinate(ctx, CONNECTOR, "Camera", "District.cameras")
        if decision.obligations.get("locate") is not True:
            raise coded_error("FORBIDDEN", "You may not list cameras by district.")
        size = check_first(first, ctx.runtime.max_page_size)
        adcode = cast(str, getattr(self, "adcode"))  # noqa: B009 - served by the District owner's record
        objects, page = await search_page(ctx, CONNECTOR, "Camera", where={"district": adcode}, first=size, after=after)
        return connection(cast(list[Camera], objects), page)


__all__ = [
    "Camera",
    "CameraFilter",
    "CameraKind",
    "CameraStatus",
    "LiveStream",
    "Playback",
    "Recording",
    "StorageTier",
    "StreamProtocol",
    "VideoDistrictFields",
    "VideoEnterpriseFields",
    "VideoQuery",
]
