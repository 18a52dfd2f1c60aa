"""``citygraph load``: row validation, refusal and skipping, whole batches and resumption, encodings,
signed licences, cameras and recordings, and GeoJSON; on SQLite and on a throw-away PostgreSQL database."""

from __future__ import annotations

import asyncio
import csv
import random
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from sqlalchemy import MetaData, create_engine, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from connectors import load as load_module
from connectors.credit.tables import metadata as credit_metadata
from connectors.identifiers import USCC_ALPHABET, make_gb28181, make_id_number, make_uscc
from connectors.license.signing import KeyPair, canonical_bytes, generate_keypair, sign
from connectors.license.tables import metadata as license_metadata
from connectors.load import BadRow, LoadError, LoadReport, load, load_command, progress_table
from connectors.sql import async_url
from connectors.video.tables import metadata as video_metadata
from tests.postgres import BACKENDS, throwaway_database

# --- Data -------------------------------------------------------------------------------------

SUBJECTS = ["uscc", "name", "district_code"]
RECORDS = [
    "id", "uscc", "kind", "title", "content", "authority", "decision_number", "decision_date", "publicity_start",
    "publicity_end", "district_code", "amount", "legal_rep_name", "legal_rep_id_number", "internal_note",
]  # fmt: skip
DISTRICTS = ("330203", "330205", "330212")


def uscc(n: int) -> str:
    return make_uscc("9", "1", "330203", f"{n:08d}")


def id_number(n: int) -> str:
    return make_id_number("330203", date(1980, 1, 1 + n % 28), n % 1000)


def subject(n: int) -> list[str]:
    return [uscc(n), f"宁波测试{n}号贸易有限公司", DISTRICTS[n % 3]]


def record(n: int, header: Sequence[str] = RECORDS, **changes: str) -> list[str]:
    values = {
        "id": str(n),
        "uscc": uscc(n % 10),
        "kind": "ADMINISTRATIVE_PENALTY",
        "title": f"行政处罚{n}",
        "content": "未按规定公示年度报告，罚款。",
        "authority": "宁波市海曙区市场监督管理局",
        "decision_number": f"甬海市监罚〔2024〕{n}号",
        "decision_date": "2024-03-05",
        "publicity_start": "2024-03-05",
        "publicity_end": "2027-03-04",
        "district_code": "330203",
        "amount": "1500.50",
        "legal_rep_name": "张伟",
        "legal_rep_id_number": id_number(n),
        "internal_note": "",
    } | changes
    return [values[name] for name in header]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def wrong_check_char(code: str) -> str:
    """``code`` with another final character from the USCC alphabet."""
    return code[:17] + next(c for c in USCC_ALPHABET if c != code[17])


# --- Targets ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL on each backend (the loader migrates it)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'target.sqlite'}"
        return
    with throwaway_database(request.getfixturevalue("pg_server"), "load") as url:
        yield url


def query(url: str, read: Callable[[AsyncConnection], Any]) -> Any:
    """Run ``await read(conn)`` against ``url`` outside the code under test."""

    async def run() -> Any:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                return await read(conn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def count(url: str, table: str) -> int:
    async def read(conn: AsyncConnection) -> int:
        return int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())

    return int(query(url, read))


def column(url: str, table: str, name: str) -> list[Any]:
    t = next(m.tables[table] for m in (credit_metadata, license_metadata, video_metadata) if table in m.tables)

    async def read(conn: AsyncConnection) -> list[Any]:
        return list((await conn.execute(select(t.c[name]).order_by(*t.primary_key.columns))).scalars())

    return list(query(url, read))


def progress_rows(url: str) -> list[tuple[Any, ...]]:
    async def read(conn: AsyncConnection) -> list[tuple[Any, ...]]:
        result = await conn.execute(
            select(progress_table.c.table, progress_table.c.last_line, progress_table.c.rows).order_by(
                progress_table.c.table
            )
        )
        return [tuple(row) for row in result]

    return list(query(url, read))


def load_subjects(tmp_path: Path, url: str, n: int = 10) -> None:
    path = write_csv(tmp_path / "credit_subjects.csv", SUBJECTS, [subject(i) for i in range(n)])
    assert load("credit", None, path, url).rows_loaded == n


# --- Clean files ------------------------------------------------------------------------------


def test_clean_csv_loads_fully_with_typed_values(target: str, tmp_path: Path) -> None:
    load_subjects(tmp_path, target)
    profiles = write_csv(
        tmp_path / "credit_profiles.csv",
        ["uscc", "rating", "score", "assessed_at"],
        [[uscc(0), "A", "950", "2026-01-02T08:30:00+08:00"], [uscc(1).lower(), "D", "120", "2025-12-31T23:00:00Z"]],
    )
    assert load("credit", None, profiles, target).rows_loaded == 2
    records = write_csv(tmp_path / "credit_records.csv", RECORDS, [record(i) for i in range(1, 31)])

    report = load("credit", None, records, target, batch_size=7)

    assert report == LoadReport(
        table="credit_records",
        rows_read=30,
        rows_loaded=30,
        bad_rows=[],
        resumed_from_line=None,
        seconds=report.seconds,
        unit="line",
        source_sha256=report.source_sha256,
    )
    assert report.summary().startswith("credit_records: loaded 30 of 30 rows in ")
    assert count(target, "credit_records") == 30
    assert column(target, "credit_records", "amount")[0] == Decimal("1500.50")
    assert column(target, "credit_records", "decision_date")[0] == date(2024, 3, 5)
    assert column(target, "credit_records", "internal_note")[0] is None  # an empty cell is NULL
    # USCCs are stored in canonical upper case; date-times in UTC (SQLite keeps them naive).
    assert column(target, "credit_profiles", "uscc") == sorted([uscc(0), uscc(1)])
    stored = {
        u: t.replace(tzinfo=t.tzinfo or UTC)
        for u, t in zip(*(column(target, "credit_profiles", c) for c in ("uscc", "assessed_at")), strict=True)
    }
    assert stored[uscc(0)] == datetime(2026, 1, 2, 0, 30, tzinfo=UTC)
    assert progress_rows(target) == [
        ("credit_profiles", 3, 2),
        ("credit_records", 31, 30),
        ("credit_subjects", 11, 10),
    ]


# --- Bad rows ---------------------------------------------------------------------------------


def malformed_records(tmp_path: Path) -> tuple[Path, set[tuple[int, str | None]], list[int]]:
    """A records file with one bad row of each kind: the file, the expected (line, column) pairs
    and the ids of its good rows. Record 2's content spans lines 3-4: later lines count both."""
    bad_uscc = wrong_check_char(uscc(3))
    rows = [
        record(1),  # line 2
        record(2, content="第一行\n第二行"),  # lines 3-4
        record(3, uscc=bad_uscc),  # 5
        record(4, decision_date="2024-02-30"),  # 6
        record(5, district_code="330299"),  # 7
        record(6, kind="GOLD_LIST"),  # 8
        record(7, uscc=uscc(99)),  # 9: a valid USCC that is not a credit subject
        record(1, decision_number="甬海市监罚〔2024〕901号"),  # 10: id 1 again
        record(9)[:-1],  # 11: a field short
        record(8),  # 12
        record(50),  # 13: already in the database
    ]
    expected = {
        (5, "uscc"),
        (6, "decision_date"),
        (7, "district_code"),
        (8, "kind"),
        (9, "uscc"),
        (10, "id"),
        (11, None),
        (13, "id"),
    }
    return write_csv(tmp_path / "credit_records.csv", RECORDS, rows), expected, [1, 2, 8]


def test_bad_rows_are_reported_by_line_and_refuse_writes_nothing(target: str, tmp_path: Path) -> None:
    load_subjects(tmp_path, target)
    first = write_csv(tmp_path / "first.csv", RECORDS, [record(50)])
    assert load("credit", "credit_records", first, target).rows_loaded == 1
    path, expected, _ = malformed_records(tmp_path)
    before = (column(target, "credit_records", "id"), progress_rows(target))

    report = load("credit", None, path, target, batch_size=4)

    assert {(bad.line, bad.column) for bad in report.bad_rows} == expected
    assert (report.rows_read, report.rows_loaded, report.bad_row_count) == (11, 0, 8)
    assert (column(target, "credit_records", "id"), progress_rows(target)) == before
    reasons = {(bad.line, bad.column): bad.reason for bad in report.bad_rows}
    good = uscc(3)
    assert BadRow(5, "uscc", reasons[5, "uscc"]).describe() == (
        f"line 5: uscc: bad check character {wrong_check_char(good)[17]!r} at position 18 (expected {good[17]!r})"
    )
    assert reasons[6, "decision_date"] == "not a real date: '2024-02-30'"
    assert reasons[7, "district_code"].startswith("unknown district '330299': not a Ningbo district code")
    assert reasons[8, "kind"].startswith("unknown value 'GOLD_LIST': one of RED_LIST, ")
    assert reasons[9, "uscc"] == f"no credit_subjects row with uscc '{uscc(99)}' (load credit_subjects first)"
    assert reasons[10, "id"] == "duplicate 1: the file has it on line 2 already"
    assert reasons[11, None] == "expected 15 fields (as in the header), got 14"
    assert reasons[13, "id"] == "50 is already in credit_records"
    assert "refused, nothing was loaded" in report.summary()


def test_skip_loads_only_the_good_rows(target: str, tmp_path: Path) -> None:
    load_subjects(tmp_path, target)
    first = write_csv(tmp_path / "first.csv", RECORDS, [record(50)])
    load("credit", "credit_records", first, target)
    path, expected, good = malformed_records(tmp_path)

    report = load("credit", None, path, target, on_error="skip", batch_size=4)

    assert {(bad.line, bad.column) for bad in report.bad_rows} == expected
    assert (report.rows_read, report.rows_loaded) == (11, 3)
    assert column(target, "credit_records", "id") == [*good, 50]
    assert column(target, "credit_records", "content")[1] == "第一行\n第二行"
    assert "loaded 3 of 11 rows, skipped 8 bad rows" in report.summary()


def test_rows_are_checked_against_their_domain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    load_subjects(tmp_path, url)
    rows = [
        record(1, amount="1,500.00"),
        record(2, amount="12.345"),
        record(3, amount="-5"),
        record(4, legal_rep_id_number=id_number(4)[:17] + ("0" if id_number(4)[17] != "0" else "1")),
        record(5, publicity_end="2024-01-01"),
        record(6, title="长" * 201),
        record(7, kind=""),
        record(8, decision_date="05/03/2024"),
        record(9, id="x9"),
    ]
    path = write_csv(tmp_path / "credit_records.csv", RECORDS, rows)

    report = load("credit", None, path, url)

    reasons = {(bad.line, bad.column): bad.reason for bad in report.bad_rows}
    assert reasons == {
        (2, "amount"): "not a decimal number (digits and an optional '.'): '1,500.00'",
        (3, "amount"): "more than 2 decimal places: '12.345' (never rounded)",
        (4, "amount"): "negative: -5",
        (5, "legal_rep_id_number"): reasons[5, "legal_rep_id_number"],
        (6, "publicity_end"): "2024-01-01 is before publicity_start",
        (7, "title"): "too long: 201 characters, at most 200",
        (8, "kind"): "required, but empty",
        (9, "decision_date"): "not a date (YYYY-MM-DD): '05/03/2024'",
        (10, "id"): "not an integer: 'x9'",
    }
    assert reasons[5, "legal_rep_id_number"].startswith("bad check character")


# --- Whole batches and resumption -------------------------------------------------------------


class Crash(Exception):
    """The simulated crash."""


def crash_after(batches: int) -> Callable[[int, int], None]:
    def hook(done: int, _last_line: int) -> None:
        if done == batches:
            raise Crash(f"killed after {done} batches")

    return hook


@pytest.mark.parametrize("on_error", ["refuse", "skip"])
def test_a_crash_leaves_whole_batches_and_a_rerun_resumes(target: str, tmp_path: Path, on_error: str) -> None:
    load_subjects(tmp_path, target)
    # No ids: the database numbers the rows, so only the progress row stands between a rerun and duplicates.
    header = [name for name in RECORDS if name != "id"]
    path = write_csv(tmp_path / "credit_records.csv", header, [record(i, header) for i in range(23)])
    mode: Literal["skip", "refuse"] = "refuse" if on_error == "refuse" else "skip"

    with pytest.raises(Crash):
        load("credit", None, path, target, on_error=mode, batch_size=5, after_batch=crash_after(2))
    assert count(target, "credit_records") == 10
    assert ("credit_records", 11, 10) in progress_rows(target)

    report = load("credit", None, path, target, on_error=mode, batch_size=5)

    assert (report.resumed_from_line, report.rows_before, report.rows_read, report.rows_loaded) == (12, 10, 13, 13)
    assert report.summary().startswith("credit_records: resumed at line 12 after 10 rows committed earlier; loaded 13")
    numbers = column(target, "credit_records", "decision_number")
    assert sorted(numbers) == sorted(record(i, ["decision_number"])[0] for i in range(23))

    again = load("credit", None, path, target, on_error=mode)
    assert (again.rows_read, again.rows_loaded, count(target, "credit_records")) == (0, 0, 23)
    assert "nothing to load (this file was loaded before)" in again.summary()


def test_a_batch_failing_midway_is_rolled_back_whole(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_subjects(tmp_path, target)
    path = write_csv(tmp_path / "credit_records.csv", RECORDS, [record(i) for i in range(1, 24)])
    insert, calls = load_module._insert_rows, []

    async def insert_then_die(conn: AsyncConnection, plan: Any, rows: list[tuple[Any, ...]]) -> None:
        await insert(conn, plan, rows)  # the rows are in (COPY on PostgreSQL), the transaction not committed
        calls.append(len(rows))
        if len(calls) == 2:
            raise Crash("killed inside the second batch")

    monkeypatch.setattr(load_module, "_insert_rows", insert_then_die)
    with pytest.raises(Crash):
        load("credit", None, path, target, batch_size=5)
    assert column(target, "credit_records", "id") == [1, 2, 3, 4, 5]
    assert ("credit_records", 6, 5) in progress_rows(target)

    monkeypatch.setattr(load_module, "_insert_rows", insert)
    report = load("credit", None, path, target, batch_size=5)
    assert (report.resumed_from_line, report.rows_loaded) == (7, 18)
    assert column(target, "credit_records", "id") == list(range(1, 24))


def test_refuse_writes_only_what_it_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    load_subjects(tmp_path, url)
    path = write_csv(tmp_path / "credit_records.csv", RECORDS, [record(i) for i in range(1, 11)])
    convert = load_module._convert

    def forge(plan: Any, source: Any) -> Any:
        row = convert(plan, source)
        row.values["title"] = "篡改"
        return row

    def change_the_file(_done: int, _last_line: int) -> None:  # after the checking pass, mid-way through writing
        monkeypatch.setattr(load_module, "_convert", forge)

    with pytest.raises(LoadError, match="changed while it was being loaded: 5 rows were committed"):
        load("credit", None, path, url, batch_size=5, after_batch=change_the_file)
    assert column(url, "credit_records", "title") == [f"行政处罚{i}" for i in range(1, 6)]


# --- Encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_chinese_exports_load_in_gbk_and_utf8(tmp_path: Path, encoding: str) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    rows = [subject(i) for i in range(5)] + [[uscc(5), "宁波甬江镕鑫贸易有限公司", "330212"]]
    path = write_csv(tmp_path / "credit_subjects.csv", SUBJECTS, rows, encoding=encoding)

    report = load("credit", None, path, url)

    assert report.rows_loaded == 6
    assert column(url, "credit_subjects", "name") == [row[1] for row in sorted(rows)]


def test_damaged_utf8_is_not_read_as_gb18030(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "credit_subjects.csv", SUBJECTS, [subject(i) for i in range(3)])
    path.write_bytes(path.read_bytes() + b"\xff\xfe broken tail\n")

    with pytest.raises(LoadError, match=r"not valid UTF-8 at byte \d+, after valid UTF-8 text: the file is damaged"):
        load("credit", None, path, f"sqlite:///{tmp_path / 'target.sqlite'}")


# --- Signed licences --------------------------------------------------------------------------

PERSONS = ["id_number", "name", "birth_date", "phone", "address", "district_code"]
ENTERPRISES = [
    "uscc", "name", "legal_rep_id_number", "address", "district_code", "industry_code", "industry_name",
    "registered_capital", "established_on", "status", "phone",
]  # fmt: skip
LICENSES = [
    "number", "type", "holder_kind", "holder_uscc", "holder_id_number", "issuer_code", "issued_on", "valid_from",
    "valid_until", "status", "scope", "district_code", "signature",
]  # fmt: skip


def licence_files(tmp_path: Path) -> tuple[list[Path], Path, dict[int, str]]:
    """Files for persons, enterprises and issuers, and a licences file in which line 3 was
    changed after signing and line 5 was signed with the other issuer's key."""
    rng = random.Random(11)
    keys: dict[str, KeyPair] = {"AMR-330203": generate_keypair(rng), "PSB-330203": generate_keypair(rng)}
    people = [
        [id_number(i), f"测试{i}", f"1980-01-{1 + i % 28:02d}", "13800000000", "海曙区某路1号", "330203"]
        for i in range(3)
    ]
    firms = [
        [uscc(i), f"宁波测试{i}号有限公司", id_number(i), "海曙区某路2号", "330203", "F5191", "贸易代理", "1000000.00",
         "2010-05-06", "EXISTING", "0574-87000000"]
        for i in range(3)
    ]  # fmt: skip
    issuers = [
        ["AMR-330203", "宁波市海曙区市场监督管理局", "SM2-SM3", keys["AMR-330203"].public_hex, "true"],
        ["PSB-330203", "宁波市公安局海曙分局", "SM2-SM3", keys["PSB-330203"].public_hex, "1"],
    ]
    common = {"issued_on": "2020-01-01", "valid_from": "2020-01-01", "status": "VALID", "district_code": "330203"}
    licences = [
        common | {"number": uscc(i), "type": "BUSINESS_LICENSE", "holder_kind": "ENTERPRISE", "holder_uscc": uscc(i),
                  "holder_id_number": "", "issuer_code": "AMR-330203", "valid_until": "",
                  "scope": "一般项目：贸易代理。"}
        for i in range(3)
    ] + [
        common | {"number": id_number(i), "type": "RESIDENT_ID", "holder_kind": "PERSON", "holder_uscc": "",
                  "holder_id_number": id_number(i), "issuer_code": "PSB-330203", "valid_until": "2030-01-01",
                  "scope": ""}
        for i in range(2)
    ]  # fmt: skip
    rows = []
    for n, fields in enumerate(licences):
        signer = keys["AMR-330203" if n == 3 else fields["issuer_code"]]  # line 5: the wrong key
        data = canonical_bytes({k: (v or None) if k == "valid_until" else v for k, v in fields.items()})
        fields["signature"] = sign(signer.private_hex, signer.public_hex, data, deterministic=True)
        if n == 1:  # line 3: a forger widens the scope after signing
            fields["scope"] += "危险化学品经营。"
        rows.append([fields[name] for name in LICENSES])
    parents = [
        write_csv(tmp_path / "persons.csv", PERSONS, people),
        write_csv(tmp_path / "enterprises.csv", ENTERPRISES, firms),
        write_csv(tmp_path / "issuers.csv", ["code", "name", "algorithm", "public_key", "active"], issuers),
    ]
    return parents, write_csv(tmp_path / "licenses.csv", LICENSES, rows), {3: "AMR-330203", 5: "PSB-330203"}


def test_licences_whose_signature_does_not_verify_are_bad_rows(target: str, tmp_path: Path) -> None:
    parents, licences, forged = licence_files(tmp_path)
    for path in parents:
        assert load("license", None, path, target).ok

    refused = load("license", None, licences, target)
    assert (refused.rows_loaded, count(target, "licenses")) == (0, 0)
    assert [(bad.line, bad.column) for bad in refused.bad_rows] == [(3, "signature"), (5, "signature")]
    assert refused.bad_rows[0].reason.startswith(f"does not verify under issuer {forged[3]}'s key")

    skipped = load("license", None, licences, target, on_error="skip")
    assert skipped.rows_loaded == 3
    assert column(target, "licenses", "scope").count("") == 1  # the resident ID card's empty scope is kept
    assert column(target, "issuers", "active") == [True, True]


# --- Cameras and recordings -------------------------------------------------------------------

CAMERAS = [
    "device_id",
    "name",
    "lon",
    "lat",
    "district_code",
    "owner",
    "owner_uscc",
    "kind",
    "status",
    "last_heartbeat",
]
RECORDINGS = ["id", "device_id", "start_at", "end_at", "size_bytes", "storage_tier", "retention_until"]


def device(n: int) -> str:
    """A GB/T 28181 device id: urban management's network camera number ``n`` in Haishu."""
    return make_gb28181("330203", 1, "08", "132", 0, n)


def camera(n: int, **changes: str) -> list[str]:
    values = {
        "device_id": device(n),
        "name": f"海曙区中山西路{n}号杆",
        "lon": f"{121.55 + n / 1000:.7f}",
        "lat": "29.87",
        "district_code": "330203",
        "owner": "urban_management",
        "owner_uscc": "",
        "kind": "FIXED",
        "status": "ONLINE",
        "last_heartbeat": "2026-03-01T08:00:00+08:00",
    } | changes
    return [values[name] for name in CAMERAS]


def recording(n: int, day: int, **changes: str) -> list[str]:
    """Camera ``n``'s recording of 2026-02-``day`` + 1 in Ningbo (from midnight, +08:00)."""
    start = datetime(2026, 2, day, 16, tzinfo=UTC)
    values = {
        "id": f"{device(n)}-{start:%Y%m%d%H%M}",
        "device_id": device(n),
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(days=1)).isoformat(),
        "size_bytes": str(4_000_000_000 + day),  # over 2**31: a BIGINT
        "storage_tier": "WARM",
        "retention_until": (start + timedelta(days=90)).isoformat(),
    } | changes
    return [values[name] for name in RECORDINGS]


def utc(values: list[Any]) -> list[Any]:
    """Date-times as aware UTC values (SQLite keeps them naive, in UTC)."""
    return [v.replace(tzinfo=v.tzinfo or UTC) if isinstance(v, datetime) else v for v in values]


def test_cameras_and_recordings_load_parents_first_with_typed_values(target: str, tmp_path: Path) -> None:
    rows = [
        camera(1),
        camera(2, status="OFFLINE", last_heartbeat="", kind="PTZ"),
        camera(3, owner="enterprise", owner_uscc=uscc(3).lower(), name="宁波测试3号贸易有限公司大门", kind="DOME"),
    ]
    cameras = write_csv(tmp_path / "cameras.csv", CAMERAS, rows)
    night = {"start_at": "2026-02-05T00:00:00+08:00", "end_at": "2026-02-05T12:00:00+08:00"}
    segments = [recording(n, day) for n in (1, 3) for day in (1, 2)] + [recording(2, 4, **night)]
    recordings = write_csv(tmp_path / "recordings.csv", RECORDINGS, segments)

    assert load("video", None, cameras, target).rows_loaded == 3
    report = load("video", None, recordings, target, batch_size=2)

    assert (report.table, report.rows_read, report.rows_loaded, report.bad_rows) == ("recordings", 5, 5, [])
    assert column(target, "cameras", "device_id") == [device(1), device(2), device(3)]
    assert column(target, "cameras", "lon") == [121.551, 121.552, 121.553]
    assert column(target, "cameras", "owner_uscc") == [None, None, uscc(3)]  # canonical upper case
    heartbeat = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert utc(column(target, "cameras", "last_heartbeat")) == [heartbeat, None, heartbeat]
    sizes = [4_000_000_000 + day for day in (1, 2, 4, 1, 2)]  # by id: cameras 1, 2, 3
    assert column(target, "recordings", "size_bytes") == sizes
    starts = utc(column(target, "recordings", "start_at"))
    assert starts[2] == datetime(2026, 2, 4, 16, tzinfo=UTC)  # stored in UTC
    assert progress_rows(target) == [("cameras", 4, 3), ("recordings", 6, 5)]


def malformed_cameras(tmp_path: Path) -> tuple[Path, set[tuple[int, str]]]:
    """A cameras file with a bad row of each kind, and the expected (line, column) pairs; the good
    rows are cameras 1 and 10 (lines 2 and 12)."""
    bad_id = device(2)[:8] + "99" + device(2)[10:]  # no such industry code
    rows = [
        camera(1),  # line 2
        camera(2, device_id=bad_id),  # 3
        camera(3, status="BROKEN"),  # 4
        camera(4, owner="enterprise"),  # 5: without its USCC
        camera(5, lon="29.87", lat="121.55"),  # 6: swapped
        camera(6, owner_uscc=uscc(6)),  # 7: a USCC on urban management's camera
        camera(7, owner="enterprise", owner_uscc=wrong_check_char(uscc(7))),  # 8
        camera(8, last_heartbeat="2026-03-01 08:00:00"),  # 9: no zone
        camera(9, lat="NaN"),  # 10
        camera(1, name="重复"),  # 11: camera 1 again
        camera(10),  # 12
    ]
    expected = {
        (3, "device_id"),
        (4, "status"),
        (5, "owner_uscc"),
        (6, "lon"),
        (7, "owner_uscc"),
        (8, "owner_uscc"),
        (9, "last_heartbeat"),
        (10, "lat"),
        (11, "device_id"),
    }
    return write_csv(tmp_path / "cameras.csv", CAMERAS, rows), expected


def malformed_recordings(tmp_path: Path) -> tuple[Path, set[tuple[int, str]]]:
    """A recordings file with a bad row of each kind (cameras 1 and 10 exist), and the expected
    (line, column) pairs; the good rows are lines 2 and 10."""
    rows = [
        recording(1, 1),  # line 2
        recording(1, 2, end_at="2026-02-02T15:00:00Z"),  # 3: ends before it starts
        recording(99, 1),  # 4: a valid device id, but no such camera
        recording(1, 3, device_id=device(1)[:19] + "X"),  # 5
        recording(1, 4, retention_until="2026-02-05T08:00:00+00:00"),  # 6: before the end
        recording(1, 5, size_bytes="-1"),  # 7
        recording(1, 6, storage_tier="FROZEN"),  # 8
        recording(1, 7, start_at="2026-02-07T16:00:00"),  # 9: no zone
        recording(10, 1),  # 10
    ]
    expected = {
        (3, "end_at"),
        (4, "device_id"),
        (5, "device_id"),
        (6, "retention_until"),
        (7, "size_bytes"),
        (8, "storage_tier"),
        (9, "start_at"),
    }
    return write_csv(tmp_path / "recordings.csv", RECORDINGS, rows), expected


def test_bad_cameras_and_recordings_are_reported_by_line_and_refuse_writes_nothing(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cameras, expected = malformed_cameras(tmp_path)

    assert load_command("video", cameras, target, None, "refuse", 3) == 1

    out = capsys.readouterr().out.splitlines()
    assert {tuple(line.split(": ")[0:2]) for line in out[:-1]} == {(f"line {n}", c) for n, c in expected}
    assert out[-1].startswith("cameras: 9 bad rows of 11 read; refused, nothing was loaded")
    reasons = dict(line.split(": ", 1) for line in out[:-1])
    assert reasons["line 3"].startswith("device_id: unassigned industry code '99' at positions 9-10")
    assert reasons["line 4"] == "status: unknown value 'BROKEN': one of ONLINE, OFFLINE, FAULT"
    assert reasons["line 5"] == "owner_uscc: required for an enterprise camera"
    assert reasons["line 6"].startswith("lon: position [29.87, 121.55] is outside the valid area of EPSG:4490")
    assert reasons["line 7"] == "owner_uscc: must be empty for a camera owned by urban_management"
    assert reasons["line 8"].startswith("owner_uscc: bad check character")
    assert reasons["line 9"].startswith("last_heartbeat: not an RFC 3339 date-time with a zone")
    assert reasons["line 10"] == "lat: not a number (digits and an optional '.'): 'NaN'"
    assert reasons["line 11"] == f"device_id: duplicate '{device(1)}': the file has it on line 2 already"
    assert (count(target, "cameras"), progress_rows(target)) == (0, [])  # not even the first good batch

    parents = write_csv(tmp_path / "cameras-good.csv", CAMERAS, [camera(1), camera(10)])
    assert load("video", "cameras", parents, target).rows_loaded == 2
    recordings, expected = malformed_recordings(tmp_path)
    before = progress_rows(target)

    report = load("video", None, recordings, target, batch_size=2)

    assert {(bad.line, bad.column) for bad in report.bad_rows} == expected
    assert (report.rows_read, report.rows_loaded, report.bad_row_count) == (9, 0, 7)
    assert (count(target, "recordings"), progress_rows(target)) == (0, before)
    why = {bad.line: bad.reason for bad in report.bad_rows}
    assert why[3] == "2026-02-02T15:00:00Z is not after start_at 2026-02-02T16:00:00Z"
    assert why[4] == f"no cameras row with device_id '{device(99)}' (load cameras first)"
    assert why[5] == "invalid character 'X' at position 20 (expected a digit)"
    assert why[6] == "2026-02-05T08:00:00Z is before end_at 2026-02-05T16:00:00Z"
    assert why[7] == "negative: -1"
    assert why[8] == "unknown value 'FROZEN': one of HOT, WARM, COLD"
    assert why[9].startswith("not an RFC 3339 date-time with a zone")


def test_skip_loads_only_the_good_cameras_and_recordings(target: str, tmp_path: Path) -> None:
    cameras, expected_cameras = malformed_cameras(tmp_path)
    recordings, expected_recordings = malformed_recordings(tmp_path)

    first = load("video", None, cameras, target, on_error="skip", batch_size=3)
    second = load("video", None, recordings, target, on_error="skip", batch_size=2)

    assert {(bad.line, bad.column) for bad in first.bad_rows} == expected_cameras
    assert {(bad.line, bad.column) for bad in second.bad_rows} == expected_recordings
    assert (first.rows_loaded, second.rows_loaded) == (2, 2)
    assert column(target, "cameras", "device_id") == [device(1), device(10)]
    assert column(target, "cameras", "name") == [camera(1)[1], camera(10)[1]]  # the first camera 1 is kept
    assert column(target, "recordings", "id") == [recording(1, 1)[0], recording(10, 1)[0]]
    assert "loaded 2 of 9 rows, skipped 7 bad rows" in second.summary()


# --- Formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["parcels.gpkg", "roads.shp", "roads.shp.zip", "credit_subjects.SHP"])
def test_spatial_files_belong_to_the_spatial_connector(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(b"GPKG\x00")
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"

    with pytest.raises(LoadError, match=r"for the spatial connector \(`citygraph load spatial`\)"):
        load("credit", None, path, url)
    assert load_command("credit", path, url) == 2
    assert "for the spatial connector (`citygraph load spatial`)" in capsys.readouterr().err
    assert not (tmp_path / "target.sqlite").exists()  # refused before touching the target


def test_geojson_features_and_ndjson_lines_are_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    point = {"type": "Point", "coordinates": [121.55, 29.87]}
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": point, "properties": dict(zip(SUBJECTS, subject(i), strict=True))}
        for i in range(3)
    ]
    features[1]["properties"]["uscc"] = wrong_check_char(uscc(1))
    features.append({"type": "Feature", "geometry": None, "properties": None})
    collection = tmp_path / "credit_subjects.geojson"
    collection.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))

    report = load("credit", None, collection, url, on_error="skip")

    assert (report.unit, report.rows_loaded) == ("feature", 2)
    assert [bad.describe(report.unit) for bad in report.bad_rows] == [
        f"feature 2: uscc: {report.bad_rows[0].reason}",
        "feature 4: the feature has no properties object",
    ]
    seventh = {"uscc": uscc(7), "name": "宁波七号", "district_code": 330205}  # an integer, as GIS tools write codes
    eighth = {"uscc": uscc(8), "name": "宁波八号", "district_code": "330212", "extra": 1}
    lines = [orjson.dumps(seventh), b"", orjson.dumps({"type": "Feature", "properties": eighth}), b"{not json"]
    ndjson = tmp_path / "credit_subjects.ndjson"
    ndjson.write_bytes(b"\n".join(lines) + b"\n")

    report = load("credit", None, ndjson, url, on_error="skip")

    assert (report.unit, report.rows_loaded) == ("line", 1)
    assert [(bad.line, bad.column) for bad in report.bad_rows] == [(3, "extra"), (4, None)]
    assert "330205" in column(url, "credit_subjects", "district_code")


def test_the_header_must_fit_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    unknown = write_csv(tmp_path / "credit_subjects.csv", [*SUBJECTS, "remark", "备注"], [[*subject(1), "", ""]])
    with pytest.raises(LoadError, match="unknown column\\(s\\) 'remark', '备注' for credit_subjects"):
        load("credit", None, unknown, url)
    missing = write_csv(tmp_path / "subjects.csv", ["uscc"], [[uscc(1)]])
    with pytest.raises(LoadError, match="required column\\(s\\) missing for credit_subjects: name, district_code"):
        load("credit", "credit_subjects", missing, url)
    with pytest.raises(LoadError, match=r"cannot tell the table from the file name 'subjects\.csv'"):
        load("credit", None, missing, url)
    assert load_command("credit", missing, url, "credit_records", "skip") == 2
    assert load_command("credit", missing, url, None, "ignore") == 2
    assert load_command("weather", missing, url) == 2
    assert load_command("spatial", missing, url) == 2
    err = capsys.readouterr().err
    assert "credit has no table 'credit_records'" not in err  # it has: the header is what is wrong
    assert "--on-error must be skip or refuse" in err
    assert "unknown connector 'weather'; one of credit, license, video, spatial" in err
    assert "subjects.csv: the spatial connector loads GeoPackage, Shapefile or GeoJSON files" in err


def test_load_command_prints_bad_rows_and_exits_by_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    subjects = write_csv(tmp_path / "credit_subjects.csv", SUBJECTS, [subject(i) for i in range(10)])
    assert load_command("credit", subjects, url) == 0
    assert "credit_subjects: loaded 10 of 10 rows" in capsys.readouterr().out
    path, expected, _ = malformed_records(tmp_path)

    assert load_command("credit", path, url, None, "skip", 4, True) == 1

    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(expected)  # 7 bad rows (id 50 is new here) and the summary
    assert out[0].startswith("line 5: uscc: bad check character ")
    assert out[-1].startswith("credit_records: loaded 4 of 11 rows, skipped 7 bad rows")  # id 50 is new here


# --- The demo data set round trip -------------------------------------------------------------


def export(db: Path, metadata: MetaData, folder: Path, keep: Callable[[str, dict[str, Any]], bool]) -> list[Path]:
    """Each table of ``metadata`` in the SQLite file ``db`` as a CSV file, parents first."""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, datetime):  # SQLite keeps them naive, in UTC
            return value.replace(tzinfo=UTC).isoformat()
        return str(value)

    engine = create_engine(f"sqlite:///{db}")
    paths = []
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = [row._asdict() for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                kept = [[cell(v) for v in row.values()] for row in rows if keep(table.name, row)]
                paths.append(write_csv(folder / f"{table.name}.csv", list(table.columns.keys()), kept))
    finally:
        engine.dispose()
    return paths


def test_the_demo_data_set_loads_except_its_forged_licences(demo_dir: Path, tmp_path: Path) -> None:
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        cases = dict(conn.execute('SELECT number, "case" FROM demo_cases').fetchall())
    forged = {n for n, case in cases.items() if case in ("tampered", "bad_signature")}
    sample = set(sorted(cases)[:60]) | forged  # every signature costs ~4 ms: a sample, with every forgery
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"

    for db, metadata, connector in (("credit", credit_metadata, "credit"), ("license", license_metadata, "license")):
        for path in export(
            demo_dir / f"{db}.sqlite", metadata, tmp_path, lambda t, r: t != "licenses" or r["number"] in sample
        ):
            report = load(connector, None, path, url, on_error="skip", workers=2 if path.stem == "licenses" else 1)
            if path.stem != "licenses":
                assert report.ok, report.bad_rows[:3]
            else:
                assert {bad.column for bad in report.bad_rows} == {"signature"}, report.bad_rows
                assert report.bad_row_count == len(forged)

    assert set(column(url, "licenses", "number")) == sample - forged

    source = create_engine(f"sqlite:///{demo_dir / 'credit.sqlite'}")
    loaded = create_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    try:
        for table in credit_metadata.sorted_tables:
            statement = select(table).order_by(*table.primary_key.columns)
            with source.connect() as a, loaded.connect() as b:
                assert a.execute(statement).all() == b.execute(statement).all(), table.name
            with loaded.connect() as b:
                assert b.execute(select(func.count()).select_from(table)).scalar_one() > 0
    finally:
        source.dispose()
        loaded.dispose()


def test_the_video_demo_data_set_loads(demo_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    for path in export(demo_dir / "video.sqlite", video_metadata, tmp_path, lambda _t, _r: True):
        report = load("video", None, path, url)
        assert report.ok and report.rows_loaded > 0, report.bad_rows[:3]

    source = create_engine(f"sqlite:///{demo_dir / 'video.sqlite'}")
    loaded = create_engine(url)
    try:
        for table in video_metadata.sorted_tables:
            statement = select(table).order_by(*table.primary_key.columns)
            with source.connect() as a, loaded.connect() as b:
                assert a.execute(statement).all() == b.execute(statement).all(), table.name
    finally:
        source.dispose()
        loaded.dispose()
