# Rules for a process, shared by containers.create (the container's init
# process) and tasks.exec. Reads input.request.process, whose per-item facts
# (capabilities outside docker's default set, the working directory's
# shape, rlimits outside the table) the gateway computes.
package berth.lib.process

# docker's default set, for tasks.exec's comparison with its container.
default_caps := {cap | some cap in data.boundary.default_capabilities}

# Capabilities outside docker's default set, in any set.
deny contains sprintf("capability %s is not allowed", [cap]) if {
	some cap in input.request.process.capabilities.outside_default
}

# Inheritable and ambient capabilities survive execve of unprivileged
# binaries; no docker workload needs them.
deny contains "inheritable capabilities are not allowed" if count(input.request.process.capabilities.inheritable) > 0

deny contains "ambient capabilities are not allowed" if count(input.request.process.capabilities.ambient) > 0

deny contains "the working directory must be an absolute path" if not input.request.process.cwd.absolute

deny contains "the working directory must not contain . or .. components" if not input.request.process.cwd.normalized

# CVE-2024-21626: a cwd in /proc/self/fd can leak a host directory fd.
deny contains "a working directory under /proc is not allowed" if input.request.process.cwd.under_proc

deny contains "apparmor profiles are not allowed" if {
	is_string(input.request.process.apparmor_profile)
	input.request.process.apparmor_profile != ""
}

deny contains "selinux labels are not allowed" if {
	is_string(input.request.process.selinux_label)
	input.request.process.selinux_label != ""
}

deny contains "a negative oom score adjustment is not allowed" if {
	is_number(input.request.process.oom_score_adj)
	input.request.process.oom_score_adj < 0
}

deny contains sprintf("rlimit %s is not allowed", [type]) if some type in input.request.process.rlimits.unknown

deny contains sprintf("rlimit %s above %d is not allowed", [x.type, x.max]) if some x in input.request.process.rlimits.above_max
