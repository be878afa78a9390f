# Tasks.Create (boundary rule 4): the gateway computes rootfs and stdio
# itself; the client may only ask for the relay.
package berth.tasks.create

import data.berth.lib.common
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

deny contains reason if some reason in stdio.deny

deny contains "client rootfs mounts are not allowed" if r.rootfs > 0

deny contains "checkpoints are not allowed" if r.checkpoint

deny contains "task options are not allowed" if r.options

deny contains "a runtime path is not allowed" if r.runtime_path != ""
