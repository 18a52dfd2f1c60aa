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
# lifetime; the gateway also caps it at its own url_ttl_max_s) come from data.citygraph.video_limits.
#
# Written flat on purpose (see spatial.rego): regopy compiles `with` in time exponential in the depth
# and branching of rule-to-rule references, so everything lives in local variables of `decision`.
package citygraph.video

import data.citygraph.common

# What other departments may see of a camera (and the root fields that list it).
existence_only := {"Camera.deviceId", "Camera.status", "Query.camera", "Query.cameras"}

decision := result if {
	type := input.resource.type
	type in {"Camera", "Recording", "Playback", "LiveStream"}
	department := object.get(input.subject, "department", "")
	public := count({1 | common.is_public}) > 0
	police := count({1 | not public; department == "public_security"}) > 0
	urban := count({1 | not public; department == "urban_management"}) > 0
	staff := count({1 | not public; not police; not urban}) > 0
	purpose := count({1 | common.purpose_valid}) > 0
	case := count({1 | is_string(input.case_ref); trim_space(input.case_ref) != ""}) > 0
	camera := type == "Camera"
	recording := type in {"Recording", "Playback"}
	stream := type == "LiveStream"
	own := sort([d | some d in object.get(input.subject, "districts", []); is_string(d)])
	mine := {"type": "field", "field": "cameras.district_code", "operator": "in", "value": own}
	owned := {"type": "compound", "operator": "and", "value": [
		{"type": "field", "field": "cameras.owner", "operator": "eq", "value": "urban_management"},
		mine,
	]}
	deny := {"allow": false, "code": "FORBIDDEN"}
	# The first row that applies decides (type, who, purpose, case -> scope).
	table := [
		[count({1 | camera; public}) > 0, object.union(deny, {"reason": "the public sees no cameras"})],
		[count({1 | camera; police}) > 0, {"allow": true, "filter": {}, "reason": "public security: cameras city-wide"}],
		[count({1 | camera; urban}) > 0, {"allow": true, "filter": mine, "reason": "urban management: cameras of its districts"}],
		[camera, {"allow": true, "filter": {}, "reason": "other departments: camera existence and status only"}],
		[count({1 | recording; not police}) > 0, object.union(deny, {"reason": "recordings: public security only"})],
		[count({1 | stream; not police; not urban}) > 0, object.union(deny, {"reason": "live streams: public security and urban management only"})],
		[count({1 | not camera; not purpose}) > 0, {"allow": false, "code": "PURPOSE_REQUIRED", "reason": "streams and recordings need a declared purpose"}],
		[count({1 | not camera; police; not case}) > 0, {"allow": false, "code": "CASE_REF_REQUIRED", "reason": "public security needs a case reference"}],
		[police, {"allow": true, "filter": {}, "reason": "public security with purpose and case: recordings and streams"}],
		[true, {"allow": true, "filter": owned, "reason": "urban management: live streams of its own cameras in its districts"}],
	]
	scope := [row[1] | some row in table; row[0]][0]

	# Other departments: nothing that locates a camera (fields here; listing by place: obligations.locate).
	hidden := {c: {"action": "deny"} |
		camera
		staff
		some f in input.resource.fields
		c := f.coordinate
		not c in existence_only
	}
	limits := data.citygraph.video_limits
	not_staff := staff == false
	audit := {true: "none", false: "full"}[public]
	allowed := {
		"allow": true,
		"fields": object.union(common.field_rules, hidden),
		"filter": object.get(scope, "filter", {}),
		"obligations": {
			"audit": audit, "max_rows": 500,
			"max_window_s": limits.max_window_s, "url_ttl_s": limits.url_ttl_s,
			# May this subject list cameras by place, district, owner or kind (which locates them)?
			"locate": not_staff,
		},
		"reasons": [scope.reason],
	}
	denied := {"allow": false, "code": object.get(scope, "code", "FORBIDDEN"), "reasons": [scope.reason]}
	result := {true: allowed, false: denied}[scope.allow]
}
