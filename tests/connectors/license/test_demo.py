"""The license demo data: built on the credit demo's enterprises, signed, with one row per demo case."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from connectors.credit.demo import generate as generate_credit
from connectors.credit.tables import credit_records, credit_subjects
from connectors.identifiers import NINGBO_DISTRICTS, is_valid_id_number, is_valid_uscc
from connectors.license import tables
from connectors.license.demo import DEMO_CASE_VERDICTS, LicenseDemoStats, demo_cases, generate
from connectors.license.signing import ALGORITHM, LicenseDocument, verify_license
from connectors.license.tables import (
    ENTERPRISE_STATUSES,
    HOLDER_KIND_BY_TYPE,
    LICENSE_STATUSES,
    enterprises,
    issuers,
    licenses,
    persons,
)

TODAY = date(2025, 6, 1)
TABLES = ("persons", "issuers", "enterprises", "licenses", "demo_cases")


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


@pytest.fixture(scope="module")
def credit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("credit") / "credit.sqlite"
    generate_credit(path, scale=100, seed=7, today=TODAY)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, credit_db: Path) -> LicenseDemoStats:
    # Two signing processes even at this size, so the pool path is exercised.
    return generate(tmp_path_factory.mktemp("license") / "license.sqlite", credit_db=credit_db, today=TODAY, workers=2)


@pytest.fixture(scope="module")
def engine(demo: LicenseDemoStats) -> Iterator[Engine]:
    e = create_engine(f"sqlite:///{demo.path}")
    yield e
    e.dispose()


def rows(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


@pytest.fixture(scope="module")
def credit(credit_db: Path) -> Iterator[Engine]:
    e = create_engine(f"sqlite:///{credit_db}")
    yield e
    e.dispose()


def test_stats_match_the_tables(demo: LicenseDemoStats, engine: Engine) -> None:
    assert demo.enterprises == len(rows(engine, enterprises)) == 100
    assert demo.persons == len(rows(engine, persons)) >= 100
    assert demo.licenses == len(rows(engine, licenses))
    cases = Counter(r["case"] for r in rows(engine, demo_cases))
    assert sum(cases.values()) == demo.licenses
    assert demo.signatures == demo.licenses + cases["bad_signature"]
    assert demo.seconds > 0


def test_every_credit_subject_has_an_enterprise_and_a_business_licence(engine: Engine, credit: Engine) -> None:
    subjects = {r["uscc"]: r for r in rows(credit, credit_subjects)}
    ents = {r["uscc"]: r for r in rows(engine, enterprises)}
    assert set(ents) == set(subjects)
    for uscc, s in subjects.items():
        assert (ents[uscc]["name"], ents[uscc]["district_code"]) == (s["name"], s["district_code"])
    business = {r["number"]: r for r in rows(engine, licenses) if r["type"] == "BUSINESS_LICENSE"}
    assert set(business) == set(subjects)
    for number, lic in business.items():
        assert lic["holder_kind"] == "ENTERPRISE" and lic["holder_uscc"] == number and lic["holder_id_number"] is None
        assert lic["valid_from"] == ents[number]["established_on"]
        assert lic["issuer_code"] in {"AMR-3302", "AMR-330204", f"AMR-{ents[number]['district_code']}"}


def test_legal_representatives_are_the_credit_records_people(engine: Engine, credit: Engine) -> None:
    reps: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in rows(credit, credit_records):
        reps[r["uscc"]].add((r["legal_rep_name"], r["legal_rep_id_number"]))
    people = {r["id_number"]: r for r in rows(engine, persons)}
    ents = {r["uscc"]: r for r in rows(engine, enterprises)}
    assert len(reps) > 50
    for uscc, named in reps.items():
        assert len(named) == 1  # the credit demo names one person on every record of an enterprise
        ((name, id_number),) = named
        assert ents[uscc]["legal_rep_id_number"] == id_number
        assert people[id_number]["name"] == name
    for e in ents.values():  # enterprises without records got a new person
        assert e["legal_rep_id_number"] in people


def test_identifiers_and_contact_details_are_valid(engine: Engine) -> None:
    for p in rows(engine, persons):
        assert is_valid_id_number(p["id_number"])
        assert p["birth_date"].strftime("%Y%m%d") == p["id_number"][6:14]
        assert re.fullmatch(r"1[3-9]\d{9}", p["phone"])
        assert p["district_code"] in NINGBO_DISTRICTS
        assert NINGBO_DISTRICTS[p["district_code"]][0] in p["address"] and p["address"].endswith("室")
    for e in rows(engine, enterprises):
        assert is_valid_uscc(e["uscc"])
        assert re.fullmatch(r"0574-\d{8}|1[3-9]\d{9}", e["phone"])
        assert NINGBO_DISTRICTS[e["district_code"]][0] in e["address"] and e["address"].endswith("号")


def test_enterprise_facts(engine: Engine, credit: Engine) -> None:
    earliest: dict[str, date] = {}
    for r in rows(credit, credit_records):
        earliest[r["uscc"]] = min(earliest.get(r["uscc"], r["decision_date"]), r["decision_date"])
    ents = rows(engine, enterprises)
    for e in ents:
        assert re.fullmatch(r"[A-T]\d{4}", e["industry_code"]) and e["industry_name"]
        assert e["registered_capital"] > 0 and e["registered_capital"] == round(e["registered_capital"], 2)
        assert e["status"] in ENTERPRISE_STATUSES
        assert e["established_on"] < earliest.get(e["uscc"], TODAY)
        if e["uscc"][8:11] == "MA2":
            assert e["established_on"] >= date(2015, 10, 1)
    statuses = Counter(e["status"] for e in ents)
    assert statuses["EXISTING"] > 80


def test_licences_per_holder_and_their_formats(engine: Engine) -> None:
    lics = rows(engine, licenses)
    people = {r["id_number"] for r in rows(engine, persons)}
    by_type: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lic in lics:
        by_type[lic["type"]].append(lic)
        assert HOLDER_KIND_BY_TYPE[lic["type"]] == lic["holder_kind"]
        assert lic["status"] in LICENSE_STATUSES
        assert re.fullmatch(r"[0-9a-f]{128}", lic["signature"]) and lic["sign_version"] == 1
    assert {r["number"] for r in by_type["RESIDENT_ID"]} == people
    assert all(r["holder_id_number"] == r["number"] for r in by_type["RESIDENT_ID"])
    assert 0.4 < len(by_type["DRIVING_LICENSE"]) / len(people) < 0.8
    assert all(
        re.fullmatch(r"3302\d{8}", r["number"]) and r["scope"] in {"C1", "C2", "B2", "A2", "A1"}
        for r in by_type["DRIVING_LICENSE"]
    )
    other = [r for t in ("FOOD_BUSINESS", "CONSTRUCTION", "ROAD_TRANSPORT") for r in by_type[t]]
    assert 0.15 < len({r["holder_uscc"] for r in other}) / 100 < 0.45
    assert all(re.fullmatch(r"JY[123]\d{13}", r["number"]) for r in by_type["FOOD_BUSINESS"])
    assert all(re.fullmatch(r"浙交运管许可甬字\d{12}号", r["number"]) for r in by_type["ROAD_TRANSPORT"])
    assert all(re.fullmatch(r"\d{18}", r["number"]) for r in by_type["CONSTRUCTION"])


def test_statuses_agree_with_dates_and_enterprises(engine: Engine) -> None:
    ents = {r["uscc"]: r for r in rows(engine, enterprises)}
    for lic in rows(engine, licenses):
        expired = lic["valid_until"] is not None and lic["valid_until"] < TODAY
        if lic["status"] in ("VALID", "EXPIRED"):
            assert (lic["status"] == "EXPIRED") == expired
        assert lic["valid_from"] <= TODAY and lic["issued_on"] <= TODAY
        if lic["holder_uscc"] and ents[lic["holder_uscc"]]["status"] != "EXISTING":
            assert lic["status"] == "REVOKED"


def test_issuers(engine: Engine) -> None:
    rows_ = rows(engine, issuers)
    assert [r["code"] for r in rows_ if not r["active"]] == ["AMR-330204"]
    assert all(r["algorithm"] == ALGORITHM and re.fullmatch(r"04[0-9a-f]{128}", r["public_key"]) for r in rows_)
    assert len({r["public_key"] for r in rows_}) == len(rows_)
    assert {lic["issuer_code"] for lic in rows(engine, licenses)} <= {r["code"] for r in rows_}


def test_every_demo_case_gets_its_verdict(engine: Engine) -> None:
    registry = {r["code"]: r for r in rows(engine, issuers)}
    cases = {r["number"]: r["case"] for r in rows(engine, demo_cases)}
    seen: Counter[str] = Counter()
    for lic in rows(engine, licenses):
        case = cases[lic["number"]]
        result = verify_license(
            lic, lic["signature"], registry.get(lic["issuer_code"]), lic, TODAY, other_issuers=registry.values()
        )
        assert result.reason == DEMO_CASE_VERDICTS[case], (lic["number"], case)
        seen[case] += 1
    assert set(seen) == set(DEMO_CASE_VERDICTS)
    assert seen["ok"] > 0.8 * sum(seen.values())


def test_ok_licences_verify_as_presented_documents(engine: Engine) -> None:
    registry = {r["code"]: r for r in rows(engine, issuers)}
    cases = {r["number"]: r["case"] for r in rows(engine, demo_cases)}
    stored = {r["number"]: r for r in rows(engine, licenses)}
    sample = [n for n in sorted(stored) if cases[n] == "ok"][::20]
    for number in sample:
        doc = LicenseDocument.from_json(LicenseDocument.from_record(stored[number]).to_json())
        result = verify_license(doc.license, doc.signature, registry[doc.issuer], stored[number], TODAY)
        assert result.reason == "VALID"
        altered = {**doc.license, "scope": str(doc.license["scope"]) + "。"}
        assert verify_license(altered, doc.signature, registry[doc.issuer], stored[number], TODAY).reason == "TAMPERED"


def test_deterministic_whatever_the_workers(tmp_path: Path, demo: LicenseDemoStats, credit_db: Path) -> None:
    target = tmp_path / "again.sqlite"
    target.write_bytes(b"not a database")  # replaced, not appended to
    again = generate(target, credit_db=credit_db, today=TODAY, workers=1)
    assert dump(again.path) == dump(demo.path)
    other = generate(tmp_path / "other.sqlite", credit_db=credit_db, seed=8, today=TODAY, workers=1)
    assert dump(other.path) != dump(demo.path)
    assert dump(other.path)["enterprises"][0][0] == dump(demo.path)["enterprises"][0][0]  # same USCCs
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_missing_credit_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="credit demo database"):
        generate(tmp_path / "x.sqlite", credit_db=tmp_path / "missing.sqlite", today=TODAY)
    assert list(tmp_path.iterdir()) == []


def test_demo_cases_are_not_part_of_the_schema() -> None:
    assert "demo_cases" not in tables.metadata.tables
