# The gateway's own data (网关): policy explanations and the audit trail, for security officers.
#
# Only a subject with the role security_officer, clearance 3 or more, may dry-run policies or
# read the audit trail; reading the trail is itself audited. Any other type stays undefined
# (default deny).
package citygraph.gateway

import data.citygraph.common

is_officer if {
	"security_officer" in input.subject.roles
	not common.is_public
	common.clearance >= 3
}

decision := {
	"allow": true,
	"fields": {},
	"filter": {},
	"obligations": {"audit": "full", "max_rows": 500},
	"reasons": ["security officer"],
} if {
	input.resource.type in officer_types
	is_officer
}

decision := {"allow": false, "reasons": ["security officers only"]} if {
	input.resource.type in officer_types
	not is_officer
}

# PolicyReload: POST /admin/policy/reload.
officer_types := {"PolicyExplanation", "AuditRecord", "PolicyReload"}
