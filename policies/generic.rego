# Every served method without a package of its own. Methods whose requests
# carry a spec or host-facing fields have their own package (see
# data.boundary.admitted_methods) and are refused here.
package berth.generic

default allow := false

allow if {
	input.version == 2
	count(deny) == 0
}

deny contains "unsupported policy input version" if input.version != 2

deny contains reason if {
	reason := data.boundary.refused_methods[input.method]
}

deny contains sprintf("method %s is not served", [input.method]) if not input.method in data.boundary.served_methods

deny contains sprintf("method %s needs its own admission", [input.method]) if data.boundary.admitted_methods[input.method]
