# Containers.Update: only labels may change, and none the daemons read.
package berth.containers.update

import data.berth.lib.common

default allow := false

allow if {
	input.version == 2
	common.kind_matches
	count(deny) == 0
}

r := input.request

deny contains "unsupported policy input version" if input.version != 2

deny contains "request does not match the method" if not common.kind_matches

label_path(path) if path == "labels"

label_path(path) if startswith(path, "labels.")

deny contains sprintf("changing %s is not allowed (only labels)", [path]) if {
	some path in r.paths
	not label_path(path)
}

deny contains sprintf("label %s uses a prefix the daemons read", [key]) if {
	some key in r.label_keys
	strings.any_prefix_match(key, data.boundary.daemon_prefixes)
}
