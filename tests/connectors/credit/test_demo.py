"""The credit demo data: deterministic, valid identifiers, realistic shape."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from connectors.credit.demo import RATING_BANDS, DemoStats, generate
from connectors.credit.tables import RECORD_KINDS, credit_profiles, credit_records
from connectors.identifiers import NINGBO_DISTRICTS, has_valid_org_code, is_valid_id_number, is_valid_uscc

TODAY = date(2025, 6, 1)
QUERIES = (
    "SELECT * FROM credit_subjects ORDER BY uscc",
    "SELECT * FROM credit_profiles ORDER BY uscc",
    "SELECT * FROM credit_records ORDER BY id",
)


def dump(path: Path) -> list[list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        return [conn.execute(q).fetchall() for q in QUERIES]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStats:
    return generate(tmp_path_factory.mktemp("demo") / "credit.db", scale=400, seed=7, today=TODAY)


@pytest.fixture
def conn(demo: DemoStats) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(demo.path)
    yield c
    c.close()


def test_stats(demo: DemoStats, conn: sqlite3.Connection) -> None:
    assert demo.enterprises == 400
    assert conn.execute("SELECT count(*) FROM credit_subjects").fetchone() == (400,)
    assert conn.execute("SELECT count(*) FROM credit_profiles").fetchone() == (400,)
    assert conn.execute("SELECT count(*) FROM credit_records").fetchone() == (demo.records,)
    assert 2.0 < demo.records / demo.enterprises < 4.0
    assert demo.seconds > 0


def test_same_seed_same_rows_different_seed_different(tmp_path: Path, demo: DemoStats) -> None:
    again = generate(tmp_path / "again.db", scale=400, seed=7, today=TODAY)
    other = generate(tmp_path / "other.db", scale=400, seed=8, today=TODAY)
    assert dump(again.path) == dump(demo.path)
    assert dump(other.path) != dump(demo.path)
    assert dump(other.path)[0][0] != dump(demo.path)[0][0]


def test_today_moves_the_dates(tmp_path: Path, demo: DemoStats) -> None:
    later = generate(tmp_path / "later.db", scale=400, seed=7, today=TODAY + timedelta(days=30))
    a, b = dump(demo.path), dump(later.path)
    assert a[0] == b[0]  # same enterprises
    assert [r[:4] for r in a[2]] == [r[:4] for r in b[2]]  # same records: id, uscc, kind, title
    shifts = {date.fromisoformat(str(y[7])) - date.fromisoformat(str(x[7])) for x, y in zip(a[2], b[2], strict=True)}
    assert shifts == {timedelta(days=30)}  # decision dates moved with today


def test_identifiers_are_valid(conn: sqlite3.Connection) -> None:
    usccs = [u for (u,) in conn.execute("SELECT uscc FROM credit_subjects")]
    assert usccs and all(is_valid_uscc(u) and has_valid_org_code(u) for u in usccs)
    assert all(u[0] == "9" and u[1] in "13" for u in usccs)
    assert sum(u[1] == "1" for u in usccs) > 0.9 * len(usccs)
    ids = [i for (i,) in conn.execute("SELECT DISTINCT legal_rep_id_number FROM credit_records")]
    assert ids and all(is_valid_id_number(i) and i.startswith("33") for i in ids)
    assert all(date(1955, 1, 1) <= date(int(i[6:10]), int(i[10:12]), int(i[12:14])) <= date(2000, 12, 31) for i in ids)


def test_one_legal_representative_per_enterprise(conn: sqlite3.Connection) -> None:
    rows = conn.execute(
        "SELECT uscc, count(DISTINCT legal_rep_name), count(DISTINCT legal_rep_id_number)"
        " FROM credit_records GROUP BY uscc"
    ).fetchall()
    assert rows and all(names == 1 and numbers == 1 for _, names, numbers in rows)
    names = [n for (n,) in conn.execute("SELECT DISTINCT legal_rep_name FROM credit_records")]
    assert all(2 <= len(n) <= 3 for n in names)


def test_districts(conn: sqlite3.Connection) -> None:
    subjects = conn.execute("SELECT uscc, district_code FROM credit_subjects").fetchall()
    assert all(d in NINGBO_DISTRICTS and u[2:8] == d for u, d in subjects)
    assert len({d for _, d in subjects}) == len(NINGBO_DISTRICTS)  # 400 draws cover all ten
    mismatched = conn.execute(
        "SELECT count(*) FROM credit_records r JOIN credit_subjects s ON s.uscc = r.uscc"
        " WHERE r.district_code != s.district_code"
    ).fetchone()
    assert mismatched == (0,)


def test_names_unique_and_shaped(conn: sqlite3.Connection) -> None:
    names = [n for (n,) in conn.execute("SELECT name FROM credit_subjects")]
    assert len(set(names)) == len(names)
    assert all(n.startswith("宁波") or n.endswith("专业合作社") for n in names)
    assert all(n.endswith(("有限公司", "专业合作社")) for n in names)


def test_profiles(demo: DemoStats) -> None:
    engine = create_engine(f"sqlite:///{demo.path}")
    try:
        with engine.connect() as c:
            rows = c.execute(select(credit_profiles)).all()
    finally:
        engine.dispose()
    ratings = [r.rating for r in rows]
    assert set(ratings) == {"A", "B", "C", "D"}
    assert ratings.count("A") + ratings.count("B") > 0.6 * len(ratings)
    for r in rows:
        lo, hi = RATING_BANDS[r.rating]
        assert lo <= r.score <= hi
        # SQLite keeps no offset: stored as UTC, read back naive.
        assessed = r.assessed_at.replace(tzinfo=UTC)
        midnight = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC) - timedelta(hours=8)
        assert midnight - timedelta(days=366) <= assessed < midnight


def test_records(demo: DemoStats) -> None:
    engine = create_engine(f"sqlite:///{demo.path}")
    try:
        with engine.connect() as c:
            rows = c.execute(select(credit_records)).all()
    finally:
        engine.dispose()
    assert {r.kind for r in rows} == set(RECORD_KINDS)
    for r in rows:
        assert TODAY - timedelta(days=5 * 366) <= r.decision_date < TODAY
        assert r.publicity_start == r.decision_date < r.publicity_end
        assert r.title and r.content and r.authority and r.decision_number
        if r.kind == "ADMINISTRATIVE_PENALTY":
            assert isinstance(r.amount, Decimal)
            assert Decimal(500) <= r.amount <= Decimal(500_000)
            assert r.amount == r.amount.quantize(Decimal("0.01"))
        else:
            assert r.amount is None
    past = sum(r.publicity_end < TODAY for r in rows) / len(rows)
    assert 0.3 <= past <= 0.55
    noted = sum(r.internal_note is not None for r in rows) / len(rows)
    assert 0.03 < noted < 0.25
    penalties = [r for r in rows if r.kind == "ADMINISTRATIVE_PENALTY"]
    assert any("市场监督管理局" in r.authority for r in penalties)
    assert any(r.decision_number.endswith("号") and "市监罚〔" in r.decision_number for r in penalties)


def test_record_counts_have_a_tail(tmp_path: Path) -> None:
    stats = generate(tmp_path / "tail.db", scale=3000, seed=1, today=TODAY)
    with sqlite3.connect(stats.path) as c:
        counts = [
            n
            for (n,) in c.execute(
                "SELECT count(r.id) FROM credit_subjects s LEFT JOIN credit_records r ON r.uscc = s.uscc"
                " GROUP BY s.uscc"
            )
        ]
    assert 0.1 < counts.count(0) / len(counts) < 0.4
    assert any(n >= 15 for n in counts)


def test_replaces_existing_file_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "credit.db"
    target.write_bytes(b"not a database")
    (tmp_path / "credit.db-wal").write_bytes(b"stale")
    stats = generate(f"sqlite:///{target}", scale=20, today=TODAY)
    assert stats.path == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credit.db"]
    with sqlite3.connect(target) as c:
        assert c.execute("SELECT count(*) FROM credit_subjects").fetchone() == (20,)


def test_rejects_non_sqlite_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite"):
        generate("postgresql://localhost/credit", scale=1)
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path / "x.db", scale=-1)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar(tmp_path: Path) -> None:
    stats = generate(tmp_path / "p.db", scale=1500, today=TODAY, progress=True)
    assert stats.enterprises == 1500


def test_small_scale_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate(tmp_path / "fast.db", scale=100, today=TODAY)
    assert time.perf_counter() - started < 3.0
