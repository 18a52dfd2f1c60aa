"""SM2/SM3 signing of licences: the standard's example, round trips, documents and verdicts."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.identifiers import make_id_number, make_uscc
from connectors.license import signing
from connectors.license.signing import (
    ALGORITHM,
    DOCUMENT_FORMAT,
    SIGNED_FIELDS,
    VERDICTS,
    KeyPair,
    LicenseDocument,
    canonical_bytes,
    derive_public_key,
    generate_keypair,
    license_fields,
    sign,
    verify,
    verify_license,
)

TODAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
HOLDER = make_uscc("9", "1", "330203", "MA2H3K4L")
PERSON = make_id_number("330203", date(1980, 1, 1), 123)

# GM/T 0003.5-2012 / GB/T 32918.5 example on the recommended curve, default user ID.
KAT_PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
KAT_PUBLIC = (
    "04"
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
KAT_SIGNATURE = (
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


@pytest.fixture(scope="module")
def amr() -> KeyPair:
    return generate_keypair(random.Random(1))


@pytest.fixture(scope="module")
def other() -> KeyPair:
    return generate_keypair(random.Random(2))


def fields(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "number": HOLDER,
        "type": "BUSINESS_LICENSE",
        "holder_kind": "ENTERPRISE",
        "holder": HOLDER,
        "issuer_code": "AMR-330203",
        "issued_on": date(2020, 5, 6),
        "valid_from": date(2018, 3, 1),
        "valid_until": None,
        "scope": "一般项目：技术服务、技术开发（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    }
    base.update(changes)
    return base


def issuer_row(keys: KeyPair, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "code": "AMR-330203",
        "name": "宁波市海曙区市场监督管理局",
        "algorithm": ALGORITHM,
        "public_key": keys.public_hex,
        "active": True,
    }
    row.update(changes)
    return row


def registry_row(keys: KeyPair, status: str = "VALID", **changes: object) -> dict[str, object]:
    """A stored licence row (holder_uscc, not holder), signed over its fields before ``changes``."""
    f = fields()
    row: dict[str, object] = {k: v for k, v in f.items() if k != "holder"}
    row.update(
        holder_uscc=HOLDER,
        holder_id_number=None,
        status=status,
        district_code="330203",
        signature=sign(keys.private_hex, keys.public_hex, canonical_bytes(f), deterministic=True),
        sign_version=1,
    )
    row.update(changes)
    return row


# --- Primitives -------------------------------------------------------------------------------


def test_standard_example_verifies_and_derives_its_public_key() -> None:
    assert derive_public_key(KAT_PRIVATE) == KAT_PUBLIC
    assert verify(KAT_PUBLIC, b"message digest", KAT_SIGNATURE)
    assert verify(KAT_PUBLIC.upper(), b"message digest", KAT_SIGNATURE.upper())
    assert verify(KAT_PUBLIC[2:], b"message digest", KAT_SIGNATURE)  # bare x || y is accepted too
    assert not verify(KAT_PUBLIC, b"message digesT", KAT_SIGNATURE)


def test_hmac_sm3_matches_the_standard_library() -> None:
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("OpenSSL without SM3")
    for key in (b"", b"k" * 32, b"long key " * 20):
        assert signing._hmac_sm3(key, b"message") == hmac.new(key, b"message", "sm3").digest()


def test_generate_keypair_is_deterministic_and_hides_the_private_key() -> None:
    a, b = generate_keypair(random.Random(5)), generate_keypair(random.Random(5))
    assert a == b
    assert a != generate_keypair(random.Random(6))
    assert len(a.private_hex) == 64 and len(a.public_hex) == 130 and a.public_hex.startswith("04")
    assert derive_public_key(a.private_hex) == a.public_hex
    assert a.private_hex not in repr(a)


def test_sign_verify_round_trip(amr: KeyPair, other: KeyPair) -> None:
    data = canonical_bytes(fields())
    random_sigs = {sign(amr.private_hex, amr.public_hex, data) for _ in range(2)}
    assert len(random_sigs) == 2  # fresh nonces
    det = sign(amr.private_hex, amr.public_hex, data, deterministic=True)
    assert det == sign(amr.private_hex, amr.public_hex, data, deterministic=True)
    for sig in (*random_sigs, det):
        assert len(sig) == 128 and sig == sig.lower()
        assert verify(amr.public_hex, data, sig)
        assert not verify(other.public_hex, data, sig)
        assert not verify(amr.public_hex, data + b" ", sig)


def test_sign_refuses_bad_keys(amr: KeyPair, other: KeyPair) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        sign(amr.private_hex, other.public_hex, b"x")
    with pytest.raises(ValueError, match="public key"):
        sign(amr.private_hex, "04" + "00" * 64, b"x")
    for private in ("", "zz", "0", f"{N - 1:064x}", "1" * 65):
        with pytest.raises(ValueError, match="private key"):
            sign(private, amr.public_hex, b"x")
    with pytest.raises(TypeError):
        sign(amr.private_hex, amr.public_hex, "text")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", SIGNED_FIELDS)
def test_one_character_changed_in_any_signed_field_fails(amr: KeyPair, name: str) -> None:
    original = fields(valid_until=date(2038, 2, 28))
    sig = sign(amr.private_hex, amr.public_hex, canonical_bytes(original), deterministic=True)
    value = original[name]
    if isinstance(value, date):
        changed: object = value + timedelta(days=1)
    else:
        text = str(value)
        changed = text[:-1] + ("0" if text[-1] != "0" else "1")
    assert verify(amr.public_hex, canonical_bytes(original), sig)
    assert not verify(amr.public_hex, canonical_bytes({**original, name: changed}), sig)


def test_long_term_and_dated_validity_sign_differently(amr: KeyPair) -> None:
    sig = sign(amr.private_hex, amr.public_hex, canonical_bytes(fields()), deterministic=True)
    assert not verify(amr.public_hex, canonical_bytes(fields(valid_until=date(2099, 12, 31))), sig)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "zz",
        "00" * 64,  # r = s = 0
        f"{N:064x}" + "01" * 32,  # r = n
        "01" * 32 + f"{N:064x}",  # s = n
        "ff" * 64,
        "g" * 128,
        "0" * 127,
        KAT_SIGNATURE + "00",
        KAT_SIGNATURE[:-2],
        " " + KAT_SIGNATURE[1:],
        None,
        123,
        b"\x00" * 64,
    ],
)
def test_garbage_signatures_are_false_not_errors(signature: object) -> None:
    assert verify(KAT_PUBLIC, b"message digest", signature) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "public",
    [
        "",
        "04",
        "05" + KAT_PUBLIC[2:],
        "04" + "00" * 64,  # not on the curve
        KAT_PUBLIC[:-1] + ("0" if KAT_PUBLIC[-1] != "0" else "1"),  # off the curve
        "04" + "ff" * 64,  # coordinates beyond p
        KAT_PUBLIC + "00",
        "02" + KAT_PUBLIC[2:66],  # compressed: not accepted
        "xyz",
        None,
        42,
    ],
)
def test_garbage_public_keys_are_false_not_errors(public: object) -> None:
    assert verify(public, b"message digest", KAT_SIGNATURE) is False  # type: ignore[arg-type]


def test_garbage_data_is_false_not_error() -> None:
    assert verify(KAT_PUBLIC, "message digest", KAT_SIGNATURE) is False  # type: ignore[arg-type]
    assert verify(KAT_PUBLIC, None, KAT_SIGNATURE) is False  # type: ignore[arg-type]


# --- Canonical form ---------------------------------------------------------------------------


def test_canonical_form_is_exact_sorted_compact_utf8() -> None:
    data = canonical_bytes(fields(scope="食品销售"))
    expected = (
        '{"holder":"%s","holder_kind":"ENTERPRISE","issued_on":"2020-05-06","issuer_code":"AMR-330203",'
        '"number":"%s","scope":"食品销售","type":"BUSINESS_LICENSE","valid_from":"2018-03-01",'
        '"valid_until":null}' % (HOLDER, HOLDER)
    )
    assert data == expected.encode()
    assert list(json.loads(data)) == sorted(SIGNED_FIELDS)


def test_canonical_form_is_stable_and_ignores_unsigned_columns() -> None:
    a = canonical_bytes(fields())
    row = {k: v for k, v in fields().items() if k != "holder"}
    row.update(holder_uscc=HOLDER, holder_id_number=None, status="REVOKED", signature="ab", district_code="330203")
    assert canonical_bytes(row) == a  # a stored row: holder from holder_uscc, status not signed
    assert canonical_bytes({**row, "status": "VALID", "sign_version": 1}) == a
    as_text = fields(issued_on="2020-05-06", valid_from="2018-03-01")
    assert canonical_bytes(as_text) == a  # ISO strings and dates are the same thing
    assert canonical_bytes(dict(reversed(list(fields().items())))) == a
    person = {**fields(type="RESIDENT_ID", holder_kind="PERSON")}
    del person["holder"]
    person.update(holder_id_number=PERSON, holder_uscc=None)
    assert license_fields(person)["holder"] == PERSON


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issued_on": datetime(2020, 5, 6, 12, 0)}, "issued_on"),
        ({"issued_on": "2020/05/06"}, "issued_on"),
        ({"issued_on": "20200506"}, "issued_on"),
        ({"valid_from": "2020-02-30"}, "valid_from"),
        ({"valid_from": None}, "valid_from"),
        ({"valid_until": 20300101}, "valid_until"),
        ({"number": 123}, "number"),
        ({"scope": None}, "scope"),
        ({"holder_kind": "ROBOT", "holder": None}, "holder"),
    ],
)
def test_canonical_form_refuses_bad_shapes(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_bytes(fields(**changes))


def test_canonical_form_refuses_missing_fields() -> None:
    for name in SIGNED_FIELDS:
        incomplete = fields()
        del incomplete[name]
        with pytest.raises(ValueError, match="missing"):
            canonical_bytes(incomplete)


# --- Documents --------------------------------------------------------------------------------


def document(keys: KeyPair, **changes: object) -> LicenseDocument:
    f = fields(**changes)
    return LicenseDocument.from_record(
        f, sign(keys.private_hex, keys.public_hex, canonical_bytes(f), deterministic=True)
    )


def test_document_json_round_trip(amr: KeyPair) -> None:
    doc = document(amr)
    text = doc.to_json()
    body = json.loads(text)
    assert set(body) == {"format", "license", "issuer", "algorithm", "signature"}
    assert body["format"] == DOCUMENT_FORMAT and body["algorithm"] == ALGORITHM
    assert body["issuer"] == "AMR-330203"
    assert "技术服务" in text  # UTF-8, not \u escapes
    again = LicenseDocument.from_json(text)
    assert again == doc
    assert LicenseDocument.from_json(text.encode()) == doc
    assert canonical_bytes(again.license) == canonical_bytes(fields())
    assert verify(amr.public_hex, canonical_bytes(again.license), again.signature)


def test_document_from_stored_row_uses_its_signature(amr: KeyPair) -> None:
    row = registry_row(amr)
    doc = LicenseDocument.from_record(row)
    assert doc.signature == row["signature"]
    assert doc.license["holder"] == HOLDER
    with pytest.raises(ValueError, match="no signature"):
        LicenseDocument.from_record({**row, "signature": None})


def _mutated(amr: KeyPair, change: str) -> object:
    body = json.loads(document(amr).to_json())
    lic = body["license"]
    changes: dict[str, Callable[[], object]] = {
        "extra top key": lambda: body.update(extra=1),
        "extra license key": lambda: lic.update(status="VALID"),
        "missing top key": lambda: body.pop("algorithm"),
        "missing license key": lambda: lic.pop("scope"),
        "format": lambda: body.update(format="citygraph-license/2"),
        "algorithm": lambda: body.update(algorithm="RSA-SHA256"),
        "issuer mismatch": lambda: body.update(issuer="AMR-330205"),
        "issuer type": lambda: body.update(issuer=5),
        "signature type": lambda: body.update(signature=["ab"]),
        "signature hex": lambda: body.update(signature="xyz0"),
        "signature odd": lambda: body.update(signature="abc"),
        "signature long": lambda: body.update(signature="ab" * 200),
        "number type": lambda: lic.update(number=913302),
        "number empty": lambda: lic.update(number=""),
        "date format": lambda: lic.update(issued_on="2020/05/06"),
        "date type": lambda: lic.update(valid_from=None),
        "valid_until type": lambda: lic.update(valid_until=20300101),
        "license type": lambda: body.update(license=[1, 2]),
        "unknown type": lambda: lic.update(type="PASSPORT"),
        "kind mismatch": lambda: lic.update(holder_kind="PERSON"),
        "bad holder": lambda: lic.update(holder=HOLDER[:-1] + ("0" if HOLDER[-1] != "0" else "1")),
        "lower-case holder": lambda: lic.update(holder=HOLDER.lower()),
        "long issuer code": lambda: (lic.update(issuer_code="X" * 40), body.update(issuer="X" * 40)),
    }
    changes[change]()
    return body


@pytest.mark.parametrize(
    "change",
    [
        "extra top key",
        "extra license key",
        "missing top key",
        "missing license key",
        "format",
        "algorithm",
        "issuer mismatch",
        "issuer type",
        "signature type",
        "signature hex",
        "signature odd",
        "signature long",
        "number type",
        "number empty",
        "date format",
        "date type",
        "valid_until type",
        "license type",
        "unknown type",
        "kind mismatch",
        "bad holder",
        "lower-case holder",
        "long issuer code",
    ],
)
def test_document_validation_is_strict(amr: KeyPair, change: str) -> None:
    with pytest.raises(ValueError, match="licence document") as excinfo:
        LicenseDocument.from_json(json.dumps(_mutated(amr, change)))
    assert str(excinfo.value)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '"text"', "null", "{" * 10, b"\xff\xfe"])
def test_document_must_be_a_json_object(text: str | bytes) -> None:
    with pytest.raises(ValueError, match="licence document"):
        LicenseDocument.from_json(text)


def test_document_size_is_bounded(amr: KeyPair) -> None:
    body = json.loads(document(amr).to_json())
    body["license"]["scope"] = "经营" * 30_000
    with pytest.raises(ValueError, match="larger than"):
        LicenseDocument.from_json(json.dumps(body, ensure_ascii=False))
    with pytest.raises(ValueError, match="JSON text"):
        LicenseDocument.from_json(123)  # type: ignore[arg-type]


def test_document_for_a_person(other: KeyPair) -> None:
    f = fields(
        number="330200123456",
        type="DRIVING_LICENSE",
        holder_kind="PERSON",
        holder=PERSON,
        issuer_code="TRAFFIC-3302",
        scope="C1",
    )
    doc = LicenseDocument.from_record(f, sign(other.private_hex, other.public_hex, canonical_bytes(f)))
    assert LicenseDocument.from_json(doc.to_json()) == doc


# --- Verdicts ---------------------------------------------------------------------------------


def check(
    record: Mapping[str, object],
    signature: str,
    issuer: Mapping[str, object] | None,
    registry: Mapping[str, object] | None,
    other_issuers: Sequence[Mapping[str, object]] = (),
) -> str:
    result = verify_license(record, signature, issuer, registry, TODAY, other_issuers=other_issuers, checked_at=NOW)
    assert result.valid == (result.reason == "VALID")
    assert result.reason in VERDICTS
    return result.reason


def test_valid_stored_and_presented(amr: KeyPair) -> None:
    row = registry_row(amr)
    result = verify_license(row, str(row["signature"]), issuer_row(amr), row, TODAY, checked_at=NOW)
    assert result.valid and result.reason == "VALID"
    assert result.checked_at == NOW
    assert (result.number, result.type, result.issuer_name, result.status) == (
        HOLDER,
        "BUSINESS_LICENSE",
        "宁波市海曙区市场监督管理局",
        "VALID",
    )
    assert (result.issued_on, result.valid_from, result.valid_until) == (date(2020, 5, 6), date(2018, 3, 1), None)
    assert result.description.startswith("证照有效")
    doc = LicenseDocument.from_json(LicenseDocument.from_record(row).to_json())
    assert check(doc.license, doc.signature, issuer_row(amr), row) == "VALID"
    assert verify_license(row, str(row["signature"]), issuer_row(amr), row, TODAY).checked_at.tzinfo is not None


def test_result_never_carries_the_holder(amr: KeyPair) -> None:
    row = registry_row(amr)
    result = verify_license(row, str(row["signature"]), issuer_row(amr), row, TODAY)
    names = {f.name for f in dataclasses.fields(result)}
    assert not any("holder" in n for n in names)
    assert HOLDER not in {str(getattr(result, n)) for n in names if n != "number"}


def test_not_found(amr: KeyPair) -> None:
    doc = document(amr)
    result = verify_license(doc.license, doc.signature, issuer_row(amr), None, TODAY, checked_at=NOW)
    assert (result.valid, result.reason, result.number) == (False, "NOT_FOUND", HOLDER)
    assert result.type is None and result.issuer_name is None and result.status is None
    # Not found wins over everything, even an unknown issuer and a bad signature.
    assert check(doc.license, "00", None, None) == "NOT_FOUND"


def test_unknown_issuer(amr: KeyPair) -> None:
    row = registry_row(amr)
    sig = str(row["signature"])
    assert check(row, sig, None, row) == "UNKNOWN_ISSUER"
    assert check(row, sig, issuer_row(amr, active=False), row) == "UNKNOWN_ISSUER"
    assert check(row, sig, issuer_row(amr, algorithm="RSA-SHA256"), row) == "UNKNOWN_ISSUER"
    assert check(row, sig, issuer_row(amr, code="AMR-330205"), row) == "UNKNOWN_ISSUER"
    # Checked before the signature: a garbage signature by an unknown issuer is still UNKNOWN_ISSUER.
    assert check(row, "zz", issuer_row(amr, active=False), row) == "UNKNOWN_ISSUER"


def test_bad_signature_presented(amr: KeyPair, other: KeyPair) -> None:
    row = registry_row(amr)
    forged = document(other)  # same fields, signed by someone else's key
    assert check(forged.license, forged.signature, issuer_row(amr), row) == "BAD_SIGNATURE"
    assert check(forged.license, "ab" * 64, issuer_row(amr), row) == "BAD_SIGNATURE"
    assert check(forged.license, "", issuer_row(amr), row) == "BAD_SIGNATURE"
    # Altered fields with a signature that is not the registry's: a forgery, not a tampering.
    altered = document(other, valid_until=date(2099, 1, 1))
    assert check(altered.license, altered.signature, issuer_row(amr), row) == "BAD_SIGNATURE"


def test_tampered_presented(amr: KeyPair) -> None:
    row = registry_row(amr)
    genuine = LicenseDocument.from_record(row)
    for change in ({"valid_until": "2099-12-31"}, {"scope": "一般项目：危险化学品经营。"}, {"issued_on": "2020-05-07"}):
        altered = {**genuine.license, **change}
        assert check(altered, genuine.signature, issuer_row(amr), row) == "TAMPERED"
    # The registry's signature recognised by equality when the document names another issuer.
    moved = {**genuine.license, "issuer_code": "AMR-330205"}
    assert check(moved, genuine.signature, issuer_row(amr, code="AMR-330205"), row) == "TAMPERED"


def test_tampered_or_bad_signature_stored(amr: KeyPair, other: KeyPair) -> None:
    others = [issuer_row(other, code="AMR-3302", name="宁波市市场监督管理局")]
    # A signed field changed in the registry after signing.
    changed = registry_row(amr, valid_until=date(2099, 12, 31))
    assert check(changed, str(changed["signature"]), issuer_row(amr), changed) == "TAMPERED"
    assert check(changed, str(changed["signature"]), issuer_row(amr), changed, other_issuers=others) == "TAMPERED"
    # The stored signature replaced by another registered issuer's signature over the same fields.
    resigned = registry_row(amr)
    resigned["signature"] = sign(other.private_hex, other.public_hex, canonical_bytes(resigned), deterministic=True)
    sig = str(resigned["signature"])
    assert check(resigned, sig, issuer_row(amr), resigned, other_issuers=others) == "BAD_SIGNATURE"
    assert check(resigned, sig, issuer_row(amr), resigned) == "TAMPERED"  # without other keys: unexplained
    # The issuer's own row among the others changes nothing.
    assert check(changed, str(changed["signature"]), issuer_row(amr), changed, other_issuers=[issuer_row(amr)]) == (
        "TAMPERED"
    )


@pytest.mark.parametrize(
    ("status", "changes", "verdict"),
    [
        ("REVOKED", {}, "REVOKED"),
        ("SUSPENDED", {}, "SUSPENDED"),
        ("EXPIRED", {}, "EXPIRED"),
        ("VALID", {"valid_until": TODAY - timedelta(days=1)}, "EXPIRED"),
        ("VALID", {"valid_until": TODAY}, "VALID"),  # the last day is still valid
        ("VALID", {"valid_from": TODAY + timedelta(days=1)}, "NOT_YET_VALID"),
        ("VALID", {"valid_from": TODAY}, "VALID"),
        ("REVOKED", {"valid_until": TODAY - timedelta(days=400)}, "REVOKED"),  # revoked before expired
        ("SUSPENDED", {"valid_until": TODAY - timedelta(days=1)}, "SUSPENDED"),
    ],
)
def test_registry_status_and_dates(amr: KeyPair, status: str, changes: dict[str, object], verdict: str) -> None:
    signed = {**fields(), **changes}
    row = {**registry_row(amr, status=status), **changes}
    row["signature"] = sign(amr.private_hex, amr.public_hex, canonical_bytes(signed), deterministic=True)
    assert check(row, str(row["signature"]), issuer_row(amr), row) == verdict


def test_check_order(amr: KeyPair) -> None:
    # A tampered record is TAMPERED even when it is also revoked and expired.
    row = registry_row(amr, status="REVOKED", valid_until=TODAY - timedelta(days=10))
    assert check(row, str(row["signature"]), issuer_row(amr), row) == "TAMPERED"
    # A bad signature on a revoked licence is BAD_SIGNATURE.
    revoked = registry_row(amr, status="REVOKED")
    assert check(revoked, "01" * 64, issuer_row(amr), revoked) == "BAD_SIGNATURE"
    # An unknown issuer wins over a tampered record.
    assert check(row, str(row["signature"]), issuer_row(amr, active=False), row) == "UNKNOWN_ISSUER"


def test_presented_genuine_earlier_version_is_judged_by_the_registry(amr: KeyPair) -> None:
    # The licence was renewed under the same number: the old document is genuine, the registry's
    # current record decides status and dates.
    old = document(amr, valid_until=date(2024, 12, 31))
    current = registry_row(amr, status="REVOKED")
    assert check(old.license, old.signature, issuer_row(amr), current) == "REVOKED"
    assert check(old.license, old.signature, issuer_row(amr), registry_row(amr)) == "VALID"


def test_malformed_presented_fields_raise(amr: KeyPair) -> None:
    row = registry_row(amr)
    with pytest.raises(ValueError, match="issued_on"):
        verify_license({**row, "issued_on": "yesterday"}, str(row["signature"]), issuer_row(amr), row, TODAY)
