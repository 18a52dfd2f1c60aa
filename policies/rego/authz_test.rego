# Tests for the entrypoint data.citygraph.authz.decision (key-by-key `with`, see common_test).
package citygraph.authz_test

import data.citygraph.authz
import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request

no_policy := {"allow": false, "reasons": ["no policy for this connector"]}

test_credit_connector_routed_to_credit_policy if {
	r := request(alice, "law_enforcement", "CreditRecord")
	d := authz.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == true
	d.filter == {}
	d.reasons == ["market supervision: city-wide"]
}

test_public_record_read_allowed_with_publicity_filter if {
	r := request(public, null, "CreditRecord")
	d := authz.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == true
	d.filter.type == "compound"
}

test_unknown_connector_denied if {
	r := request(alice, "law_enforcement", "CreditRecord")
	resource := object.union(r.resource, {"connector": "tax"})
	d := authz.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as resource
		with input.context as r.context
	d == no_policy
}

test_missing_resource_denied if {
	r := request(alice, "law_enforcement", "CreditRecord")
	d := authz.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.context as r.context
	d == no_policy
}

test_unknown_type_denied if {
	r := request(alice, "law_enforcement", "Person")
	d := authz.decision
		with input.subject as r.subject
		with input.purpose as r.purpose
		with input.resource as r.resource
		with input.context as r.context
	d.allow == false
}
