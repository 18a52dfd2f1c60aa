"""GraphQL over HTTP, identity and bad input, over real HTTP."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from connectors.identifiers import make_uscc
from tests.conftest import SECRET, LiveServer, TokenFactory


def first_uscc(demo_dir: Path) -> str:
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        return str(conn.execute("SELECT uscc FROM credit_subjects ORDER BY uscc LIMIT 1").fetchone()[0])


def test_first_query_returns_an_enterprise(live: LiveServer, demo_dir: Path) -> None:
    uscc = first_uscc(demo_dir)
    body = live.post('{ enterprise(uscc: "%s") { uscc name credit { rating } } }' % uscc).json()
    assert body["data"]["enterprise"]["uscc"] == uscc
    assert body["data"]["enterprise"]["credit"]["rating"] in {"A", "B", "C", "D"}


def test_unknown_valid_uscc_is_null(live: LiveServer) -> None:
    unknown = make_uscc("9", "1", "330203", "YYYYYYYY")
    body = live.post('{ enterprise(uscc: "%s") { uscc } }' % unknown).json()
    assert body == {"data": {"enterprise": None}}


@pytest.mark.parametrize("uscc", ["91330200MA2AFYKX7Z", "123", "91330200MA2AFYKX7I"])
def test_invalid_uscc_is_bad_user_input(live: LiveServer, uscc: str) -> None:
    literal = live.post('{ enterprise(uscc: "%s") { uscc } }' % uscc).json()
    assert literal["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "USCC" in literal["errors"][0]["message"]
    variable = live.post("query($u: USCC!) { enterprise(uscc: $u) { uscc } }", variables={"u": uscc}).json()
    assert variable["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_bad_token_is_401_with_json(live: LiveServer) -> None:
    response = live.post("{ gatewayVersion }", "not-a-jwt")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(live: LiveServer, token: TokenFactory) -> None:
    response = live.post("{ gatewayVersion }", token(ttl_s=-120))
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "claims",
    [
        {"alg": "none"},
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"clearance": 9},
        {"districts": ["33020X"]},
    ],
)
def test_forged_or_bad_claims_are_401(live: LiveServer, claims: dict[str, Any]) -> None:
    payload = {"sub": "x", "iss": "citygraph-dev", "aud": "citygraph", "exp": 4102444800, "clearance": 2}
    alg = claims.pop("alg", "HS256")
    payload.update(claims)
    forged = jwt.encode(payload, "" if alg == "none" else SECRET, algorithm=alg)
    assert live.post("{ gatewayVersion }", forged).status_code == 401


def test_token_signed_with_another_secret_is_401(live: LiveServer) -> None:
    payload = {"sub": "x", "iss": "citygraph-dev", "aud": "citygraph", "exp": 4102444800}
    assert (
        live.post("{ gatewayVersion }", jwt.encode(payload, "another-secret-0123456789abcdefghij", "HS256")).status_code
        == 401
    )


def test_malformed_json_is_400(live: LiveServer) -> None:
    response = httpx.post(f"{live.url}/graphql", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_simple_content_types_are_refused(live: LiveServer, content_type: str) -> None:
    response = httpx.post(
        f"{live.url}/graphql",
        content=b'{"query":"{ gatewayVersion }"}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415


def test_batch_is_400(live: LiveServer) -> None:
    response = httpx.post(f"{live.url}/graphql", json=[{"query": "{ gatewayVersion }"}])
    assert response.status_code == 400


def test_get_query_works_and_get_mutation_is_405(live: LiveServer) -> None:
    ok = httpx.get(f"{live.url}/graphql", params={"query": "{ gatewayVersion }"})
    assert ok.status_code == 200 and ok.json()["data"]["gatewayVersion"]
    refused = httpx.get(f"{live.url}/graphql", params={"query": "mutation { anything }"})
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"


def test_graphql_response_json_gets_4xx_for_request_errors(live: LiveServer) -> None:
    headers = {"Accept": "application/graphql-response+json"}
    bad = httpx.post(f"{live.url}/graphql", json={"query": "{ nope }"}, headers=headers)
    assert bad.status_code == 400 and "data" not in bad.json()
    assert bad.headers["content-type"].startswith("application/graphql-response+json")
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    good = httpx.post(f"{live.url}/graphql", json={"query": "{ gatewayVersion }"}, headers=headers)
    assert good.status_code == 200


def test_no_field_suggestions_leak(live: LiveServer) -> None:
    body = live.post("{ creditRecord { id } }").json()
    assert "Did you mean" not in body["errors"][0]["message"]


def test_depth_alias_and_cost_limits(live: LiveServer, demo_dir: Path) -> None:
    uscc = first_uscc(demo_dir)
    nested = "credit { records { enterprise { %s } } }"
    inner = "credit { rating }"
    for _ in range(4):
        inner = nested % inner
    deep = '{ enterprise(uscc: "%s") { %s } }' % (uscc, inner)
    aliases = "{ " + " ".join(f"a{i}: gatewayVersion" for i in range(20)) + " }"
    cost = (
        "{ creditRecords(first: 500) { nodes { enterprise { credit { records { id title kind authority content "
        "decisionDate districtCode uscc publicityEndsOn decisionNumber } } } } } }"
    )
    # A maximal page of scalars is fine: the page size is counted once, not again for `nodes`.
    page = "{ creditRecords(first: 500) { nodes { id uscc kind title content authority decisionDate } } }"
    assert "errors" not in live.post(page).json() or all(
        e["extensions"]["code"] != "QUERY_TOO_COMPLEX" for e in live.post(page).json()["errors"]
    )
    for query in (deep, aliases, cost):
        body = live.post(query).json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", query
        assert body.get("data") is None


def test_token_limit(live: LiveServer) -> None:
    body = live.post("{ " + "gatewayVersion " * 3000 + "}").json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_body_size_limit_is_413(live: LiveServer) -> None:
    response = httpx.post(f"{live.url}/graphql", json={"query": "{ gatewayVersion }", "x": "a" * 2_000_000})
    assert response.status_code == 413


def test_bad_first_and_forged_cursor(live: LiveServer) -> None:
    negative = live.post("{ creditRecords(first: -1) { nodes { id } } }").json()
    assert negative["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    forged = live.post('{ creditRecords(after: "bm9wZQ") { nodes { id } } }').json()
    assert forged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_chinese_error_messages(live: LiveServer) -> None:
    response = httpx.post(
        f"{live.url}/graphql",
        json={"query": "{ creditRecords(first: 1) { nodes { amount } } }"},
        headers={"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    error = response.json()["errors"][0]
    assert error["message"] == "无权读取该字段。" and error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["detail"]


def test_request_id_is_echoed(live: LiveServer) -> None:
    response = httpx.post(
        f"{live.url}/graphql", json={"query": "{ gatewayVersion }"}, headers={"X-Request-Id": "req-12345678"}
    )
    assert response.headers["x-request-id"] == "req-12345678"
    # Without one (or with one unsafe to log), each request gets its own 32 random hex digits.
    made = [
        httpx.post(f"{live.url}/graphql", json={"query": "{ gatewayVersion }"}, headers=headers).headers["x-request-id"]
        for headers in ({}, {}, {"X-Request-Id": "bad id\twith\ttabs"})
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made) and len(set(made)) == 3


def test_health_ready_and_graphiql(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["ready"] is True and set(ready["checks"]) == {
        "connector:credit",
        "connector:license",
        "policy",
        "audit",
    }
    page = httpx.get(f"{live.url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql.min.js" in page.text and "https://" not in page.text
    assert httpx.get(f"{live.url}/static/graphiql/graphiql.min.js").status_code == 200


def test_statement_count_is_constant_per_level(live: LiveServer, token: TokenFactory) -> None:
    query = """query($n: Int) { creditRecords(first: $n) {
      nodes { enterprise { uscc name credit { rating score records { kind title } } } } } }"""
    bearer = token(dept="market_supervision")
    counts = []
    for n in (10, 100):
        with live.counting_statements("credit") as seen:
            body = live.post(query, bearer, variables={"n": n}).json()
        assert "errors" not in body and len(body["data"]["creditRecords"]["nodes"]) == n
        counts.append(seen["credit"])
    # credit: search + profiles + records, one statement per level (enterprises come from the license store)
    assert counts == [3, 3]


def test_omitted_optional_variables_do_not_deny(live: LiveServer) -> None:
    body = live.post(
        "query Page($after: String, $n: Int = 2) { creditRecords(first: $n, after: $after) { nodes { id } } }"
    ).json()
    assert "errors" not in body and len(body["data"]["creditRecords"]["nodes"]) == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "query A { gatewayVersion }", "operationName": "B"},
        {"query": "{ gatewayVersion }", "operationName": ""},
        {"query": "fragment F on Query { gatewayVersion }"},
        {"query": "type Foo { a: Int }"},
    ],
)
def test_documents_without_a_runnable_operation_are_400(live: LiveServer, payload: dict[str, str]) -> None:
    response = httpx.post(f"{live.url}/graphql", json=payload)
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_forged_cursor_with_huge_id_is_bad_user_input(live: LiveServer) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(b"v1|2026-01-01|" + b"9" * 30).decode().rstrip("=")
    body = live.post('{ creditRecords(after: "%s") { nodes { id } } }' % cursor).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_bad_headers_are_400(live: LiveServer) -> None:
    import socket

    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # httpx refuses to send this
        raw.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"
        )
        status_line = raw.recv(200).split(b"\r\n")[0]
    assert b" 400 " in status_line
    bad_utf8 = httpx.post(
        f"{live.url}/graphql", json={"query": "{ gatewayVersion }"}, headers={b"X-Case-Ref": b"\xff\xfe"}
    )
    assert bad_utf8.status_code == 400
    quoted = httpx.post(f"{live.url}/graphql", json={"query": "{ gatewayVersion }"}, headers={"X-Case-Ref": 'a"b'})
    assert quoted.status_code == 400


def test_start_up_objects_are_frozen_out_of_the_collector_while_serving(demo_dir: Path, tmp_path: Path) -> None:
    import gc

    from tests.conftest import make_settings, serve

    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    with serve(settings) as server:
        assert gc.get_freeze_count() > 10_000  # schema, policies, connectors
        assert server.post("{ gatewayVersion }").status_code == 200
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown: a closed app's objects can be collected
