package citygraph.credit_test

import data.citygraph.common_test.alice
import data.citygraph.common_test.alice_request
import data.citygraph.common_test.public
import data.citygraph.common_test.public_request
import data.citygraph.common_test.request
import data.citygraph.credit

publicity_filter := {"type": "compound", "operator": "and", "value": [
	{"type": "field", "field": "credit_records.publicity_start", "operator": "lte", "value": "2026-11-27"},
	{"type": "field", "field": "credit_records.publicity_end", "operator": "gte", "value": "2026-11-27"},
]}

officer(department) := object.union(alice, {
	"department": department,
	"roles": ["district_officer", "staff"],
	"districts": ["330212", "330203"],
})

district_filter := {
	"type": "field", "field": "credit_records.district_code", "operator": "in",
	"value": ["330203", "330212"],
}

test_public_gets_publicity_filter if {
	d := credit.decision with input as public_request
	d.allow == true
	d.filter == publicity_filter
	d.fields == {"CreditRecord.amount": {"action": "deny"}, "CreditRecord.legalRepIdNumber": {"action": "deny"}}
}

test_market_supervision_city_wide if {
	d := credit.decision with input as alice_request
	d.allow == true
	d.filter == {}
	d.fields == {}
}

test_other_department_gets_publicity_filter if {
	tax := object.union(alice, {"department": "taxation"})
	d := credit.decision with input as request(tax, "law_enforcement", "CreditRecord")
	d.filter == publicity_filter
}

test_district_officer_gets_sorted_district_filter if {
	d := credit.decision with input as request(officer("urban_management"), "law_enforcement", "CreditRecord")
	d.filter == district_filter
}

test_district_officer_in_market_supervision_still_restricted if {
	d := credit.decision with input as request(officer("market_supervision"), "law_enforcement", "CreditRecord")
	d.filter == district_filter
}

test_district_officer_without_districts_sees_nothing if {
	nowhere := object.union(officer("market_supervision"), {"districts": []})
	d := credit.decision with input as request(nowhere, "law_enforcement", "CreditRecord")
	d.filter.operator == "in"
	d.filter.value == []
}

test_unauthenticated_market_supervision_claim_gets_publicity_filter if {
	forged := object.union(public, {"department": "market_supervision"})
	d := credit.decision with input as request(forged, null, "CreditRecord")
	d.filter == publicity_filter
}

test_enterprise_unrestricted if {
	d := credit.decision with input as request(public, null, "Enterprise")
	d.allow == true
	d.filter == {}
}

test_credit_profile_unrestricted if {
	d := credit.decision with input as request(public, null, "CreditProfile")
	d.filter == {}
}

test_obligations_and_reasons if {
	d := credit.decision with input as alice_request
	d.obligations == {"audit": "full", "max_rows": 500}
	d.reasons == ["market supervision: city-wide"]
}

test_unknown_type_undefined if {
	not credit.decision with input as request(alice, "law_enforcement", "Person")
}

test_missing_today_undefined if {
	not credit.decision with input as object.union(public_request, {"context": {"today": 20261127}})
}
