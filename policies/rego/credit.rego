# Credit department (信用平台): enterprises, credit profiles and credit records.
#
# Row filters are OPA UCAST nodes over table.column names; {} means unrestricted. The decision is
# undefined for any other resource type, which leaves data.citygraph.authz.decision at its default deny.
package citygraph.credit

import data.citygraph.common

decision := {
	"allow": true,
	"fields": common.field_rules,
	"filter": scope.filter,
	"obligations": {"audit": audit_level, "max_rows": 500},
	"reasons": [scope.reason],
}

# Authenticated reads leave full evidence; the public reads only public (L1) data, which the
# gateway does not audit.
audit_level := "none" if common.is_public else := "full"

scope := {"filter": {}, "reason": "enterprise and profile data: no row restriction"} if {
	input.resource.type in {"Enterprise", "CreditProfile"}
}

scope := record_scope if input.resource.type == "CreditRecord"

# One else chain, so exactly one filter applies. Jurisdiction always restricts: a district officer
# sees only their own districts even when their department is market supervision.
record_scope := {
	"filter": {"type": "field", "field": "credit_records.district_code", "operator": "in", "value": districts},
	"reason": "district officer: own jurisdiction only",
} if {
	common.is_district_officer
} else := {"filter": {}, "reason": "market supervision: city-wide"} if {
	not common.is_public
	input.subject.department == "market_supervision"
} else := {"filter": publicity_filter, "reason": "public and other departments: publicity period running"}

districts := sort([d | some d in input.subject.districts; is_string(d)])

# Undefined without a well-formed input.context.today, so the decision is undefined (deny).
publicity_filter := {"type": "compound", "operator": "and", "value": [
	{"type": "field", "field": "credit_records.publicity_start", "operator": "lte", "value": today},
	{"type": "field", "field": "credit_records.publicity_end", "operator": "gte", "value": today},
]}

today := input.context.today if {
	is_string(input.context.today)
	regex.match(`^\d{4}-\d{2}-\d{2}$`, input.context.today)
}
