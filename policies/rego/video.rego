# Video resource library (视频资源库): cameras, recordings, live streams and playback.
#
# Footage is whereabouts (行踪轨迹, PIPL art. 28): every stream needs a declared purpose, police
# streams and recordings also a case reference, and the gateway audits every URL it signs.
# - public security: cameras city-wide; recordings, playback and live streams with a purpose and a case;
# - urban management: cameras (status, location) of its districts; live streams of its own cameras
#   there, with a purpose; no recordings;
# - other departments: that a camera exists and its status, nothing that locates it;
# - the public: nothing.
# Obligations: max_window_s (longest recordings window per request) and url_ttl_s (stream URL
# lifetime; the gateway also caps it at its own url_ttl_max_s) come from data.citygraph.video.
#
# Written flat (see spatial.rego): the logic lives in local variables of few rules.
package citygraph.video

import data.citygraph.common

audit_level := "none" if common.is_public else := "full"

limits := object.union({"max_window_s": 86400, "url_ttl_s": 300}, object.get(data.citygraph, "video", {}))

who := "public" if {
	common.is_public
} else := "police" if {
	input.subject.department == "public_security"
} else := "urban" if {
	input.subject.department == "urban_management"
} else := "staff"

has_case if {
	is_string(input.case_ref)
	count(trim_space(input.case_ref)) > 0
}

districts := sort([d | some d in object.get(input.subject, "districts", []); is_string(d)])

in_districts := {"type": "field", "field": "cameras.district_code", "operator": "in", "value": districts}

decision := {
	"allow": true,
	"fields": object.union(common.field_rules, extra_rules),
	"filter": scope.filter,
	"obligations": {
		"audit": audit_level, "max_rows": 500,
		"max_window_s": limits.max_window_s, "url_ttl_s": limits.url_ttl_s,
	},
	"reasons": [scope.reason],
} if {
	scope.allow == true
}

decision := {"allow": false, "code": scope.code, "reasons": [scope.reason]} if {
	scope.allow == false
}

# --- cameras ---

scope := {"allow": false, "code": "FORBIDDEN", "reason": "the public sees no cameras"} if {
	input.resource.type == "Camera"
	who == "public"
} else := {"allow": true, "filter": {}, "reason": "public security: cameras city-wide"} if {
	input.resource.type == "Camera"
	who == "police"
} else := {"allow": true, "filter": in_districts, "reason": "urban management: cameras of its districts"} if {
	input.resource.type == "Camera"
	who == "urban"
} else := {"allow": true, "filter": {}, "reason": "other departments: camera existence and status only"} if {
	input.resource.type == "Camera"
}

# --- recordings and playback: public security with a purpose and a case ---

scope := {"allow": false, "code": "FORBIDDEN", "reason": "recordings: public security only"} if {
	input.resource.type in {"Recording", "Playback"}
	who != "police"
} else := {"allow": false, "code": "PURPOSE_REQUIRED", "reason": "recordings: a declared purpose is required"} if {
	input.resource.type in {"Recording", "Playback"}
	not common.purpose_valid
} else := {"allow": false, "code": "CASE_REF_REQUIRED", "reason": "recordings: a case reference is required"} if {
	input.resource.type in {"Recording", "Playback"}
	not has_case
} else := {"allow": true, "filter": {}, "reason": "public security with purpose and case: recordings"} if {
	input.resource.type in {"Recording", "Playback"}
}

# --- live streams ---

scope := {"allow": false, "code": "FORBIDDEN", "reason": "live streams: public security and urban management only"} if {
	input.resource.type == "LiveStream"
	not who in {"police", "urban"}
} else := {"allow": false, "code": "PURPOSE_REQUIRED", "reason": "live streams: a declared purpose is required"} if {
	input.resource.type == "LiveStream"
	not common.purpose_valid
} else := {"allow": false, "code": "CASE_REF_REQUIRED", "reason": "live streams: public security needs a case reference"} if {
	input.resource.type == "LiveStream"
	who == "police"
	not has_case
} else := {"allow": true, "filter": {}, "reason": "public security with purpose and case: live streams"} if {
	input.resource.type == "LiveStream"
	who == "police"
} else := {
	"allow": true,
	"filter": {"type": "compound", "operator": "and", "value": [
		{"type": "field", "field": "cameras.owner", "operator": "eq", "value": "urban_management"},
		in_districts,
	]},
	"reason": "urban management: live streams of its own cameras in its districts",
} if {
	input.resource.type == "LiveStream"
}

# --- what other departments may not see of a camera ---

existence_only := {"Camera.deviceId", "Camera.status", "Query.camera", "Query.cameras"}

extra_rules[coordinate] := {"action": "deny"} if {
	input.resource.type == "Camera"
	who == "staff"
	some f in input.resource.fields
	coordinate := f.coordinate
	not coordinate in existence_only
}

# Listing by place, district, owner or kind would locate cameras for a subject who may not see where they are.
extra_rules["Query.cameras"] := {"action": "deny"} if {
	input.resource.type == "Camera"
	who == "staff"
	some args in object.get(input.operation.args, "Query.cameras", [])
	locating := [k |
		some k in ["near", "within"]
		object.get(args, k, null) != null
	]
	given := object.get(args, "filter", {})
	criteria := {true: given, false: {}}[is_object(given)]
	filtered := [k |
		some k in ["district", "owner", "kind"]
		object.get(criteria, k, null) != null
	]
	count(locating) + count(filtered) > 0
}
