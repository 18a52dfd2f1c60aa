"""connectors.license.connector._columns: which columns a selection of fields reads, per entity."""

from __future__ import annotations

from connectors.license.connector import _LICENSE_COLUMNS, _columns
from connectors.license.tables import enterprises, persons


def names(entity: str, fields: set[str] | None) -> list[str]:
    return [str(c.key) for c in _columns(entity, None if fields is None else frozenset(fields))]


def test_key_and_relation_columns_are_always_read() -> None:
    assert names("Enterprise", {"name"}) == ["uscc", "name", "legal_rep_id_number"]
    assert names("Person", {"name"}) == ["id_number", "name"]
    assert names("License", {"type"}) == ["number", "type", "holder_uscc", "holder_id_number"]


def test_fields_named_otherwise_read_their_columns() -> None:
    assert names("Enterprise", {"industry"}) == ["uscc", "legal_rep_id_number", "industry_name"]
    assert names("License", {"issuer", "scope"}) == ["number", "issuer", "scope", "holder_uscc", "holder_id_number"]


def test_only_links_selected_reads_keys_and_relations() -> None:
    assert names("Enterprise", set()) == ["uscc", "legal_rep_id_number"]
    assert names("Person", set()) == ["id_number"]
    assert names("License", set()) == ["number", "holder_uscc", "holder_id_number"]


def test_fields_not_known_or_an_unknown_field_reads_every_column() -> None:
    assert names("Enterprise", None) == [str(c.key) for c in enterprises.c]
    assert names("Person", {"name", "not_a_field_we_know"}) == [str(c.key) for c in persons.c]
    assert names("Enterprise", {"licenses"}) == [str(c.key) for c in enterprises.c]  # a link: not a column
    assert names("License", {"signature"}) == [str(c.key) for c in _LICENSE_COLUMNS]  # not a column read here
