# Tests for citygraph.video; fixtures and the key-by-key `with` convention come from common_test.
package citygraph.video_test

import data.citygraph.authz
import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request_with
import data.citygraph.video

police := object.union(alice, {"department": "public_security", "roles": ["investigator"], "districts": []})

urban := object.union(alice, {"department": "urban_management", "roles": ["staff"], "districts": ["330203"]})

stream_fields := [{"coordinate": "LiveStream.url", "level": 3, "pi": "whereabouts"}]

camera_fields := [
	{"coordinate": "Camera.deviceId", "level": 1, "pi": null},
	{"coordinate": "Camera.status", "level": 1, "pi": null},
	{"coordinate": "Camera.location", "level": 2, "pi": null},
	{"coordinate": "Enterprise.nearbyCameras", "level": 2, "pi": null},
]

# The gateway's input for (video, type), overridden key by key.
video_decide(subject, purpose, case_ref, type, fields, args) := d if {
	base := request_with(subject, purpose, type, fields)
	r := object.union(base, {
		"case_ref": case_ref,
		"resource": object.union(base.resource, {"connector": "video"}),
		"operation": object.union(base.operation, {"args": args}),
	})
	d := video.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as r.resource
		with input.operation as r.operation
		with input.context as r.context
}

test_public_sees_no_cameras if {
	d := video_decide(public, null, null, "Camera", camera_fields, {})
	d.allow == false
	d.code == "FORBIDDEN"
}

test_police_see_cameras_city_wide if {
	d := video_decide(police, null, null, "Camera", camera_fields, {})
	d.allow == true
	d.filter == {}
	d.obligations.audit == "full"
	not d.fields["Camera.location"]
}

test_police_streams_need_purpose_and_case if {
	d := video_decide(police, null, null, "LiveStream", stream_fields, {})
	d.code == "PURPOSE_REQUIRED"
	c := video_decide(police, "case_investigation", null, "LiveStream", stream_fields, {})
	c.code == "CASE_REF_REQUIRED"
	ok := video_decide(police, "case_investigation", "NB-2026-0042", "LiveStream", stream_fields, {})
	ok.allow == true
	ok.filter == {}
	ok.fields["LiveStream.url"] == {"action": "allow"}
	ok.obligations.url_ttl_s == 300
}

test_police_recordings_and_playback_need_purpose_and_case if {
	video_decide(police, null, null, "Recording", [], {}).code == "PURPOSE_REQUIRED"
	video_decide(police, "case_investigation", "", "Playback", [], {}).code == "CASE_REF_REQUIRED"
	r := video_decide(police, "case_investigation", "NB-1", "Recording", [], {})
	r.allow == true
	r.obligations.max_window_s == 86400
}

test_urban_management_sees_cameras_of_its_districts if {
	d := video_decide(urban, null, null, "Camera", camera_fields, {})
	d.filter == {"type": "field", "field": "cameras.district_code", "operator": "in", "value": ["330203"]}
	not d.fields["Camera.location"]
}

test_urban_management_streams_own_cameras_with_purpose if {
	video_decide(urban, null, null, "LiveStream", stream_fields, {}).code == "PURPOSE_REQUIRED"
	d := video_decide(urban, "public_service", null, "LiveStream", stream_fields, {})
	d.allow == true
	d.filter.operator == "and"
	{"type": "field", "field": "cameras.owner", "operator": "eq", "value": "urban_management"} in d.filter.value
}

test_urban_management_gets_no_recordings if {
	d := video_decide(urban, "public_service", "UM-1", "Recording", [], {})
	d.allow == false
	d.code == "FORBIDDEN"
}

test_other_departments_see_existence_and_status_only if {
	d := video_decide(alice, "market_supervision", "X-1", "Camera", camera_fields, {})
	d.allow == true
	d.fields["Camera.location"] == {"action": "deny"}
	d.fields["Enterprise.nearbyCameras"] == {"action": "deny"}
	not d.fields["Camera.deviceId"]
	not d.fields["Camera.status"]
	not d.fields["Query.cameras"]
	video_decide(alice, "market_supervision", "X-1", "LiveStream", stream_fields, {}).code == "FORBIDDEN"
	video_decide(alice, "market_supervision", "X-1", "Recording", [], {}).code == "FORBIDDEN"
}

test_only_subjects_who_see_locations_may_list_cameras_by_place if {
	video_decide(alice, null, null, "Camera", camera_fields, {}).obligations.locate == false
	video_decide(urban, null, null, "Camera", camera_fields, {}).obligations.locate == true
	video_decide(police, null, null, "Camera", camera_fields, {}).obligations.locate == true
}

test_authz_routes_video_to_this_package if {
	r := request_with(public, null, "Camera", camera_fields)
	resource := object.union(r.resource, {"connector": "video"})
	d := authz.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == false
}

test_unknown_resource_type_is_undefined if {
	r := request_with(police, "case_investigation", "Secret", [])
	resource := object.union(r.resource, {"connector": "video"})
	not video.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as resource
		with input.operation as r.operation
		with input.context as r.context
}
