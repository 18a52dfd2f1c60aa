# Tests for citygraph.spatial; fixtures and the key-by-key `with` convention come from common_test.
package citygraph.spatial_test

import data.citygraph.authz
import data.citygraph.common_test.alice
import data.citygraph.common_test.public
import data.citygraph.common_test.request_with
import data.citygraph.license
import data.citygraph.spatial

officer := object.union(alice, {"department": "street_office", "roles": ["district_officer"], "districts": ["330212", "330203"]})

planner := object.union(alice, {"department": "natural_resources", "roles": ["staff"], "districts": []})

planning_officer := object.union(planner, {"roles": ["district_officer"], "districts": ["330205"]})

lamps := object.union(alice, {"department": "urban_management", "roles": ["staff"], "districts": []})

feature_fields := [{"coordinate": "Feature.geometry", "level": 1, "pi": null}]

# The gateway's input for (spatial, type), overridden key by key.
spatial_decide(subject, type) := d if {
	r := request_with(subject, null, type, feature_fields)
	resource := object.union(r.resource, {"connector": "spatial"})
	d := spatial.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.case_ref as r.case_ref
		with input.resource as resource
		with input.operation as r.operation
		with input.context as r.context
}

layer_in(names) := {"type": "field", "field": "features.layer", "operator": "in", "value": names}

own(prefix, districts) := {"type": "field", "field": concat(".", [prefix, "geometry"]), "operator": "within_districts", "value": districts}

clause(layer, restriction) := {"type": "compound", "operator": "and", "value": [layer_in([layer]), restriction]}

test_public_sees_districts_pois_and_enterprise_locations if {
	d := spatial_decide(public, "Feature")
	d.allow == true
	d.filter == layer_in(["districts", "enterprise_locations", "pois"])
	d.obligations.audit == "none"
}

test_public_sees_no_devices_or_readings if {
	d := spatial_decide(public, "Device")
	d.filter == {"type": "field", "field": "devices.kind", "operator": "in", "value": []}
	r := spatial_decide(public, "DeviceReading")
	r.filter == {"type": "field", "field": "readings.kind", "operator": "in", "value": []}
}

test_natural_resources_staff_see_parcels_city_wide if {
	d := spatial_decide(planner, "Feature")
	d.filter == layer_in(["districts", "enterprise_locations", "parcels", "pois"])
	d.obligations.audit == "full"
}

test_other_staff_see_no_parcels if {
	d := spatial_decide(alice, "Feature")
	d.filter == layer_in(["districts", "enterprise_locations", "pois"])
}

test_district_officer_sees_parcels_and_devices_of_own_districts_on_the_map if {
	d := spatial_decide(officer, "Feature")
	d.filter.type == "compound"
	d.filter.operator == "or"
	layer_in(["districts", "pois"]) in d.filter.value
	clause("parcels", own("features", ["330203", "330212"])) in d.filter.value
	clause("iot_devices", own("features", ["330203", "330212"])) in d.filter.value
	count(d.filter.value) == 4
}

test_jurisdiction_restricts_natural_resources_officers_too if {
	d := spatial_decide(planning_officer, "Feature")
	clause("parcels", own("features", ["330205"])) in d.filter.value
	not layer_in(["districts", "pois", "parcels"]) in d.filter.value
}

test_district_officer_devices_and_readings_within_own_districts if {
	d := spatial_decide(officer, "Device")
	d.filter == own("devices", ["330203", "330212"])
	r := spatial_decide(officer, "DeviceReading")
	r.filter == own("readings", ["330203", "330212"])
}

test_jurisdiction_restricts_device_operators_too if {
	lamp_officer := object.union(lamps, {"roles": ["district_officer"], "districts": ["330206"]})
	d := spatial_decide(lamp_officer, "Device")
	d.filter == own("devices", ["330206"])
}

test_no_subject_no_decision if {
	r := request_with(public, null, "Feature", feature_fields)
	resource := object.union(r.resource, {"connector": "spatial"})
	not spatial.decision with input.resource as resource
}

test_device_operators_see_every_device if {
	d := spatial_decide(lamps, "Device")
	d.filter == {}
	f := spatial_decide(lamps, "Feature")
	f.filter == layer_in(["districts", "enterprise_locations", "iot_devices", "pois"])
}

# Enterprise locations follow the license store's Enterprise rule, column for column.
test_enterprise_locations_follow_the_license_store if {
	r := request_with(officer, null, "Enterprise", [])
	resource := object.union(r.resource, {"connector": "license"})
	l := license.decision
		with input.subject as r.subject
		with input.resource as resource
		with input.context as r.context
	l.filter.field == "enterprises.district_code"
	d := spatial_decide(officer, "Feature")
	expected := {"type": "field", "field": "features.district_code", "operator": l.filter.operator, "value": l.filter.value}
	clause("enterprise_locations", expected) in d.filter.value
}

test_layer_list_names_the_granted_layers if {
	d := spatial_decide(officer, "Layer")
	d.filter == {"type": "field", "field": "layers.name", "operator": "in", "value": ["districts", "enterprise_locations", "iot_devices", "parcels", "pois"]}
	p := spatial_decide(public, "Layer")
	p.filter.value == ["districts", "enterprise_locations", "pois"]
}

test_district_boundaries_are_public if {
	d := spatial_decide(public, "District")
	d.allow == true
	d.filter == {}
}

test_malformed_districts_are_dropped if {
	odd := object.union(officer, {"districts": ["330203", 42, null]})
	d := spatial_decide(odd, "Device")
	d.filter == own("devices", ["330203"])
}

test_unknown_type_is_undefined if {
	r := request_with(alice, null, "Parcel", feature_fields)
	resource := object.union(r.resource, {"connector": "spatial"})
	not spatial.decision
		with input.subject as r.subject
		with input.resource as resource
		with input.context as r.context
}

test_authz_routes_the_spatial_connector if {
	r := request_with(public, null, "District", feature_fields)
	resource := object.union(r.resource, {"connector": "spatial"})
	d := authz.decision
		with input.subject as r.subject
		with input.action as r.action
		with input.purpose as r.purpose
		with input.resource as resource
		with input.operation as r.operation
		with input.context as r.context
	d.allow == true
	d.reasons == ["district boundaries are public"]
}
