"""What policies are told about an operation: coordinates and arguments, one entry per occurrence."""

from __future__ import annotations

from pathlib import Path

from graphql import parse

from connectors.credit import CreditConnector
from schema.builder import build_schema
from schema.limits import Limits
from schema.operation import summarize


def summary_of(tmp_path: Path, query: str, variables: dict[str, object] | None = None) -> object:
    built = build_schema({"credit": CreditConnector.from_config({}, tmp_path)}, Limits())
    return summarize(built.schema._schema, parse(query), None, variables)


def test_repeated_root_fields_keep_their_own_arguments(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        '{ a: creditRecords(first: 1, filter: {district: "330203"}) { nodes { id } } '
        "b: creditRecords(first: 3) { nodes { id } } }",
    )
    assert s.args["Query.creditRecords"] == [{"first": 1, "filter": {"district": "330203"}}, {"first": 3}]  # type: ignore[attr-defined]


def test_omitted_variables_are_dropped_and_defaults_applied(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        "query($after: String, $n: Int = 7, $d: Adcode) "
        "{ creditRecords(first: $n, after: $after, filter: {district: $d}) { nodes { id } } }",
    )
    assert s.args["Query.creditRecords"] == [{"first": 7, "filter": {}}]  # type: ignore[attr-defined]


def test_fragments_and_inline_fragments_are_collected(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        "query { creditRecords { nodes { ...F ... on CreditRecord { legalRepIdNumber } } } } "
        "fragment F on CreditRecord { amount }",
    )
    assert {"CreditRecord.amount", "CreditRecord.legalRepIdNumber"} <= set(s.coordinates)  # type: ignore[attr-defined]


def test_one_document_is_walked_once_and_valued_per_request(tmp_path: Path) -> None:
    import schema.operation as operation

    built = build_schema({"credit": CreditConnector.from_config({}, tmp_path)}, Limits())
    graphql_schema = built.schema._schema
    query = "query Q($d: Adcode, $n: Int) { creditRecords(first: $n, filter: {district: $d}) { nodes { id kind } } }"
    document = parse(query)
    walks: list[object] = []
    original = operation._shape

    def counting(*args: object) -> object:
        walks.append(args[1])
        return original(*args)  # type: ignore[arg-type]

    operation._shape = counting  # type: ignore[assignment]
    try:
        first = summarize(graphql_schema, document, "Q", {"d": "330203", "n": 5})
        first.coordinates.append("Tampered.field")  # a caller's change must not reach the cache
        first.args["Query.creditRecords"].append({"first": 999})
        second = summarize(graphql_schema, document, "Q", {"d": "330205"})
        # An equal text parsed again is another document: walked again, same answer.
        third = summarize(graphql_schema, parse(query), "Q", {"d": "330205"})
    finally:
        operation._shape = original
    assert len(walks) == 2 and walks[0] is document
    assert second.args == {"Query.creditRecords": [{"filter": {"district": "330205"}}]}
    assert second.coordinates == [
        "Query.creditRecords",
        "CreditRecordConnection.nodes",
        "CreditRecord.id",
        "CreditRecord.kind",
    ]
    assert (third.coordinates, third.args) == (second.coordinates, second.args)
    assert third.depth == second.depth == 3
