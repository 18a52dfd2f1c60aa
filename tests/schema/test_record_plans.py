"""resolvers.records: decisions compiled into record plans, once per decision, applied in batch."""

from __future__ import annotations

from policies.decision import Decision, FieldRule
from resolvers.records import RecordPlans, materialize, plan_for
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
    assert plans.get("Person", first, CATALOG) is plan
    assert plan == plan_for("Person", first, CATALOG)
    # An equal decision from a later cache entry is another object: compiled again, same content.
    again = decision(name=FieldRule("allow"))
    assert plans.get("Person", again, CATALOG) is not plan
    assert plans.get("Person", again, CATALOG) == plan
    # Bounded: the oldest entry goes first.
    plans.get("Person", decision(), CATALOG)
    assert plans.get("Person", first, CATALOG) is not plan
