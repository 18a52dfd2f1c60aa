"""The license store over real HTTP: dossier, policies on persons and licences, verification."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.identifiers import is_valid_id_number
from connectors.license.signing import LicenseDocument
from tests.conftest import LiveServer, TokenFactory


@pytest.fixture(scope="module")
def live(live_each: LiveServer) -> LiveServer:
    """Every test here runs against the SQLite demo, then against the same data in PostgreSQL."""
    return live_each


DOSSIER = """query Dossier($u: USCC!) { enterprise(uscc: $u) {
  uscc name address districtCode industry establishedOn status registeredCapital
  legalRepresentative { idNumber name phone }
  licenses { number type issuer validUntil status }
  credit { rating records { kind title } } } }"""


def license_db(demo_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(demo_dir / "license.sqlite")


def an_enterprise(demo_dir: Path) -> tuple[str, str]:
    """An enterprise with a second licence and credit records, and its legal representative's ID."""
    with license_db(demo_dir) as conn:
        row = conn.execute(
            "SELECT e.uscc, e.legal_rep_id_number FROM enterprises e JOIN licenses l ON l.holder_uscc = e.uscc "
            "WHERE l.type != 'BUSINESS_LICENSE' ORDER BY e.uscc LIMIT 1"
        ).fetchone()
    return str(row[0]), str(row[1])


def test_dossier_for_market_supervision(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    uscc, rep = an_enterprise(demo_dir)
    body = live.post(DOSSIER, token(dept="market_supervision", clearance=3), variables={"u": uscc}).json()
    enterprise = body["data"]["enterprise"]
    assert (
        enterprise["uscc"] == uscc
        and enterprise["name"]
        and enterprise["status"] in {"EXISTING", "REVOKED", "CANCELLED"}
    )
    assert {lic["type"] for lic in enterprise["licenses"]} >= {"BUSINESS_LICENSE"} and len(enterprise["licenses"]) >= 2
    masked = enterprise["legalRepresentative"]["idNumber"]
    assert masked[:3] == rep[:3] and masked[-4:] == rep[-4:] and masked[6:14] == "*" * 8
    assert set(enterprise["legalRepresentative"]["name"][1:]) == {"*"}
    assert enterprise["credit"]["rating"] in {"A", "B", "C", "D"}


def test_police_with_purpose_see_the_person_unmasked(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    uscc, rep = an_enterprise(demo_dir)
    headers = {"X-Purpose-Of-Use": "case_investigation", "X-Case-Ref": "GA-2026-001"}
    bearer = token(dept="public_security", roles=["investigator"], clearance=3)
    body = live.post(DOSSIER, bearer, variables={"u": uscc}, headers=headers).json()
    person = body["data"]["enterprise"]["legalRepresentative"]
    assert person["idNumber"] == rep and is_valid_id_number(person["idNumber"])
    query = 'query { person(idNumber: "%s") { idNumber licenses { type number } } }' % rep
    found = live.post(query, bearer, headers=headers).json()
    assert "RESIDENT_ID" in {lic["type"] for lic in found["data"]["person"]["licenses"]}


def test_police_without_purpose_are_refused(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    uscc, _ = an_enterprise(demo_dir)
    bearer = token(dept="public_security", roles=["investigator"], clearance=3)
    body = live.post(DOSSIER, bearer, variables={"u": uscc}).json()
    assert body["data"]["enterprise"]["legalRepresentative"]["idNumber"] is None
    assert "PURPOSE_REQUIRED" in {e["extensions"]["code"] for e in body["errors"]}


def test_only_police_look_persons_up_by_id_number(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    _, rep = an_enterprise(demo_dir)
    body = live.post('{ person(idNumber: "%s") { name } }' % rep, token(dept="market_supervision", clearance=4)).json()
    assert body["data"]["person"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_public_sees_registration_but_no_personal_data(live: LiveServer, demo_dir: Path) -> None:
    uscc, rep = an_enterprise(demo_dir)
    body = live.post(DOSSIER, variables={"u": uscc}).json()
    enterprise = body["data"]["enterprise"]
    assert enterprise["name"] and enterprise["address"]
    assert enterprise["legalRepresentative"]["idNumber"] is None and enterprise["legalRepresentative"]["name"] is None
    assert rep not in json.dumps(body, ensure_ascii=False) and rep[6:14] not in json.dumps(body)


def test_person_licences_invisible_to_non_police(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    _, rep = an_enterprise(demo_dir)
    body = live.post('{ license(number: "%s") { type } }' % rep, token(dept="market_supervision")).json()
    assert body["data"]["license"] is None  # the same answer as for a number that does not exist


def test_masked_fields_cannot_be_filtered(live: LiveServer) -> None:
    body = live.post('{ enterprises(filter: {legalRepresentative: "王"}) { nodes { uscc } } }').json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_district_officer_lists_own_enterprises(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    with license_db(demo_dir) as conn:
        expected = {r[0] for r in conn.execute("SELECT uscc FROM enterprises WHERE district_code = '330212'")}
    bearer = token(roles=["district_officer"], districts=["330212"])
    seen: set[str] = set()
    after = None
    while True:
        page = live.post(
            "query($a: String) { enterprises(first: 100, after: $a) { "
            "nodes { uscc districtCode } pageInfo { hasNextPage endCursor } } }",
            bearer,
            variables={"a": after},
        ).json()["data"]["enterprises"]
        seen |= {n["uscc"] for n in page["nodes"]}
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected and expected


@pytest.fixture
def statements(live: LiveServer) -> Iterator[dict[str, int]]:
    with live.counting_statements("credit", "license") as counts:
        yield counts


PAGE = """query($n: Int) { enterprises(first: $n) { nodes { uscc name legalRepresentative { name }
  licenses { type status } credit { rating records { kind } } } } }"""


def test_a_page_of_dossiers_costs_constant_statements_per_connector(
    live: LiveServer, token: TokenFactory, statements: dict[str, int]
) -> None:
    bearer = token(dept="market_supervision")
    seen = []
    for n in (10, 100):
        before = dict(statements)
        body = live.post(PAGE, bearer, variables={"n": n}).json()
        assert "errors" not in body and len(body["data"]["enterprises"]["nodes"]) == n
        seen.append({k: statements[k] - before[k] for k in statements})
    # license: enterprises page, persons, licences; credit: profiles, records
    assert seen[0] == seen[1] == {"license": 3, "credit": 2}


def verify(live: LiveServer, number: str, bearer: str | None = None) -> dict[str, Any]:
    body = live.post('{ verifyLicense(number: "%s") { valid verdict type issuer validUntil } }' % number, bearer).json()
    result: dict[str, Any] = body["data"]["verifyLicense"]
    return result


def verdicts_of(live: LiveServer, numbers: list[str], per_request: int = 15) -> dict[str, str]:
    """The public's verdict for each number, ``per_request`` aliased verifications per request
    (the alias limit): one request per licence made this the suite's slowest test."""
    verdicts: dict[str, str] = {}
    for start in range(0, len(numbers), per_request):
        chunk = numbers[start : start + per_request]
        fields = " ".join('v%d: verifyLicense(number: "%s") { verdict }' % (i, n) for i, n in enumerate(chunk))
        body = live.post("{ %s }" % fields).json()
        assert "errors" not in body, body
        verdicts.update({n: body["data"][f"v{i}"]["verdict"] for i, n in enumerate(chunk)})
    return verdicts


def test_each_verification_verdict(live: LiveServer, demo_dir: Path) -> None:
    with license_db(demo_dir) as conn:
        cases = dict(
            conn.execute(
                'SELECT l.number, c."case" FROM demo_cases c JOIN licenses l USING (number) '
                "WHERE l.holder_kind = 'ENTERPRISE'"
            ).fetchall()
        )
    assert {"ok", "tampered", "unknown_issuer", "revoked"} <= set(cases.values())  # the demo data carries the cases
    verdicts = verdicts_of(live, sorted(cases))
    wrong = {n: (cases[n], v) for n, v in verdicts.items() if v != ("VALID" if cases[n] == "ok" else cases[n].upper())}
    assert not wrong and len(verdicts) == len(cases)
    assert verify(live, "NO-SUCH-LICENCE")["verdict"] == "NOT_FOUND"


DOC = "query($d: String!) { verifyLicenseDocument(document: $d) { valid verdict reason number type issuer } }"


def a_document(demo_dir: Path, holder_kind: str) -> tuple[LicenseDocument, str]:
    with license_db(demo_dir) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT l.* FROM licenses l JOIN demo_cases c USING (number) WHERE c.\"case\" = 'ok' "
            "AND holder_kind = ? LIMIT 1",
            (holder_kind,),
        ).fetchone()
    record = dict(row)
    holder = record["holder_uscc"] or record["holder_id_number"]
    return LicenseDocument.from_record(record, record["signature"]), str(holder)


@pytest.mark.parametrize("holder_kind", ["ENTERPRISE", "PERSON"])
def test_a_presented_document_verifies_for_the_public(live: LiveServer, demo_dir: Path, holder_kind: str) -> None:
    document, holder = a_document(demo_dir, holder_kind)
    body = live.post(DOC, variables={"d": document.to_json()}).json()
    result = body["data"]["verifyLicenseDocument"]
    assert result["valid"] is True and result["verdict"] == "VALID" and result["issuer"]
    assert holder not in json.dumps(body, ensure_ascii=False)  # never the holder


def test_a_tampered_document_is_caught(live: LiveServer, demo_dir: Path) -> None:
    document, _ = a_document(demo_dir, "ENTERPRISE")
    raw = json.loads(document.to_json())
    raw["license"]["valid_until"] = "2099-12-31"
    result = live.post(DOC, variables={"d": json.dumps(raw)}).json()["data"]["verifyLicenseDocument"]
    assert result == {**result, "valid": False, "verdict": "TAMPERED"}


def test_a_malformed_document_is_bad_user_input(live: LiveServer) -> None:
    body = live.post(DOC, variables={"d": '{"format": "citygraph-license/1"}'}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "document" in body["errors"][0]["message"]


def test_invalid_id_numbers_are_never_echoed(live: LiveServer, token: TokenFactory) -> None:
    bad = "330203198807151235"  # wrong check digit
    bearer = token(dept="public_security", clearance=3)
    for body in (
        live.post('{ person(idNumber: "%s") { name } }' % bad, bearer).json(),
        live.post("query($i: IDNumber!) { person(idNumber: $i) { name } }", bearer, variables={"i": bad}).json(),
    ):
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert bad not in json.dumps(body) and "19880715" not in json.dumps(body)


def test_reads_fetch_only_the_columns_the_query_selects(live: LiveServer, token: TokenFactory) -> None:
    """Data minimisation: registration, person and licence columns no selected field reads (phone
    numbers, addresses, licence scopes) never leave the license store; selecting them reads them."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    def sql_from(table: str) -> str:
        (statement,) = {s for s in seen if f"FROM {table}" in s}  # an interrupted read runs twice
        return statement

    bearer = token(dept="market_supervision", clearance=4)
    lean_query = "{ enterprises(first: 3) { nodes { name legalRepresentative { name } licenses { type } } } }"
    with live.on_statements("license", record):
        lean = live.post(lean_query, bearer).json()
    assert "errors" not in lean
    nodes = lean["data"]["enterprises"]["nodes"]
    assert len(nodes) == 3 and all(n["name"] and n["legalRepresentative"]["name"] and n["licenses"] for n in nodes)
    assert "enterprises.name" in sql_from("enterprises")
    assert not {"enterprises.phone", "enterprises.address"} & set(sql_from("enterprises").replace(",", " ").split())
    assert "persons.name" in sql_from("persons") and "persons.phone" not in sql_from("persons")
    assert "persons.address" not in sql_from("persons")
    assert "licenses.type" in sql_from("licenses") and "licenses.scope" not in sql_from("licenses")

    seen.clear()
    full_query = """{ enterprises(first: 3) { nodes { address phone legalRepresentative { address phone }
      licenses { scope issuer } } } }"""
    with live.on_statements("license", record):
        police = token(dept="public_security", roles=["investigator"], clearance=3)
        case = {"X-Purpose-Of-Use": "case_investigation", "X-Case-Ref": "GA-2026-001"}
        full = live.post(full_query, police, headers=case).json()
    assert "errors" not in full, full["errors"]
    nodes = full["data"]["enterprises"]["nodes"]
    assert all(n["address"] and n["legalRepresentative"]["address"] and n["licenses"][0]["scope"] for n in nodes)
    assert "enterprises.phone" in sql_from("enterprises") and "persons.phone" in sql_from("persons")
    assert "licenses.scope" in sql_from("licenses") and "issuers.name" in sql_from("licenses")

    # Only links of the enterprises selected: their keys and relations, nothing else.
    seen.clear()
    links = "{ creditRecords(first: 3) { nodes { enterprise { credit { rating } } } } }"
    with live.on_statements("license", record):
        linked = live.post(links, bearer).json()
    assert "errors" not in linked
    assert all(n["enterprise"]["credit"] for n in linked["data"]["creditRecords"]["nodes"])
    columns = sql_from("enterprises").split(" FROM ")[0]
    assert "enterprises.uscc" in columns and "enterprises.name" not in columns
    assert "enterprises.phone" not in columns and "enterprises.address" not in columns
