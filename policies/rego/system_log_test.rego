# Tests for system.log (the decision-log mask). The event's input is overridden key by key
# (`with input.input as ...`, never `with input as ...`), from local variables only.
package system.log_test

import data.system.log

event_input := {
	"subject": {"id": "alice", "department": "market_supervision", "roles": ["staff"]},
	"purpose": "law_enforcement",
	"case_ref": "甬市监案〔2026〕17号",
	"operation": {
		"type": "query", "name": "Person", "coordinates": ["Query.person"],
		"args": {
			"Query.person": {"idNumber": "330203199001011234"},
			"Query.creditRecords": {"first": 20, "district": "330203"},
		},
	},
}

event_result := {"allow": true, "filter": {}, "reasons": ["police with a declared purpose"]}

test_args_are_erased if {
	i := event_input
	r := event_result
	masks := log.mask with input.input as i with input.result as r
	"/input/operation/args" in masks
}

test_argument_names_are_kept_without_values if {
	i := event_input
	r := event_result
	masks := log.mask with input.input as i with input.result as r
	upsert := {"op": "upsert", "path": "/input/operation/arg_names", "value": {
		"Query.person": {"idNumber"},
		"Query.creditRecords": {"district", "first"},
	}}
	upsert in masks
	count(masks) == 2
}

test_malformed_args_are_erased_too if {
	op := {"type": "query", "args": "330203199001011234"}
	masks := log.mask with input.input.operation as op
	masks == {"/input/operation/args"}
}

test_empty_args_erased_without_names if {
	op := {"type": "query", "args": {}}
	masks := log.mask with input.input.operation as op
	masks == {"/input/operation/args"}
}

test_no_args_nothing_masked if {
	op := {"type": "query", "name": "Records"}
	r := event_result
	masks := log.mask with input.input.operation as op with input.result as r
	count(masks) == 0
}

# Audit evidence and the decision itself are never masked.
test_subject_case_ref_and_result_kept if {
	i := event_input
	r := event_result
	masks := log.mask with input.input as i with input.result as r
	paths := {m | some m in masks; is_string(m)} | {m.path | some m in masks; is_object(m)}
	count(paths) == 2
	# (a count, not `every ... { not startswith(...) }`: regopy errors on that form)
	guarded := ["/result", "/input/subject", "/input/case_ref", "/input/purpose"]
	kept := [p | some p in paths; some prefix in guarded; startswith(p, prefix)]
	count(kept) == 0
}
