# License store (电子证照库): enterprise registration data, persons, licences and verification.
#
# Row filters are UCAST nodes over table.column names; {} means unrestricted. Any other resource
# type leaves the decision undefined, so data.citygraph.authz.decision stays at its default deny.
package citygraph.license

import data.citygraph.common

# Public security (公安) with a declared, registered purpose may read persons and their
# identity documents; nobody else may.
is_police if input.subject.department == "public_security"

police_with_purpose if {
	is_police
	common.purpose_valid
}

audit_level := "none" if common.is_public else := "full"

decision := {
	"allow": true,
	"fields": object.union(common.field_rules, extra_rules),
	"filter": scope.filter,
	"obligations": {"audit": audit_level, "max_rows": 500},
	"reasons": [scope.reason],
}

# --- enterprises (registration data from business licences) ---

scope := {
	"filter": {"type": "field", "field": "enterprises.district_code", "operator": "in", "value": districts},
	"reason": "district officer: enterprises registered in own districts",
} if {
	input.resource.type == "Enterprise"
	common.is_district_officer
} else := {"filter": {}, "reason": "enterprise registration data: city-wide"} if {
	input.resource.type == "Enterprise"
}

# --- licences ---

enterprise_licences := {"type": "field", "field": "licenses.holder_kind", "operator": "eq", "value": "ENTERPRISE"}

scope := {"filter": {}, "reason": "public security with a declared purpose: all licences"} if {
	input.resource.type == "License"
	police_with_purpose
} else := {
	"filter": {"type": "compound", "operator": "and", "value": [
		enterprise_licences,
		{"type": "field", "field": "licenses.district_code", "operator": "in", "value": districts},
	]},
	"reason": "district officer: enterprise licences of own districts",
} if {
	input.resource.type == "License"
	common.is_district_officer
} else := {"filter": enterprise_licences, "reason": "enterprise licences: city-wide"} if {
	input.resource.type == "License"
}

# --- persons: readable only through links (legal representatives), masked unless police ---

scope := {"filter": {}, "reason": "persons: police see them, everyone else masked"} if {
	input.resource.type == "Person"
}

# --- verification: anyone may verify; by number only enterprise licences (an ID number is not an
# oracle), a presented signed document always (its holder already has it) ---

scope := {"filter": {}, "reason": "verification by number: public security, all licences"} if {
	input.resource.type == "LicenseVerification"
	police_with_purpose
} else := {"filter": enterprise_licences, "reason": "verification by number: enterprise licences"} if {
	input.resource.type == "LicenseVerification"
}

scope := {"filter": {}, "reason": "verification of a presented signed document"} if {
	input.resource.type == "LicenseDocument"
}

districts := sort([d | some d in input.subject.districts; is_string(d)])

# Persons' fields: police need clearance and a purpose (common rules); everyone else gets every
# personal field masked (or denied where no masking pattern exists), whatever their clearance.
# Looking a person up by ID number is for police only: it would otherwise confirm that a guessed
# ID number exists.
extra_rules[coordinate] := rule if {
	input.resource.type == "Person"
	not is_police
	not common.is_public
	some f in input.resource.fields
	f.level >= 3
	coordinate := f.coordinate
	rule := masked_or_denied(coordinate)
}

extra_rules["Query.person"] := {"action": "deny"} if {
	input.resource.type == "Person"
	not is_police
}

masked_or_denied(coordinate) := object.union(data.citygraph.masking[coordinate], {"action": "mask"}) if {
	data.citygraph.masking[coordinate]
} else := {"action": "deny"}
