"""connectors.credit.connector.record_columns: which columns a selection of CreditRecord fields reads."""

from __future__ import annotations

from connectors.credit.connector import record_columns
from connectors.credit.tables import credit_records

ALL = [c.name for c in credit_records.c]


def names(fields: set[str] | None) -> list[str]:
    return [c.name for c in record_columns(None if fields is None else frozenset(fields))]


def test_key_relation_and_cursor_columns_are_always_read() -> None:
    assert names({"title"}) == ["id", "uscc", "title", "decision_date"]
    assert names({"kind"}) == ["id", "uscc", "kind", "decision_date"]


def test_fields_named_otherwise_read_their_columns() -> None:
    assert "publicity_end" in names({"publicity_ends_on"}) and "publicity_ends_on" not in ALL


def test_only_links_selected_reads_the_always_read_columns() -> None:
    assert names(set()) == ["id", "uscc", "decision_date"]


def test_fields_not_known_or_an_unknown_field_reads_every_column() -> None:
    assert names(None) == ALL
    assert names({"title", "not_a_field_we_know"}) == ALL
