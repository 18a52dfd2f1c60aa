# Tests for citygraph.license; fixtures and the key-by-key `with` convention come from common_test.
package citygraph.license_test

import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request_with
import data.citygraph.license

person_fields := [
	{"coordinate": "Person.idNumber", "level": 3, "pi": "identity"},
	{"coordinate": "Person.name", "level": 3, "pi": "name"},
	{"coordinate": "Person.districtCode", "level": 2, "pi": null},
]

police := object.union(alice, {"department": "public_security", "roles": ["investigator"]})

officer := object.union(alice, {"department": "street_office", "roles": ["district_officer"], "districts": ["330212", "330203"]})

enterprise_licences := {"type": "field", "field": "licenses.holder_kind", "operator": "eq", "value": "ENTERPRISE"}

decide(subject, purpose, type, fields) := d if {
	r := request_with(subject, purpose, type, fields)
	d := license.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
}

test_market_supervision_reads_enterprise_licences_city_wide if {
	d := decide(alice, null, "License", [])
	d.allow == true
	d.filter == enterprise_licences
}

test_district_officer_reads_enterprises_of_own_districts if {
	d := decide(officer, null, "Enterprise", [])
	d.filter == {"type": "field", "field": "enterprises.district_code", "operator": "in", "value": ["330203", "330212"]}
	l := decide(officer, null, "License", [])
	l.filter.operator == "and"
	enterprise_licences in l.filter.value
}

test_police_with_purpose_read_all_licences_and_persons if {
	d := decide(police, "case_investigation", "License", [])
	d.filter == {}
	p := decide(police, "case_investigation", "Person", person_fields)
	p.fields == {"Person.idNumber": {"action": "allow"}, "Person.name": {"action": "allow"}}
}

test_police_without_purpose_get_purpose_required_and_no_person_licences if {
	p := decide(police, null, "Person", person_fields)
	p.fields["Person.idNumber"] == {"action": "deny", "code": "PURPOSE_REQUIRED"}
	l := decide(police, null, "License", [])
	l.filter == enterprise_licences
}

test_other_staff_see_persons_masked_whatever_their_clearance if {
	p := decide(alice, "law_enforcement", "Person", person_fields)
	p.fields["Person.idNumber"] == {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}
	p.fields["Person.name"] == {"action": "mask", "keep_prefix": 1, "keep_suffix": 0}
	p.fields["Query.person"] == {"action": "deny"}
	not p.fields["Person.districtCode"]
}

test_public_sees_no_personal_data if {
	p := decide(public, null, "Person", person_fields)
	p.fields["Person.idNumber"] == {"action": "deny"}
	p.fields["Person.districtCode"] == {"action": "deny"}
	p.fields["Query.person"] == {"action": "deny"}
	p.obligations.audit == "none"
}

test_anyone_may_verify_enterprise_licences_by_number if {
	d := decide(public, null, "LicenseVerification", [])
	d.allow == true
	d.filter == enterprise_licences
}

test_presented_documents_verify_for_everyone if {
	d := decide(public, null, "LicenseDocument", [])
	d.allow == true
	d.filter == {}
}

test_unknown_type_is_undefined if {
	not decide(alice, null, "Camera", [])
}
