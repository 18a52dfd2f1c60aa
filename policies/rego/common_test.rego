# Tests for citygraph.common, plus the request fixtures the other *_test packages import.
#
# regopy 1.5.2 segfaults on `with input as <doc>` when the evaluated rules call a builtin, and
# evaluates `with ... as <rule or input/data ref>` to undefined, so every test overrides the input
# key by key from a *local variable* built by request() (policies/lint.py refuses the other forms).
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

alice_request := request(alice, "law_enforcement", "CreditRecord")

public_request := request(public, null, "CreditRecord")

staff_clearance_2 := object.union(alice, {"clearance": 2})

# --- purpose_valid ---

test_purpose_valid_for_known_purpose if {
	common.purpose_valid with input as alice_request
}

test_purpose_invalid_for_unknown_purpose if {
	not common.purpose_valid with input as request(alice, "curiosity", "CreditRecord")
}

test_purpose_invalid_when_null if {
	not common.purpose_valid with input as request(alice, null, "CreditRecord")
}

# --- is_public / is_district_officer / clearance ---

test_public_when_not_authenticated if {
	common.is_public with input as public_request
}

test_public_when_authenticated_flag_missing if {
	common.is_public with input as request(object.remove(alice, ["authenticated"]), null, "CreditRecord")
}

test_staff_not_public if {
	not common.is_public with input as alice_request
}

test_district_officer_role if {
	officer := object.union(alice, {"roles": ["staff", "district_officer"]})
	common.is_district_officer with input as request(officer, null, "CreditRecord")
}

test_staff_not_district_officer if {
	not common.is_district_officer with input as alice_request
}

test_public_clearance_capped_at_1 if {
	forged := object.union(public, {"clearance": 4})
	common.clearance == 1 with input as request(forged, null, "CreditRecord")
}

test_missing_clearance_reads_as_0 if {
	common.clearance == 0 with input as request(object.remove(alice, ["clearance"]), null, "CreditRecord")
}

# --- field_rules ---

test_public_denied_level_2_and_above if {
	common.field_rules == {
		"CreditRecord.amount": {"action": "deny"},
		"CreditRecord.legalRepIdNumber": {"action": "deny"},
	} with input as public_request
}

test_l3_with_clearance_3_and_no_purpose_requires_purpose if {
	common.field_rules == {"CreditRecord.legalRepIdNumber": {"action": "deny", "code": "PURPOSE_REQUIRED"}}
		with input as request(alice, null, "CreditRecord")
}

test_l3_with_unknown_purpose_requires_purpose if {
	common.field_rules == {"CreditRecord.legalRepIdNumber": {"action": "deny", "code": "PURPOSE_REQUIRED"}}
		with input as request(alice, "curiosity", "CreditRecord")
}

test_l3_with_valid_purpose_has_no_rule if {
	common.field_rules == {} with input as alice_request
}

test_clearance_2_gets_mask_spec_for_id_number if {
	common.field_rules == {"CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}}
		with input as request(staff_clearance_2, "law_enforcement", "CreditRecord")
}

test_clearance_2_mask_needs_no_purpose if {
	common.field_rules == {"CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}}
		with input as request(staff_clearance_2, null, "CreditRecord")
}

test_clearance_2_without_masking_spec_denied if {
	fields := [{"coordinate": "CreditRecord.sanctionBasis", "level": 3, "pi": null}]
	common.field_rules == {"CreditRecord.sanctionBasis": {"action": "deny"}}
		with input as request_with(staff_clearance_2, "law_enforcement", "CreditRecord", fields)
}

test_public_denied_even_with_masking_spec if {
	fields := [{"coordinate": "CreditRecord.legalRepName", "level": 2, "pi": "identity"}]
	common.field_rules == {"CreditRecord.legalRepName": {"action": "deny"}}
		with input as request_with(public, null, "CreditRecord", fields)
}

test_invalid_level_denied if {
	fields := [
		{"coordinate": "CreditRecord.kind", "level": "1", "pi": null},
		{"coordinate": "CreditRecord.amount", "level": 7, "pi": null},
		{"coordinate": "CreditRecord.note", "pi": null},
	]
	common.field_rules == {
		"CreditRecord.kind": {"action": "deny"},
		"CreditRecord.amount": {"action": "deny"},
		"CreditRecord.note": {"action": "deny"},
	} with input as request_with(alice, "law_enforcement", "CreditRecord", fields)
}
