"""Load a department's export into a connector's tables: validated row by row, in batches, resumable.

``citygraph load CONNECTOR --from FILE --to URL`` is :func:`load_command`; :func:`load` is the
library call. One file fills one table (:data:`TABLES`; by default the one named by the file's
stem, ``credit_records.csv`` -> ``credit_records``); load a connector's tables parents first.

Files:

* **CSV** with a header line naming the table's columns (any order, a subset where the rest may be
  NULL or has a default). UTF-8, with or without a BOM; GB18030 (a superset of GBK, which Chinese
  government systems export) when the file is not UTF-8 and holds no UTF-8 text at all -- a UTF-8
  file damaged half-way is refused rather than read as GB18030 mojibake. Positions are physical
  lines, the header being line 1 (a quoted field spanning lines counts them all).
* **GeoJSON** (``.geojson``, ``.json``: a FeatureCollection, parsed whole) and **newline-delimited
  JSON** (``.ndjson``, ``.jsonl``, ``.geojsonl``: one Feature or plain object per line, streamed).
  A feature's ``properties`` are the row; the geometry is ignored (credit and license have none; a
  camera's position is its ``lon`` and ``lat`` properties). The first feature acts as the header; a
  later feature lacking a column gives NULL for it. Positions are feature numbers (1 = the first) in
  a FeatureCollection and lines in NDJSON. JSON integers are accepted for text columns (GIS tools
  type numeric-looking codes as numbers).
* **Spatial files** for ``citygraph load spatial`` (PostgreSQL with PostGIS): GeoPackage, Shapefile
  and GeoJSON, read with pyogrio (``connectors.spatial.sources``), one layer per run (``table`` names
  it; default: the file's only layer, or its stem). Each feature becomes a version in
  ``spatial_features``: ``fid`` and ``valid_from`` required, ``kind``, ``name``, ``district_code``,
  ``uscc``, ``valid_to`` optional, other attributes kept as ``properties``; its geometry must be
  well-formed and land inside CGCS2000's area once transformed from the file's CRS (a file without a
  CRS, or with one PROJ cannot transform, is refused). Positions are feature numbers. For credit,
  license and video, GeoPackage and Shapefile are refused.

Cells: an empty CSV cell, ``""`` or ``null`` is NULL (``licenses.scope`` excepted: resident ID cards
have an empty scope); values are taken as they are, never trimmed. Each row is checked for its
column types (dates ``YYYY-MM-DD``, date-times RFC 3339 with a zone, stored in UTC; decimals within
the column's precision, never rounded; 32-bit integers, 64-bit for ``BIGINT`` columns; finite
floating-point numbers; booleans ``true``/``false``/``1``/``0``), NOT NULL, string lengths, and its
domain: USCC and resident ID check characters (stored upper-case, their canonical form), GB/T 28181
camera device ids (:func:`connectors.identifiers.gb28181_problem`), Ningbo district codes, the
vocabularies of record kinds, ratings, licence types, statuses and holder kinds, camera kinds,
statuses and owners, storage tiers, ranges, date order, a person's birth date against the ID number;
a camera's ``lon``/``lat`` inside CGCS2000's area (as a spatial layer's geometries: swapped
coordinates or metres are refused) and its ``owner_uscc`` given exactly when the owner is
``enterprise``; a recording's ``end_at`` after ``start_at`` and ``retention_until`` not before
``end_at``. Then in batches, against the target database: foreign keys (``credit_records.uscc`` must
be a credit subject, ``recordings.device_id`` a camera...), primary keys already present or repeated
in the file (the first occurrence is the one kept), and for licences the issuer's SM2 signature over
the licence's signed fields: a licence whose signature does not verify under its issuer's key is a
bad row, never loaded. A retired issuer's genuine signatures do verify (the registry keeps its
licences; verification by number still answers ``UNKNOWN_ISSUER`` for them). Verification costs 4-6
ms per licence with :func:`connectors.license.signing.verify` (pure-Python SM2; everything else the
loader does is noise beside it); batches of 1000 licences or more are spread over worker processes
(``workers``), so a million licences take about 1.5 hours on one core and an eighth of that on
eight.

Writing: the target is migrated first (:func:`connectors.migrate.migrate_async`). Each batch is one
transaction holding its rows (``COPY`` on PostgreSQL, ``executemany`` on SQLite) and the progress
row ``citygraph_load_progress (source_sha256, table, last_line, rows, updated_at)``: a crash leaves
whole batches only, and a rerun of the same bytes (same SHA-256) continues after the last committed
one -- a file loaded completely loads nothing the second time. ``on_error="refuse"`` validates the
whole file first without writing and writes only if no row is bad; pass two checks that each batch
converts to exactly what pass one validated. ``on_error="skip"`` checks and writes batch by batch,
reporting and leaving out the bad rows. ``credit_records`` rows without an ``id`` column get ids
from the database and cannot be recognised as duplicates of rows loaded by another file.

Memory: the primary keys of the file (for duplicates) and a FeatureCollection, which is parsed whole
(once per pass: prefer NDJSON for large exports); CSV and NDJSON are streamed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import json
import math
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TextIO

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnDefault,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from connectors.credit.tables import RECORD_KINDS, metadata as credit_metadata
from connectors.errors import InvalidArgument
from connectors.identifiers import NINGBO_DISTRICTS, gb28181_problem, id_number_problem, uscc_problem
from connectors.license.signing import ALGORITHM, canonical_bytes, verify
from connectors.license.tables import (
    ENTERPRISE_STATUSES,
    HOLDER_KIND_BY_TYPE,
    HOLDER_KINDS,
    LICENSE_STATUSES,
    LICENSE_TYPES,
    metadata as license_metadata,
)
from connectors.migrate import migrate_async
from connectors.spatial import crs as crs_mod, sources as spatial_sources
from connectors.spatial.pgload import geometry_codec
from connectors.spatial.tables import metadata as spatial_metadata
from connectors.sql import async_url, key_in, storable
from connectors.video.tables import (
    CAMERA_KINDS,
    CAMERA_STATUSES,
    OWNERS,
    STORAGE_TIERS,
    metadata as video_metadata,
)

#: The tables each connector's files load into, parents first: the order to load a full export in.
TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "credit": ("credit_subjects", "credit_profiles", "credit_records"),
        "license": ("persons", "enterprises", "issuers", "licenses"),
        "video": ("cameras", "recordings"),
        "spatial": ("spatial_features",),  # one layer per file: ``table`` names the layer
    }
)
#: Rows per batch (and per transaction) unless the caller says otherwise.
BATCH_SIZE = 5000

_METADATA: Mapping[str, MetaData] = MappingProxyType(
    {"credit": credit_metadata, "license": license_metadata, "video": video_metadata, "spatial": spatial_metadata}
)

#: The loader's bookkeeping in the target database: how far each file (by content) got into each table.
progress_table = Table(
    "citygraph_load_progress",
    MetaData(),
    Column("source_sha256", String(64), primary_key=True),
    Column("table", String(64), primary_key=True),
    Column("last_line", BigInteger, nullable=False),  # last line (feature) of the last committed batch
    Column("rows", BigInteger, nullable=False),  # rows of this file committed so far, over all runs
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_SPATIAL = {".gpkg": "GeoPackage", ".shp": "Shapefile", ".shx": "Shapefile", ".dbf": "Shapefile"}
_FORMATS: Mapping[str, Literal["csv", "geojson", "ndjson"]] = {
    ".csv": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".geojsonl": "ndjson",
    ".geojsons": "ndjson",
}

# Rows of one batch: key lookups go to the database in chunks of this many (SQLite binds each value).
_LOOKUP_CHUNK = 5000
# Signatures to verify in one batch from which worker processes pay for their start-up (~1 s).
_POOL_THRESHOLD = 1000
# Columns where an empty cell is the empty string, not NULL (a resident ID card has no scope).
_EMPTY_IS_TEXT = frozenset({"licenses.scope"})


class LoadError(ValueError):
    """The load cannot start or go on as asked (unknown table, unreadable file, wrong header...);
    the message says what to change. Nothing was written unless the message says so."""


class BadRow(NamedTuple):
    """One problem with one row: its line (feature number for GeoJSON), the column (None: the row as
    a whole) and why. A row may have several."""

    line: int
    column: str | None
    reason: str

    def describe(self, unit: str = "line") -> str:
        """``line 17: uscc: bad check character 'J' at position 18 (expected 'N')``."""
        where = f"{unit} {self.line}"
        return f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"


@dataclass(frozen=True)
class LoadReport:
    """What one run did. ``rows_read`` and ``rows_loaded`` count this run only (after
    ``resumed_from_line``, the first line read when an earlier run's batches were committed;
    ``rows_before`` is how many rows those were). With ``on_error="refuse"`` and bad rows,
    ``rows_loaded`` is 0 and the target is as before."""

    table: str
    rows_read: int
    rows_loaded: int
    bad_rows: list[BadRow]
    resumed_from_line: int | None
    seconds: float
    on_error: Literal["skip", "refuse"] = "refuse"
    unit: Literal["line", "feature"] = "line"
    rows_before: int = 0
    source_sha256: str = ""

    @property
    def bad_row_count(self) -> int:
        """Rows with at least one problem (``bad_rows`` may hold several per row)."""
        return len({bad.line for bad in self.bad_rows})

    @property
    def ok(self) -> bool:
        """True when no row was bad (everything read was loaded)."""
        return not self.bad_rows

    def summary(self) -> str:
        """One paragraph for people: what was loaded, skipped or refused, and what to do next."""
        parts = [f"{self.table}:"]
        if self.resumed_from_line is not None:
            parts.append(
                f"resumed at {self.unit} {self.resumed_from_line} after {_rows(self.rows_before)} committed earlier;"
            )
        if self.rows_read == 0:
            done = " (this file was loaded before)" if self.resumed_from_line is not None else ""
            parts.append(f"nothing to load{done}")
        elif self.ok:
            parts.append(f"loaded {self.rows_loaded} of {_rows(self.rows_read)}")
        elif self.on_error == "refuse":
            parts.append(
                f"{_rows(self.bad_row_count, 'bad ')} of {self.rows_read} read; refused, nothing was loaded "
                "(fix them and rerun, or use --on-error skip to load the good rows)"
            )
        else:
            parts.append(
                f"loaded {self.rows_loaded} of {_rows(self.rows_read)}, skipped {_rows(self.bad_row_count, 'bad ')}"
            )
        parts.append(f"in {self.seconds:.1f} s")
        return " ".join(parts)


def _rows(n: int, adjective: str = "") -> str:
    return f"{n} {adjective}row{'' if n == 1 else 's'}"


# --- Reading files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    kind: Literal["csv", "geojson", "ndjson", "spatial"]
    encoding: str
    sha256: str
    layer: str = ""  # spatial files: the layer read

    @property
    def unit(self) -> Literal["line", "feature"]:
        return "feature" if self.kind in ("geojson", "spatial") else "line"


class _Record(NamedTuple):
    line: int  # first physical line (CSV, NDJSON) or feature number (GeoJSON)
    last: int  # last physical line: a quoted CSV field may span several
    values: Mapping[str, object] | None  # None: malformed, see problem
    problem: str | None


_WIDE = re.compile("[\u0800-\U0010ffff]")  # 3- and 4-byte UTF-8: CJK text among it


def _format(path: Path, connector: str = "") -> Literal["csv", "geojson", "ndjson", "spatial"]:
    """The kind of file ``path`` names, by its suffix; ``LoadError`` for what cannot be loaded."""
    if connector == "spatial":
        if path.suffix.lower() not in spatial_sources.SUFFIXES:
            raise LoadError(f"{path.name}: the spatial connector loads GeoPackage, Shapefile or GeoJSON files")
        return "spatial"
    spatial = next((_SPATIAL[s] for s in (x.lower() for x in path.suffixes) if s in _SPATIAL), None)
    if spatial is not None:
        raise LoadError(
            f"{path.name}: {spatial} files are for the spatial connector (`citygraph load spatial`); "
            "to load the attributes into credit, license or video, export them as CSV or GeoJSON "
            f"(e.g. `ogr2ogr -f GeoJSON {path.stem}.geojson {path.name}`)"
        )
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise LoadError(
            f"{path.name}: cannot load {path.suffix or 'files without a suffix'}; "
            "supported: CSV (.csv), GeoJSON (.geojson, .json), newline-delimited JSON (.ndjson, .jsonl)"
        )
    return kind


def _inspect(path: Path, connector: str = "", layer: str | None = None) -> _Source:
    """Format, encoding and SHA-256 of ``path``; ``LoadError`` for what cannot be loaded."""
    kind = _format(path, connector)
    if not path.is_file():
        raise LoadError(f"no file at {path}")
    if kind == "spatial":
        return _spatial_source(path, layer)
    digest = hashlib.sha256()
    utf8, gb = codecs.getincrementaldecoder("utf-8")(), codecs.getincrementaldecoder("gb18030")()
    utf8_ok = gb_ok = True
    seen_wide, offset, start = False, 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            start = start or chunk[:4]
            digest.update(chunk)
            if utf8_ok:
                pending = utf8.getstate()[0]
                try:
                    seen_wide = seen_wide or _WIDE.search(utf8.decode(chunk)) is not None
                except UnicodeDecodeError as exc:
                    utf8_ok = False
                    valid = (pending + chunk)[: exc.start].decode("utf-8", errors="ignore")
                    if seen_wide or _WIDE.search(valid):
                        raise LoadError(
                            f"{path.name}: not valid UTF-8 at byte {offset - len(pending) + exc.start}, after valid "
                            "UTF-8 text: the file is damaged (GB18030 is only assumed for files with no UTF-8 text)"
                        ) from None
            if gb_ok and not (utf8_ok and seen_wide):  # UTF-8 with CJK text: GB18030 is moot
                try:
                    gb.decode(chunk)
                except UnicodeDecodeError:
                    gb_ok = False
            offset += len(chunk)
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LoadError(f"{path.name} is UTF-16 text: save it as UTF-8 (Excel: 'CSV UTF-8') or GB18030")
    if utf8_ok and not _flushes(utf8):
        if seen_wide:
            raise LoadError(f"{path.name}: ends in the middle of a UTF-8 character: the file is truncated")
        utf8_ok = False
    gb_ok = gb_ok and _flushes(gb)
    if not (utf8_ok or gb_ok):
        raise LoadError(f"{path.name}: the text is neither UTF-8 nor GB18030 (GBK)")
    return _Source(path, kind, "utf-8-sig" if utf8_ok else "gb18030", digest.hexdigest())


def _spatial_source(path: Path, layer: str | None) -> _Source:
    """A spatial file: its layer, and the SHA-256 of its bytes (with a Shapefile's companion files)."""
    try:
        name = spatial_sources.layer_name(path, layer)
    except spatial_sources.Unloadable as exc:
        raise LoadError(str(exc)) from None
    digest = hashlib.sha256(name.encode())
    parts = [path]
    if path.suffix.lower() == ".shp":
        parts += sorted(p for p in path.parent.glob(f"{path.stem}.*") if p != path)
    for part in parts:
        digest.update(part.name.encode())
        with part.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return _Source(path, "spatial", "utf-8", digest.hexdigest(), name)


def _flushes(decoder: codecs.IncrementalDecoder) -> bool:
    """Whether the decoder holds no incomplete character at the end of the file."""
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _row_of(value: object) -> tuple[Mapping[str, object] | None, str | None]:
    """A feature's properties (or a plain object) as a row, or why it is not one."""
    if not isinstance(value, dict):
        return None, f"expected a GeoJSON Feature or an object, got {type(value).__name__}"
    if value.get("type") == "Feature":
        properties = value.get("properties")
        if not isinstance(properties, dict):
            return None, "the feature has no properties object"
        return properties, None
    if "type" in value and "properties" in value:
        return None, f"expected a GeoJSON Feature, got type {value.get('type')!r}"
    return value, None


def _csv_records(handle: TextIO, name: str) -> tuple[list[str], Iterator[_Record]]:
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise LoadError(f"{name}: line 1: unreadable CSV ({exc})") from None
    if header is None:
        raise LoadError(f"{name} is empty: a CSV file starts with a header line naming the columns")
    header = [h.removeprefix("\ufeff").strip() for h in header]  # a GB18030 BOM, spaces around names

    def records() -> Iterator[_Record]:
        previous = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader cannot resynchronise: stop, naming the place
                raise LoadError(f"{name}: line {previous + 1}: unreadable CSV ({exc})") from None
            line, previous = previous + 1, reader.line_num
            if not fields:  # a blank line
                continue
            if len(fields) != len(header):
                yield _Record(
                    line, previous, None, f"expected {len(header)} fields (as in the header), got {len(fields)}"
                )
            else:
                yield _Record(line, previous, dict(zip(header, fields, strict=True)), None)

    return header, records()


def _json_records(lines: Iterable[tuple[int, str]], name: str) -> Iterator[_Record]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            yield _Record(number, number, None, f"not valid JSON ({exc})")
            continue
        row, problem = _row_of(value)
        yield _Record(number, number, row, problem)


def _with_header(records: Iterator[_Record]) -> tuple[list[str] | None, Iterator[_Record]]:
    """The first well-formed record's keys as the header (None: there is none), and all records."""
    buffered: list[_Record] = []
    for record in records:
        buffered.append(record)
        if record.values is not None:
            return list(record.values), _chain(buffered, records)
    return None, iter(buffered)


def _chain(first: list[_Record], rest: Iterator[_Record]) -> Iterator[_Record]:
    yield from first
    yield from rest


@contextlib.contextmanager
def _records(source: _Source) -> Iterator[tuple[list[str] | None, Iterator[_Record]]]:
    """The header (None for JSON without any row) and the records of ``source``, read lazily."""
    name = source.path.name
    if source.kind == "spatial":
        try:
            _, header, spatial_rows = spatial_sources.read(source.path, source.layer)
        except spatial_sources.Unloadable as exc:
            raise LoadError(str(exc)) from None
        yield header, (_Record(n, n, values, None) for n, values in spatial_rows)
        return
    if source.kind == "geojson":
        try:
            document = json.loads(source.path.read_text(source.encoding), parse_float=Decimal)
        except ValueError as exc:
            raise LoadError(f"{name}: not valid JSON ({exc})") from None
        if not (isinstance(document, dict) and isinstance(document.get("features"), list)):
            raise LoadError(f"{name}: expected a GeoJSON FeatureCollection (an object with a 'features' list)")
        features: list[object] = document["features"]
        yield _with_header(_Record(n, n, *_row_of(f)) for n, f in enumerate(features, start=1))
        return
    with source.path.open(encoding=source.encoding, newline="") as handle:
        if source.kind == "csv":
            yield _csv_records(handle, name)
        else:
            yield _with_header(_json_records(enumerate(handle, start=1), name))


# --- Columns: conversion and domain checks ----------------------------------------------------


class _Bad(Exception):
    """A cell's value is unacceptable; the message is the reason."""


_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _show(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_text(length: int | None, raw: object) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise _Bad(f"expected text, got {_show(raw)}")
    if not storable(raw):
        raise _Bad("contains a NUL character or an unpaired surrogate, which no database text can hold")
    if length is not None and len(raw) > length:
        raise _Bad(f"too long: {len(raw)} characters, at most {length}")
    return raw


def _to_int(raw: object, bits: int = 32) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _INT.fullmatch(raw):
        value = int(raw)
    else:
        raise _Bad(f"not an integer: {_show(raw)}")
    low, high = _INT64 if bits == 64 else _INT32
    if not low <= value <= high:
        raise _Bad(f"out of range for a {bits}-bit integer: {value}")
    return value


def _to_float(raw: object) -> float:
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, float):  # JSON's NaN and Infinity
        value = raw
    elif isinstance(raw, str) and _DECIMAL.fullmatch(raw):
        value = float(raw)
    else:
        raise _Bad(f"not a number (digits and an optional '.'): {_show(raw)}")
    if not math.isfinite(value):
        raise _Bad(f"not a finite number: {_show(raw)}")
    return value


def _to_decimal(precision: int | None, scale: int | None, raw: object) -> Decimal:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = Decimal(raw)
    elif isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, str) and _DECIMAL.fullmatch(raw):
        value = Decimal(raw)
    else:
        raise _Bad(f"not a decimal number (digits and an optional '.'): {_show(raw)}")
    if not value.is_finite():
        raise _Bad(f"not a finite number: {_show(raw)}")
    if scale is not None:
        try:
            exact = value.quantize(Decimal(1).scaleb(-scale)) == value
        except InvalidOperation:
            exact = False
        if not exact:
            raise _Bad(f"more than {scale} decimal places: {_show(raw)} (never rounded)")
    if precision is not None and abs(value) >= Decimal(10) ** (precision - (scale or 0)):
        raise _Bad(f"too large: at most {precision - (scale or 0)} digits before the point, got {_show(raw)}")
    return value


def _to_date(raw: object) -> date:
    if not (isinstance(raw, str) and _DATE.fullmatch(raw)):
        raise _Bad(f"not a date (YYYY-MM-DD): {_show(raw)}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _Bad(f"not a real date: {_show(raw)}") from None


def _to_datetime(raw: object) -> datetime:
    if not (isinstance(raw, str) and _DATETIME.fullmatch(raw)):
        raise _Bad(f"not an RFC 3339 date-time with a zone (2024-05-06T07:08:09+08:00): {_show(raw)}")
    try:
        value = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise _Bad(f"not a real date-time: {_show(raw)}") from None
    # UTC on both backends: SQLite's dialect drops the zone and would keep the wall time.
    return value.astimezone(UTC)


def _to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = raw.lower() if isinstance(raw, str) else None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _Bad(f"not a boolean (true, false, 1, 0): {_show(raw)}")


def _base_converter(column: Column[Any]) -> Callable[[object], object]:
    kind = column.type
    if isinstance(kind, Boolean):
        return _to_bool
    if isinstance(kind, DateTime):
        return _to_datetime
    if isinstance(kind, Date):
        return _to_date
    if isinstance(kind, BigInteger):
        return lambda raw: _to_int(raw, 64)
    if isinstance(kind, Integer):
        return _to_int
    if isinstance(kind, Float):
        return _to_float
    if isinstance(kind, Numeric):
        precision, scale = kind.precision, kind.scale
        return lambda raw: _to_decimal(precision, scale, raw)
    if isinstance(kind, String):
        length = kind.length
        return lambda raw: _to_text(length, raw)
    raise TypeError(f"{column}: no conversion for {kind!r}")


def _uscc(value: object) -> object:
    problem = uscc_problem(str(value))
    if problem is not None:
        raise _Bad(problem)
    return str(value).upper()


def _id_number(value: object) -> object:
    problem = id_number_problem(str(value))
    if problem is not None:
        raise _Bad(problem)
    return str(value).upper()


def _device_id(value: object) -> object:
    problem = gb28181_problem(str(value))
    if problem is not None:
        raise _Bad(problem)
    return value


def _district(value: object) -> object:
    if value not in NINGBO_DISTRICTS:
        raise _Bad(f"unknown district {_show(value)}: not a Ningbo district code ({', '.join(NINGBO_DISTRICTS)})")
    return value


def _one_of(values: Sequence[str]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in values:
            raise _Bad(f"unknown value {_show(value)}: one of {', '.join(values)}")
        return value

    return check


def _between(low: int, high: int) -> Callable[[object], object]:
    def check(value: object) -> object:
        if not (isinstance(value, int) and low <= value <= high):
            raise _Bad(f"out of range: {value} (from {low} to {high})")
        return value

    return check


def _not_negative(value: object) -> object:
    if isinstance(value, Decimal | int) and value < 0:
        raise _Bad(f"negative: {value}")
    return value


def _matching(pattern: str, what: str) -> Callable[[object], object]:
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if not (isinstance(value, str) and compiled.fullmatch(value)):
            raise _Bad(f"not {what}: {_show(value)}")
        return value

    return check


_USCC_COLUMNS = frozenset(
    {
        "credit_subjects.uscc",
        "credit_profiles.uscc",
        "credit_records.uscc",
        "enterprises.uscc",
        "licenses.holder_uscc",
        "cameras.owner_uscc",
    }
)
_ID_COLUMNS = frozenset(
    {
        "credit_records.legal_rep_id_number",
        "persons.id_number",
        "enterprises.legal_rep_id_number",
        "licenses.holder_id_number",
    }
)
# Domain checks beyond type, identifiers and districts, by "table.column".
_DOMAIN: Mapping[str, Callable[[object], object]] = MappingProxyType(
    {
        "credit_records.kind": _one_of(RECORD_KINDS),
        "credit_records.amount": _not_negative,
        "credit_profiles.rating": _one_of(("A", "B", "C", "D")),
        "credit_profiles.score": _between(0, 1000),
        "enterprises.status": _one_of(ENTERPRISE_STATUSES),
        "enterprises.industry_code": _matching(r"[A-T][0-9]{4}", "a GB/T 4754 industry class such as C3481"),
        "enterprises.registered_capital": _not_negative,
        "issuers.algorithm": _one_of((ALGORITHM,)),
        "issuers.public_key": _matching(r"04[0-9a-fA-F]{128}", "an SM2 public key (130 hex digits, 04 || x || y)"),
        "licenses.type": _one_of(LICENSE_TYPES),
        "licenses.status": _one_of(LICENSE_STATUSES),
        "licenses.holder_kind": _one_of(HOLDER_KINDS),
        "licenses.signature": _matching(r"[0-9a-fA-F]{128}", "an SM2 signature (128 hex digits, r || s)"),
        "cameras.device_id": _device_id,
        "cameras.kind": _one_of(CAMERA_KINDS),
        "cameras.status": _one_of(CAMERA_STATUSES),
        "cameras.owner": _one_of(OWNERS),
        "recordings.device_id": _device_id,
        "recordings.storage_tier": _one_of(STORAGE_TIERS),
        "recordings.size_bytes": _not_negative,
    }
)


def _converter(table: Table, column: Column[Any]) -> Callable[[object], object]:
    """The full check of one non-empty cell of ``column``: type, then domain; returns the value to store."""
    spatial = spatial_sources.converter(column, _Bad) if table.name == "spatial_features" else None
    if spatial is not None:
        return spatial
    base = _base_converter(column)
    name = f"{table.name}.{column.name}"
    domain = (
        _uscc
        if name in _USCC_COLUMNS
        else _id_number
        if name in _ID_COLUMNS
        else _district
        if column.name == "district_code"
        else _DOMAIN.get(name)
    )
    if domain is None:
        return base
    check = domain
    return lambda raw: check(base(raw))


def _row_problems(table: str, values: Mapping[str, Any], failed: set[str]) -> list[tuple[str, str]]:
    """Checks across columns, on the columns that converted (``failed`` did not)."""

    def have(*names: str) -> bool:
        return not failed.intersection(names) and all(values.get(n) is not None for n in names)

    problems: list[tuple[str, str]] = []
    if table == "credit_records" and have("publicity_start", "publicity_end"):
        if values["publicity_end"] < values["publicity_start"]:
            problems.append(("publicity_end", f"{values['publicity_end']} is before publicity_start"))
    elif table == "persons" and have("id_number", "birth_date"):
        born = values["birth_date"].strftime("%Y%m%d")
        if values["id_number"][6:14] != born:
            problems.append(
                ("birth_date", f"{values['birth_date']} differs from the ID number's {values['id_number'][6:14]}")
            )
    elif table == "licenses":
        if have("type", "holder_kind") and HOLDER_KIND_BY_TYPE[values["type"]] != values["holder_kind"]:
            expected = HOLDER_KIND_BY_TYPE[values["type"]]
            problems.append(
                ("holder_kind", f"{values['type']} licences are held by {expected}, not {values['holder_kind']}")
            )
        if have("holder_kind"):
            holder, other = (
                ("holder_uscc", "holder_id_number")
                if values["holder_kind"] == "ENTERPRISE"
                else ("holder_id_number", "holder_uscc")
            )
            if values.get(holder) is None and holder not in failed:
                problems.append((holder, f"required for a {values['holder_kind']} licence"))
            if values.get(other) is not None:
                problems.append((other, f"must be empty for a {values['holder_kind']} licence"))
        if have("valid_from", "valid_until") and values["valid_until"] < values["valid_from"]:
            problems.append(("valid_until", f"{values['valid_until']} is before valid_from"))
    elif table == "cameras":
        if have("lon", "lat"):
            problems.extend(_position_problems(values["lon"], values["lat"]))
        if have("owner"):
            if values["owner"] == "enterprise":
                if values.get("owner_uscc") is None and "owner_uscc" not in failed:
                    problems.append(("owner_uscc", "required for an enterprise camera"))
            elif values.get("owner_uscc") is not None:
                problems.append(("owner_uscc", f"must be empty for a camera owned by {values['owner']}"))
    elif table == "recordings":
        if have("start_at", "end_at") and values["end_at"] <= values["start_at"]:
            problems.append(
                ("end_at", f"{_instant(values['end_at'])} is not after start_at {_instant(values['start_at'])}")
            )
        if have("end_at", "retention_until") and values["retention_until"] < values["end_at"]:
            problems.append(
                (
                    "retention_until",
                    f"{_instant(values['retention_until'])} is before end_at {_instant(values['end_at'])}",
                )
            )
    elif table == "spatial_features":
        problems.extend(spatial_sources.row_problems(values, failed))
    return problems


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _position_problems(lon: float, lat: float) -> list[tuple[str, str]]:
    """A camera's position must lie in the storage CRS's valid area (CGCS2000, China), as a spatial
    layer's geometries must: swapped coordinates or projected metres show up here."""
    try:
        crs_mod.check_area(np.array([[lon, lat]]), crs_mod.STORAGE)
    except InvalidArgument as exc:
        xmin, _, xmax, _ = crs_mod.CRSS[crs_mod.STORAGE].bounds
        column = "lon" if not xmin <= lon <= xmax else "lat"
        reason = str(exc).replace("GeoJSON positions are [longitude, latitude]", "lon and lat swapped, or another CRS?")
        return [(column, reason)]
    return []


# --- Plans and rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """How a file's rows become rows of ``table``."""

    table: Table
    columns: tuple[str, ...]  # inserted, in table order
    key: str | None  # the primary key checked for duplicates; None when the database assigns it
    foreign_keys: tuple[tuple[str, Column[Any]], ...]  # (column, referenced column)
    serial: str | None  # a serial column whose values the file gives (its sequence must follow)
    converters: Mapping[str, Callable[[object], object]]
    defaults: Mapping[str, object]


def _plan(table: Table, header: Sequence[str] | None, name: str) -> _Plan:
    """Check the header against ``table`` (``LoadError`` naming unknown, repeated or missing columns)."""
    names = list(table.columns.keys())
    auto = table.autoincrement_column
    given = set(header) if header is not None else set(names)
    if header is not None:
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise LoadError(f"{name}: column(s) named twice: {', '.join(repeated)}")
        unknown = [h for h in header if h not in table.columns]
        if unknown:
            raise LoadError(
                f"{name}: unknown column(s) {', '.join(map(repr, unknown))} for {table.name}; "
                f"its columns are {', '.join(names)}"
            )
        missing = [
            c.name
            for c in table.columns
            if not c.nullable and c.default is None and c is not auto and c.name not in given
        ]
        if missing:
            raise LoadError(f"{name}: required column(s) missing for {table.name}: {', '.join(missing)}")
    # Generated columns (spatial_features.validity) are the database's to fill.
    columns = tuple(c.name for c in table.columns if (c is not auto or c.name in given) and c.computed is None)
    primary = list(table.primary_key.columns)
    key = primary[0].name if len(primary) == 1 and primary[0].name in columns else None
    foreign = sorted(((fk.parent.name, fk.column) for fk in table.foreign_keys), key=lambda f: names.index(f[0]))
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if isinstance(c.default, ColumnDefault) and c.default.is_scalar  # Python-side: COPY would not apply it
    }
    return _Plan(
        table=table,
        columns=columns,
        key=key,
        foreign_keys=tuple(foreign),
        serial=auto.name if auto is not None and auto.name in columns else None,
        converters={c.name: _converter(table, c) for c in table.columns if c.name in columns},
        defaults=defaults,
    )


@dataclass(slots=True)
class _Row:
    line: int
    last: int
    values: dict[str, Any]
    problems: list[tuple[str | None, str]] = field(default_factory=list)


def _convert(plan: _Plan, record: _Record) -> _Row:
    """A record as typed values for ``plan.columns``, with every problem found without the database."""
    row = _Row(record.line, record.last, {})
    if record.values is None:
        row.problems.append((None, record.problem or "malformed"))
        return row
    table = plan.table
    for name in record.values:
        if name not in table.columns:
            row.problems.append((name, f"not a column of {table.name}"))
        elif name not in plan.columns:
            row.problems.append((name, "the first feature has none: give it in every feature or in none"))
    failed: set[str] = set()
    for name in plan.columns:
        raw = record.values.get(name)
        column = table.columns[name]
        if raw is None or (raw == "" and f"{table.name}.{name}" not in _EMPTY_IS_TEXT):
            value = plan.defaults.get(name)
            if value is None and not column.nullable:
                row.problems.append((name, "required, but empty" if name in record.values else "required, but missing"))
                failed.add(name)
            row.values[name] = value
            continue
        try:
            row.values[name] = plan.converters[name](raw)
        except _Bad as exc:
            row.problems.append((name, str(exc)))
            failed.add(name)
    row.problems.extend(_row_problems(table.name, row.values, failed))
    return row


# --- Checks against the database --------------------------------------------------------------


async def _existing(conn: AsyncConnection, column: Column[Any], values: Iterable[object]) -> set[object]:
    """Which of ``values`` the database holds in ``column``."""
    pending = list(values)
    found: set[object] = set()
    for start in range(0, len(pending), _LOOKUP_CHUNK):
        chunk = pending[start : start + _LOOKUP_CHUNK]
        result = await conn.execute(select(column).where(key_in(column, chunk, conn.dialect.name)))
        found.update(result.scalars())
    return found


def _verify_chunk(items: Sequence[tuple[str, bytes, str]]) -> list[bool]:
    """Worker-process task: SM2 verification of (public key, signed bytes, signature) triples."""
    return [verify(key, data, signature) for key, data, signature in items]


class _Verifier:
    """Verifies signatures in this process, or in worker processes for large batches."""

    def __init__(self, workers: int | None) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, items: Sequence[tuple[str, bytes, str]]) -> list[bool]:
        workers = self._workers
        if workers is None:
            workers = (os.cpu_count() or 1) if len(items) >= _POOL_THRESHOLD else 1
        if workers <= 1 or len(items) < 2:
            return _verify_chunk(items)
        if self._pool is None:
            # spawn: forking a process that runs an event loop and holds database connections is unsafe.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        size = max(25, -(-len(items) // (4 * workers)))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        return [ok for part in self._pool.map(_verify_chunk, chunks) for ok in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@dataclass
class _State:
    """What one load remembers across batches."""

    seen: dict[object, int] = field(default_factory=dict)  # primary key -> line of its first row
    known: dict[str, set[object]] = field(default_factory=dict)  # "table.column" -> values present
    issuer_keys: dict[str, str] = field(default_factory=dict)


async def _check_batch(
    conn: AsyncConnection, plan: _Plan, state: _State, rows: list[_Row], verifier: _Verifier
) -> None:
    """Add the problems only the database (and the rest of the file) can reveal to ``rows``."""
    key = plan.key
    if key is not None:
        # Repeats within the file first: the first row with a key is the one kept.
        for row in rows:
            value = row.values.get(key)
            if value is None or any(column == key for column, _ in row.problems):
                continue
            first = state.seen.setdefault(value, row.line)
            if first != row.line:
                row.problems.append((key, f"duplicate {_show(value)}: the file has it on line {first} already"))
        good = [row for row in rows if not row.problems]
        present = await _existing(conn, plan.table.columns[key], {row.values[key] for row in good})
        for row in good:
            if row.values[key] in present:
                row.problems.append((key, f"{_show(row.values[key])} is already in {plan.table.name}"))
    for column, target in plan.foreign_keys:
        where = f"{target.table.name}.{target.name}"
        known = state.known.setdefault(where, set())
        if len(known) > 1_000_000:  # bound the cache; the database remains the authority
            known.clear()
        wanted = {row.values[column] for row in rows if not row.problems and row.values.get(column) is not None}
        known.update(await _existing(conn, target, wanted - known))
        for row in rows:
            value = row.values.get(column)
            if not row.problems and value is not None and value not in known:
                parent = target.table.name
                row.problems.append(
                    (column, f"no {parent} row with {target.name} {_show(value)} (load {parent} first)")
                )
    if plan.table.name == "licenses":
        await _check_signatures(conn, state, [row for row in rows if not row.problems], verifier)
    if plan.table.name == "spatial_features":
        await spatial_sources.check_versions(conn, state.seen, rows)


async def _check_signatures(conn: AsyncConnection, state: _State, rows: list[_Row], verifier: _Verifier) -> None:
    issuers = license_metadata.tables["issuers"]
    codes = {row.values["issuer_code"] for row in rows} - state.issuer_keys.keys()
    if codes:
        result = await conn.execute(
            select(issuers.c.code, issuers.c.public_key).where(key_in(issuers.c.code, list(codes), conn.dialect.name))
        )
        state.issuer_keys.update({str(code): str(public_key) for code, public_key in result})
    items: list[tuple[str, bytes, str]] = []
    checked: list[_Row] = []
    for row in rows:
        try:
            data = canonical_bytes(row.values)
        except ValueError as exc:  # cannot happen for converted rows; refuse rather than trust
            row.problems.append(("signature", f"no canonical form to verify: {exc}"))
            continue
        items.append((state.issuer_keys[row.values["issuer_code"]], data, row.values["signature"]))
        checked.append(row)
    for row, ok in zip(checked, verifier(items), strict=True):
        if not ok:
            row.problems.append(
                (
                    "signature",
                    f"does not verify under issuer {row.values['issuer_code']}'s key: changed after signing, "
                    "or not signed by that issuer",
                )
            )


# --- Writing ----------------------------------------------------------------------------------


async def _read_progress(conn: AsyncConnection, sha256: str, table: str) -> tuple[int, int] | None:
    result = await conn.execute(
        select(progress_table.c.last_line, progress_table.c.rows).where(
            progress_table.c.source_sha256 == sha256, progress_table.c.table == table
        )
    )
    row = result.first()
    return (int(row[0]), int(row[1])) if row is not None else None


def _save_progress(dialect: str, sha256: str, table: str, last_line: int, rows: int) -> Executable:
    values = {
        "source_sha256": sha256,
        "table": table,
        "last_line": last_line,
        "rows": rows,
        "updated_at": datetime.now(UTC),
    }
    update = ("last_line", "rows", "updated_at")
    keys = ["source_sha256", "table"]
    if dialect == "postgresql":
        pg = postgresql.insert(progress_table).values(values)
        return pg.on_conflict_do_update(index_elements=keys, set_={c: pg.excluded[c] for c in update})
    lite = sqlite.insert(progress_table).values(values)
    return lite.on_conflict_do_update(index_elements=keys, set_={c: lite.excluded[c] for c in update})


async def _insert_rows(conn: AsyncConnection, plan: _Plan, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in ``plan.columns`` order) inside ``conn``'s open transaction."""
    if conn.dialect.name == "postgresql":
        # COPY on the very connection (and transaction) SQLAlchemy holds: a statement has already
        # run on it, so asyncpg's transaction is open and the COPY commits or rolls back with it.
        driver = (await conn.get_raw_connection()).driver_connection
        if driver is None:
            raise RuntimeError("the database connection was closed")
        if plan.table.name == "spatial_features":
            await geometry_codec(driver)  # geometries travel as EWKB, PostGIS's binary format
        await driver.copy_records_to_table(plan.table.name, records=rows, columns=list(plan.columns))
        if plan.serial is not None:
            # The file gave the ids: move the column's sequence past them for later inserts.
            column = plan.table.columns[plan.serial]
            sequence = func.pg_get_serial_sequence(plan.table.name, plan.serial)
            last = select(func.max(column)).scalar_subquery()
            await conn.execute(select(func.setval(sequence, func.coalesce(last, 1), last.is_not(None))))
        return
    await conn.execute(plan.table.insert(), [dict(zip(plan.columns, row, strict=True)) for row in rows])


async def _commit_batch(
    engine: AsyncEngine, plan: _Plan, source: _Source, rows: list[tuple[Any, ...]], last_line: int, total: int
) -> None:
    """One transaction: the batch's rows and the progress row saying they are in."""
    async with engine.begin() as conn:
        # First statement of the transaction (which it opens on asyncpg, for the COPY to join).
        await conn.execute(_save_progress(conn.dialect.name, source.sha256, plan.table.name, last_line, total))
        if rows:
            await _insert_rows(conn, plan, rows)


def _batches(records: Iterator[_Record], after: int, size: int) -> Iterator[list[_Record]]:
    batch: list[_Record] = []
    for record in records:
        if record.line <= after:
            continue
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _fingerprint(rows: list[tuple[Any, ...]]) -> bytes:
    """What a batch converts to, so the writing pass can prove it writes what was validated."""
    return hashlib.sha256(repr(rows).encode("utf-8", "surrogatepass")).digest()


@contextlib.contextmanager
def _progress_bar(enabled: bool, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


# --- The load ---------------------------------------------------------------------------------


def _resolve(connector: str, table: str | None, source: Path, url: str) -> Table:
    if connector not in TABLES:
        raise LoadError(f"unknown connector {connector!r}; one of {', '.join(TABLES)}")
    if connector == "spatial":  # ``table`` names the layer; every layer's features share one table
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise LoadError(f"not a database URL: {exc}") from None
        if backend != "postgresql":
            raise LoadError(
                "spatial loads into PostgreSQL with PostGIS; the embedded engine reads a GeoPackage directly "
                "(set [connectors.spatial] path)"
            )
        return spatial_metadata.tables["spatial_features"]
    name = table if table is not None else source.name.split(".")[0]
    if name not in TABLES[connector]:
        if table is None:
            raise LoadError(
                f"cannot tell the table from the file name {source.name!r}: name the file after one of "
                f"{connector}'s tables ({', '.join(TABLES[connector])}), e.g. {TABLES[connector][-1]}.csv, "
                "or pass the table"
            )
        raise LoadError(f"{connector} has no table {name!r}; one of {', '.join(TABLES[connector])}")
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise LoadError(f"not a database URL: {exc}") from None
    if backend not in ("sqlite", "postgresql"):
        raise LoadError(f"cannot load into {backend}: the target must be PostgreSQL or SQLite")
    return _METADATA[connector].tables[name]


async def load_async(
    connector: str,
    table: str | None,
    source: Path,
    url: str,
    *,
    on_error: Literal["skip", "refuse"] = "refuse",
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    resume: bool = True,
    workers: int | None = None,
    after_batch: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """:func:`load` for use inside a running event loop."""
    started = time.perf_counter()
    if on_error not in ("skip", "refuse"):
        raise LoadError(f"on_error must be 'skip' or 'refuse', got {on_error!r}")
    if batch_size < 1:
        raise LoadError(f"batch_size must be at least 1, got {batch_size}")
    path = Path(source)
    _format(path, connector)  # a spatial file gets its own message, whatever the table
    target = _resolve(connector, table, path, url)
    src = _inspect(path, connector, table)
    with _records(src) as (header, _):
        plan = _plan(target, header, path.name)
    await migrate_async(connector, url)
    engine = create_async_engine(async_url(url))
    if engine.dialect.name == "sqlite":
        _enforce_foreign_keys(engine)
    verifier = _Verifier(workers)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(progress_table.create, checkfirst=True)
            done = await _read_progress(conn, src.sha256, target.name) if resume else None
        after, before = done if done is not None else (0, 0)
        run = _Run(engine, plan, src, verifier, after, before, batch_size, progress, after_batch)
        await (run.refuse() if on_error == "refuse" else run.skip())
        if connector == "spatial" and run.loaded:
            async with engine.begin() as conn:  # the connector lists the layers it serves from here
                await spatial_sources.save_layer(conn, spatial_sources.read(path, src.layer)[0])
        if run.loaded and engine.dialect.name == "postgresql":
            # Planner statistics now, not at autovacuum's leisure: the first queries get index plans.
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE " + conn.dialect.identifier_preparer.format_table(target))
    finally:
        verifier.close()
        await engine.dispose()
    return LoadReport(
        table=target.name,
        rows_read=run.read,
        rows_loaded=run.loaded,
        bad_rows=run.bad,
        resumed_from_line=after + 1 if done is not None else None,
        seconds=time.perf_counter() - started,
        on_error=on_error,
        unit=src.unit,
        rows_before=before,
        source_sha256=src.sha256,
    )


def _enforce_foreign_keys(engine: AsyncEngine) -> None:
    """SQLite checks foreign keys only when asked, per connection: ask, as a second line behind ours."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


def _bad_rows(rows: Iterable[_Row]) -> list[BadRow]:
    return [BadRow(row.line, column, reason) for row in rows for column, reason in row.problems]


@dataclass
class _Run:
    """One load of one file into one table, from the line after ``after`` on."""

    engine: AsyncEngine
    plan: _Plan
    source: _Source
    verifier: _Verifier
    after: int  # last line committed by earlier runs (0: none)
    before: int  # rows committed by earlier runs
    batch_size: int
    progress: bool
    after_batch: Callable[[int, int], None] | None
    state: _State = field(default_factory=_State)
    read: int = 0
    loaded: int = 0
    bad: list[BadRow] = field(default_factory=list)

    async def checked(self, batch: list[_Record]) -> list[_Row]:
        rows = [_convert(self.plan, record) for record in batch]
        async with self.engine.connect() as conn:
            await _check_batch(conn, self.plan, self.state, rows, self.verifier)
        self.bad += _bad_rows(rows)
        self.read += len(rows)
        return rows

    async def commit(self, number: int, batch: list[_Record], values: list[tuple[Any, ...]]) -> None:
        total = self.before + self.loaded + len(values)
        await _commit_batch(self.engine, self.plan, self.source, values, batch[-1].last, total)
        self.loaded += len(values)
        if self.after_batch is not None:
            self.after_batch(number, batch[-1].last)

    def values(self, rows: list[_Row]) -> list[tuple[Any, ...]]:
        return [tuple(row.values.get(c) for c in self.plan.columns) for row in rows]

    async def refuse(self) -> None:
        """Check every row first (reading only), then write, if no row is bad."""
        name, fingerprints = self.plan.table.name, []
        with _progress_bar(self.progress, f"{name}: checking", None) as advance, _records(self.source) as (_, records):
            for batch in _batches(records, self.after, self.batch_size):
                fingerprints.append(_fingerprint(self.values(await self.checked(batch))))
                advance(len(batch))
        if self.bad:
            return
        with (
            _progress_bar(self.progress, f"{name}: loading", self.read) as advance,
            _records(self.source) as (_, records),
        ):
            for number, batch in enumerate(_batches(records, self.after, self.batch_size), start=1):
                values = self.values([_convert(self.plan, record) for record in batch])
                if number > len(fingerprints) or _fingerprint(values) != fingerprints[number - 1]:
                    raise LoadError(
                        f"{self.source.path.name} changed while it was being loaded: {self.loaded} rows were "
                        "committed (rerun to check and load the new content)"
                    )
                await self.commit(number, batch, values)
                advance(len(values))

    async def skip(self) -> None:
        """Check and write batch by batch; bad rows are reported and left out."""
        name = self.plan.table.name
        with _progress_bar(self.progress, f"{name}: loading", None) as advance, _records(self.source) as (_, records):
            for number, batch in enumerate(_batches(records, self.after, self.batch_size), start=1):
                rows = await self.checked(batch)
                # Committed even when every row was bad: a rerun must not report them again.
                await self.commit(number, batch, self.values([row for row in rows if not row.problems]))
                advance(len(batch))


def load(
    connector: str,
    table: str | None,
    source: Path,
    url: str,
    *,
    on_error: Literal["skip", "refuse"] = "refuse",
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    resume: bool = True,
    workers: int | None = None,
    after_batch: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """Load the rows of the file ``source`` into ``table`` of ``connector`` at the database ``url``.

    ``table`` None: the file name's stem up to its first dot names it. ``url``: a SQLite or
    PostgreSQL URL, any driver (migrated first). ``on_error``: ``"refuse"`` writes nothing if any
    row is bad; ``"skip"`` writes the good rows. Each batch of ``batch_size`` rows is one
    transaction together with its progress row; with ``resume`` a rerun of the same bytes starts
    after the last committed batch (``resume=False`` starts over: rows already loaded are then
    duplicates). ``progress``: a rich progress bar on stderr. ``workers``: processes verifying
    licence signatures (None: one per CPU for batches of 1000 or more, else this process).
    ``after_batch(batches, last_line)`` is called after each commit (progress reporting, tests).

    Raises ``LoadError`` for what the caller must change (nothing written unless the message says
    rows were committed); a database error during writing propagates, leaving whole batches.
    Must be called outside a running event loop (use :func:`load_async` inside one).
    """
    return asyncio.run(
        load_async(
            connector,
            table,
            source,
            url,
            on_error=on_error,
            batch_size=batch_size,
            progress=progress,
            resume=resume,
            workers=workers,
            after_batch=after_batch,
        )
    )


def load_command(
    connector: str,
    source: Path,
    url: str,
    table: str | None = None,
    on_error: str = "refuse",
    batch_size: int = BATCH_SIZE,
    resume: bool = True,
    *,
    progress: bool | None = None,
) -> int:
    """``citygraph load``: print each bad row (``line 17: uscc: bad check character ...``) and a
    summary on stdout; 0 when every row read was loaded, 1 when rows were bad (skipped or refused),
    2 on a usage error (message on stderr), 3 when writing failed part-way (committed batches stay;
    rerun to resume). ``progress`` None: a progress bar when stderr is a terminal."""
    if on_error not in ("skip", "refuse"):
        print(f"load: ERROR --on-error must be skip or refuse, got {on_error!r}", file=sys.stderr)
        return 2
    mode: Literal["skip", "refuse"] = "skip" if on_error == "skip" else "refuse"
    try:
        report = load(
            connector,
            table,
            Path(source),
            url,
            on_error=mode,
            batch_size=batch_size,
            progress=sys.stderr.isatty() if progress is None else progress,
            resume=resume,
        )
    except LoadError as exc:
        print(f"load: ERROR {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # The first line names the failure; SQLAlchemy adds the statement and a help link after it.
        summary = next(iter(str(exc).splitlines()), "")
        print(
            f"load: FAILED {type(exc).__name__}: {summary}\n"
            "load: batches committed before the failure stay; run the same command again to resume after them",
            file=sys.stderr,
        )
        return 3
    for bad in report.bad_rows:
        print(bad.describe(report.unit))
    target = make_url(url).render_as_string(hide_password=True)
    print(f"{report.summary()} ({target})")
    return 0 if report.ok else 1


__all__ = [
    "BadRow",
    "BATCH_SIZE",
    "load",
    "load_async",
    "load_command",
    "LoadError",
    "LoadReport",
    "progress_table",
    "TABLES",
]
