# Tests for citygraph.credit; fixtures and the key-by-key `with` convention come from common_test.
package citygraph.credit_test

import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request
import data.citygraph.credit

publicity_filter := {"type": "compound", "operator": "and", "value": [
	{"type": "field", "field": "credit_records.publicity_start", "operator": "lte", "value": "2026-11-27"},
	{"type": "field", "field": "credit_records.publicity_end", "operator": "gte", "value": "2026-11-27"},
]}

district_filter := {
	"type": "field", "field": "credit_records.district_code", "operator": "in",
	"value": ["330203", "330212"],
}

officer(department) := object.union(alice, {
	"department": department,
	"roles": ["district_officer", "staff"],
	"districts": ["330212", "330203"],
})

# credit.decision for request r, with the whole gateway input overridden key by key.
test_public_gets_publicity_filter if {
	r := request(public, null, "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == true
	d.filter == publicity_filter
	d.fields == {"CreditRecord.amount": {"action": "deny"}, "CreditRecord.legalRepIdNumber": {"action": "deny"}}
	d.reasons == ["public and other departments: publicity period running"]
}

test_market_supervision_city_wide if {
	r := request(alice, "law_enforcement", "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == true
	d.filter == {}
	d.fields == {"CreditRecord.legalRepIdNumber": {"action": "allow"}}
	d.obligations.audit == "full"
	d.reasons == ["market supervision: city-wide"]
}

test_other_department_gets_publicity_filter if {
	r := request(object.union(alice, {"department": "taxation"}), "law_enforcement", "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.filter == publicity_filter
}

test_district_officer_gets_sorted_district_filter if {
	r := request(officer("urban_management"), "law_enforcement", "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.filter == district_filter
	d.reasons == ["district officer: own jurisdiction only"]
}

test_district_officer_in_market_supervision_still_restricted if {
	r := request(officer("market_supervision"), "law_enforcement", "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.filter == district_filter
}

test_district_officer_without_districts_sees_nothing if {
	r := request(object.union(officer("market_supervision"), {"districts": []}), "law_enforcement", "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.filter.operator == "in"
	d.filter.value == []
}

test_unauthenticated_market_supervision_claim_gets_publicity_filter if {
	r := request(object.union(public, {"department": "market_supervision"}), null, "CreditRecord")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.filter == publicity_filter
}

test_enterprise_unrestricted if {
	r := request(public, null, "Enterprise")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.allow == true
	d.filter == {}
}

test_credit_profile_unrestricted if {
	r := request(public, null, "CreditProfile")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.allow == true
	d.filter == {}
}

test_obligations if {
	r := request(alice, "law_enforcement", "Enterprise")
	d := credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.obligations == {"audit": "full", "max_rows": 500}
}

test_unknown_type_undefined if {
	r := request(alice, "law_enforcement", "Person")
	not credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
}

test_malformed_today_undefined if {
	r := request(public, null, "CreditRecord")
	not credit.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as {"today": 20261127}
}
