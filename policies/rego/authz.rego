# The entrypoint every engine evaluates: data.citygraph.authz.decision (see policies/engine.py).
#
# One line per department routes its connector to the department's package. A connector without
# a line, or a department decision that is undefined for the request (unknown resource type,
# missing context), falls back to the default deny.
package citygraph.authz

default decision := {"allow": false, "reasons": ["no policy for this connector"]}

decision := data.citygraph.credit.decision if input.resource.connector == "credit"

decision := data.citygraph.license.decision if input.resource.connector == "license"

decision := data.citygraph.gateway.decision if input.resource.connector == "gateway"

decision := data.citygraph.spatial.decision if input.resource.connector == "spatial"

decision := data.citygraph.video.decision if input.resource.connector == "video"
