"""USCC and resident ID number validation, checked against independent re-implementations."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, strategies as st

from connectors.identifiers import (
    NINGBO_DISTRICTS,
    USCC_ALPHABET,
    has_valid_org_code,
    id_number_check_char,
    id_number_problem,
    is_adcode,
    is_valid_id_number,
    is_valid_uscc,
    make_id_number,
    make_uscc,
    normalise_id_number,
    normalise_uscc,
    org_code_check_char,
    uscc_check_char,
    uscc_problem,
)

# --- Independent re-implementations (different formulations of the same standards) -----------


def ref_uscc_check(first17: str) -> str:
    """GB 32100: weights are 3**i mod 31; the check makes the full weighted sum 0 mod 31."""
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return USCC_ALPHABET[-total % 31]


def ref_org_check(body8: str) -> str:
    """GB 11714 with letters valued A=10 .. Z=35."""
    values = [ord(c) - 55 if c.isalpha() else int(c) for c in body8]
    r = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return {10: "X", 11: "0"}.get(r, str(r))


def ref_id_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 in its recursive form (no weight table)."""
    p = 0
    for c in first17:
        p = (p + int(c)) * 2 % 11
    r = (12 - p) % 11
    return "X" if r == 10 else str(r)


# --- Strategies -------------------------------------------------------------------------------

alphabet_char = st.sampled_from(USCC_ALPHABET)
adcodes = st.text("0123456789", min_size=6, max_size=6)
usccs = st.builds(make_uscc, alphabet_char, alphabet_char, adcodes, st.text(USCC_ALPHABET, min_size=8, max_size=8))
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
id_numbers = st.builds(make_id_number, adcodes, births, st.integers(0, 999))


# --- USCC -------------------------------------------------------------------------------------


def test_published_examples_validate() -> None:
    # The worked example of GB 32100-2015 and a widely published enterprise code.
    for code in ("91350100M000100Y43", "91110000100010433L"):
        assert is_valid_uscc(code)
        assert has_valid_org_code(code)


def test_constructed_ningbo_codes() -> None:
    # A post-2015 Yinzhou company (MA2... organisation code) and a legacy 8-digit one in Haishu.
    modern = make_uscc("9", "1", "330212", "MA2CH0A1")
    legacy = make_uscc("9", "1", "330203", "14407083")
    assert modern == "91330212MA2CH0A169"
    assert legacy[:16] == "9133020314407083"
    for code in (modern, legacy):
        assert is_valid_uscc(code) and has_valid_org_code(code)
        assert code[16] == ref_org_check(code[8:16])
        assert code[17] == ref_uscc_check(code[:17])


def test_org_check_uses_gb11714_letter_values() -> None:
    # 'J' is 19 in GB 11714 but 18 in the USCC alphabet; the wrong table gives a different check.
    assert org_code_check_char("MA2J0000") == ref_org_check("MA2J0000")
    assert org_code_check_char("00000000") == "0"  # 11 - 0 = 11 -> '0'
    tens = [b for b in (f"{n:08d}" for n in range(200)) if ref_org_check(b) == "X"]
    assert tens and all(org_code_check_char(b) == "X" for b in tens)


@given(usccs)
def test_made_usccs_validate_and_match_reference(code: str) -> None:
    assert is_valid_uscc(code)
    assert uscc_problem(code) is None
    assert has_valid_org_code(code)
    assert code[17] == ref_uscc_check(code[:17]) == uscc_check_char(code[:17])
    assert code[16] == ref_org_check(code[8:16])


@given(usccs, st.integers(0, 17), alphabet_char)
def test_any_single_substitution_is_detected(code: str, pos: int, c: str) -> None:
    # No exception exists: a substitution shifts the sum by w * delta with w != 0 and
    # 0 < |delta| < 31, and 31 is prime, so the sum can never stay 0 mod 31.
    if c == code[pos]:
        c = USCC_ALPHABET[(USCC_ALPHABET.index(c) + 1) % 31]
    assert not is_valid_uscc(code[:pos] + c + code[pos + 1 :])


@given(usccs, st.integers(0, 16))
def test_any_adjacent_transposition_is_detected(code: str, pos: int) -> None:
    # Also exception-free: 3 is a primitive root mod 31, so neighbouring weights always differ
    # (and the check position, weight 1 in effect, differs from position 17's weight 28).
    swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
    assert swapped == code or not is_valid_uscc(swapped)


def test_two_substitutions_can_cancel() -> None:
    # The honest limit of any single check character: two errors slip through about 1 time in 31.
    code = make_uscc("9", "1", "330206", "MA2AB123")
    fakes = [code[:8] + a + b + code[10:] for a in USCC_ALPHABET for b in USCC_ALPHABET]
    passing = [f for f in fakes if f != code and is_valid_uscc(f)]
    assert len(passing) == 30  # for every other first character, exactly one second one fits
    # Inside the organisation code, the second (mod-11) check catches most of them.
    assert sum(has_valid_org_code(f) for f in passing) < 10


def test_uscc_problem_messages() -> None:
    good = "91350100M000100Y43"
    assert uscc_problem(good[:-1]) == "wrong length: a USCC has 18 characters, got 17"
    assert uscc_problem("") == "wrong length: a USCC has 18 characters, got 0"
    problem = uscc_problem("91350100MI00100Y43")
    assert problem is not None and problem.startswith("invalid character 'I' at position 10")
    problem = uscc_problem("913501A0M000100Y43")
    assert problem == "invalid character 'A' at position 7 (the division code is digits)"
    assert uscc_problem("91350100M000100Y44") == "bad check character '4' at position 18 (expected '3')"
    problem = uscc_problem("9135010０M000100Y43")  # full-width zero
    assert problem is not None and "position 8" in problem


def test_uscc_case_and_normalisation() -> None:
    assert is_valid_uscc("91350100m000100y43")
    assert normalise_uscc("91350100m000100y43") == "91350100M000100Y43"
    assert not is_valid_uscc("9135010ſM000100Y43")  # long s upper-cases to S, still rejected
    with pytest.raises(ValueError, match="bad check character"):
        normalise_uscc("91350100M000100Y44")


def test_org_check_is_not_required_for_validity() -> None:
    # A code whose positions 9-17 are not a valid organisation code but whose final check is right.
    first17 = "92330203" + "12345678" + "0"
    code = first17 + uscc_check_char(first17)
    assert org_code_check_char("12345678") != "0"
    assert is_valid_uscc(code)
    assert not has_valid_org_code(code)


def test_make_uscc_rejects_bad_parts() -> None:
    with pytest.raises(ValueError, match="authority"):
        make_uscc("I", "1", "330203", "MA2CH0A1")
    with pytest.raises(ValueError, match="kind"):
        make_uscc("9", "12", "330203", "MA2CH0A1")
    with pytest.raises(ValueError, match="adcode"):
        make_uscc("9", "1", "33020", "MA2CH0A1")
    with pytest.raises(ValueError, match="org_body8"):
        make_uscc("9", "1", "330203", "MA2CH0O1")
    assert make_uscc("9", "1", "330212", "ma2ch0a1") == "91330212MA2CH0A169"


# --- Resident ID number -----------------------------------------------------------------------


def test_standard_example_and_lowercase_x() -> None:
    # The example printed in GB 11643-1999.
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number("11010519491231002x")
    assert normalise_id_number("11010519491231002x") == "11010519491231002X"


def test_make_id_number() -> None:
    number = make_id_number("330203", date(1985, 3, 7), 42)
    assert number[:17] == "33020319850307042"
    assert number[17] == ref_id_check(number[:17]) == id_number_check_char(number[:17])
    assert is_valid_id_number(number)


@given(id_numbers)
def test_made_id_numbers_validate_and_match_reference(number: str) -> None:
    assert is_valid_id_number(number)
    assert number[17] == ref_id_check(number[:17])


@given(id_numbers, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_id_substitution_is_detected(number: str, pos: int, c: str) -> None:
    # 11 is prime and no weight is 0 mod 11, so every substitution is caught (by the check, by the
    # character rules, or by the birth date).
    if c == number[pos]:
        c = "0" if c != "0" else "1"
    assert not is_valid_id_number(number[:pos] + c + number[pos + 1 :])


def test_id_number_problem_messages() -> None:
    good = "11010519491231002X"
    assert id_number_problem(good[:-1]) == "wrong length: an ID number has 18 characters, got 17"
    assert id_number_problem("1101051949123100XX") == ("invalid character 'X' at position 17 (expected a digit)")
    assert id_number_problem("11010519491231002Y") == ("invalid character 'Y' at position 18 (expected a digit or X)")
    first17 = "11010519990229001"  # 1999 was not a leap year
    bad_date = first17 + ref_id_check(first17)
    assert id_number_problem(bad_date) == ("invalid birth date '19990229' at positions 7-14 (not a real YYYYMMDD date)")
    assert id_number_problem("110105194912310021") == ("bad check character '1' at position 18 (expected 'X')")
    with pytest.raises(ValueError, match="bad check character"):
        normalise_id_number("110105194912310021")


def test_make_id_number_rejects_bad_parts() -> None:
    with pytest.raises(ValueError, match="adcode"):
        make_id_number("3302", date(1990, 1, 1), 1)
    with pytest.raises(ValueError, match="seq3"):
        make_id_number("330203", date(1990, 1, 1), 1000)
    with pytest.raises(ValueError, match="4 digits"):
        make_id_number("330203", date(999, 1, 1), 1)


# --- Divisions --------------------------------------------------------------------------------


def test_ningbo_districts() -> None:
    assert list(NINGBO_DISTRICTS) == [
        "330203",
        "330205",
        "330206",
        "330211",
        "330212",
        "330213",
        "330225",
        "330226",
        "330281",
        "330282",
    ]
    assert NINGBO_DISTRICTS["330212"] == ("鄞州区", "Yinzhou")
    assert NINGBO_DISTRICTS["330281"] == ("余姚市", "Yuyao")
    assert all(is_adcode(code) for code in NINGBO_DISTRICTS)
    with pytest.raises(TypeError):
        NINGBO_DISTRICTS["330204"] = ("江东区", "Jiangdong")  # type: ignore[index]


def test_is_adcode() -> None:
    assert is_adcode("330203")
    for bad in ("33020", "3302030", "33020a", "３３０２０３", "33020²", ""):
        assert not is_adcode(bad)
