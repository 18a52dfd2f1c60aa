# Tests for citygraph.gateway: only security officers explain policies and read the audit trail.
package citygraph.gateway_test

import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request_with
import data.citygraph.gateway

sec_officer := object.union(alice, {"department": "cyberspace_office", "roles": ["security_officer"]})

gateway_decision(subject, type) := d if {
	r := request_with(subject, null, type, [])
	d := gateway.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
}

test_security_officers_read_the_audit_trail if {
	d := gateway_decision(sec_officer, "AuditRecord")
	d.allow == true
	d.filter == {}
	d.obligations.audit == "full"
}

test_security_officers_reload_policies if {
	gateway_decision(sec_officer, "PolicyReload").allow == true
	gateway_decision(alice, "PolicyReload").allow == false
}

test_security_officers_explain_policies if {
	gateway_decision(sec_officer, "PolicyExplanation").allow == true
}

test_others_are_refused if {
	gateway_decision(alice, "AuditRecord").allow == false
	gateway_decision(public, "PolicyExplanation").allow == false
}

test_officers_need_clearance_3 if {
	gateway_decision(object.union(sec_officer, {"clearance": 2}), "AuditRecord").allow == false
}

test_unknown_types_are_undefined if {
	not gateway_decision(sec_officer, "CreditRecord")
}
