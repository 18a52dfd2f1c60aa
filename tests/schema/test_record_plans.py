"""resolvers.records: decisions compiled into record plans, once per decision, applied in batch."""

from __future__ import annotations

from types import MappingProxyType

from policies.decision import Decision, FieldRule
from resolvers.records import RecordPlans, keys_of, materialize, plan_for
from schema.fieldmeta import FieldCatalog, FieldMeta


def meta(field: str, level: int) -> FieldMeta:
    return FieldMeta(f"Person.{field}", "license", "Person", field, level, None)


CATALOG = FieldCatalog({m.coordinate: m for m in (meta("district_code", 2), meta("name", 3), meta("phone", 3))})


def decision(**rules: FieldRule) -> Decision:
    return Decision(allow=True, fields={f"Person.{k}": v for k, v in rules.items()}, filter={})


class Person:
    pass


def test_a_decision_masks_allows_and_denies_fields_of_records() -> None:
    plan = plan_for("Person", decision(name=FieldRule("mask", keep_prefix=1)), CATALOG)
    (person,) = materialize([{"name": "王小明", "phone": "13800000000", "district_code": "330203"}], Person, plan)
    assert person.name == "王**"  # type: ignore[attr-defined]
    assert person.district_code == "330203"  # type: ignore[attr-defined]
    assert isinstance(person.phone, Exception)  # type: ignore[attr-defined]  # L3 without a grant: denied


def test_plans_are_compiled_once_per_decision_object() -> None:
    plans = RecordPlans(size=2)
    first = decision(name=FieldRule("allow"))
    plan = plans.get("Person", first, CATALOG)
    assert plan.denials and plan.masks == ()  # the phone: L3 without a grant
    reused = plans.get("Person", first, CATALOG)
    assert plans._items[("Person", id(first))][0] is first
    assert reused.masks == plan.masks and [n for n, _ in reused.denials] == [n for n, _ in plan.denials]
    # Each request gets its own error objects: a shared one raised by every request would keep
    # each request's frames alive in its growing traceback.
    assert all(a is not b for (_, a), (_, b) in zip(plan.denials, reused.denials, strict=True))
    # Bounded: the oldest entry goes first.
    plans.get("Person", decision(), CATALOG)
    plans.get("Person", decision(phone=FieldRule("allow")), CATALOG)
    assert ("Person", id(first)) not in plans._items


def test_a_plan_that_changes_nothing_keeps_dict_rows_and_copies_other_mappings() -> None:
    plan = plan_for("Person", decision(name=FieldRule("allow"), phone=FieldRule("allow")), CATALOG)
    assert plan.masks == () and plan.denials == ()
    row = {"name": "王小明", "phone": "13800000000"}
    (person,) = materialize([row], Person, plan)
    assert vars(person) is row  # no copy per record
    (other,) = materialize([MappingProxyType(row)], Person, plan)
    assert type(vars(other)) is dict and vars(other) == row


def test_a_plan_that_masks_or_denies_leaves_shared_rows_untouched() -> None:
    plan = plan_for("Person", decision(name=FieldRule("mask", keep_prefix=1)), CATALOG)
    row = {"name": "王小明", "phone": "13800000000"}
    first, second = materialize([row, row], Person, plan)  # one cached row reached twice
    assert row == {"name": "王小明", "phone": "13800000000"}
    assert first.name == second.name == "王**"  # type: ignore[attr-defined]  # masked once each, not twice
    assert vars(first) is not row and vars(first) is not vars(second)


def test_a_denial_of_an_unselected_field_applies_only_to_rows_that_hold_it() -> None:
    plans = RecordPlans()
    rules = decision(name=FieldRule("allow"))  # the phone: L3 without a grant, denied
    plan = plans.get("Person", rules, CATALOG, selected=frozenset({"name"}))
    assert plan.denials == () and [n for n, _ in plan.unread] == ["phone"]
    # No row holds the phone: nothing to withhold, and the rows stay uncopied.
    bare = {"name": "王小明", "district_code": "330203"}
    (person,) = materialize([bare], Person, plan)
    assert vars(person) is bare and "phone" not in vars(person)
    # One row of the batch holds it: withheld there (and set on every record of the batch).
    held = {"name": "李四", "phone": "13800000000"}
    first, second = materialize([bare, held], Person, plan)
    assert isinstance(second.phone, Exception) and isinstance(first.phone, Exception)  # type: ignore[attr-defined]
    assert held["phone"] == "13800000000"  # the row itself untouched
    # Also for rows handed over as a one-pass iterator.
    (third,) = materialize(iter([held]), Person, plan)
    assert isinstance(third.phone, Exception)  # type: ignore[attr-defined]


def test_a_denial_of_a_selected_field_applies_to_every_row_even_without_the_field() -> None:
    plan = RecordPlans().get("Person", decision(), CATALOG, selected=frozenset({"phone"}))
    assert [n for n, _ in plan.denials] == ["phone"] and [n for n, _ in plan.unread] == ["name"]
    (person,) = materialize([{"district_code": "330203"}], Person, plan)
    assert isinstance(person.phone, Exception)  # type: ignore[attr-defined]  # read: FORBIDDEN, not a missing attribute
    assert "name" not in vars(person)
    # Selection not known: every denial on every record, as before.
    unknown = RecordPlans().get("Person", decision(), CATALOG)
    assert unknown.unread == () and {n for n, _ in unknown.denials} == {"name", "phone"}


def test_keys_of_are_each_rows_key_as_text() -> None:
    # The audit trail's record keys: integers as text, and a row without its key as "None"
    # (counted, not dropped: a record without a key still left the connector).
    rows: list[dict[str, object]] = [{"id": 7, "name": "a"}, {"id": "330203", "name": "b"}, {"name": "c"}]
    assert keys_of(rows, "id") == ["7", "330203", "None"]
    assert keys_of([], "id") == []
