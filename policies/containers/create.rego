# Containers.Create (boundary rule 3). The input holds facts computed by the
# gateway from the strictly parsed spec; see policy/input.rs for the schema.
# What is allowed here is then hardened by the gateway before it goes on.
package berth.containers.create

import data.berth.lib.common
import data.berth.lib.process

default allow := false

allow if {
	input.version == 1
	common.kind_matches
	count(deny) == 0
}

r := input.request

b := data.boundary

deny contains "unsupported policy input version" if input.version != 1

deny contains "request does not match the method" if not common.kind_matches

# docker --privileged: every capability and no seccomp profile. One reason
# instead of forty; the facts it is made of are not listed again.
privileged if {
	not r.linux.seccomp
	every cap in b.privileged_capabilities {
		cap in r.process.capabilities.bounding
	}
}

deny contains "privileged containers are not allowed" if privileged

# --- process -----------------------------------------------------------------

deny contains reason if {
	not privileged
	some reason in process.deny
}

deny contains "running without a seccomp profile is not allowed" if {
	not privileged
	not r.linux.seccomp
}

# --- namespaces --------------------------------------------------------------

ns_types := [ns.type | some ns in r.linux.namespaces]

# A missing entry means "share the host's" (--pid host, --network host…).
deny contains reason if {
	some type, reason in b.required_namespaces
	not type in ns_types
}

deny contains "user namespaces are not supported" if "user" in ns_types

deny contains sprintf("namespace type %s is not allowed", [type]) if {
	some type in ns_types
	type != "user"
	not type in b.allowed_namespaces
}

deny contains sprintf("namespace %s is listed twice", [type]) if {
	count(ns_types) != count({t | some t in ns_types})
	some type in ns_types
	count([t | some t in ns_types; t == type]) > 1
}

deny contains sprintf("joining an existing %s namespace is not allowed", [ns.type]) if {
	some ns in r.linux.namespaces
	ns.type != "network"
	ns.path != ""
}

deny contains sprintf("network namespace %s is not the sandbox's", [ns.path]) if {
	some ns in r.linux.namespaces
	ns.type == "network"
	ns.path != ""
	ns.path != input.sandbox.netns_path
}

deny contains sprintf("network mode %s is not supported", [r.network_mode]) if not r.network_mode in b.network_modes

# --- devices, hooks, kernel knobs ----------------------------------------------

deny contains sprintf("devices are not allowed (%s)", [concat(", ", sort(paths))]) if {
	not privileged
	paths := [d.path | some d in r.linux.devices]
	count(paths) > 0
}

# --device-cgroup-rule; for --device the device itself is the reason.
deny contains sprintf("device cgroup rule %s is not allowed", [rule]) if {
	not privileged
	count(r.linux.devices) == 0
	some rule in r.linux.device_rules
	not rule in b.default_device_rules
}

# --security-opt systempaths=unconfined: the gateway would add them back,
# but a request to weaken the container is refused, not silently changed.
missing_system_paths := (
	{p | some p in b.required_masked_paths} | {p | some p in b.required_readonly_paths}
) - ({p | some p in r.linux.masked_paths} | {p | some p in r.linux.readonly_paths})

deny contains "unmasking system paths is not allowed" if {
	not privileged
	count(missing_system_paths) > 3
}

deny contains sprintf("unmasking system paths is not allowed (%s)", [concat(", ", sort(missing_system_paths))]) if {
	not privileged
	count(missing_system_paths) > 0
	count(missing_system_paths) <= 3
}

deny contains sprintf("hooks are not allowed (%s)", [concat(", ", r.hooks)]) if count(r.hooks) > 0

deny contains sprintf("sysctls are not allowed (%s)", [concat(", ", r.linux.sysctl)]) if count(r.linux.sysctl) > 0

deny contains "uid and gid mappings are not supported" if r.linux.id_mappings

deny contains "selinux mount labels are not allowed" if r.linux.mount_label != ""

deny contains sprintf("rootfs propagation %s is not allowed", [r.linux.rootfs_propagation]) if {
	not r.linux.rootfs_propagation in b.rootfs_propagation
}

deny contains sprintf("a pids limit above %d is not allowed", [b.max_pids]) if {
	is_number(r.linux.pids_limit)
	r.linux.pids_limit > b.max_pids
}

deny contains sprintf("unified cgroup settings are not allowed (%s)", [concat(", ", r.linux.unified)]) if {
	count(r.linux.unified) > 0
}

deny contains "realtime cpu scheduling is not allowed" if r.linux.cpu_realtime

# --- mounts ------------------------------------------------------------------

binds := [m | some m in r.mounts; m.bind != null]

others := [m | some m in r.mounts; m.bind == null]

tmpfs_mounts := [m | some m in others; m.type == "tmpfs"]

user_mounts := array.concat(binds, tmpfs_mounts)

deny contains sprintf("bind mount source %s is not an absolute path", [m.source]) if {
	some m in binds
	not m.bind.source_absolute
}

deny contains sprintf("bind mount source %s must not contain . or .. components", [m.source]) if {
	some m in binds
	m.bind.source_absolute
	not m.bind.source_normalized
}

deny contains sprintf("bind mount %s is outside the allowed volume roots", [m.source]) if {
	some m in binds
	m.bind.source_absolute
	m.bind.source_normalized
	not m.bind.under_volume_root
}

# runc follows symlinks in a bind source; a link below a volume root could
# point anywhere on the host.
deny contains sprintf("bind mount %s passes through a symlink", [m.source]) if {
	some m in binds
	m.bind.under_volume_root
	m.bind.through_symlink
}

deny contains sprintf("bind mount source %s does not exist", [m.source]) if {
	some m in binds
	m.bind.under_volume_root
	not m.bind.through_symlink
	not m.bind.exists
}

deny contains sprintf("bind mount option %s is not allowed (%s)", [opt, m.destination]) if {
	some m in binds
	some opt in m.options
	not opt in b.bind_options
}

deny contains sprintf("mount at %s has no type", [m.destination]) if {
	some m in others
	m.type == ""
}

# proc, sysfs, devpts… only where every container has them (the gateway
# replaces them with its own).
deny contains sprintf("%s mount at %s is not allowed (only at %s)", [m.type, m.destination, concat(", ", places)]) if {
	some m in others
	places := b.system_mounts[m.type]
	not m.destination in places
}

deny contains sprintf("a writable %s is not allowed", [m.destination]) if {
	not privileged
	some m in others
	m.type in {"sysfs", "cgroup", "cgroup2"}
	not "ro" in m.options
}

deny contains sprintf("mount type %s at %s is not allowed", [m.type, m.destination]) if {
	some m in others
	not m.type in {"", "tmpfs"}
	not b.system_mounts[m.type]
}

deny contains sprintf("tmpfs option %s is not allowed (%s)", [opt, m.destination]) if {
	some m in tmpfs_mounts
	some opt in m.options
	not opt in b.tmpfs_options
	not strings.any_prefix_match(opt, b.tmpfs_option_prefixes)
}

deny contains sprintf("mount destination %s is not an absolute path", [m.destination]) if {
	some m in r.mounts
	not startswith(m.destination, "/")
}

deny contains sprintf("mount destination %s must not contain . or .. components", [m.destination]) if {
	some m in r.mounts
	some dot in ["/./", "/../"]
	contains(concat("", ["/", m.destination, "/"]), dot)
}

deny contains sprintf("mounting over %s is not allowed", [m.destination]) if {
	some m in user_mounts
	some place in b.forbidden_destinations
	startswith(concat("", [m.destination, "/"]), concat("", [place, "/"]))
}

deny contains "mounting over / is not allowed" if {
	some m in user_mounts
	m.destination == "/"
}

# --- root, runtime, metadata ---------------------------------------------------

deny contains "an absolute root path is not allowed" if startswith(r.root.path, "/")

deny contains sprintf("root path %s must stay inside the bundle", [r.root.path]) if {
	some dot in ["/./", "/../"]
	contains(concat("", ["/", r.root.path, "/"]), dot)
}

deny contains "a runtime is required" if r.runtime.name == ""

deny contains sprintf("runtime %s is not allowed (only io.containerd.runc.v2)", [r.runtime.name]) if {
	r.runtime.name != ""
	r.runtime.name != "io.containerd.runc.v2"
}

# Runtime options name the runc binary, its root and CRIU paths.
deny contains "runtime options are not allowed" if r.runtime.options

deny contains sprintf("snapshotter %s is not allowed (only %s)", [r.snapshotter, input.sandbox.snapshotter]) if {
	r.snapshotter != ""
	r.snapshotter != input.sandbox.snapshotter
}

# containerd, its shims, runc, CRIU and systemd read these as instructions
# (e.g. org.criu.config, org.systemd.property.ExecStartPre).
deny contains sprintf("label %s uses a prefix the daemons read", [key]) if {
	some key in r.labels
	strings.any_prefix_match(key, b.daemon_prefixes)
}

deny contains sprintf("annotation %s uses a prefix the daemons read", [key]) if {
	some key in r.annotations
	strings.any_prefix_match(key, b.daemon_prefixes)
}

deny contains "the sandbox field is not allowed" if r.sandbox_field != ""

deny contains "container extensions are not allowed" if count(r.extensions) > 0
