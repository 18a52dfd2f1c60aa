"""National-algorithm signatures for electronic licences: SM2 (GB/T 32918) with SM3 (GB/T 32905).

What is signed is :func:`canonical_bytes`: a JSON object of exactly :data:`SIGNED_FIELDS` (UTF-8,
keys sorted, no whitespace; dates ISO ``YYYY-MM-DD``, ``valid_until`` ``null`` for long-term).
The registry ``status`` is not signed: revocation and suspension happen after issuance and are
checked against the registry (:func:`verify_license`).

Signatures are the standard SM2 signature with an SM3 digest: ``e = SM3(Z || M)`` with the GB/T
32918.2 identity hash ``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` over the default
user ID ``1234567812345678`` (:data:`DEFAULT_USER_ID`), which is what gmssl's
``sign_with_sm3`` and GmSSL's default SM2 signing do. They are written as 128 hex characters ``r || s``
(raw, not DER). Public keys are the hex of the uncompressed point ``04 || x || y``.

The elliptic-curve arithmetic is ``snowland-smx`` (``pysmx``): measured on this project's
machines it signs in ~2 ms and verifies in ~3.5-4 ms as used here, against ~8 / ~12.5 ms for
``gmssl`` 3.2.2 and ~12 / ~20-25 ms for ``gmalg`` 1.1.2, all pure Python (pysmx's own ``uid=``
path takes ~6 / ~6.5 ms: it hashes in pure Python and re-derives the public key per signature).
Its signatures verify under gmssl and gmalg and vice versa, and it reproduces the GM/T 0003.5
example. This module computes ``Z`` with pysmx's ``get_za`` (cached per key) and the SM3
digests with OpenSSL's SM3 where ``hashlib`` has it, and validates every input itself: pysmx
checks neither the ranges of ``r`` and ``s`` nor that a public key lies on the curve.

gmssl was not chosen: besides being slower, its ``CryptSM2`` draws signing nonces from
``random.choice``, which is not a CSPRNG, and ``lstrip("04")``s public keys: given as
``04 || x || y``, the 1 in 8 keys whose ``x`` begins with ``0`` or ``4`` break (signing fails
with "Odd-length string").

Nonces come from :mod:`secrets` by default. ``sign(..., deterministic=True)`` derives them from
the private key and the digest instead (HMAC-SM3, in the spirit of RFC 6979), so that demo data
is reproducible; such signatures are ordinary SM2 signatures to any verifier.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import orjson
from pysmx.SM2 import (  # type: ignore[import-untyped]  # no type information shipped
    Sign as _smx_sign,
    Verify as _smx_verify,
    get_za as _smx_get_za,
    kG as _smx_kg,
)

from connectors.identifiers import is_valid_id_number, is_valid_uscc
from connectors.license.tables import HOLDER_KIND_BY_TYPE, HOLDER_KINDS, LICENSE_TYPES

#: The value of ``issuers.algorithm`` and of a document's ``algorithm``.
ALGORITHM = "SM2-SM3"
#: The GB/T 32918 default user ID (ENTL = 128 bits) that every licence signature uses.
DEFAULT_USER_ID = b"1234567812345678"
#: The ``format`` of a presentable signed licence document (:class:`LicenseDocument`).
DOCUMENT_FORMAT = "citygraph-license/1"
#: The fields covered by a signature, in canonical order (the JSON itself sorts its keys).
SIGNED_FIELDS = (
    "number",
    "type",
    "holder_kind",
    "holder",
    "issuer_code",
    "issued_on",
    "valid_from",
    "valid_until",
    "scope",
)

#: Verification verdicts (``VerifyResult.reason``), in the order the checks run.
VERDICTS = (
    "NOT_FOUND",
    "UNKNOWN_ISSUER",
    "BAD_SIGNATURE",
    "TAMPERED",
    "REVOKED",
    "SUSPENDED",
    "NOT_YET_VALID",
    "EXPIRED",
    "VALID",
)
#: What each verdict means, in Chinese and English.
VERDICT_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "VALID": "证照有效 (the licence is genuine and in force)",
        "NOT_FOUND": "证照库中无此编号 (no licence with this number in the registry)",
        "UNKNOWN_ISSUER": "发证机关未登记或已停用 (the issuer is not registered or no longer active)",
        "BAD_SIGNATURE": "签名无效，非发证机关所签 (the signature was not made by the issuer)",
        "TAMPERED": "内容与签发时不一致，已被篡改 (the licence was altered after it was signed)",
        "REVOKED": "证照已撤销或吊销 (the licence has been revoked)",
        "SUSPENDED": "证照已暂停或暂扣 (the licence is suspended)",
        "NOT_YET_VALID": "证照尚未生效 (the licence is not in force yet)",
        "EXPIRED": "证照已过有效期 (the licence has expired)",
    }
)

# The SM2 recommended curve (GB/T 32918.5).
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_G = (
    "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7"
    "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0"
)

_HEX = re.compile(r"[0-9a-fA-F]+")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_DOCUMENT_BYTES = 64 * 1024
_MAX_SIGNATURE_HEX = 256

if "sm3" in hashlib.algorithms_available:

    def _sm3(data: bytes) -> bytes:
        return hashlib.new("sm3", data).digest()

else:  # pragma: no cover - OpenSSL without SM3: pysmx's pure-Python SM3
    from pysmx.SM3 import SM3Type as _SM3Type  # type: ignore[import-untyped]

    def _sm3(data: bytes) -> bytes:
        return bytes(_SM3Type(data).digest())


def _hmac_sm3(key: bytes, message: bytes) -> bytes:
    """HMAC (RFC 2104) over SM3 (64-byte blocks); works with either SM3 backend."""
    if len(key) > 64:
        key = _sm3(key)
    key = key.ljust(64, b"\0")
    inner = _sm3(bytes(b ^ 0x36 for b in key) + message)
    return _sm3(bytes(b ^ 0x5C for b in key) + inner)


# --- Canonical form ---------------------------------------------------------------------------


def _date_text(value: object, name: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    # datetime is a date subclass: refuse it, its isoformat() carries a time.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    expected = "an ISO date (YYYY-MM-DD) or null" if nullable else "an ISO date (YYYY-MM-DD)"
    raise ValueError(f"licence field {name!r} must be {expected}, got {value!r}")


def _text(fields: Mapping[str, object], name: str) -> str:
    if name not in fields:
        raise ValueError(f"licence field {name!r} is missing")
    value = fields[name]
    if not isinstance(value, str):
        raise ValueError(f"licence field {name!r} must be a string, got {type(value).__name__}")
    return value


def license_fields(record: Mapping[str, object]) -> dict[str, str | None]:
    """The signed fields of a licence as they are signed: exactly :data:`SIGNED_FIELDS`.

    ``record`` is a licence row (``holder_uscc`` / ``holder_id_number``, chosen by ``holder_kind``)
    or a mapping that has ``holder`` itself; other keys (``status``, ``signature``,
    ``district_code``...) are ignored. Dates may be :class:`~datetime.date` objects or ISO
    ``YYYY-MM-DD`` strings. Only shapes are checked (strings, dates), not vocabularies, so a
    damaged stored record still has a canonical form (which then fails verification). Raises
    ``ValueError`` naming the field otherwise.
    """
    kind = _text(record, "holder_kind")
    if "holder" in record:
        holder = _text(record, "holder")
    elif kind == "ENTERPRISE":
        holder = _text(record, "holder_uscc")
    elif kind == "PERSON":
        holder = _text(record, "holder_id_number")
    else:
        raise ValueError(f"licence field 'holder_kind' must be one of {HOLDER_KINDS}, got {kind!r}")
    for name in ("issued_on", "valid_from", "valid_until"):
        if name not in record:
            raise ValueError(f"licence field {name!r} is missing")
    return {
        "number": _text(record, "number"),
        "type": _text(record, "type"),
        "holder_kind": kind,
        "holder": holder,
        "issuer_code": _text(record, "issuer_code"),
        "issued_on": _date_text(record["issued_on"], "issued_on"),
        "valid_from": _date_text(record["valid_from"], "valid_from"),
        "valid_until": _date_text(record["valid_until"], "valid_until", nullable=True),
        "scope": _text(record, "scope"),
    }


def canonical_bytes(fields: Mapping[str, object]) -> bytes:
    """The bytes a licence signature covers: :func:`license_fields` as compact sorted-key JSON.

    ``{"holder":"9133...","holder_kind":"ENTERPRISE","issued_on":"2020-05-06",...}``: UTF-8
    (Chinese characters as themselves, not ``\\u`` escapes), no whitespace, ``valid_until`` null
    for a long-term licence. Status is not part of it.
    """
    return orjson.dumps(license_fields(fields), option=orjson.OPT_SORT_KEYS)


# --- Keys, signing, verification --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An SM2 key pair as hex: the private scalar (64 digits) and the public point ``04 || x || y``."""

    private_hex: str = field(repr=False)
    public_hex: str


def _private_scalar(private_hex: str) -> int:
    if not isinstance(private_hex, str) or len(private_hex) > 64 or not _HEX.fullmatch(private_hex):
        raise ValueError("an SM2 private key is 1-64 hex digits")
    d = int(private_hex, 16)
    if not 1 <= d <= _N - 2:  # GB/T 32918.1: d in [1, n-2]
        raise ValueError("SM2 private key out of range [1, n-2]")
    return d


def _public_xy(public_hex: object) -> str | None:
    """``x || y`` (128 lower-case hex digits) of a valid public key, or None.

    Accepts ``04 || x || y`` (130 digits) and bare ``x || y`` (128). The point must be on the curve.
    """
    if not isinstance(public_hex, str) or not _HEX.fullmatch(public_hex):
        return None
    text = public_hex.lower()
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    if len(text) != 128:
        return None
    x, y = int(text[:64], 16), int(text[64:], 16)
    if x >= _P or y >= _P or (y * y - (x * x * x + _A * x + _B)) % _P != 0:
        return None
    return text


def derive_public_key(private_hex: str) -> str:
    """The public key ``04 || x || y`` (hex) of a private key; ``ValueError`` if it is not one."""
    point = _smx_kg(_private_scalar(private_hex), _G, 64)
    return "04" + str(point).lower()


def generate_keypair(rng: random.Random) -> KeyPair:
    """An SM2 key pair drawn from ``rng``: deterministic, for reproducible demo and test data.

    Keys made this way are only as secret as the seed. Production issuer keys are generated inside
    an HSM / KMS (GM/T 0018 cryptographic device) and never leave it; this function is not for
    them.
    """
    d = rng.randrange(1, _N - 1)  # [1, n-2]
    private_hex = f"{d:064x}"
    return KeyPair(private_hex=private_hex, public_hex=derive_public_key(private_hex))


@lru_cache(maxsize=256)
def _za(xy: str) -> bytes:
    return bytes.fromhex(str(_smx_get_za(DEFAULT_USER_ID, xy)))


def _digest(xy: str, data: bytes) -> str:
    """``e = SM3(Z || M)`` as 64 hex digits."""
    return _sm3(_za(xy) + data).hex()


@lru_cache(maxsize=256)
def _check_pair(d: int, xy: str) -> None:
    if str(_smx_kg(d, _G, 64)).lower() != xy:
        raise ValueError("the public key does not belong to the private key")


def sign(private_hex: str, public_hex: str, data: bytes, *, deterministic: bool = False) -> str:
    """SM2-sign ``data`` with an SM3 digest (GB/T 32918, default user ID); 128 hex digits ``r || s``.

    ``public_hex`` enters the digest (the ``Z`` value) and must belong to ``private_hex``
    (checked once per key pair); ``ValueError`` otherwise. The nonce is random (:mod:`secrets`)
    unless ``deterministic``: then it is ``HMAC-SM3(d, e || counter)`` reduced by rejection to
    ``[1, n-1]``, so the same key and data always give the same signature.
    """
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    d = _private_scalar(private_hex)
    xy = _public_xy(public_hex)
    if xy is None:
        raise ValueError("not an SM2 public key (hex 04 || x || y on the curve)")
    _check_pair(d, xy)
    e = _digest(xy, bytes(data))
    d_hex = f"{d:064x}"
    counter = 0
    while True:
        if deterministic:
            block = _hmac_sm3(bytes.fromhex(d_hex), bytes.fromhex(e) + counter.to_bytes(4, "big"))
            k = int.from_bytes(block, "big")
            counter += 1
            if not 1 <= k <= _N - 1:
                continue
        else:
            k = secrets.randbelow(_N - 1) + 1
        try:
            result = _smx_sign(e, d_hex, f"{k:064x}", 64, Hexstr=1)
        except TypeError:  # s == 0: pysmx fails on it; retry with another nonce (probability ~2^-256)
            continue
        if result is not None:  # None: r == 0 or r + k == n, retry likewise
            return bytes(result).hex()


def verify(public_hex: str, data: bytes, signature_hex: str) -> bool:
    """True if ``signature_hex`` (``r || s``) is the SM2/SM3 signature of ``data`` under ``public_hex``.

    Never raises: malformed keys, signatures or data (wrong types, lengths, non-hex, points off
    the curve, ``r`` or ``s`` outside ``[1, n-1]``) are simply not valid signatures. Hex is
    accepted in either case.
    """
    try:
        xy = _public_xy(public_hex)
        if xy is None or not isinstance(data, bytes | bytearray):
            return False
        if not isinstance(signature_hex, str) or len(signature_hex) != 128 or not _HEX.fullmatch(signature_hex):
            return False
        r, s = int(signature_hex[:64], 16), int(signature_hex[64:], 16)
        if not (1 <= r <= _N - 1 and 1 <= s <= _N - 1):
            return False
        return _smx_verify(signature_hex.lower(), _digest(xy, bytes(data)), xy, 64, Hexstr=1) is True
    except Exception:  # a verifier answers no, it does not crash
        return False


# --- Presentable documents --------------------------------------------------------------------


_DOCUMENT_KEYS = frozenset({"format", "license", "issuer", "algorithm", "signature"})


def _keys_problem(where: str, got: Iterable[str], expected: frozenset[str]) -> str | None:
    keys = set(got)
    unknown, missing = sorted(keys - expected), sorted(expected - keys)
    if unknown:
        return f"{where}: unknown key(s) {', '.join(map(repr, unknown))}"
    if missing:
        return f"{where}: missing key(s) {', '.join(map(repr, missing))}"
    return None


def _validated_license(value: object) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise ValueError(f"licence document: 'license' must be an object, got {type(value).__name__}")
    problem = _keys_problem("licence document 'license'", value, frozenset(SIGNED_FIELDS))
    if problem:
        raise ValueError(problem)
    for name in SIGNED_FIELDS:
        item = value[name]
        if name == "valid_until" and item is None:
            continue
        if not isinstance(item, str):
            raise ValueError(f"licence document: license.{name} must be a string, got {type(item).__name__}")
    try:
        fields = license_fields(value)
    except ValueError as exc:
        raise ValueError(f"licence document: {exc}") from None
    number, kind, holder = fields["number"] or "", fields["holder_kind"], fields["holder"] or ""
    if not 1 <= len(number) <= 64:
        raise ValueError("licence document: license.number must have 1-64 characters")
    kind_for_type = HOLDER_KIND_BY_TYPE.get(str(fields["type"]))
    if kind_for_type is None:
        raise ValueError(f"licence document: license.type must be one of {LICENSE_TYPES}, got {fields['type']!r}")
    if kind != kind_for_type:
        raise ValueError(f"licence document: {fields['type']} licences are held by {kind_for_type}, not {kind}")
    if kind == "ENTERPRISE" and (not is_valid_uscc(holder) or holder != holder.upper()):
        raise ValueError("licence document: license.holder is not a valid USCC in canonical (upper-case) form")
    if kind == "PERSON" and (not is_valid_id_number(holder) or holder != holder.upper()):
        raise ValueError("licence document: license.holder is not a valid ID number in canonical form")
    if not 1 <= len(fields["issuer_code"] or "") <= 32:
        raise ValueError("licence document: license.issuer_code must have 1-32 characters")
    return fields


@dataclass(frozen=True, slots=True)
class LicenseDocument:
    """A presentable signed licence (出示的电子证照文件), as JSON::

        {"format": "citygraph-license/1",
         "license": {<the SIGNED_FIELDS>},
         "issuer": "<issuer code>", "algorithm": "SM2-SM3", "signature": "<hex r || s>"}

    ``license`` holds exactly what :func:`canonical_bytes` signs; ``issuer`` repeats its
    ``issuer_code``. :meth:`from_json` validates strictly and raises ``ValueError`` with a reason.
    """

    license: Mapping[str, str | None]
    issuer: str
    signature: str
    algorithm: str = ALGORITHM
    format: str = DOCUMENT_FORMAT

    @classmethod
    def from_record(cls, record: Mapping[str, object], signature: str | None = None) -> LicenseDocument:
        """The document for a licence row (its own ``signature`` unless one is given)."""
        fields = license_fields(record)
        sig = signature if signature is not None else record.get("signature")
        if not isinstance(sig, str):
            raise ValueError("the licence record has no signature")
        return cls(license=MappingProxyType(fields), issuer=str(fields["issuer_code"]), signature=sig)

    def to_json(self) -> str:
        """The document as compact JSON text (sorted keys, UTF-8 characters unescaped)."""
        body = {
            "format": self.format,
            "license": dict(self.license),
            "issuer": self.issuer,
            "algorithm": self.algorithm,
            "signature": self.signature,
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> LicenseDocument:
        """Parse and validate a document; ``ValueError`` says what is wrong.

        Refused: non-JSON, more than 64 KiB, unknown or missing keys (top level and in
        ``license``), wrong types, another format or algorithm, dates not ``YYYY-MM-DD``, an
        unknown licence type, a holder kind that does not fit the type, a holder that is not a
        valid canonical USCC / ID number, ``issuer`` differing from ``license.issuer_code``, and a
        signature that is not 2-256 hex digits. Whether the signature verifies is
        :func:`verify_license`'s question, not this one's.
        """
        if not isinstance(text, str | bytes):
            raise ValueError(f"licence document must be JSON text, got {type(text).__name__}")
        raw = text.encode() if isinstance(text, str) else text
        if len(raw) > _MAX_DOCUMENT_BYTES:
            raise ValueError(f"licence document is larger than {_MAX_DOCUMENT_BYTES} bytes")
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"licence document is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError(f"licence document must be a JSON object, got {type(body).__name__}")
        problem = _keys_problem("licence document", body, _DOCUMENT_KEYS)
        if problem:
            raise ValueError(problem)
        for name in ("format", "issuer", "algorithm", "signature"):
            if not isinstance(body[name], str):
                raise ValueError(f"licence document: {name!r} must be a string, got {type(body[name]).__name__}")
        if body["format"] != DOCUMENT_FORMAT:
            raise ValueError(f"licence document: unsupported format {body['format']!r} (expected {DOCUMENT_FORMAT!r})")
        if body["algorithm"] != ALGORITHM:
            raise ValueError(f"licence document: unsupported algorithm {body['algorithm']!r} (expected {ALGORITHM!r})")
        signature = body["signature"]
        if not (2 <= len(signature) <= _MAX_SIGNATURE_HEX and len(signature) % 2 == 0 and _HEX.fullmatch(signature)):
            raise ValueError(f"licence document: 'signature' must be 2-{_MAX_SIGNATURE_HEX} hex digits (r || s)")
        fields = _validated_license(body["license"])
        if body["issuer"] != fields["issuer_code"]:
            raise ValueError("licence document: 'issuer' differs from license.issuer_code")
        return cls(license=MappingProxyType(fields), issuer=body["issuer"], signature=signature)


# --- Verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify_license` and the licence's public facts (never its holder).

    The facts come from the registry record (the authority on dates and status), ``issuer_name``
    from the issuer row; all but ``number`` are None when the licence was not found.
    """

    valid: bool
    reason: str  # one of VERDICTS
    checked_at: datetime
    number: str
    type: str | None = None
    issuer_code: str | None = None
    issuer_name: str | None = None
    issued_on: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    status: str | None = None

    @property
    def description(self) -> str:
        """:data:`VERDICT_DESCRIPTIONS` of the reason."""
        return VERDICT_DESCRIPTIONS.get(self.reason, self.reason)


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _same_hex(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def verify_license(
    record_fields: Mapping[str, object],
    signature: str,
    issuer_row: Mapping[str, object] | None,
    registry_record: Mapping[str, object] | None,
    today: date,
    *,
    other_issuers: Iterable[Mapping[str, object]] = (),
    checked_at: datetime | None = None,
) -> VerifyResult:
    """Verify a licence: a stored one (by number) or a presented document, against the registry.

    * ``record_fields`` and ``signature``: what is verified. For a stored licence, the registry
      row itself and its ``signature``; for a presented document, ``document.license`` and
      ``document.signature``. Malformed fields raise ``ValueError`` (validate documents with
      :meth:`LicenseDocument.from_json` first).
    * ``issuer_row``: the registry's ``issuers`` row for ``record_fields["issuer_code"]``, or None
      if there is none (``code``, ``name``, ``algorithm``, ``public_key``, ``active``).
    * ``registry_record``: the registry's ``licenses`` row for ``record_fields["number"]``, or
      None.
      (A row for another code than the fields name counts as none.)
    * ``other_issuers``: optionally, the registry's other issuer rows, used only to explain a
      stored licence whose signature fails (see BAD_SIGNATURE below).

    Checks, in order; the first that applies is the verdict:

    1. ``NOT_FOUND``: no registry record.
    2. ``UNKNOWN_ISSUER``: no issuer row, or it is inactive, or not ``SM2-SM3``.
    3. The signature, under the issuer's key, over the canonical form of ``record_fields``. If it
       fails:

       * a presented document whose fields differ from the registry's: ``TAMPERED`` if the
         signature is the registry's genuine one (it verifies over the registry's record, or is
         the very signature stored for this number): the fields were changed after signing;
         otherwise ``BAD_SIGNATURE``;
       * the registry's own record (same fields and signature as stored): ``TAMPERED`` (the
         stored fields no longer match what was signed) unless the signature verifies over them
         under one of ``other_issuers``' keys: then it was made with the wrong key,
         ``BAD_SIGNATURE``;
       * same fields as the registry but another signature: ``BAD_SIGNATURE``.

    4. ``REVOKED`` / ``SUSPENDED``: the registry status.
    5. ``NOT_YET_VALID``: the registry's ``valid_from`` is after ``today``.
    6. ``EXPIRED``: the registry's ``valid_until`` is before ``today`` (or the status says so).
    7. ``VALID``.

    A document whose fields differ from the registry's but are genuinely signed by the issuer (an
    earlier version of a licence since renewed under the same number) is judged by the registry's
    current dates and status.
    """
    now = checked_at if checked_at is not None else datetime.now(UTC)
    number = record_fields.get("number")
    if registry_record is None:
        return VerifyResult(valid=False, reason="NOT_FOUND", checked_at=now, number=str(number))

    def result(reason: str) -> VerifyResult:
        return VerifyResult(
            valid=reason == "VALID",
            reason=reason,
            checked_at=now,
            number=str(registry_record.get("number", number)),
            type=_optional_str(registry_record.get("type")),
            issuer_code=_optional_str(registry_record.get("issuer_code")),
            issuer_name=_optional_str(issuer_row.get("name")) if issuer_row is not None else None,
            issued_on=_as_date(registry_record.get("issued_on")),
            valid_from=_as_date(registry_record.get("valid_from")),
            valid_until=_as_date(registry_record.get("valid_until")),
            status=_optional_str(registry_record.get("status")),
        )

    presented = canonical_bytes(record_fields)
    if (
        issuer_row is None
        or issuer_row.get("active") is not True
        or issuer_row.get("algorithm") != ALGORITHM
        or issuer_row.get("code") != record_fields.get("issuer_code")
    ):
        return result("UNKNOWN_ISSUER")
    public_key = str(issuer_row.get("public_key"))
    if not verify(public_key, presented, signature):
        stored = canonical_bytes(registry_record)
        stored_signature = registry_record.get("signature")
        if presented != stored:
            genuine = _same_hex(signature, stored_signature) or (
                registry_record.get("issuer_code") == issuer_row.get("code") and verify(public_key, stored, signature)
            )
            return result("TAMPERED" if genuine else "BAD_SIGNATURE")
        if not _same_hex(signature, stored_signature):
            return result("BAD_SIGNATURE")
        for other in other_issuers:
            if other.get("code") != issuer_row.get("code") and verify(str(other.get("public_key")), stored, signature):
                return result("BAD_SIGNATURE")
        return result("TAMPERED")

    status = registry_record.get("status")
    if status in ("REVOKED", "SUSPENDED"):
        return result(str(status))
    valid_from = _as_date(registry_record.get("valid_from"))
    if valid_from is not None and valid_from > today:
        return result("NOT_YET_VALID")
    valid_until = _as_date(registry_record.get("valid_until"))
    if status == "EXPIRED" or (valid_until is not None and valid_until < today):
        return result("EXPIRED")
    return result("VALID")


__all__ = [
    "ALGORITHM",
    "canonical_bytes",
    "DEFAULT_USER_ID",
    "derive_public_key",
    "DOCUMENT_FORMAT",
    "generate_keypair",
    "KeyPair",
    "license_fields",
    "LicenseDocument",
    "sign",
    "SIGNED_FIELDS",
    "verify",
    "verify_license",
    "VERDICT_DESCRIPTIONS",
    "VERDICTS",
    "VerifyResult",
]
