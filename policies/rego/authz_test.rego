package citygraph.authz_test

import data.citygraph.authz
import data.citygraph.common_test.alice
import data.citygraph.common_test.alice_request
import data.citygraph.common_test.public_request
import data.citygraph.common_test.request
import data.citygraph.credit

no_policy := {"allow": false, "reasons": ["no policy for this connector"]}

test_credit_connector_routed_to_credit_policy if {
	d := authz.decision with input as alice_request
	d.allow == true
	d == credit.decision with input as alice_request
}

test_public_record_read_allowed_with_filter if {
	d := authz.decision with input as public_request
	d.allow == true
	d.filter.type == "compound"
}

test_unknown_connector_denied if {
	req := object.union(alice_request, {"resource": {"connector": "tax"}})
	authz.decision == no_policy with input as req
}

test_missing_connector_denied if {
	req := object.remove(alice_request, ["resource"])
	authz.decision == no_policy with input as req
}

test_unknown_type_denied if {
	d := authz.decision with input as request(alice, "law_enforcement", "Person")
	d.allow == false
}
