# Decision-log masking (OPA's data.system.log.mask), applied before any decision event is written.
#
# The input is the whole decision-log event, as in OPA: input.input is the decision's input
# document, input.result the decision, plus input.path, input.labels, input.bundles, ... The rule
# returns a set of JSON pointers under /input or /result to erase, and/or upserts
# {"op": "upsert", "path": <pointer>, "value": <v>}. The gateway applies them (policies/decisionlog.py)
# and lists what it actually applied in the event's "erased" and "masked".
#
# Our rules, and why:
# * /input/operation/args is erased: root-field arguments are whatever the caller typed (a USCC,
#   a resident ID number, a name searched for), so they may be personal data that the log does
#   not need. Erased whenever present, whatever its type: a malformed value is no safer to keep.
# * /input/operation/arg_names is upserted with, per coordinate, the set of argument names
#   ({"Query.creditRecords": ["district", "first"]}): which filters were used stays visible for
#   debugging and review, their values do not.
# Kept on purpose: subject (who asked is the point of the log), purpose and case_ref (audit
# evidence that the read had a stated basis), resource and coordinates (what was asked for), and
# the whole result (what was decided; reasons never reach clients but belong here).
#
# Only this package and data.json are compiled into the mask bundle: do not import other packages.
# The package lies outside the "citygraph" root, so .manifest lists "system/log" and
# "system/log_test" in its roots (the engine refuses modules outside the roots; so does OPA).
package system.log

mask contains "/input/operation/args" if {
	_ = input.input.operation.args # defined, whatever its value (false and null included)
}

mask contains upsert if {
	count(arg_names) > 0
	upsert := {"op": "upsert", "path": "/input/operation/arg_names", "value": arg_names}
}

# A set serialises as a sorted JSON array. (Not sort(): regopy's sort() of a set is no array.)
arg_names := {coordinate: object.keys(args) |
	some coordinate, args in input.input.operation.args
	is_object(args)
}
