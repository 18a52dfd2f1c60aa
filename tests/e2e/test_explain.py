"""``policy explain`` says what execution then does: same masks, same denials, same row filter."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from policies.principal import Principal, Purpose
from schema.explain import explain
from tests.conftest import LiveServer, TokenFactory

QUERY = """{ enterprise(uscc: "%s") { name phone legalRepresentative { idNumber name phone }
  licenses { number type } credit { rating score records { title amount legalRepIdNumber internalNote } } } }"""


def walk(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (field path without list indexes, value) in a response."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in walk(v, (*path, k))]
    if isinstance(value, list):
        return [item for v in value for item in walk(v, path)]
    return [(path, value)]


def test_explain_matches_execution_for_a_district_officer(
    live: LiveServer, token: TokenFactory, demo_dir: Path
) -> None:
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        uscc = conn.execute(
            "SELECT uscc FROM credit_records WHERE district_code = '330203' GROUP BY uscc ORDER BY count(*) DESC"
        ).fetchone()[0]
    query = QUERY % uscc
    principal = Principal("officer", "market_supervision", frozenset({"district_officer"}), frozenset({"330203"}), 2)
    gateway = live.app.state.gateway  # type: ignore[attr-defined]
    explanation = asyncio.run(
        explain(gateway.runtime, gateway.built.schema._schema, query, principal=principal, purpose=Purpose())
    )
    verdicts = {v.coordinate: v for v in explanation.coordinates}
    body = live.post(
        query, token(sub="officer", dept="market_supervision", roles=["district_officer"], districts=["330203"])
    ).json()

    leaf = {
        ("enterprise", "legalRepresentative", "idNumber"): "Person.idNumber",
        ("enterprise", "legalRepresentative", "name"): "Person.name",
        ("enterprise", "credit", "records", "legalRepIdNumber"): "CreditRecord.legalRepIdNumber",
        ("enterprise", "credit", "records", "internalNote"): "CreditRecord.internalNote",
        ("enterprise", "credit", "records", "amount"): "CreditRecord.amount",
        ("enterprise", "credit", "score"): "CreditProfile.score",
        ("enterprise", "phone"): "Enterprise.phone",
    }
    values = walk(body["data"])
    errors = {
        tuple(str(p) for p in e["path"] if not isinstance(p, int)): e["extensions"]["code"]
        for e in body.get("errors", [])
    }
    for path, coordinate in leaf.items():
        verdict = verdicts[coordinate]
        seen = [v for p, v in values if p == ("data", *path)[1:]] or [v for p, v in values if p == path]
        if verdict.action == "deny":
            assert errors.get(path) == verdict.code, (coordinate, errors)
            assert all(v is None for v in seen)
        elif verdict.action == "mask":
            assert path not in errors and seen and all(v is None or "*" in v for v in seen), coordinate
        else:
            assert path not in errors, coordinate
    [records] = [t for t in explanation.types if t.type == "CreditRecord"]
    assert records.filter == {
        "type": "field",
        "field": "credit_records.district_code",
        "operator": "in",
        "value": ["330203"],
    }
    assert explanation.revision == live.app.state.gateway.runtime.engine.status().revision  # type: ignore[attr-defined]
