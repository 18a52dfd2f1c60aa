"""Prepared SQLite reads: a SQLAlchemy statement compiled once per shape, then run on the DBAPI.

On the reference queries SQLAlchemy's execution layer (connection checkout, execution context,
cursor result, row objects) cost more event-loop time than SQLite itself: about half of a small
request's CPU went to its five reads. :class:`PreparedReads` keeps what SQLAlchemy computes per
statement shape — the compiled SQL, its positional parameters with their bind processors, the
result columns with their result processors — and runs a read as SQLAlchemy's own
``DefaultExecutionContext`` would: the same compiled-statement cache key and extracted values,
the same ``construct_params`` and expansion of ``IN`` lists, one execute and ``fetchall``
(on APSW, see :class:`PreparedReads`), the same processors. Rows are the dicts the SQLAlchemy path returns. A statement
object that a connector reuses (``connectors.sql.StatementCache``) is looked up in SQLAlchemy's
cache once; later reads of it only bind their values.

Expanding an ``IN`` list rewrites the SQL text, which cost about as much as the rest of a small
read's preparation. For a statement whose only execution-time parameters are plain (typed, not
tuple, not literal) ``IN`` lists, the expansion depends only on the lists' lengths: SQLAlchemy
expands it once per (statement, lengths), and later reads whose lists are ``list`` or ``tuple``
values of those lengths reuse the SQL and the position of each value (:class:`_Expansion`).

Only plain SELECTs whose result columns map one to one, by position, onto unique names are
prepared; for anything else :meth:`PreparedReads.rows` answers ``None`` and the caller runs the
statement through SQLAlchemy. ``before_cursor_execute`` listeners on the engine are called with
the cursor, SQL and parameters (statement counters and tests see every read), but with no
connection or execution context, and a ``retval=True`` listener cannot rewrite the statement;
other execution events do not fire. Instrumentation that needs them (tracing, SQL comments) runs
with inline reads off (``inline_read_budget_ms = 0``), through SQLAlchemy's async engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from threading import get_ident
from typing import Any

import apsw as _apsw
from sqlalchemy import URL, Column, Engine, Executable
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, Label
from sqlalchemy.util import LRUCache

#: Statement shapes kept per engine (SQLAlchemy's own default compiled cache holds 500).
SHAPES = 512


@dataclass(frozen=True, slots=True)
class _Shape:
    """What one compiled SELECT needs at execution: a function from a DBAPI row to its dict, and
    the names of its ``IN``-list parameters when their expansions can be reused (else ``None``)."""

    row: Callable[[tuple[Any, ...]], dict[str, Any]]
    lists: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Expansion:
    """One statement's ``IN`` lists expanded for one set of lengths: the SQL, and for each
    positional parameter its name, its index in that list (-1: not a list) and its processor."""

    sql: str
    params: tuple[tuple[str, int, Callable[[Any], Any] | None], ...]


#: What a statement object compiles to: itself, its compiled form, shape (``None``: not prepared),
#: extracted and collected parameters.
_Known = tuple[Any, Any, "_Shape | None", Any, Any]

#: A read ready to run: its shape, the SQL and the positional parameters.
Prepared = tuple[_Shape, str, tuple[Any, ...]]


class PreparedReads:
    """Runs read statements for a synchronous SQLite ``engine`` on one held connection.

    With ``apsw`` on a plain file (no URL query) that is a read-only APSW connection of its own, in
    SQLite's multi-thread mode, given ``cache_kib`` of page cache and ``progress`` as its progress
    handler (every 1,000 VM steps; a true answer interrupts the read). Python's ``sqlite3``
    releases and retakes the GIL around every column of every row and SQLite locks the
    connection's mutex on every call: a third of the instructions of a 500-row read, which APSW
    without the mutex reads in about half the time (``sqlite3`` 770 µs, APSW 480, APSW in
    multi-thread mode 400). A read that APSW does not finish (interrupted, a busy file, a value it
    cannot bind, text that is not UTF-8, a file it cannot open) raises :class:`OffLoop`: the
    caller reads it again off the event loop through SQLAlchemy, whose answer or error is the
    authoritative one. Otherwise the pool's ``sqlite3`` connection is used, as the engine's
    ``connect`` listeners configured it, and its errors propagate.

    Not thread-safe: it serves the event loop's thread (``connectors.sql.Reader``'s inline reads).
    Without SQLite's mutex APSW cannot see a second thread either, so the APSW connection answers
    only the thread that opened it: on another, :meth:`run` answers ``None``.
    """

    def __init__(
        self, engine: Engine, *, apsw: bool = True, progress: Callable[[], bool] | None = None, cache_kib: int = 0
    ) -> None:
        self._engine = engine
        self._apsw = apsw and _plain_file(engine.url)
        self._progress = progress
        self._cache_kib = cache_kib
        self._own: _apsw.Connection | None = None  # the APSW connection, once opened
        self._owner = 0  # the thread that opened it
        self._dialect = engine.dialect
        self._compiled: LRUCache[Any, Any] = LRUCache(SHAPES)
        self._shapes: LRUCache[SQLCompiler, _Shape | None] = LRUCache(SHAPES)
        # A shape meets lists of a few lengths (batches of 1 key, of a page's 100, ...).
        self._expansions: LRUCache[tuple[object, ...], _Expansion] = LRUCache(SHAPES * 8)
        self._connection: Any = None  # the pool's proxied DBAPI connection, once checked out
        # By statement object: connectors reuse statements (connectors.sql.StatementCache), and
        # for one object and parameter names the compiled form, the extracted values and the
        # shape never change. The entry holds the statement, so its id is not reused meanwhile.
        self._known: LRUCache[tuple[int, tuple[str, ...]], _Known] = LRUCache(SHAPES)

    def rows(self, query: Executable, params: Mapping[str, object] | None) -> list[dict[str, Any]] | None:
        """The rows of ``query`` as dicts, or ``None`` when it cannot be run prepared (then run it
        through SQLAlchemy); raises :class:`OffLoop` as :meth:`run` does."""
        ready = self.prepare(query, params)
        return None if ready is None else self.run(ready)

    def prepare(self, query: Executable, params: Mapping[str, object] | None) -> Prepared | None:
        """``query`` compiled (from the cache after its first use) and bound, ready for :meth:`run`;
        ``None`` when it cannot be run prepared."""
        try:
            return self._prepare(query, params)
        except Exception:
            # A statement SQLAlchemy refuses (a missing parameter, say), or internals this module
            # does not know: SQLAlchemy's own execution gives the authoritative answer or error.
            return None

    def run(self, prepared: Prepared) -> list[dict[str, Any]] | None:
        """Run a prepared read on the held connection; ``None`` on a thread the APSW connection
        does not serve. Raises :class:`OffLoop` for a read APSW did not finish; ``sqlite3``'s
        errors propagate."""
        shape, sql, args = prepared
        refused: tuple[type[Exception], ...] = ()  # on sqlite3: none, its errors propagate
        if self._apsw:
            connection = self._apsw_connection()
            if connection is None:
                return None
            refused = _REFUSED
        else:
            connection = self._dbapi()
        cursor = connection.cursor()
        try:
            self._started(cursor, sql, args)
            try:
                cursor.execute(sql, args)
                data = cursor.fetchall()
            except refused as exc:
                raise OffLoop(type(exc).__name__) from exc
        finally:
            cursor.close()
        row = shape.row
        return [row(r) for r in data]

    def _apsw_connection(self) -> _apsw.Connection | None:
        """The APSW connection, opened on first use (:class:`OffLoop` if it cannot be); ``None``
        on a thread other than the one that opened it."""
        if self._own is None:
            try:
                self._own, self._owner = _open(self._engine.url, self._progress, self._cache_kib), get_ident()
            except _apsw.Error as exc:
                raise OffLoop("the file could not be opened") from exc
        elif self._owner != get_ident():
            return None
        return self._own

    def _started(self, cursor: Any, sql: str, args: tuple[Any, ...]) -> None:
        """Call the engine's ``before_cursor_execute`` listeners (statement counters, the budget)."""
        for listener in self._engine.dispatch.before_cursor_execute:
            listener(None, cursor, sql, args, None, False)

    def _prepare(self, query: Executable, params: Mapping[str, object] | None) -> Prepared | None:
        keys = tuple(sorted(params)) if params else ()
        known = self._known.get((id(query), keys))
        if known is None or known[0] is not query:
            known = self._know(query, keys)
        _, compiled, shape, extracted, collected = known
        if shape is None:
            return None
        sql, args = self._bind(compiled, shape, params, extracted, collected)
        return shape, sql, args

    def _know(self, query: Executable, keys: tuple[str, ...]) -> _Known:
        if not isinstance(query, ClauseElement):
            return query, None, None, None, None
        compiled, extracted, collected, _ = query._compile_w_cache(  # SQLAlchemy's own cache step
            self._dialect, compiled_cache=self._compiled, column_keys=list(keys), for_executemany=False
        )
        if not isinstance(compiled, SQLCompiler):
            return query, None, None, None, None
        shape = self._shapes.get(compiled, _UNSEEN)
        if shape is _UNSEEN:
            shape = self._shapes[compiled] = _shape_of(compiled, self._dialect)
        known: _Known = (query, compiled, shape, extracted, collected)
        self._known[(id(query), keys)] = known
        return known

    def _bind(
        self, compiled: SQLCompiler, shape: _Shape, params: Mapping[str, object] | None, extracted: Any, collected: Any
    ) -> tuple[str, tuple[Any, ...]]:
        # As sqlalchemy.engine.default.DefaultExecutionContext._init_compiled, single execution.
        if params:
            values = compiled.construct_params(
                dict(params), escape_names=False, _group_number=0,
                extracted_parameters=extracted, _collected_params=collected,
            )  # fmt: skip
        else:
            values = compiled.construct_params(
                escape_names=False, extracted_parameters=extracted, _collected_params=collected
            )
        if shape.lists and all(type(values[name]) in _SEQUENCES for name in shape.lists):
            key = (compiled, *(len(values[name]) for name in shape.lists))
            expansion = self._expansions.get(key)
            if expansion is None:
                expansion = self._expansions[key] = _expansion_of(compiled, dict(values))
            bound: list[Any] = []
            for name, index, process in expansion.params:
                value = values[name] if index < 0 else values[name][index]
                bound.append(value if process is None else process(value))
            return expansion.sql, tuple(bound)
        processors: Mapping[str, Any] = compiled._bind_processors
        sql = compiled.string
        positions: Sequence[str] = compiled.positiontup or ()
        if compiled.literal_execute_params or compiled.post_compile_params:
            expanded = compiled._process_parameters_for_postcompile(values)
            sql = expanded.statement
            processors = {**processors, **expanded.processors}
            positions = expanded.positiontup or ()
        args = tuple(processors[k](values[k]) if k in processors else values[k] for k in positions)
        return sql, args

    def _dbapi(self) -> Any:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        return self._connection.dbapi_connection

    def close(self) -> None:
        """Close the held connections (the pool's: return it)."""
        if self._own is not None:
            self._own.close()
            self._own = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _plain_file(url: URL) -> bool:
    """Whether ``url`` is a SQLite file's, without query parameters."""
    return url.get_backend_name() == "sqlite" and not url.query and url.database not in (None, "", ":memory:")


def _open(url: URL, progress: Callable[[], bool] | None, cache_kib: int) -> _apsw.Connection:
    """A read-only APSW connection to the file of ``url``: no connection mutex (one thread uses
    it), ``cache_kib`` of page cache (0: SQLite's own), no busy timeout: a busy file is read off
    the event loop, where waiting for it holds nothing else up."""
    connection = _apsw.Connection(str(url.database), flags=_apsw.SQLITE_OPEN_READONLY | _apsw.SQLITE_OPEN_NOMUTEX)
    try:
        if cache_kib:
            connection.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        if progress is not None:
            connection.set_progress_handler(progress, 1000)
    except BaseException:
        connection.close()
        raise
    return connection


#: What APSW raises for a read it does not finish: interrupted, busy, a value it cannot bind, text
#: that is not UTF-8.
_REFUSED: tuple[type[Exception], ...] = (_apsw.Error, TypeError, ValueError)


class OffLoop(Exception):
    """APSW did not finish the read: read it again off the event loop, through SQLAlchemy."""


_UNSEEN: Any = object()
#: List values the cached expansion indexes; SQLAlchemy iterates anything else (a set, a mapping).
_SEQUENCES = (list, tuple)


def _shape_of(compiled: SQLCompiler, dialect: Any) -> _Shape | None:
    """The execution data of a compiled plain SELECT, or ``None`` when it is not one."""
    if (
        not compiled.positional
        or compiled.isinsert
        or compiled.isupdate
        or compiled.isdelete
        or compiled.schema_translate_map
        or compiled.escaped_bind_names
        or not compiled._ordered_columns
        or compiled._textual_ordered_columns
        or compiled._ad_hoc_textual
        or compiled._loose_column_name_matching
        or not compiled._result_columns
    ):
        return None
    names = [column[0] for column in compiled._result_columns]
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        return None
    # One dict display per row, generated once per shape: several times faster than zipping names
    # with values and calling the processors in a loop. Names are repr()'d, never interpolated raw.
    scope: dict[str, Any] = {}
    items = []
    for index, column in enumerate(compiled._result_columns):
        process = column[3]._cached_result_processor(dialect, None)
        if process is None and (texts := _texts(column[2])) is not None:
            scope[f"s{index}"] = texts
            items.append(f"{names[index]!r}: s{index}[r[{index}]]")
        elif process is None:
            items.append(f"{names[index]!r}: r[{index}]")
        elif type(column[3]) in _MEMOIZED and (memo := _memo(process)) is not None:
            scope[f"m{index}"] = memo
            items.append(f"{names[index]!r}: m{index}[r[{index}]]")
        else:
            scope[f"p{index}"] = process
            items.append(f"{names[index]!r}: p{index}(r[{index}])")
    row = eval(f"lambda r: {{{', '.join(items)}}}", scope)  # noqa: S307 (source built from reprs above)
    return _Shape(row, _reusable_lists(compiled))


#: Column types (exactly these: a subclass may process differently) whose SQLite result processors
#: are pure functions of the stored value returning immutable values (``Decimal``, ``float``,
#: ``date``, ``datetime``, ``time``): their results are remembered by value, a subscript per row
#: where a ``Decimal`` cost a formatting and a parse.
_MEMOIZED = frozenset({
    sqltypes.Numeric, sqltypes.NUMERIC, sqltypes.DECIMAL, sqltypes.Date, sqltypes.DATE, sqltypes.DateTime,
    sqltypes.DATETIME, sqltypes.TIMESTAMP, sqltypes.Time, sqltypes.TIME,
})  # fmt: skip
#: Values remembered per processor (dates and amounts repeat across rows and requests), and
#: processors with a memo: one per processor, shared by every shape and column that uses it (all
#: ``Date`` columns share SQLAlchemy's one date parser; a ``Numeric`` scale has its own).
MEMO_SIZE, MEMOS = 4096, 64


class _Memo(dict[Any, Any]):
    """``memo[value]``: the processor's result for ``value``, remembered while there is room.

    Equal values share one entry (``1``, ``1.0`` and ``True``): these processors give equal
    numbers equal results, except zero's sign (``-0.0`` gives ``Decimal('-0.00')``), so zeros are
    never remembered, nor NaN (equal to nothing, it would only fill the memo). A value the
    processor refuses raises, as it would uncached.
    """

    __slots__ = ("process",)

    def __init__(self, process: Callable[[Any], Any]) -> None:
        super().__init__()
        self.process = process

    def __missing__(self, value: Any) -> Any:
        result = self.process(value)
        if value == value and value != 0 and len(self) < MEMO_SIZE:
            self[value] = result
        return result


_MEMOS: dict[Callable[[Any], Any], _Memo] = {}

#: ``Column.info`` key marking a text column whose values repeat across rows and requests (an
#: authority's name, a catalogue's titles, an industry): see :class:`_Texts`.
REPEATING = "repeating"


class _Texts(dict[Any, Any]):
    """``texts[value]``: the ``str`` equal to ``value`` that was read first, while there is room.

    SQLite makes a new ``str`` for every value of every row; the response encoder then makes each
    non-ASCII string's UTF-8 form anew: half of the encoding of a district list's page, with its
    two Chinese columns. Handing out one object per value makes that form once. Only exact
    ``str`` values are kept (no other type equals one), at most ``MEMO_SIZE`` per column: a column
    marked repeating whose values do not repeat costs a lookup per row and that memory."""

    __slots__ = ()

    def __missing__(self, value: Any) -> Any:
        if type(value) is str and len(self) < MEMO_SIZE:
            self[value] = value
        return value


_TEXTS: dict[tuple[str, str], _Texts] = {}


def _texts(objects: Sequence[Any]) -> _Texts | None:
    """The values of the result column of ``objects`` (SQLAlchemy's, for one result column) when
    it reads a column marked :data:`REPEATING`, labelled or not; one per table and column name."""
    for item in objects:
        column = item.element if isinstance(item, Label) else item
        if isinstance(column, Column) and column.info.get(REPEATING) and column.table is not None:
            key = (getattr(column.table, "name", ""), column.name)
            found = _TEXTS.get(key)
            if found is None:
                found = _TEXTS[key] = _Texts()
            return found
    return None


def _memo(process: Callable[[Any], Any]) -> _Memo | None:
    """The memo of ``process``, made on first use; ``None`` once ``MEMOS`` processors have one."""
    found = _MEMOS.get(process)
    if found is None and len(_MEMOS) < MEMOS:
        found = _MEMOS[process] = _Memo(process)
    return found


def _reusable_lists(compiled: SQLCompiler) -> tuple[str, ...] | None:
    """The names of ``compiled``'s ``IN``-list parameters when they are its only execution-time
    parameters and each expands by its length alone: not a tuple ``IN``, and not untyped (then
    SQLAlchemy expands as tuples or not by looking at the first value); else ``None``."""
    params = compiled.post_compile_params
    if not params or compiled.literal_execute_params:
        return None
    if any(not p.expanding or p.literal_execute or p.type._is_tuple_type or p.type._isnull for p in params):
        return None
    return tuple(sorted(compiled.bind_names[p] for p in params))


def _expansion_of(compiled: SQLCompiler, values: dict[str, Any]) -> _Expansion:
    """Expand ``compiled``'s ``IN`` lists through SQLAlchemy and note where each value goes."""
    expanded = compiled._process_parameters_for_postcompile(values)
    origin = {new: (name, i) for name, names in expanded.parameter_expansion.items() for i, new in enumerate(names)}
    # The statement's own processors, and those SQLAlchemy gives the lists' elements.
    processors: Mapping[str, Any] = {**compiled._bind_processors, **expanded.processors}
    params = []
    for position in expanded.positiontup or ():
        name, index = origin.get(position, (position, -1))
        params.append((name, index, processors.get(position)))
    return _Expansion(expanded.statement, tuple(params))


__all__ = ["SHAPES", "Prepared", "PreparedReads"]
