# Rules for a process, shared by containers.create (the container's init
# process) and tasks.exec. Reads input.request.process.
package berth.lib.process

p := input.request.process

default_caps := {cap | some cap in data.boundary.default_capabilities}

# Every capability named in any set.
named_caps := {cap | some set in p.capabilities; some cap in set}

# Capabilities outside docker's default set, in any set.
deny contains sprintf("capability %s is not allowed", [cap]) if {
	some cap in named_caps - default_caps
}

# Inheritable and ambient capabilities survive execve of unprivileged
# binaries; no docker workload needs them.
deny contains "inheritable capabilities are not allowed" if count(p.capabilities.inheritable) > 0

deny contains "ambient capabilities are not allowed" if count(p.capabilities.ambient) > 0

deny contains "the working directory must be an absolute path" if not startswith(p.cwd, "/")

deny contains "the working directory must not contain . or .. components" if {
	some dot in ["/./", "/../"]
	contains(concat("", ["/", p.cwd, "/"]), dot)
}

# CVE-2024-21626: a cwd in /proc/self/fd can leak a host directory fd.
deny contains "a working directory under /proc is not allowed" if startswith(concat("", [p.cwd, "/"]), "/proc/")

deny contains "apparmor profiles are not allowed" if {
	is_string(p.apparmor_profile)
	p.apparmor_profile != ""
}

deny contains "selinux labels are not allowed" if {
	is_string(p.selinux_label)
	p.selinux_label != ""
}

deny contains "a negative oom score adjustment is not allowed" if {
	is_number(p.oom_score_adj)
	p.oom_score_adj < 0
}

deny contains sprintf("rlimit %s is not allowed", [r.type]) if {
	some r in p.rlimits
	not r.type in object.keys(data.boundary.rlimits)
}

deny contains sprintf("rlimit %s above %d is not allowed", [r.type, max]) if {
	some r in p.rlimits
	max := data.boundary.rlimits[r.type]
	is_number(max)
	r.hard > max
}
