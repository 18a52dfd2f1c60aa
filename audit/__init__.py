"""The hash-chained audit trail: every operation that returns non-public data writes one record.

``AuditTrail`` appends and verifies; ``AuditEntry`` is what a caller records; ``verify_command``
backs ``citygraph audit verify``.
"""

from __future__ import annotations

from audit.cli import verify_command
from audit.records import (
    GENESIS_HASH,
    HASH_ALGORITHMS,
    OUTCOMES,
    AuditEntry,
    AuditRecord,
    algorithm_available,
    canonical_bytes,
    chain_hash,
    default_algorithm,
    format_ts,
    parse_ts,
    seal,
)
from audit.trail import DEFAULT_URL, AuditQuery, AuditTrail, AuditWriteError, VerifyReport

__all__ = [
    "algorithm_available",
    "AuditEntry",
    "AuditQuery",
    "AuditRecord",
    "AuditTrail",
    "AuditWriteError",
    "canonical_bytes",
    "chain_hash",
    "DEFAULT_URL",
    "default_algorithm",
    "format_ts",
    "GENESIS_HASH",
    "HASH_ALGORITHMS",
    "OUTCOMES",
    "parse_ts",
    "seal",
    "verify_command",
    "VerifyReport",
]
