"""What one audit row says, and how rows are chained.

An ``AuditEntry`` is what the gateway knows about one operation. The trail seals it into an
``AuditRecord`` by giving it a sequence number, a UTC timestamp, the previous row's hash and its own::

    hash = H(prev_hash || canonical_bytes(entry, seq=..., ts=..., prev_hash=..., algorithm=...))

``H`` is SM3 (GB/T 32905) when the local OpenSSL provides it, else SHA-256; each row names its
algorithm so a verifier always recomputes with the one that wrote it. The first row's
``prev_hash`` is ``GENESIS_HASH``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from types import MappingProxyType

import orjson

#: ``prev_hash`` of the first row: 64 zeros (the width of both SM3 and SHA-256 digests).
GENESIS_HASH = "0" * 64

#: The outcomes an entry may record.
OUTCOMES = frozenset({"ok", "partial", "denied", "error"})

#: Algorithms a row may name, in order of preference. Anything else is refused on write and
#: reported as tampering on verify, so a row cannot be downgraded to a weaker hash.
HASH_ALGORITHMS = ("sm3", "sha256")

_HEX = re.compile(r"[0-9a-f]+")


def algorithm_available(name: str) -> bool:
    """Whether ``name`` is an accepted algorithm this interpreter can compute."""
    if name not in HASH_ALGORITHMS:
        return False
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


def default_algorithm() -> str:
    """SM3 when the local OpenSSL has it, else SHA-256."""
    return next(name for name in HASH_ALGORITHMS if algorithm_available(name))


def _text(value: object, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string{' or None' if optional else ''}")


def _strings(value: object, name: str) -> tuple[str, ...]:
    # A bare string is iterable too; refuse it instead of recording its characters.
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise TypeError(f"{name} must be a tuple of strings")
    if not all(map(isinstance, value, repeat(str))):  # one C loop: an entry holds every key returned
        raise TypeError(f"{name} must contain only strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operation that touched non-public data, as the gateway saw it.

    Validated on construction (``TypeError``/``ValueError``). ``record_keys`` maps a type name to
    the keys returned for it and is copied into a read-only mapping; because of it, entries
    compare by value but are not hashable.
    """

    request_id: str
    subject: str
    department: str
    purpose: str | None
    case_ref: str | None
    operation_name: str | None
    document_hash: str
    coordinates: tuple[str, ...]
    record_keys: Mapping[str, tuple[str, ...]]
    policy_revision: str
    outcome: str
    classification: int

    def __post_init__(self) -> None:
        for name in ("request_id", "subject", "department", "document_hash", "policy_revision", "outcome"):
            _text(getattr(self, name), name)
        for name in ("purpose", "case_ref", "operation_name"):
            _text(getattr(self, name), name, optional=True)
        if not _HEX.fullmatch(self.document_hash):
            raise ValueError("document_hash must be lowercase hex")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}")
        if not isinstance(self.classification, int) or isinstance(self.classification, bool):
            raise TypeError("classification must be an integer")
        if not 1 <= self.classification <= 4:
            raise ValueError("classification must be 1..4")
        object.__setattr__(self, "coordinates", _strings(self.coordinates, "coordinates"))
        if not isinstance(self.record_keys, Mapping):
            raise TypeError("record_keys must be a mapping")
        keys: dict[str, tuple[str, ...]] = {}
        for type_name, values in self.record_keys.items():
            _text(type_name, "record_keys type name")
            keys[type_name] = _strings(values, f"record_keys[{type_name!r}]")
        # Copy, so a caller mutating its dict afterwards cannot change what gets sealed.
        object.__setattr__(self, "record_keys", MappingProxyType(keys))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as stored: its position in the chain and the hashes that bind it there."""

    entry: AuditEntry
    seq: int
    ts: datetime
    prev_hash: str
    hash: str
    algorithm: str


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: the one text form hashed and stored.

    Raises ``ValueError`` for a naive datetime, whose instant is unknown.
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Inverse of ``format_ts``; ``ValueError`` for anything that is not an aware timestamp."""
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no offset")
    return ts.astimezone(UTC)


def canonical_bytes(entry: AuditEntry, *, seq: int, ts: datetime, prev_hash: str, algorithm: str) -> bytes:
    """Canonical JSON of every record field except ``hash``.

    Keys are sorted at every level, lists keep their order, the timestamp is ``format_ts``. The
    algorithm is included so swapping it breaks the row's hash.
    """
    document = {
        "request_id": entry.request_id,
        "subject": entry.subject,
        "department": entry.department,
        "purpose": entry.purpose,
        "case_ref": entry.case_ref,
        "operation_name": entry.operation_name,
        "document_hash": entry.document_hash,
        "coordinates": list(entry.coordinates),
        "record_keys": {name: list(keys) for name, keys in entry.record_keys.items()},
        "policy_revision": entry.policy_revision,
        "outcome": entry.outcome,
        "classification": entry.classification,
        "seq": seq,
        "ts": format_ts(ts),
        "prev_hash": prev_hash,
        "algorithm": algorithm,
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, canonical: bytes, algorithm: str) -> str:
    """``H(prev_hash || canonical)`` as lowercase hex; ``ValueError`` for an unaccepted algorithm."""
    if not algorithm_available(algorithm):
        raise ValueError(f"hash algorithm {algorithm!r} is not accepted or not available")
    return hashlib.new(algorithm, prev_hash.encode("ascii") + canonical).hexdigest()


def seal(entry: AuditEntry, *, seq: int, ts: datetime, prev_hash: str, algorithm: str) -> AuditRecord:
    """The record for ``entry`` at position ``seq`` after the row whose hash is ``prev_hash``."""
    ts = parse_ts(format_ts(ts))  # normalise to UTC so the record equals what a read returns
    canonical = canonical_bytes(entry, seq=seq, ts=ts, prev_hash=prev_hash, algorithm=algorithm)
    return AuditRecord(
        entry=entry,
        seq=seq,
        ts=ts,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, canonical, algorithm),
        algorithm=algorithm,
    )


__all__ = [
    "algorithm_available",
    "AuditEntry",
    "AuditRecord",
    "canonical_bytes",
    "chain_hash",
    "default_algorithm",
    "format_ts",
    "GENESIS_HASH",
    "HASH_ALGORITHMS",
    "OUTCOMES",
    "parse_ts",
    "seal",
]
