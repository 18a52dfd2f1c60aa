"""The video resource library over real HTTP with real tokens: each rule of video.rego, signed
stream URLs (verified, expired, altered), one audit record per URL, batched nearbyCameras with
distances checked against geodesics computed in the test (pyproj). On both backends: SQLite (with
the spatial connector's GeoPackage), then every connector and the audit trail on PostgreSQL/PostGIS
holding the same demo rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pyproj
import pytest
from typer.testing import CliRunner

from audit import AuditRecord, AuditTrail
from connectors.migrate import migrate
from connectors.video.streams import StreamRejected, StreamSigner
from tests.conftest import LiveServer, TokenFactory, make_settings, serve
from tests.postgres import BACKENDS, PgDemo, pg_connectors, throwaway_database

CASE = {"X-Purpose-Of-Use": "case_investigation", "X-Case-Ref": "GA-2026-0042"}
GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test using ``live`` runs on SQLite, then on PostgreSQL."""
    return str(request.param)


@pytest.fixture(scope="module")
def audit_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The audit trail of ``live``: SQLite, or its own migrated PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('video-audit') / 'audit.sqlite'}"
        return
    with throwaway_database(request.getfixturevalue("pg_server"), "video_audit") as url:
        migrate("audit", url)
        yield url


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video-key") / "stream-key"


def _connectors(demo_dir: Path, key_file: Path, *, spatial: bool) -> dict[str, Any]:
    connectors: dict[str, Any] = {
        "credit": {"url": f"sqlite+aiosqlite:///{demo_dir / 'credit.sqlite'}"},
        "license": {"url": f"sqlite+aiosqlite:///{demo_dir / 'license.sqlite'}"},
        "video": {"url": f"sqlite+aiosqlite:///{demo_dir / 'video.sqlite'}", "stream_key_file": str(key_file)},
    }
    if spatial:
        connectors["spatial"] = {"path": str(demo_dir / "spatial.gpkg")}
    return connectors


@pytest.fixture(scope="module")
def live(
    backend: str,
    request: pytest.FixtureRequest,
    demo_dir: Path,
    key_file: Path,
    audit_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The gateway with the video library and the spatial connector (for nearbyCameras): on the demo's
    SQLite files and GeoPackage, or on their PostgreSQL/PostGIS copies (``pg_demo``)."""
    if backend == "sqlite":
        connectors = _connectors(demo_dir, key_file, spatial=True)
        data_dir = demo_dir
    else:
        pg: PgDemo = request.getfixturevalue("pg_demo")
        connectors = pg_connectors(pg, key_file)
        connectors["spatial"] = {"url": pg.spatial, "pool_size": 2, "max_overflow": 4}
        data_dir = tmp_path_factory.mktemp("pg-video")  # nothing is read from it: every URL is PostgreSQL
    with serve(make_settings(data_dir, connectors=connectors, audit={"url": audit_url})) as server:
        yield server


@pytest.fixture(scope="module")
def signer(live: LiveServer, key_file: Path) -> StreamSigner:
    return StreamSigner(key_file.read_text().strip().encode())


@pytest.fixture(scope="module")
def db(demo_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{demo_dir / 'video.sqlite'}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def police(token: TokenFactory) -> str:
    return token(dept="public_security", roles=["investigator"], clearance=3, sub="officer-li")


@pytest.fixture(scope="module")
def urban(token: TokenFactory) -> str:
    return token(dept="urban_management", districts=["330203"], clearance=3, sub="inspector-wang")


@pytest.fixture(scope="module")
def staff(token: TokenFactory) -> str:
    return token(dept="market_supervision", districts=["330203"], clearance=3, sub="clerk-zhao")


def body(
    live: LiveServer, query: str, bearer: str | None, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    response = live.post(query, bearer, variables=variables or None, headers=headers or {})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def one(db: sqlite3.Connection, where: str) -> str:
    row = db.execute(f"SELECT device_id FROM cameras WHERE {where} ORDER BY device_id LIMIT 1").fetchone()
    assert row is not None, where
    return str(row[0])


async def _records(url: str) -> list[AuditRecord]:
    async with AuditTrail(url) as trail:
        return await trail.records(limit=100_000)


def grants(audit_url: str) -> list[AuditRecord]:
    return [r for r in asyncio.run(_records(audit_url)) if "StreamGrant" in r.entry.record_keys]


CAMERAS = """query($f: CameraFilter, $first: Int) {
  cameras(filter: $f, first: $first) { nodes { deviceId status districtCode location owner } } }"""
CAMERA = "query($d: GBDeviceID!) { camera(deviceId: $d) { deviceId status name location districtCode } }"
LIVE = """query($d: GBDeviceID!, $p: StreamProtocol!) {
  camera(deviceId: $d) { deviceId liveStream(protocol: $p) { url protocol expiresAt } } }"""


# --- who sees which cameras ------------------------------------------------------------------------


def test_the_public_sees_no_cameras(live: LiveServer, db: sqlite3.Connection) -> None:
    result = body(live, CAMERAS, None, first=5)
    assert result["data"] is None and codes(result) == ["FORBIDDEN"]
    assert codes(body(live, CAMERA, None, d=one(db, "1 = 1"))) == ["FORBIDDEN"]


def test_public_security_sees_cameras_city_wide(live: LiveServer, police: str) -> None:
    nodes = body(live, CAMERAS, police, first=500)["data"]["cameras"]["nodes"]
    assert len({n["districtCode"] for n in nodes}) >= 5
    assert all(n["location"]["type"] == "Point" for n in nodes)


def test_urban_management_sees_cameras_of_its_districts_only(
    live: LiveServer, urban: str, db: sqlite3.Connection
) -> None:
    nodes = body(live, CAMERAS, urban, first=500)["data"]["cameras"]["nodes"]
    assert nodes and {n["districtCode"] for n in nodes} == {"330203"}
    assert all(n["location"] is not None for n in nodes)
    elsewhere = one(db, "district_code != '330203'")
    assert body(live, CAMERA, urban, d=elsewhere)["data"]["camera"] is None


def test_other_departments_see_existence_and_status_at_most(
    live: LiveServer, staff: str, db: sqlite3.Connection
) -> None:
    result = body(live, CAMERA, staff, d=one(db, "district_code = '330203'"))
    camera = result["data"]["camera"]
    assert camera["deviceId"] and camera["status"] in ("ONLINE", "OFFLINE", "FAULT")
    assert camera["name"] is None and camera["location"] is None and camera["districtCode"] is None
    assert set(codes(result)) == {"FORBIDDEN"}
    near = {"point": {"type": "Point", "coordinates": [121.55, 29.87]}, "radiusMeters": 500}
    located = body(live, "query($n: NearInput) { cameras(near: $n) { nodes { deviceId } } }", staff, n=near)
    assert located["data"] is None and codes(located) == ["FORBIDDEN"]
    by_district = body(live, CAMERAS, staff, f={"district": "330203"})
    assert by_district["data"] is None and codes(by_district) == ["FORBIDDEN"]
    live_stream = body(live, LIVE, staff, CASE, d=one(db, "1 = 1"), p="HLS")
    assert live_stream["data"]["camera"]["liveStream"] is None and codes(live_stream) == ["FORBIDDEN"]


def test_bad_input_is_bad_user_input(live: LiveServer, police: str) -> None:
    result = live.post(CAMERA, police, variables={"d": "33020301991320000001"}).json()
    assert codes(result) == ["BAD_USER_INPUT"] and "industry code" in result["errors"][0]["message"]
    near = {"point": {"type": "Point", "coordinates": [121.55, 29.87]}, "radiusMeters": 1e7}
    far = body(live, "query($n: NearInput) { cameras(near: $n) { nodes { deviceId } } }", police, n=near)
    assert codes(far) == ["BAD_USER_INPUT"] and "metres" in far["errors"][0]["message"]


# --- stream URLs -----------------------------------------------------------------------------------


def test_police_streams_need_a_purpose_and_a_case(live: LiveServer, police: str, db: sqlite3.Connection) -> None:
    # The purpose is asked for before anything about the camera, whatever its status.
    for status in ("OFFLINE", "FAULT"):
        assert codes(body(live, LIVE, police, d=one(db, f"status = '{status}'"), p="HLS")) == ["PURPOSE_REQUIRED"]
    device = one(db, "status = 'ONLINE'")
    assert codes(body(live, LIVE, police, d=device, p="HLS")) == ["PURPOSE_REQUIRED"]
    assert codes(body(live, LIVE, police, {"X-Purpose-Of-Use": "case_investigation"}, d=device, p="HLS")) == [
        "CASE_REF_REQUIRED"
    ]


def test_a_stream_url_verifies_until_it_expires_and_not_when_altered(
    live: LiveServer, police: str, db: sqlite3.Connection, signer: StreamSigner, audit_url: str, key_file: Path
) -> None:
    device = one(db, "status = 'ONLINE' AND owner = 'public_security'")
    before = len(grants(audit_url))
    result = body(live, LIVE, police, CASE, d=device, p="HLS")
    stream = result["data"]["camera"]["liveStream"]
    assert "errors" not in result and stream["protocol"] == "HLS"
    expires = dt.datetime.fromisoformat(stream["expiresAt"])
    assert expires.utcoffset() == dt.timedelta(hours=8)
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=290) <= expires - now <= dt.timedelta(seconds=301)
    url = stream["url"]
    grant = signer.verify(url)
    assert (grant.subject, grant.department, grant.purpose, grant.case_ref) == (
        "officer-li",
        "public_security",
        "case_investigation",
        "GA-2026-0042",
    )
    assert device in grant.path and grant.expires_at == int(expires.timestamp())
    with pytest.raises(StreamRejected, match="expired"):
        signer.verify(url, now=grant.expires_at)
    assert signer.verify(url, now=grant.expires_at - 1)
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    other = one(db, f"device_id != '{device}'")
    altered = [
        url.replace(device, other),  # another camera
        url.replace(parts.netloc, "evil.example.invalid"),  # another media server
        url.replace("/live/", "/playback/"),
        url + "&extra=1",
        url.replace(f"sig={params['sig']}", "sig=" + "0" * 64),
    ]
    for key, value in (
        ("sub", "someone-else"),
        ("exp", str(int(params["exp"]) + 3600)),
        ("case", "GA-0"),
        ("purpose", "x"),
    ):
        altered.append(parts._replace(query=urlencode({**params, key: value})).geturl())
    for forged in altered:
        with pytest.raises(StreamRejected):
            signer.verify(forged)
    # The command a media server can call, with the key from the environment.
    from gateway import cli

    runner = CliRunner()
    env = {"CITYGRAPH_STREAM_KEY": key_file.read_text().strip()}
    ok = runner.invoke(cli, ["stream", "verify", url], env=env)
    assert ok.exit_code == 0 and '"case_ref":"GA-2026-0042"' in ok.output
    bad = runner.invoke(cli, ["stream", "verify", altered[0]], env=env)
    assert bad.exit_code == 1
    # One audit record for the one URL issued, with subject, purpose and case.
    issued = grants(audit_url)[before:]
    assert len(issued) == 1
    entry = issued[0].entry
    assert (entry.subject, entry.purpose, entry.case_ref) == ("officer-li", "case_investigation", "GA-2026-0042")
    assert entry.record_keys["StreamGrant"] == (grant.grant_id,) and entry.record_keys["Camera"] == (device,)


def test_one_audit_record_per_url_issued(live: LiveServer, police: str, db: sqlite3.Connection, audit_url: str) -> None:
    sql = "SELECT device_id FROM cameras WHERE status = 'ONLINE' ORDER BY device_id LIMIT 3"
    devices = [r[0] for r in db.execute(sql)]
    before = len(grants(audit_url))
    aliases = " ".join(
        f'c{i}: camera(deviceId: "{d}") {{ liveStream(protocol: RTSP) {{ url }} }}' for i, d in enumerate(devices)
    )
    result = body(live, "{ " + aliases + " }", police, CASE)
    urls = [result["data"][f"c{i}"]["liveStream"]["url"] for i in range(3)]
    assert all(u.startswith("rtsp://") for u in urls) and len(set(urls)) == 3
    issued = grants(audit_url)[before:]
    assert len(issued) == 3
    assert {r.entry.record_keys["Camera"][0] for r in issued} == set(devices)
    assert all(r.entry.case_ref == "GA-2026-0042" and r.entry.subject == "officer-li" for r in issued)


def test_a_stream_whose_url_is_not_selected_is_not_signed(
    live: LiveServer, police: str, db: sqlite3.Connection, audit_url: str
) -> None:
    """The URL is denied unless selected (level 3, no rule): no grant is issued or audited for it."""
    device = one(db, "status = 'ONLINE' AND owner = 'public_security'")
    before = len(grants(audit_url))
    query = "query($d: GBDeviceID!) { camera(deviceId: $d) { liveStream(protocol: HLS) { protocol expiresAt } } }"
    result = body(live, query, police, CASE, d=device)
    assert result["data"]["camera"]["liveStream"] == {"protocol": "HLS", "expiresAt": None}
    assert grants(audit_url)[before:] == []
    signed = body(live, LIVE, police, CASE, d=device, p="HLS")  # the same camera, its URL selected
    assert signed["data"]["camera"]["liveStream"]["url"].startswith("https://")
    assert len(grants(audit_url)[before:]) == 1


@pytest.mark.parametrize("status", ["OFFLINE", "FAULT"])
def test_a_camera_that_is_not_online_gets_no_stream_url_and_no_grant(
    live: LiveServer, police: str, db: sqlite3.Connection, audit_url: str, status: str
) -> None:
    device = one(db, f"status = '{status}' AND owner = 'public_security'")
    online = one(db, "status = 'ONLINE' AND owner = 'public_security'")
    before = len(grants(audit_url))
    both = """query($d: GBDeviceID!, $o: GBDeviceID!) {
      down: camera(deviceId: $d) { status liveStream(protocol: HLS) { url } }
      up: camera(deviceId: $o) { status liveStream(protocol: HLS) { url } } }"""
    result = body(live, both, police, CASE, d=device, o=online)
    assert result["data"]["down"] == {"status": status, "liveStream": None}
    assert result["data"]["up"]["liveStream"]["url"].startswith("https://")
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "CAMERA_OFFLINE" and error["path"] == ["down", "liveStream"]
    assert status in error["message"] and "no live stream" in error["message"]
    # Only the online camera's URL was issued, so only it is in the trail.
    issued = grants(audit_url)[before:]
    assert [r.entry.record_keys["Camera"] for r in issued] == [(online,)]


def test_urban_management_streams_only_its_own_cameras(live: LiveServer, urban: str, db: sqlite3.Connection) -> None:
    purpose = {"X-Purpose-Of-Use": "public_service"}
    own = one(db, "status = 'ONLINE' AND owner = 'urban_management' AND district_code = '330203'")
    assert codes(body(live, LIVE, urban, d=own, p="HLS")) == ["PURPOSE_REQUIRED"]
    ok = body(live, LIVE, urban, purpose, d=own, p="HLS")
    assert "errors" not in ok and ok["data"]["camera"]["liveStream"]["url"].startswith("https://")
    police_camera = one(db, "owner = 'public_security' AND district_code = '330203'")
    refused = body(live, LIVE, urban, purpose, d=police_camera, p="HLS")
    assert refused["data"]["camera"]["liveStream"] is None and codes(refused) == ["FORBIDDEN"]
    recordings = body(
        live, "query($d: GBDeviceID!) { camera(deviceId: $d) { recordings { id } } }", urban, purpose, d=own
    )
    assert codes(recordings) == ["FORBIDDEN"]


RECORDINGS = """query($d: GBDeviceID!, $from: DateTime, $to: DateTime) { camera(deviceId: $d) {
  recordings(from: $from, to: $to) { id startAt endAt sizeBytes storageTier playback { url expiresAt startAt } } } }"""


def test_recording_windows_over_the_policy_maximum_are_refused(
    live: LiveServer, police: str, db: sqlite3.Connection, signer: StreamSigner
) -> None:
    device = one(db, "status = 'ONLINE' AND owner = 'public_security'")
    midnight = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(hour=0, minute=0, second=0, microsecond=0)
    end = midnight - dt.timedelta(days=3)
    too_long = body(
        live,
        RECORDINGS,
        police,
        CASE,
        d=device,
        **{"from": (end - dt.timedelta(hours=25)).isoformat(), "to": end.isoformat()},
    )
    assert codes(too_long) == ["FORBIDDEN"] and "at most 24 h" in too_long["errors"][0]["message"]
    assert codes(body(live, RECORDINGS, police, d=device)) == ["PURPOSE_REQUIRED"]
    start = end - dt.timedelta(hours=12)
    result = body(live, RECORDINGS, police, CASE, d=device, **{"from": start.isoformat(), "to": end.isoformat()})
    assert "errors" not in result, result
    recordings = result["data"]["camera"]["recordings"]
    assert recordings
    for recording in recordings:
        assert dt.datetime.fromisoformat(recording["startAt"]) < end
        assert dt.datetime.fromisoformat(recording["endAt"]) > start
        grant = signer.verify(recording["playback"]["url"])
        assert recording["id"] in grant.path and grant.case_ref == "GA-2026-0042"


# --- nearbyCameras ---------------------------------------------------------------------------------

NEARBY = """query($n: Int) { enterprises(first: $n) { nodes { uscc location { geometry }
  nearbyCameras(radiusMeters: 300) { deviceId status distanceMeters location } } } }"""


@pytest.fixture
def statements(live: LiveServer) -> Iterator[dict[str, int]]:
    with live.counting_statements("license", "video") as counts:
        yield counts


def test_nearby_cameras_are_batched_and_their_distances_are_geodesic(
    live: LiveServer, police: str, db: sqlite3.Connection, statements: dict[str, int]
) -> None:
    seen = []
    for size in (5, 40):
        before = dict(statements)
        result = body(live, NEARBY, police, n=size)
        assert "errors" not in result, result
        seen.append({k: statements[k] - before[k] for k in statements})
        nodes = result["data"]["enterprises"]["nodes"]
    assert seen[0] == seen[1] and seen[1]["video"] == 1 and seen[1]["license"] >= 1, seen
    cameras = db.execute("SELECT device_id, lon, lat FROM cameras").fetchall()
    found_any = False
    for node in nodes:
        if node["location"] is None:
            continue
        lon, lat = node["location"]["geometry"]["coordinates"]
        expected: dict[str, float] = {}
        for device_id, clon, clat in cameras:
            _, _, metres = GEOD.inv(lon, lat, clon, clat)
            expected[device_id] = metres
        got = {c["deviceId"]: c for c in node["nearbyCameras"]}
        found_any = found_any or bool(got)
        for device_id, camera in got.items():
            assert abs(camera["distanceMeters"] - expected[device_id]) < 1.0
            clon, clat = camera["location"]["coordinates"]
            assert abs(GEOD.inv(lon, lat, clon, clat)[2] - camera["distanceMeters"]) < 1.0
        # complete: every camera surely inside the radius is there, none surely outside
        assert (
            {d for d, m in expected.items() if m <= 299.0} <= set(got) <= {d for d, m in expected.items() if m <= 301.0}
        )
        distances = [c["distanceMeters"] for c in node["nearbyCameras"]]
        assert distances == sorted(distances)
    assert found_any, "the demo places cameras around enterprises"


@pytest.mark.parametrize("location", ["", "location { name }"])
def test_nearby_cameras_need_no_location_in_the_selection(live: LiveServer, police: str, location: str) -> None:
    """The resolver reads the location's geometry whatever the operation selects of it."""
    query = f"""{{ enterprises(first: 30) {{ nodes {{ uscc {location}
      nearbyCameras(radiusMeters: 300) {{ deviceId distanceMeters }} }} }} }}"""
    alone = body(live, query, police)
    assert "errors" not in alone, alone
    full = body(live, NEARBY, police, n=30)["data"]["enterprises"]["nodes"]
    expected = [[{"deviceId": c["deviceId"], "distanceMeters": c["distanceMeters"]} for c in n["nearbyCameras"] or []]
                for n in full]  # fmt: skip
    assert [n["nearbyCameras"] or [] for n in alone["data"]["enterprises"]["nodes"]] == expected
    assert any(expected)


def test_nearby_cameras_without_the_spatial_connector_are_unavailable(
    demo_dir: Path, key_file: Path, police: str, tmp_path: Path
) -> None:
    settings = make_settings(
        demo_dir,
        connectors=_connectors(demo_dir, key_file, spatial=False),
        audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"},
    )
    with serve(settings) as server:
        result = body(server, "{ enterprises(first: 2) { nodes { uscc nearbyCameras { deviceId } } } }", police)
    assert result["data"]["enterprises"]["nodes"][0]["uscc"]
    assert set(codes(result)) == {"CONNECTOR_UNAVAILABLE"}
