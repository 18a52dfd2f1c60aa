"""The video library connector passes the SDK's compliance suite on SQLite and PostgreSQL, and its
own relations (near, recordings, streams) answer alike on both."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.base import JSON, FetchRequest, SearchRequest
from connectors.errors import InvalidArgument
from connectors.testing import ConnectorComplianceSuite
from connectors.video import VideoConnector
from tests.postgres import BACKENDS, demo_url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, demo_dir: Path) -> str:
    """The demo's video library on each backend (the same rows: ``tests/postgres.py`` copies them)."""
    return demo_url(request, demo_dir, "video")


@pytest.fixture
async def video(url: str, tmp_path: Path) -> AsyncIterator[VideoConnector]:
    connector = VideoConnector(url, {"stream_key_file": str(tmp_path / "key")}, tmp_path)
    await connector.open()
    yield connector
    await connector.aclose()


class TestVideoCameras(ConnectorComplianceSuite):
    entity = "Camera"
    filter_field = "cameras.district_code"
    filter_value = "330203"

    @pytest.fixture
    async def connector(self, video: VideoConnector) -> VideoConnector:
        return video

    @pytest.fixture
    def sample_keys(self, demo_dir: Path) -> list[str]:
        with sqlite3.connect(demo_dir / "video.sqlite") as conn:
            mine = conn.execute("SELECT device_id FROM cameras WHERE district_code = '330203' LIMIT 3").fetchall()
            other = conn.execute("SELECT device_id FROM cameras WHERE district_code != '330203' LIMIT 3").fetchall()
        return [r[0] for r in mine + other]


def _related(entity: str, by: str, keys: list[str], **args: object) -> FetchRequest:
    return FetchRequest(entity=entity, keys=keys, fields=None, row_filter={}, by=by, args=args)  # type: ignore[arg-type]


async def test_recordings_overlap_the_window_in_order(video: VideoConnector, demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "video.sqlite") as conn:
        (device,) = conn.execute("SELECT device_id FROM recordings ORDER BY id LIMIT 1").fetchone()
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    start = end - dt.timedelta(hours=20)
    (found,) = await video.fetch_related(
        _related("Recording", "device_id", [device], **{"from": start.isoformat(), "to": end.isoformat()})
    )
    assert found, "a camera of the demo records every day"
    assert all(r["start_at"] < end and r["end_at"] > start for r in found)  # type: ignore[operator]
    assert [r["start_at"] for r in found] == sorted(r["start_at"] for r in found)  # type: ignore[type-var]


async def test_near_relation_is_one_statement_and_within_the_radius(video: VideoConnector, demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "video.sqlite") as conn:
        rows = conn.execute("SELECT lon, lat FROM cameras ORDER BY device_id LIMIT 3").fetchall()
    keys = [f"{lon!r},{lat!r}" for lon, lat in rows] + ["not,a-point"]
    groups = await video.fetch_related(_related("Camera", "near", keys, radius_m=300.0))
    assert len(groups) == 4 and groups[-1] == []
    for group in groups[:3]:
        assert group and group[0]["distance_meters"] is not None
        assert all(0 <= float(r["distance_meters"]) <= 300 for r in group)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="between 0 and"):
        await video.fetch_related(_related("Camera", "near", keys, radius_m=1e9))


async def test_streams_follow_the_row_filter(video: VideoConnector, demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "video.sqlite") as conn:
        (mine,) = conn.execute("SELECT device_id FROM cameras WHERE owner = 'urban_management' LIMIT 1").fetchone()
        (theirs,) = conn.execute("SELECT device_id FROM cameras WHERE owner = 'public_security' LIMIT 1").fetchone()
    own = {"type": "field", "field": "cameras.owner", "operator": "eq", "value": "urban_management"}
    request = FetchRequest(
        entity="LiveStream",
        keys=[mine, theirs],
        fields=None,
        row_filter=own,
        by="device_id",
        args={"protocol": "RTSP"},
    )
    found = await video.fetch_related(request)
    assert found[0] and found[0][0]["protocol"] == "RTSP" and found[1] == []


async def test_search_near_pages_by_distance(video: VideoConnector, demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "video.sqlite") as conn:
        lon, lat = conn.execute("SELECT lon, lat FROM cameras ORDER BY device_id LIMIT 1").fetchone()
    near: dict[str, JSON] = {"point": {"type": "Point", "coordinates": [lon, lat]}, "radius_m": 3000.0}
    seen: list[float] = []
    after = None
    for _ in range(4):
        page = await video.search(SearchRequest("Camera", frozenset(), {}, {"near": near}, first=2, after=after))
        seen.extend(float(r["distance_meters"]) for r in page.records)  # type: ignore[arg-type]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == sorted(seen) and seen[0] <= 1.0
