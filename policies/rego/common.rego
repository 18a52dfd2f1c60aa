# Helpers shared by department policies.
#
# The gateway builds the input: subject (verified principal), purpose, resource (connector, type,
# fields with integer classification levels 1..4), operation and context (today, now_ns).
# Anything missing or mistyped is read in the restrictive way.
package citygraph.common

# The declared purpose of use is one the city recognises.
purpose_valid if {
	is_string(input.purpose)
	input.purpose in object.keys(data.citygraph.purposes)
}

# No verified token. Only a literal true counts as authenticated, so a missing flag is public.
is_public if not input.subject.authenticated == true

is_district_officer if "district_officer" in input.subject.roles

# Public callers never exceed level 1, whatever the subject document claims; a missing or
# non-numeric clearance reads as 0, which is below every level.
clearance := 1 if {
	is_public
} else := c if {
	c := input.subject.clearance
	is_number(c)
} else := 0

# coordinate -> rule for the selected fields that need one. L1/L2 fields with no entry are
# allowed; L3/L4 fields are granted only by an explicit {"action": "allow"}.
# Rules come from one function with an else chain, so a coordinate can never get two values.
field_rules := {f.coordinate: rule |
	some f in input.resource.fields
	rule := field_rule(f)
}

# A level outside 1..4 is a gateway bug: deny rather than guess.
field_rule(f) := {"action": "deny"} if {
	not valid_level(f.level)
} else := {"action": "deny"} if {
	f.level > clearance
	is_public
} else := object.union(spec, {"action": "mask"}) if {
	# staff below the field's level see it masked when a masking spec exists ("mask" always wins)
	f.level > clearance
	spec := data.citygraph.masking[f.coordinate]
} else := {"action": "deny"} if {
	f.level > clearance
} else := {"action": "deny", "code": "PURPOSE_REQUIRED"} if {
	# sensitive (L3+) data needs a declared, recognised purpose even within clearance
	f.level >= 3
	not purpose_valid
} else := {"action": "allow"} if {
	# the gateway denies L3+ fields that a decision does not grant explicitly
	f.level >= 3
}

valid_level(level) if level in {1, 2, 3, 4}
