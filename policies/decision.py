"""The decision document and its strict validation (fail closed on anything unexpected).

A policy answers one decision per (connector, type) per operation::

    {"allow": true,
     "fields": {"CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}},
     "filter": {"type": "field", "field": "credit_records.district_code", "operator": "in",
                "value": ["330203"]},
     "obligations": {"audit": "full", "max_rows": 500},
     "reasons": ["district officer: own jurisdiction only"]}

``parse_decision`` turns whatever an engine returned into a ``Decision``. Anything that is not
exactly this shape is a deny: ``allow`` not literally ``true``, a missing ``filter``, an unknown
field action, a wrong type anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from connectors.base import RowFilter

Action = Literal["allow", "mask", "deny"]

#: ``extensions.code`` values a decision can carry for its denials.
DENY_CODES = frozenset({"FORBIDDEN", "PURPOSE_REQUIRED", "CASE_REF_REQUIRED", "POLICY_UNAVAILABLE"})


@dataclass(frozen=True, slots=True)
class FieldRule:
    """What happens to one schema coordinate's values."""

    action: Action
    keep_prefix: int = 0
    keep_suffix: int = 0
    replace: str | None = None
    code: str = "FORBIDDEN"


@dataclass(frozen=True, slots=True)
class Decision:
    """A validated decision. ``filter`` is ``None`` only on a deny."""

    allow: bool
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    filter: RowFilter | None = None
    obligations: Mapping[str, object] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    code: str = "FORBIDDEN"

    @classmethod
    def deny(cls, reason: str, code: str = "FORBIDDEN") -> Decision:
        """A deny carrying the reason (for logs) and the code (for clients)."""
        return cls(allow=False, reasons=(reason,), code=code)

    def rule(self, coordinate: str) -> FieldRule | None:
        """The explicit rule for a coordinate, if the policy gave one."""
        return self.fields.get(coordinate)

    @property
    def max_rows(self) -> int | None:
        """The ``max_rows`` obligation, if any (validated by ``parse_decision``)."""
        value = self.obligations.get("max_rows")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class MalformedDecision(ValueError):
    """The engine's result is not a valid decision document."""


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 64:
        raise MalformedDecision(f"{name} must be an integer 0..64")
    return value


def _field_rule(coordinate: str, raw: object) -> FieldRule:
    if not isinstance(raw, Mapping):
        raise MalformedDecision(f"fields[{coordinate}] must be an object")
    action = raw.get("action")
    if action not in ("allow", "mask", "deny"):
        # An action we do not know could be a new restriction: treat it as deny.
        return FieldRule(action="deny")
    replace = raw.get("replace")
    if isinstance(replace, Mapping):  # OPA compile masks: {"replace": {"value": "***"}}
        replace = replace.get("value")
    if replace is not None and not isinstance(replace, str):
        raise MalformedDecision(f"fields[{coordinate}].replace must be a string")
    code = raw.get("code", "FORBIDDEN")
    return FieldRule(
        action=action,
        keep_prefix=_int(raw.get("keep_prefix", 0), "keep_prefix"),
        keep_suffix=_int(raw.get("keep_suffix", 0), "keep_suffix"),
        replace=replace,
        code=code if code in DENY_CODES else "FORBIDDEN",
    )


def parse_decision(raw: object) -> Decision:
    """Validate an engine result; any deviation from the contract is a deny, never an allow."""
    try:
        return _parse(raw)
    except MalformedDecision as exc:
        return Decision.deny(f"malformed decision: {exc}")


def _parse(raw: object) -> Decision:
    if not isinstance(raw, Mapping):
        raise MalformedDecision("decision is not an object (undefined result?)")
    reasons = raw.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise MalformedDecision("reasons must be a list of strings")
    if raw.get("allow") is not True:
        code = raw.get("code")
        return Decision(
            allow=False,
            reasons=tuple(reasons) or ("not allowed",),
            code=code if isinstance(code, str) and code in DENY_CODES else "FORBIDDEN",
        )
    if "filter" not in raw:
        raise MalformedDecision("allow without a filter ({} means unrestricted)")
    row_filter = raw["filter"]
    if not isinstance(row_filter, Mapping):
        raise MalformedDecision("filter must be an object")
    fields = raw.get("fields", {})
    if not isinstance(fields, Mapping):
        raise MalformedDecision("fields must be an object")
    obligations = raw.get("obligations", {})
    if not isinstance(obligations, Mapping):
        raise MalformedDecision("obligations must be an object")
    max_rows = obligations.get("max_rows")
    if "max_rows" in obligations and (not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 0):
        # A cap we cannot read must not become "no cap".
        raise MalformedDecision("obligations.max_rows must be an integer >= 0")
    return Decision(
        allow=True,
        fields={str(c): _field_rule(str(c), r) for c, r in fields.items()},
        filter=row_filter,
        obligations=dict(obligations),
        reasons=tuple(reasons),
    )


__all__ = ["DENY_CODES", "Action", "Decision", "FieldRule", "MalformedDecision", "parse_decision"]
