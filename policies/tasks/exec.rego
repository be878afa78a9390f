# Tasks.Exec: the process spec is checked like the container's, and may not
# hold a capability its container does not have.
package berth.tasks.exec

import data.berth.lib.common
import data.berth.lib.process
import data.berth.lib.stdio

default allow := false

allow if {
	input.version == 2
	common.kind_matches
	count(deny) == 0
}

r := input.request

deny contains "unsupported policy input version" if input.version != 2

deny contains "request does not match the method" if not common.kind_matches

deny contains reason if some reason in process.deny

deny contains reason if some reason in stdio.deny

deny contains sprintf("capability %s is not in the container's set", [cap]) if {
	some set in ["bounding", "effective", "permitted"]
	some cap in r.process.capabilities[set]
	cap in process.default_caps
	not cap in r.container_capabilities
}
