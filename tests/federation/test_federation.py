"""Subgraph mode proven with Apollo's own tools: composition, Apollo Gateway, identity across the hop."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLUnionType,
    build_schema,
)
from typer.testing import CliRunner

from connectors.identifiers import make_uscc
from connectors.registry import enable
from gateway import _limits, cli
from schema.builder import build_schema as build_combined
from schema.federation import build_subgraph, subgraph_names
from tests.conftest import LiveServer, TokenFactory, make_settings
from tests.federation.conftest import Router
from tests.federation.node import compose, run_node

DOSSIER = """query Dossier($u: USCC!) { enterprise(uscc: $u) {
  uscc name address districtCode industry establishedOn status registeredCapital
  legalRepresentative { idNumber name phone }
  licenses { number type issuer validUntil status }
  credit { rating score records { kind title decisionNumber legalRepIdNumber } }
  location { geometry crs district { adcode name } } } }"""

POLICE = {"X-Purpose-Of-Use": "case_investigation", "X-Case-Ref": "GA-2026-001"}


def shape(sdl: str) -> dict[str, Any]:
    """Types, fields, arguments, defaults and descriptions of a schema, without directives."""
    out: dict[str, Any] = {}
    for name, t in build_schema(sdl).type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(t, GraphQLObjectType | GraphQLInputObjectType):
            fields = {}
            for field_name, f in t.fields.items():
                args = {a: (str(v.type), repr(v.default_value)) for a, v in getattr(f, "args", {}).items()}
                fields[field_name] = (str(f.type), f.description, args)
            out[name] = (type(t).__name__, t.description, fields)
        elif isinstance(t, GraphQLEnumType):
            out[name] = ("enum", t.description, sorted(t.values))
        elif isinstance(t, GraphQLUnionType):
            out[name] = ("union", sorted(m.name for m in t.types))
        else:
            out[name] = ("scalar", t.description)
    return out


def subgraph_services(demo_dir: Path) -> tuple[list[dict[str, str]], str]:
    settings = make_settings(demo_dir, spatial=True)
    connectors = enable(settings.connectors, settings.data_dir)
    services = [
        {"name": n, "url": f"http://127.0.0.1:1/{n}", "sdl": build_subgraph(connectors, n, _limits(settings)).sdl}
        for n in subgraph_names(connectors)
    ]
    return services, str(build_combined(connectors, _limits(settings)).schema)


def test_subgraphs_compose_into_the_combined_schema(node_dir: Path, demo_dir: Path) -> None:
    services, combined = subgraph_services(demo_dir)
    assert {s["name"] for s in services} == {"credit", "license", "spatial", "gateway"}
    result = compose(services)
    assert "errors" not in result, result.get("errors")
    assert shape(str(result["apiSchema"])) == shape(combined)
    supergraph = str(result["supergraphSdl"])
    for graph, key in (("LICENSE", "uscc"), ("CREDIT", "uscc"), ("SPATIAL", "uscc"), ("LICENSE", "idNumber")):
        assert f'@join__type(graph: {graph}, key: "{key}", resolvable: true)' in supergraph
    assert '@join__type(graph: SPATIAL, key: "adcode", resolvable: true)' in supergraph


def an_enterprise(demo_dir: Path) -> tuple[str, str]:
    """An enterprise with several licences, credit records and a location, and its representative's ID."""
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        row = conn.execute(
            "SELECT e.uscc, e.legal_rep_id_number FROM enterprises e JOIN licenses l ON l.holder_uscc = e.uscc "
            "WHERE l.type != 'BUSINESS_LICENSE' ORDER BY e.uscc LIMIT 1"
        ).fetchone()
    return str(row[0]), str(row[1])


def normalized(body: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    """Data, and the (path, code) of each error: what a client sees, whichever server answered."""
    errors = sorted(
        (".".join(str(p) for p in e.get("path") or []), str((e.get("extensions") or {}).get("code")))
        for e in body.get("errors") or []
    )
    return body.get("data"), errors


@pytest.mark.parametrize(
    ("who", "headers"),
    [
        ({"dept": "market_supervision", "clearance": 3}, {}),
        ({"dept": "public_security", "roles": ["investigator"], "clearance": 3}, POLICE),
        ({"dept": "public_security", "roles": ["investigator"], "clearance": 3}, {}),
        (None, {}),
    ],
    ids=["market-supervision", "police-with-purpose", "police-without-purpose", "public"],
)
def test_dossier_through_apollo_gateway_equals_combined(
    apollo_gateway: Router,
    combined: LiveServer,
    token: TokenFactory,
    demo_dir: Path,
    who: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    uscc, _ = an_enterprise(demo_dir)
    bearer = token(**who) if who else None
    direct = combined.post(DOSSIER, bearer, variables={"u": uscc}, headers=headers).json()
    routed = apollo_gateway.post(DOSSIER, bearer, variables={"u": uscc}, headers=headers).json()
    assert direct["data"]["enterprise"]["uscc"] == uscc
    assert normalized(routed) == normalized(direct)


def test_each_principal_gets_its_own_masking_through_the_router(
    apollo_gateway: Router, token: TokenFactory, demo_dir: Path
) -> None:
    uscc, rep = an_enterprise(demo_dir)
    market = apollo_gateway.post(DOSSIER, token(dept="market_supervision", clearance=3), variables={"u": uscc})
    police = apollo_gateway.post(
        DOSSIER,
        token(dept="public_security", roles=["investigator"], clearance=3),
        variables={"u": uscc},
        headers=POLICE,
    )
    masked = market.json()["data"]["enterprise"]["legalRepresentative"]["idNumber"]
    assert masked[:3] == rep[:3] and masked[6:14] == "*" * 8 and rep not in market.text
    assert police.json()["data"]["enterprise"]["legalRepresentative"]["idNumber"] == rep
    public = apollo_gateway.post(DOSSIER, variables={"u": uscc}).json()
    assert public["data"]["enterprise"]["legalRepresentative"]["idNumber"] is None and rep not in json.dumps(public)


def entities(server: LiveServer, typename: str, key: str, value: str, selection: str, bearer: str | None) -> Any:
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on %s { %s } } }" % (typename, selection)
    return server.post(query, bearer, variables={"r": [{"__typename": typename, key: value}]}).json()


def test_entities_answer_the_same_for_forbidden_and_missing_keys(
    subgraphs: dict[str, LiveServer], token: TokenFactory, demo_dir: Path
) -> None:
    license_ = subgraphs["license"]
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        own, other = (
            str(conn.execute(f"SELECT uscc FROM enterprises WHERE district_code {op} '330212' LIMIT 1").fetchone()[0])
            for op in ("=", "!=")
        )
    missing = make_uscc("9", "1", "330212", "YYYYYYYY")
    officer = token(dept="market_supervision", roles=["district_officer"], districts=["330212"])
    seen = entities(license_, "Enterprise", "uscc", own, "uscc name", officer)
    assert seen == {"data": {"_entities": [{"uscc": own, "name": seen["data"]["_entities"][0]["name"]}]}}
    forbidden = entities(license_, "Enterprise", "uscc", other, "uscc name", officer)
    assert forbidden == entities(license_, "Enterprise", "uscc", missing, "uscc name", officer)
    assert forbidden == {"data": {"_entities": [None]}}
    # A person is looked up by ID number only by the police: the same refusal whether or not they exist.
    _, rep = an_enterprise(demo_dir)
    market = token(dept="market_supervision", clearance=4)
    refused = entities(license_, "Person", "idNumber", rep, "name", market)
    absent = entities(license_, "Person", "idNumber", "11010519491231002X", "name", market)
    assert refused == absent and refused["data"]["_entities"] == [None]
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_entities_without_authorization_are_the_public_principal(
    subgraphs: dict[str, LiveServer], demo_dir: Path
) -> None:
    uscc, _ = an_enterprise(demo_dir)
    body = entities(
        subgraphs["license"], "Enterprise", "uscc", uscc, "name legalRepresentative { idNumber name }", None
    )
    assert body["data"]["_entities"][0]["name"] and body["data"]["_entities"][0]["legalRepresentative"] == {
        "idNumber": None,
        "name": None,
    }


@pytest.mark.parametrize("value", ["91330200MA2AFYKX7Z", "123"])
def test_a_malformed_key_is_bad_user_input(subgraphs: dict[str, LiveServer], value: str) -> None:
    body = entities(subgraphs["license"], "Enterprise", "uscc", value, "name", None)
    assert body["data"]["_entities"] == [None]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_bad_token_is_refused_by_the_subgraph_itself(subgraphs: dict[str, LiveServer]) -> None:
    response = subgraphs["credit"].post("{ _service { sdl } }", "not-a-jwt")
    assert response.status_code == 401 and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_subgraphs_audit_the_routed_read_with_the_callers_identity(
    apollo_gateway: Router, subgraph_audits: dict[str, Path], token: TokenFactory, demo_dir: Path
) -> None:
    uscc, rep = an_enterprise(demo_dir)
    bearer = token(dept="public_security", roles=["investigator"], clearance=3, sub="officer-7")
    headers = {**POLICE, "X-Request-Id": "fedtest-identity-0001"}
    body = apollo_gateway.post(DOSSIER, bearer, variables={"u": uscc}, headers=headers).json()
    assert body["data"]["enterprise"]["legalRepresentative"]["idNumber"] == rep
    for name in ("license", "credit"):
        with sqlite3.connect(subgraph_audits[name]) as conn:
            rows = conn.execute(
                "SELECT subject, purpose, case_ref FROM audit_log WHERE request_id = 'fedtest-identity-0001'"
            ).fetchall()
        assert rows and set(rows) == {("officer-7", "case_investigation", "GA-2026-001")}, name


def test_serve_refuses_an_unknown_subgraph() -> None:
    result = CliRunner().invoke(cli, ["serve", "--subgraph", "nonexistent"])
    assert result.exit_code == 2 and "no subgraph named 'nonexistent'" in result.output


def test_ftv1_traces_decode_with_apollos_protobuf(subgraphs: dict[str, LiveServer], demo_dir: Path) -> None:
    uscc, _ = an_enterprise(demo_dir)
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Enterprise { credit { rating } } } }"
    body = (
        subgraphs["credit"]
        .post(
            query,
            variables={"r": [{"__typename": "Enterprise", "uscc": uscc}]},
            headers={"apollo-federation-include-trace": "ftv1"},
        )
        .json()
    )
    assert body["data"]["_entities"][0]["credit"]["rating"] in {"A", "B", "C", "D"}
    done = run_node("decode-trace.mjs", stdin=body["extensions"]["ftv1"])
    trace = json.loads(done.stdout)
    assert trace["durationNs"] > 0 and trace["startTime"]["seconds"] <= trace["endTime"]["seconds"]
    entities_node = trace["root"]["child"][0]
    assert entities_node["responseName"] == "_entities" and entities_node["parentType"] == "Query"
    credit = entities_node["child"][0]["child"][0]
    assert (
        credit["responseName"] == "credit"
        and credit["type"] == "CreditProfile"
        and credit["parentType"] == "Enterprise"
    )
    untraced = subgraphs["credit"].post("{ __typename }").json()
    assert "extensions" not in untraced


def test_a_search_served_by_another_subgraph_is_unavailable_not_a_crash(subgraphs: dict[str, LiveServer]) -> None:
    query = "query($p: GeoJSON!) { districtAt(point: $p) { adcode enterprises(first: 1) { nodes { uscc } } } }"
    point = {"type": "Point", "coordinates": [121.55, 29.87]}
    body = subgraphs["spatial"].post(query, variables={"p": point}).json()
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert codes == {"CONNECTOR_UNAVAILABLE"}, body


def test_entities_are_loaded_in_one_batch(
    subgraphs: dict[str, LiveServer], token: TokenFactory, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = subgraphs["license"].app.state.gateway.runtime  # type: ignore[attr-defined]
    connector = runtime.connectors["license"]
    batches: list[list[str]] = []
    original = connector.fetch_many

    async def counted(request: Any) -> Any:
        batches.append(list(request.keys))
        return await original(request)

    monkeypatch.setattr(connector, "fetch_many", counted)
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        usccs = [str(r[0]) for r in conn.execute("SELECT uscc FROM enterprises ORDER BY uscc LIMIT 3")]
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Enterprise { uscc name } } }"
    representations = [{"__typename": "Enterprise", "uscc": u} for u in usccs]
    body = subgraphs["license"].post(query, token(dept="market_supervision"), variables={"r": representations}).json()
    assert [e["uscc"] for e in body["data"]["_entities"]] == usccs
    assert batches == [usccs]
