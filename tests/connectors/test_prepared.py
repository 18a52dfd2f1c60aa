"""connectors.prepared.PreparedReads: the same rows as SQLAlchemy's execution, statement by statement."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.exc import OperationalError

from connectors import prepared as prepared_module
from connectors.prepared import REPEATING, OffLoop, PreparedReads, _Memo, _Texts
from connectors.sql import keys_in

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String, nullable=False),
    Column("name", String),
    Column("made_on", Date),
    Column("seen_at", DateTime),
    Column("price", Numeric(12, 2)),
)
owners = Table("owners", metadata, Column("owner", String, primary_key=True), Column("name", String))
notes = Table(
    "prepared_test_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("authority", String, info={REPEATING: True}),
    Column("body", String),
)


@pytest.fixture(params=["apsw", "sqlite3"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A SQLite file with things in it. Prepared reads of a plain file URL run on APSW; a URL with
    query parameters keeps the pool's ``sqlite3`` connection: every test runs on both."""
    query = "" if request.param == "apsw" else "?timeout=5"
    engine = create_engine(f"sqlite:///{tmp_path / 'p.sqlite'}{query}", isolation_level="AUTOCOMMIT")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(things),
            [
                {
                    "id": i, "owner": f"o{i % 3}", "name": None if i % 5 == 0 else f"名{i}",
                    "made_on": dt.date(2025, 1, 1 + i % 28), "seen_at": dt.datetime(2026, 2, 3, 4, 5, i % 60, 123),
                    "price": None if i % 4 == 0 else Decimal(i) / 4,
                }
                for i in range(1, 60)
            ],
        )  # fmt: skip
        conn.execute(insert(owners), [{"owner": "o0", "name": "甲"}, {"owner": "o1", "name": "乙"}])
        conn.execute(
            insert(notes), [{"id": i, "authority": f"市监局{i % 2}", "body": f"决定{i % 2}"} for i in range(6)]
        )
        # A text column holds what it is given: a NULL, and a blob (numbers would become text).
        conn.execute(insert(notes), [{"id": 6, "authority": None, "body": "x"}])
        conn.execute(text("INSERT INTO prepared_test_notes VALUES (7, X'E7949F', 'y')"))
    yield engine
    engine.dispose()


def reference(engine: Engine, query: Any, params: dict[str, object] | None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query, params)]


rank = func.row_number().over(partition_by=things.c.owner, order_by=things.c.id.desc()).label("rn")
ranked = select(things, rank).where(keys_in(things.c.owner, "sqlite")).subquery()
STATEMENTS: list[tuple[str, Any, dict[str, object] | None]] = [
    ("keys", select(things).where(keys_in(things.c.owner, "sqlite")), {"keys": ["o1", "o2", "nobody"]}),
    ("no keys", select(things).where(keys_in(things.c.owner, "sqlite")), {"keys": []}),
    (
        "keys and a processed value",  # a Decimal reaches sqlite3 only through Numeric's bind processor
        select(things.c.id, things.c.price).where(
            keys_in(things.c.owner, "sqlite"), things.c.price > bindparam("least", type_=Numeric(12, 2))
        ),
        {"keys": ["o0", "o2"], "least": Decimal("3.25")},
    ),
    (
        "two lists",
        select(things.c.id).where(keys_in(things.c.owner, "sqlite"), things.c.id.in_(bindparam("ids", expanding=True))),
        {"keys": ["o1", "o2"], "ids": [1, 2, 5, 8, 11, 40]},
    ),
    ("literal values", select(things).where(things.c.made_on < dt.date(2025, 1, 9), things.c.id > 3), None),
    ("literal list", select(things.c.id, things.c.price).where(things.c.id.in_([2, 4, 8])), None),
    ("tuple list", select(things.c.id).where(tuple_(things.c.owner, things.c.id).in_([("o1", 1), ("o1", 4)])), None),
    ("limit", select(things).order_by(things.c.id.desc()).limit(bindparam("limit")), {"limit": 7}),
    (
        "ranked",
        select(*[ranked.c[c.name] for c in things.c]).where(ranked.c.rn <= bindparam("limit")),
        {"keys": ["o0", "o2"], "limit": 2},
    ),
    ("join", select(things.c.id, owners.c.name).join_from(things, owners, things.c.owner == owners.c.owner), None),
    ("label", select(things.c.id, literal(1).label("one"), func.count().over().label("n")), None),
]


@pytest.mark.parametrize(("name", "query", "params"), STATEMENTS, ids=[s[0] for s in STATEMENTS])
def test_prepared_rows_equal_sqlalchemy_rows(engine: Engine, name: str, query: Any, params: Any) -> None:
    prepared = PreparedReads(engine)
    expected = reference(engine, query, params)
    for _ in range(2):  # the first run prepares the shape, the second reuses it
        got = prepared.rows(query, params)
        assert got == expected
        assert [[type(v) for v in row.values()] for row in got] == [[type(v) for v in r.values()] for r in expected]
    assert (name == "no keys") == (expected == [])
    prepared.close()


def test_one_shape_serves_statements_with_other_values(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    for day in (3, 9, 20):
        query = select(things.c.id).where(things.c.made_on < dt.date(2025, 1, day))  # a new statement each time
        assert prepared.rows(query, None) == reference(engine, query, None)
    assert len(prepared._shapes) == 1
    prepared.close()


def test_a_statement_object_is_compiled_once_and_its_values_bound_on_every_read(engine: Engine) -> None:
    # Known by identity: two live statements of one shape keep their own literal values, and a
    # reused one takes each read's parameters.
    prepared = PreparedReads(engine)
    early, late = (
        select(things.c.id).where(things.c.made_on < dt.date(2025, 1, day), things.c.id > bindparam("least"))
        for day in (5, 20)
    )
    answers = []
    for query, least in ((early, 3), (late, 3), (early, 10), (late, 10), (early, 3)):
        answers.append(prepared.rows(query, {"least": least}))
        assert answers[-1] == reference(engine, query, {"least": least})
    assert answers[0] != answers[1] and answers[1] != answers[3] and answers[0] == answers[4]
    assert len(prepared._known) == 2 and len(prepared._shapes) == 1
    prepared.close()


def test_in_list_expansions_are_reused_by_length(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    least = bindparam("least", type_=Numeric(12, 2))
    query = select(things.c.id, things.c.price).where(keys_in(things.c.owner, "sqlite"), things.c.price > least)
    answers = []
    for keys in (["o0"], ["o1"], ["o0", "o1"], [], ["o2", "o0"], ["o1"], ("o2",)):
        params: dict[str, object] = {"keys": keys, "least": Decimal("2")}
        answers.append(prepared.rows(query, params))
        assert answers[-1] == reference(engine, query, params)
    assert answers[0] != answers[1] and answers[1] == answers[5]  # same length, the values of each read
    assert len(prepared._expansions) == 3  # lengths 1, 2 and 0
    prepared.close()


def test_tuple_lists_are_expanded_by_sqlalchemy_each_time(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    query = select(things.c.id).where(tuple_(things.c.owner, things.c.id).in_(bindparam("pairs", expanding=True)))
    for pairs in ([("o1", 1), ("o1", 4)], [("o2", 2), ("o0", 3)]):
        assert prepared.rows(query, {"pairs": pairs}) == reference(engine, query, {"pairs": pairs})
    assert len(prepared._expansions) == 0
    prepared.close()


def test_untyped_lists_and_other_iterables_are_expanded_by_sqlalchemy(engine: Engine) -> None:
    """An untyped list expands as tuples or not by its first value; a mapping or set is iterated,
    not indexed: neither may reuse an expansion."""
    prepared = PreparedReads(engine)
    untyped = select(things.c.id).where(literal_column("owner").in_(bindparam("keys", expanding=True)))
    for keys in (["o1"], [("o1",)]):
        assert prepared.rows(untyped, {"keys": keys}) == reference(engine, untyped, {"keys": keys})
    typed = select(things.c.id).where(keys_in(things.c.owner, "sqlite"))
    for value in ({0: "o2"}, {"o2"}, ["o1"], {0: "o2"}):
        assert prepared.rows(typed, {"keys": value}) == reference(engine, typed, {"keys": value})
    assert len(prepared._expansions) == 1  # the typed statement's list of one
    prepared.close()


def test_textual_statements_are_left_to_sqlalchemy(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    assert prepared.rows(text("SELECT id FROM things"), None) is None
    prepared.close()


def test_columns_of_the_same_name_keep_sqlalchemys_keys(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    same_names = select(things.c.owner, owners.c.owner).join_from(things, owners, things.c.owner == owners.c.owner)
    got = prepared.rows(same_names, None)
    assert got == reference(engine, same_names, None) and got and len(got[0]) == 2
    prepared.close()


def test_statement_listeners_see_every_prepared_read(engine: Engine) -> None:
    seen: list[tuple[str, Any]] = []

    def listen(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    prepared = PreparedReads(engine)
    query = select(things.c.id).where(keys_in(things.c.owner, "sqlite"))
    prepared.rows(query, {"keys": ["o1", "o2"]})
    prepared.rows(query, {"keys": ["o0"]})
    event.remove(engine, "before_cursor_execute", listen)
    assert [params for _, params in seen] == [("o1", "o2"), ("o0",)]
    assert all("things.owner IN (?" in sql for sql, _ in seen)
    prepared.close()


def test_a_statement_sqlalchemy_would_refuse_is_left_to_it(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    query = select(things.c.id).where(things.c.id == bindparam("wanted"))
    assert prepared.rows(query, None) is None  # no value for :wanted: SQLAlchemy raises its own error
    assert prepared.rows(query, {"wanted": 3}) == [{"id": 3}]
    prepared.close()


def test_processed_values_are_remembered_by_value_except_zeros_and_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    process = Numeric(12, 2)._cached_result_processor(create_engine("sqlite://").dialect, None)
    assert process is not None

    def counted(value: object) -> object:
        calls.append(value)
        return process(value)

    memo = _Memo(counted)
    assert memo[2.25] == Decimal("2.25") and memo[2.25] is memo[2.25] and calls == [2.25]  # processed once
    assert memo[2] == memo[2.0] == Decimal("2.00")  # equal numbers, one entry: the same result
    assert str(memo[-0.0]) == "-0.00" and str(memo[0]) == "0.00" and str(memo[-0.0]) == "-0.00"
    assert memo[float("nan")].is_nan()
    assert set(memo) == {2.25, 2}  # zeros and NaN were processed each time, never kept
    monkeypatch.setattr(prepared_module, "MEMO_SIZE", 3)
    for value in (1.0, 3.0, 4.0):
        memo[value]
    assert len(memo) == 3 and memo[4.0] == Decimal("4.00")  # full: still answers, keeps no more


def test_prepared_reads_share_one_processed_value_between_rows_and_reads(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    query = select(things.c.id, things.c.made_on, things.c.price).where(things.c.id.in_([5, 33]))
    first = {row["id"]: row for row in prepared.rows(query, None) or []}
    again = {row["id"]: row for row in prepared.rows(query, None) or []}
    assert first == {r["id"]: r for r in reference(engine, query, None)}
    assert first[5]["made_on"] == first[33]["made_on"] == dt.date(2025, 1, 6)  # 5 % 28 == 33 % 28
    assert first[5]["made_on"] is first[33]["made_on"] is again[5]["made_on"]  # parsed once
    assert first[5]["price"] is again[5]["price"] == Decimal("1.25")
    prepared.close()


def test_a_repeating_text_column_hands_out_one_string_per_value(engine: Engine) -> None:
    """Equal values of a column marked repeating are one ``str`` across rows and reads (its UTF-8
    form is then made once); an unmarked column's are SQLite's new objects; other types come back
    as they are, unkept."""
    prepared = PreparedReads(engine)
    query = select(notes.c.id, notes.c.authority, notes.c.authority.label("issuer"), notes.c.body).order_by(notes.c.id)
    first, again = prepared.rows(query, None) or [], prepared.rows(query, None) or []
    expected = reference(engine, query, None)
    assert first == again == expected
    assert [[type(v) for v in row.values()] for row in first] == [[type(v) for v in r.values()] for r in expected]
    assert first[0]["authority"] is first[2]["authority"] is again[4]["authority"] is again[0]["issuer"]
    assert first[0]["body"] == again[0]["body"] and first[0]["body"] is not again[0]["body"]
    assert (first[6]["authority"], first[7]["authority"]) == (None, "生".encode())
    assert first[7]["authority"] is not again[7]["authority"]  # bytes are not kept
    prepared.close()


def test_a_repeating_text_column_keeps_at_most_memo_size_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared_module, "MEMO_SIZE", 2)
    texts = _Texts()
    a, b, c = "甲" * 3, "乙" * 3, "丙" * 3
    assert texts["".join(["甲"] * 3)] is texts[a] and texts[b] == b
    assert texts[c] is c and c not in texts and len(texts) == 2  # full: answers, keeps no more


def test_a_plain_file_is_read_on_a_read_only_apsw_connection_without_mutex(engine: Engine) -> None:
    prepared = PreparedReads(engine)
    assert prepared.rows(select(things.c.id).where(things.c.id == 3), None) == [{"id": 3}]
    connection = prepared._own
    if engine.url.query:  # URL parameters are SQLAlchemy's to apply: the pool's sqlite3 connection
        assert connection is None and prepared._connection is not None
    else:
        assert isinstance(connection, apsw.Connection) and prepared._connection is None
        assert connection.open_flags & apsw.SQLITE_OPEN_NOMUTEX and connection.open_flags & apsw.SQLITE_OPEN_READONLY
        with pytest.raises(apsw.ReadOnlyError):
            connection.execute("CREATE TABLE written (a)")
    prepared.close()


def test_apsw_reads_can_be_turned_off(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'off.sqlite'}")
    prepared = PreparedReads(engine, apsw=False)
    assert prepared.rows(select(literal(1).label("one")), None) == [{"one": 1}]
    assert prepared._own is None and prepared._connection is not None
    prepared.close()
    engine.dispose()


def test_a_read_apsw_does_not_finish_is_handed_back(engine: Engine) -> None:
    """Text that is not UTF-8: APSW cannot decode it. The read raises OffLoop, for the caller to
    read it again through SQLAlchemy, whose error (sqlite3's) is the authoritative one; on the
    pool's sqlite3 connection that error comes straight away. Other rows still read prepared."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO prepared_test_notes VALUES (9, CAST(X'FF' AS TEXT), 'bad')"))
    prepared = PreparedReads(engine)
    bad = select(notes.c.authority).where(notes.c.id == 9)
    with pytest.raises(sqlite3.OperationalError if engine.url.query else OffLoop):
        prepared.rows(bad, None)
    with pytest.raises(OperationalError, match="UTF-8"):
        reference(engine, bad, None)
    assert prepared.rows(select(notes.c.body).where(notes.c.id == 1), None) == [{"body": "决定1"}]
    prepared.close()


def test_the_apsw_connection_answers_only_the_thread_that_opened_it(tmp_path: Path) -> None:
    """Without SQLite's mutex nothing else would notice a second thread: it gets ``None`` (read
    it through SQLAlchemy), and the connection is not opened twice."""
    engine = create_engine(f"sqlite:///{tmp_path / 'threads.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER)"))
    prepared = PreparedReads(engine)
    query = select(literal(4).label("id"))
    assert prepared.rows(query, None) == [{"id": 4}]
    opened = prepared._own
    assert opened is not None
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(prepared.rows, query, None).result() is None
    assert prepared._own is opened and prepared.rows(query, None) == [{"id": 4}]
    prepared.close()
    engine.dispose()


def test_a_file_apsw_cannot_open_is_handed_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing.sqlite'}")  # read-only: never created
    prepared = PreparedReads(engine)
    with pytest.raises(OffLoop, match="opened"):
        prepared.rows(select(literal(1).label("one")), None)
    assert prepared._own is None and not (tmp_path / "missing.sqlite").exists()
    engine.dispose()
