"""China's national identifier codes, validated by their real check-character arithmetic.

* **USCC** (统一社会信用代码, GB 32100-2015): 18 characters from :data:`USCC_ALPHABET` -
  registration authority (1), entity type (1), administrative division code (6 digits),
  organisation code (9: an 8-character GB 11714 body plus its own check character) and a final
  mod-31 check character.
* **Resident ID number** (居民身份证号码, GB 11643-1999): 6-digit division code, 8-digit birth date
  (YYYYMMDD), 3-digit sequence number and an ISO 7064 MOD 11-2 check character (digit or ``X``).

Validation is case-insensitive: the only letters these codes use are unambiguous, and a
lower-case ``x`` at the end of an ID number is what people actually type. The canonical form is
upper-case; :func:`normalise_uscc` and :func:`normalise_id_number` return it, and the ``make_*``
functions only produce it. No function strips whitespace: ``" 9133..."`` has the wrong length.

Only the *final* USCC check character is enforced by :func:`is_valid_uscc`. The embedded
organisation-code check character is valid for codes issued to enterprises with a GB 11714
organisation code (every enterprise registered since 2015), but not for every legitimately issued
USCC: codes converted from older registration numbers (e.g. some individual businesses, type
``2``) carry positions 9-17 without a valid GB 11714 check. Rejecting those would reject real
codes, so :func:`has_valid_org_code` offers that check separately for callers that want it.

Neither the registration-authority/type pair nor the division code is checked against the
official code tables: those tables change (divisions are merged and renamed) while codes already
issued stay valid for life. Positions 3-8 must merely be digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

#: GB 32100 character set: digits and upper-case letters without I, O, Z, S, V (31 characters).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
# 3**i mod 31 for positions 1..17 (3 is a primitive root mod 31, so the weights are distinct).
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# GB 11714 values characters by their own scheme (0-9 -> 0-9, A-Z -> 10-35), *not* by their index
# in the USCC alphabet: e.g. 'J' is 19 here but 18 in USCC_ALPHABET.
_ORG_VALUE = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# 2**(17-i) mod 11 for positions 1..17.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")

#: Ningbo's county-level divisions in official order: adcode -> (Chinese name, English name).
NINGBO_DISTRICTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "330203": ("海曙区", "Haishu"),
        "330205": ("江北区", "Jiangbei"),
        "330206": ("北仑区", "Beilun"),
        "330211": ("镇海区", "Zhenhai"),
        "330212": ("鄞州区", "Yinzhou"),
        "330213": ("奉化区", "Fenghua"),
        "330225": ("象山县", "Xiangshan"),
        "330226": ("宁海县", "Ninghai"),
        "330281": ("余姚市", "Yuyao"),
        "330282": ("慈溪市", "Cixi"),
    }
)


def is_adcode(s: str) -> bool:
    """True if ``s`` is shaped like an administrative division code: exactly 6 ASCII digits."""
    # str.isdigit alone would accept full-width and superscript digits.
    return len(s) == 6 and s.isascii() and s.isdigit()


# --- USCC -------------------------------------------------------------------------------------


def org_code_check_char(body8: str) -> str:
    """The GB 11714 check character of an 8-character organisation-code body.

    ``11 - (weighted sum mod 11)``, with 10 written ``X`` and 11 written ``0``. Raises
    ``ValueError`` if ``body8`` is not 8 characters from ``0-9A-Z`` (upper-case).
    """
    if len(body8) != 8 or any(c not in _ORG_VALUE for c in body8):
        raise ValueError(f"organisation code body must be 8 characters from 0-9A-Z, got {body8!r}")
    check = 11 - sum(_ORG_VALUE[c] * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True)) % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC.

    ``31 - (weighted sum mod 31)``, with 31 mapped to 0, written through :data:`USCC_ALPHABET`.
    Raises ``ValueError`` unless ``first17`` is 17 characters from the alphabet (upper-case).
    """
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError(f"expected 17 characters from {USCC_ALPHABET}, got {first17!r}")
    check = 31 - sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True)) % 31
    return USCC_ALPHABET[check % 31]


def uscc_problem(s: str) -> str | None:
    """Why ``s`` is not a valid USCC, in English, or ``None`` if it is valid.

    Checks, in order: length 18; each character in the alphabet (positions 3-8 digits); the final
    check character. Positions in messages are 1-based. The organisation-code check is not
    applied (see the module docstring and :func:`has_valid_org_code`).
    """
    if len(s) != 18:
        return f"wrong length: a USCC has 18 characters, got {len(s)}"
    for pos, c in enumerate(s, start=1):
        # isascii first: a few non-ASCII letters upper-case to ASCII ones ('ſ' -> 'S').
        if not c.isascii() or c.upper() not in _USCC_VALUE:
            return f"invalid character {c!r} at position {pos} (allowed: {USCC_ALPHABET})"
        if 3 <= pos <= 8 and c not in _DIGITS:
            return f"invalid character {c!r} at position {pos} (the division code is digits)"
    code = s.upper()
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"bad check character {s[17]!r} at position 18 (expected {expected!r})"
    return None


def is_valid_uscc(s: str) -> bool:
    """True if ``s`` is a well-formed USCC whose final check character is correct."""
    return uscc_problem(s) is None


def has_valid_org_code(uscc: str) -> bool:
    """True if ``uscc`` is valid *and* its embedded organisation code (positions 9-17) checks out."""
    if not is_valid_uscc(uscc):
        return False
    code = uscc.upper()
    return org_code_check_char(code[8:16]) == code[16]


def normalise_uscc(s: str) -> str:
    """The canonical (upper-case) form of a valid USCC; ``ValueError`` with the reason otherwise."""
    problem = uscc_problem(s)
    if problem is not None:
        raise ValueError(f"invalid USCC {s!r}: {problem}")
    return s.upper()


def make_uscc(authority: str, kind: str, adcode: str, org_body8: str) -> str:
    """Assemble a USCC, computing the organisation-code and final check characters.

    ``authority`` and ``kind`` are single alphabet characters (e.g. ``"9"``, ``"1"`` for an
    enterprise registered by market regulation), ``adcode`` 6 digits, ``org_body8`` 8 alphabet
    characters. Input is upper-cased; anything else raises ``ValueError``.
    """
    authority, kind, org_body8 = authority.upper(), kind.upper(), org_body8.upper()
    for label, value, size in (("authority", authority, 1), ("kind", kind, 1), ("org_body8", org_body8, 8)):
        if len(value) != size or any(c not in _USCC_VALUE for c in value):
            raise ValueError(f"{label} must be {size} character(s) from {USCC_ALPHABET}, got {value!r}")
    if not is_adcode(adcode):
        raise ValueError(f"adcode must be 6 digits, got {adcode!r}")
    first17 = authority + kind + adcode + org_body8 + org_code_check_char(org_body8)
    return first17 + uscc_check_char(first17)


# --- Resident ID number -----------------------------------------------------------------------


def id_number_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number.

    Raises ``ValueError`` unless ``first17`` is 17 ASCII digits.
    """
    if len(first17) != 17 or any(c not in _DIGITS for c in first17):
        raise ValueError(f"expected 17 digits, got {first17!r}")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(s: str) -> str | None:
    """Why ``s`` is not a valid resident ID number, in English, or ``None`` if it is valid.

    Checks, in order: length 18; digits at positions 1-17 and a digit or ``X``/``x`` at 18; a
    real calendar date at positions 7-14; the check character. The date is not compared with
    today (validation never depends on the clock), and the division code is not looked up.
    """
    if len(s) != 18:
        return f"wrong length: an ID number has 18 characters, got {len(s)}"
    for pos, c in enumerate(s, start=1):
        if c not in _DIGITS and not (pos == 18 and c in "Xx"):
            allowed = "a digit or X" if pos == 18 else "a digit"
            return f"invalid character {c!r} at position {pos} (expected {allowed})"
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return f"invalid birth date {s[6:14]!r} at positions 7-14 (not a real YYYYMMDD date)"
    expected = id_number_check_char(s[:17])
    if s[17].upper() != expected:
        return f"bad check character {s[17]!r} at position 18 (expected {expected!r})"
    return None


def is_valid_id_number(s: str) -> bool:
    """True if ``s`` is an 18-character resident ID number with a real birth date and check."""
    return id_number_problem(s) is None


def normalise_id_number(s: str) -> str:
    """The canonical form (trailing ``X`` upper-case) of a valid ID number; ``ValueError`` otherwise."""
    problem = id_number_problem(s)
    if problem is not None:
        raise ValueError(f"invalid ID number: {problem}")
    return s.upper()


def make_id_number(adcode: str, birth: date, seq3: int) -> str:
    """Assemble an ID number from a division code, birth date and sequence (0..999; odd = male)."""
    if not is_adcode(adcode):
        raise ValueError(f"adcode must be 6 digits, got {adcode!r}")
    if not 0 <= seq3 <= 999:
        raise ValueError(f"seq3 must be in 0..999, got {seq3}")
    if birth.year < 1000:
        raise ValueError(f"birth year must have 4 digits, got {birth.year}")
    first17 = f"{adcode}{birth:%Y%m%d}{seq3:03d}"
    return first17 + id_number_check_char(first17)


# --- GB/T 28181 device ids ----------------------------------------------------------------------

#: Province-level division codes (the first two digits of an adcode, GB/T 2260).
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
#: GB/T 28181-2016 Annex E industry codes (positions 9-10) assigned today: 00-07 public security
#: and traffic, 08 urban management, 09-11 health/environment, customs, education, 40-55
#: enterprises by sector, 80 the public.
GB28181_INDUSTRIES: Mapping[str, str] = MappingProxyType(
    {
        "00": "社会治安路面接入",
        "01": "社会治安社区接入",
        "02": "社会治安内部接入",
        "03": "社会治安其他接入",
        "04": "交通路面接入",
        "05": "交通卡口接入",
        "06": "交通内部接入",
        "07": "交通其他接入",
        "08": "城市管理接入",
        "09": "卫生环保接入",
        "10": "商检海关接入",
        "11": "教育部门接入",
        **{f"{n}": "企业接入" for n in range(40, 56)},
        "80": "公众接入",
    }
)
#: Type codes (positions 11-13) of cameras: 131 camera, 132 network camera (IPC).
GB28181_CAMERA_TYPES: Mapping[str, str] = MappingProxyType({"131": "摄像机", "132": "网络摄像机"})


def gb28181_problem(s: str) -> str | None:
    """Why ``s`` is not a GB/T 28181 camera device id, or None if it is one.

    20 digits: centre code (1-8: an adcode whose province exists, then a 2-digit grassroots unit),
    industry code (9-10, :data:`GB28181_INDUSTRIES`), type code (11-13, a camera:
    :data:`GB28181_CAMERA_TYPES`), network (14: 0-8; 9 is reserved) and serial number (15-20).
    """
    if len(s) != 20:
        return f"wrong length: a GB/T 28181 device id has 20 digits, got {len(s)}"
    for pos, c in enumerate(s, start=1):
        if c not in _DIGITS:
            return f"invalid character {c!r} at position {pos} (expected a digit)"
    if s[:2] not in PROVINCE_CODES:
        return f"unknown province {s[:2]!r} at positions 1-2 (expected a GB/T 2260 code such as 33)"
    if s[8:10] not in GB28181_INDUSTRIES:
        return f"unassigned industry code {s[8:10]!r} at positions 9-10 (e.g. 00 public security, 08 urban management)"
    if s[10:13] not in GB28181_CAMERA_TYPES:
        return f"type code {s[10:13]!r} at positions 11-13 is not a camera (expected 131 or 132)"
    if s[13] == "9":
        return "network code 9 at position 14 is reserved (expected 0-8)"
    return None


def make_gb28181(adcode: str, unit: int, industry: str, type_code: str, network: int, serial: int) -> str:
    """Assemble a camera device id; ``ValueError`` when the result would not validate."""
    if not is_adcode(adcode) or not 0 <= unit <= 99 or not 0 <= network <= 9 or not 0 <= serial <= 999_999:
        raise ValueError("adcode must be 6 digits, unit 0..99, network 0..9, serial 0..999999")
    device_id = f"{adcode}{unit:02d}{industry}{type_code}{network}{serial:06d}"
    problem = gb28181_problem(device_id)
    if problem is not None:
        raise ValueError(f"invalid device id: {problem}")
    return device_id


__all__ = [
    "GB28181_CAMERA_TYPES",
    "GB28181_INDUSTRIES",
    "PROVINCE_CODES",
    "gb28181_problem",
    "make_gb28181",
    "has_valid_org_code",
    "id_number_check_char",
    "id_number_problem",
    "is_adcode",
    "is_valid_id_number",
    "is_valid_uscc",
    "make_id_number",
    "make_uscc",
    "NINGBO_DISTRICTS",
    "normalise_id_number",
    "normalise_uscc",
    "org_code_check_char",
    "USCC_ALPHABET",
    "uscc_check_char",
    "uscc_problem",
]
