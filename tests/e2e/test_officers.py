"""Security officers: ``Query.policyExplain`` and ``Query.auditTrail``, guarded by their own policy."""

from __future__ import annotations

from tests.conftest import LiveServer, TokenFactory

TRAIL = """query($f: AuditFilter) { auditTrail(filter: $f, first: 50) {
  nodes { seq subject department purpose caseRef operationName coordinates recordKeys policyRevision outcome
          hash prevHash }
  pageInfo { hasNextPage endCursor } } }"""


def officer(token: TokenFactory) -> str:
    return token(sub="officer-1", dept="cyberspace_office", roles=["security_officer"], clearance=3)


def test_who_read_which_records_when_and_why_is_one_query(live: LiveServer, token: TokenFactory) -> None:
    reader = token(sub="inspector-9", dept="market_supervision", clearance=3)
    headers = {"X-Purpose-Of-Use": "law_enforcement", "X-Case-Ref": "CASE-77"}
    read = live.post(
        "query Look { creditRecords(first: 3) { nodes { id legalRepIdNumber } } }", reader, headers=headers
    )
    ids = [n["id"] for n in read.json()["data"]["creditRecords"]["nodes"]]
    body = live.post(TRAIL, officer(token), variables={"f": {"recordKey": ids[0], "caseRef": "CASE-77"}}).json()
    assert "errors" not in body, body
    [entry] = body["data"]["auditTrail"]["nodes"]
    assert (entry["subject"], entry["department"], entry["purpose"], entry["operationName"]) == (
        "inspector-9",
        "market_supervision",
        "law_enforcement",
        "Look",
    )
    assert entry["recordKeys"]["CreditRecord"] == ids and "CreditRecord.legalRepIdNumber" in entry["coordinates"]


def test_reading_the_trail_is_itself_audited(live: LiveServer, token: TokenFactory) -> None:
    live.post(TRAIL, officer(token), variables={"f": {"subject": "nobody"}})
    body = live.post(TRAIL, officer(token), variables={"f": {"subject": "officer-1"}}).json()
    assert any("Query.auditTrail" in n["coordinates"] for n in body["data"]["auditTrail"]["nodes"])


def test_only_security_officers(live: LiveServer, token: TokenFactory) -> None:
    for bearer in (None, token(dept="market_supervision", clearance=4)):
        body = live.post(TRAIL, bearer).json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    explain = live.post('{ policyExplain(query: "{ gatewayVersion }") { revision } }', token(clearance=4)).json()
    assert explain["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_policy_explain_for_another_principal(live: LiveServer, token: TokenFactory) -> None:
    query = """query($q: String!) { policyExplain(query: $q, as: {department: "market_supervision",
      roles: ["district_officer"], districts: ["330203"], clearance: 2}) {
      revision coordinates { coordinate action code mask } types { type allow filter reasons } } }"""
    body = live.post(
        query, officer(token), variables={"q": "{ creditRecords { nodes { amount legalRepIdNumber } } }"}
    ).json()
    assert "errors" not in body, body
    result = body["data"]["policyExplain"]
    actions = {c["coordinate"]: (c["action"], c["code"] or c["mask"]) for c in result["coordinates"]}
    assert actions["CreditRecord.legalRepIdNumber"] == ("mask", "keep 3+4")
    assert actions["CreditRecord.amount"] == ("allow", None)
    [records] = [t for t in result["types"] if t["type"] == "CreditRecord"]
    assert records["filter"]["value"] == ["330203"] and result["revision"]


def test_explaining_an_invalid_query_is_bad_user_input(live: LiveServer, token: TokenFactory) -> None:
    body = live.post('{ policyExplain(query: "{ nope }") { revision } }', officer(token)).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
