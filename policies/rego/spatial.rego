# Spatio-temporal cloud (时空信息云): features of the layers, districts, layer metadata, IoT devices
# and their readings.
#
# Which layers a subject sees is a row filter over features.layer, and jurisdiction is drawn on the
# map: a district officer's parcels and devices are restricted with the spatial extension
#   {"field": "<x>.geometry", "operator": "within_districts", "value": [adcodes]}
# which the connector evaluates against the stored district boundaries (never client geometry): a
# feature is in a district when it intersects its boundary. Any other resource type leaves the
# decision undefined, so data.citygraph.authz.decision stays at its default deny.
#
# Written flat on purpose: regopy compiles `with` (every test uses it) in time exponential in the
# depth of rule-to-rule references, so the logic lives in local variables of one rule (`view`),
# not in layers of helper rules and functions. Keep it that way (depth <= 3 below `decision`).
package citygraph.spatial

import data.citygraph.common

# Planning and natural-resources staff (宁波市自然资源和规划局) see parcels city-wide.
planning_departments := {"natural_resources"}

# Departments operating the public-facilities IoT (城管: street lights and bins; 水利: water levels)
# see every device and its readings.
device_departments := {"urban_management", "water_resources"}

audit_level := "none" if common.is_public else := "full"

decision := {
	"allow": true,
	"fields": common.field_rules,
	"filter": scope.filter,
	"obligations": {"audit": audit_level, "max_rows": 500},
	"reasons": [scope.reason],
}

# What this subject sees of each layer.
# - everybody: districts and pois, whole;
# - enterprise_locations: as the license store decides for the enterprise itself (Enterprise in
#   license.rego): district officers those registered in their districts, everybody else all
#   (spatial_test proves the two policies agree);
# - natural_resources staff: parcels, whole; device departments: iot_devices, whole;
# - district officers: parcels and iot_devices intersecting their districts. Jurisdiction always
#   restricts: a district officer never sees a layer whole because of their department.
view := {"whole": whole, "partial": partial, "own": own, "devices": devices} if {
	officer := count({1 | common.is_district_officer}) > 0
	staff := count({1 | not common.is_public}) > 0
	department := object.get(input.subject, "department", "")
	planner := count({1 | staff; not officer; department in planning_departments}) > 0
	operator := count({1 | staff; not officer; department in device_departments}) > 0
	own := sort([d | some d in object.get(input.subject, "districts", []); is_string(d)])
	civilian := officer == false
	extra := [pair[0] | some pair in [["parcels", planner], ["iot_devices", operator], ["enterprise_locations", civilian]]; pair[1]]
	whole := sort(array.concat(["districts", "pois"], extra))
	mine := {"type": "field", "field": "features.geometry", "operator": "within_districts", "value": own}
	registered := {"type": "field", "field": "features.district_code", "operator": "in", "value": own}
	partial := [clause |
		officer
		some pair in [["enterprise_locations", registered], ["iot_devices", mine], ["parcels", mine]]
		clause := {"type": "compound", "operator": "and", "value": [
			{"type": "field", "field": "features.layer", "operator": "in", "value": [pair[0]]},
			pair[1],
		]}
	]
	devices := concat("", [pair[0] | some pair in [["own", officer], ["all", operator]]; pair[1]])
}

scope := {"filter": filter, "reason": concat("", ["layers: ", concat(",", layers)])} if {
	input.resource.type == "Feature"
	whole := {"type": "field", "field": "features.layer", "operator": "in", "value": view.whole}
	either := {false: whole, true: {"type": "compound", "operator": "or", "value": array.concat([whole], view.partial)}}
	filter := either[count(view.partial) > 0]
	layers := sort(array.concat(view.whole, [c.value[0].value[0] | some c in view.partial]))
}

scope := {"filter": filter, "reason": "layer list: the layers this subject may read"} if {
	input.resource.type == "Layer"
	layers := sort(array.concat(view.whole, [c.value[0].value[0] | some c in view.partial]))
	filter := {"type": "field", "field": "layers.name", "operator": "in", "value": layers}
}

scope := {"filter": {}, "reason": "district boundaries are public"} if {
	input.resource.type == "District"
}

# Devices and their readings: device departments all, district officers their districts, others none.
scope := {"filter": filter, "reason": reason} if {
	input.resource.type in {"Device", "DeviceReading"}
	prefix := {"Device": "devices", "DeviceReading": "readings"}[input.resource.type]
	filters := {
		"own": {"type": "field", "field": concat(".", [prefix, "geometry"]), "operator": "within_districts", "value": view.own},
		"all": {},
		"": {"type": "field", "field": concat(".", [prefix, "kind"]), "operator": "in", "value": []},
	}
	reasons := {
		"own": "IoT devices: district officer, own districts",
		"all": "IoT devices: device operators city-wide",
		"": "IoT devices: not for this subject",
	}
	filter := filters[view.devices]
	reason := reasons[view.devices]
}
