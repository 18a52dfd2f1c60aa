"""Server-side masking of values a decision marks ``mask`` (GB/T 35273 §7.2 display restriction).

The pattern is policy data (``keep_prefix``/``keep_suffix`` or a ``replace`` string), not code.
An 18-character resident ID number never shows its birth-date digits (positions 7-14), whatever
the pattern asks for, because that is the part the law cares most about.
"""

from __future__ import annotations

from policies.decision import FieldRule

MASK_CHAR = "*"
_ID_BIRTH = slice(6, 14)


def mask_text(value: str, keep_prefix: int, keep_suffix: int) -> str:
    """Replace all but ``keep_prefix`` leading and ``keep_suffix`` trailing characters with ``*``.

    When the kept parts would reveal the whole value, everything is hidden instead.
    """
    n = len(value)
    if keep_prefix + keep_suffix >= n:
        return MASK_CHAR * n
    masked = value[:keep_prefix] + MASK_CHAR * (n - keep_prefix - keep_suffix) + value[n - keep_suffix :]
    if n == 18 and value[:17].isdigit():  # a resident ID number: always hide the birth date
        masked = masked[: _ID_BIRTH.start] + MASK_CHAR * 8 + masked[_ID_BIRTH.stop :]
    return masked


def apply_mask(value: object, rule: FieldRule) -> object:
    """The masked form of ``value``; non-text values that cannot be partially shown become None."""
    if value is None:
        return None
    if rule.replace is not None:
        return rule.replace
    if isinstance(value, str):
        return mask_text(value, rule.keep_prefix, rule.keep_suffix)
    return None


__all__ = ["MASK_CHAR", "apply_mask", "mask_text"]
