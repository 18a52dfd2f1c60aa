# Tests for citygraph.common, plus the request fixtures the other *_test packages import.
#
# regopy 1.5.2 segfaults on `with input as <doc>` once the evaluated rules call a builtin, and
# evaluates `with ... as <rule, input or data ref>` to undefined. So every test builds the request
# into a local variable with request()/request_with() and overrides the input key by key from it
# (policies/lint.py refuses the broken forms).
package citygraph.common_test

import data.citygraph.common

# Subjects exactly as the gateway renders them (policies/principal.py).
alice := {
	"id": "alice", "department": "market_supervision", "roles": ["staff"], "districts": ["330203"],
	"clearance": 3, "authenticated": true, "issuer": "citygraph-dev",
}

public := {
	"id": "anonymous", "department": "", "roles": [], "districts": [],
	"clearance": 1, "authenticated": false, "issuer": "",
}

record_fields := [
	{"coordinate": "CreditRecord.kind", "level": 1, "pi": null},
	{"coordinate": "CreditRecord.amount", "level": 2, "pi": null},
	{"coordinate": "CreditRecord.legalRepIdNumber", "level": 3, "pi": "identity"},
]

# The input document exactly as the gateway builds it.
request_with(subject, purpose, type, fields) := {
	"subject": subject,
	"action": "read",
	"purpose": purpose,
	"case_ref": null,
	"resource": {"connector": "credit", "type": type, "classification": 3, "fields": fields},
	"operation": {
		"type": "query", "name": "Records", "coordinates": ["Query.creditRecords", "CreditRecord.kind"],
		"args": {}, "depth": 3, "cost": 10,
	},
	"context": {"now_ns": 1795000000000000000, "today": "2026-11-27", "request_id": "r-1"},
}

request(subject, purpose, type) := request_with(subject, purpose, type, record_fields)

staff_clearance_2 := object.union(alice, {"clearance": 2})

# --- purpose_valid ---

test_purpose_valid_for_known_purpose if {
	r := request(alice, "law_enforcement", "CreditRecord")
	common.purpose_valid
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
}

test_purpose_invalid_for_unknown_purpose if {
	r := request(alice, "curiosity", "CreditRecord")
	not common.purpose_valid
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
}

test_purpose_invalid_when_null if {
	r := request(alice, null, "CreditRecord")
	not common.purpose_valid
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
}

# --- is_public / is_district_officer / clearance ---

test_public_when_not_authenticated if {
	r := request(public, null, "CreditRecord")
	common.is_public with input.subject as r.subject
}

test_public_when_authenticated_flag_missing if {
	r := request(object.remove(alice, ["authenticated"]), null, "CreditRecord")
	common.is_public with input.subject as r.subject
}

test_staff_not_public if {
	r := request(alice, "law_enforcement", "CreditRecord")
	not common.is_public with input.subject as r.subject
}

test_district_officer_role if {
	r := request(object.union(alice, {"roles": ["staff", "district_officer"]}), null, "CreditRecord")
	common.is_district_officer with input.subject as r.subject
}

test_staff_not_district_officer if {
	r := request(alice, "law_enforcement", "CreditRecord")
	not common.is_district_officer with input.subject as r.subject
}

test_public_clearance_capped_at_1 if {
	r := request(object.union(public, {"clearance": 4}), null, "CreditRecord")
	common.clearance == 1 with input.subject as r.subject
}

test_missing_clearance_reads_as_0 if {
	r := request(object.remove(alice, ["clearance"]), null, "CreditRecord")
	common.clearance == 0 with input.subject as r.subject
}

# --- field_rules ---

test_public_denied_level_2_and_above if {
	r := request(public, null, "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	rules == {"CreditRecord.amount": {"action": "deny"}, "CreditRecord.legalRepIdNumber": {"action": "deny"}}
}

test_l3_with_clearance_3_and_no_purpose_requires_purpose if {
	r := request(alice, null, "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	rules == {"CreditRecord.legalRepIdNumber": {"action": "deny", "code": "PURPOSE_REQUIRED"}}
}

test_l3_with_unknown_purpose_requires_purpose if {
	r := request(alice, "curiosity", "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	rules == {"CreditRecord.legalRepIdNumber": {"action": "deny", "code": "PURPOSE_REQUIRED"}}
}

# L3+ fields are granted explicitly: the gateway denies sensitive fields a decision leaves out.
test_l3_with_valid_purpose_is_granted_explicitly if {
	r := request(alice, "law_enforcement", "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	rules == {"CreditRecord.legalRepIdNumber": {"action": "allow"}}
}

test_clearance_2_gets_mask_spec_for_id_number if {
	r := request(staff_clearance_2, "law_enforcement", "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	rules == {"CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}}
}

test_clearance_2_mask_needs_no_purpose if {
	r := request(staff_clearance_2, null, "CreditRecord")
	rules := common.field_rules
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
	rules == {"CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}}
}

test_clearance_2_without_masking_spec_denied if {
	fields := [{"coordinate": "CreditRecord.sanctionBasis", "level": 3, "pi": null}]
	r := request_with(staff_clearance_2, "law_enforcement", "CreditRecord", fields)
	rules := common.field_rules
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
	rules == {"CreditRecord.sanctionBasis": {"action": "deny"}}
}

test_public_denied_even_with_masking_spec if {
	fields := [{"coordinate": "CreditRecord.legalRepName", "level": 2, "pi": "identity"}]
	r := request_with(public, null, "CreditRecord", fields)
	rules := common.field_rules
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
	rules == {"CreditRecord.legalRepName": {"action": "deny"}}
}

test_invalid_level_denied if {
	fields := [
		{"coordinate": "CreditRecord.kind", "level": "1", "pi": null},
		{"coordinate": "CreditRecord.amount", "level": 7, "pi": null},
		{"coordinate": "CreditRecord.note", "pi": null},
	]
	r := request_with(alice, "law_enforcement", "CreditRecord", fields)
	rules := common.field_rules
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
	rules == {
		"CreditRecord.kind": {"action": "deny"},
		"CreditRecord.amount": {"action": "deny"},
		"CreditRecord.note": {"action": "deny"},
	}
}
