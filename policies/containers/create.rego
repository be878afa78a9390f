# Containers.Create (boundary rule 3). The input holds facts computed by the
# gateway from the strictly parsed spec (policy/input.rs documents them, and
# admission/facts.rs computes them, per item, with unit tests): the rules
# here only turn facts into reasons. What is allowed here is then hardened
# by the gateway before it goes on.
package berth.containers.create

# Rules name other packages' rules by their full path
# (data.berth.lib.process.deny): regorus compiles that to a call of the one
# rule, while an imported alias (process.deny) evaluates the whole package
# as a document first. For the same reason the rules read input.request…
# directly instead of through a helper rule such as r := input.request;
# every rule call has a fixed cost (architecture/benchmarks.md).

default allow := false

allow if {
	input.version == 2
	data.berth.lib.common.kind_matches
	count(deny) == 0
}

deny contains "unsupported policy input version" if input.version != 2

deny contains "request does not match the method" if not data.berth.lib.common.kind_matches

# docker --privileged: every capability and no seccomp profile. One reason
# instead of forty; the facts it is made of are not listed again.
privileged if {
	not input.request.linux.seccomp
	every cap in data.boundary.privileged_capabilities {
		cap in input.request.process.capabilities.bounding
	}
}

deny contains "privileged containers are not allowed" if privileged

# --- process -----------------------------------------------------------------

deny contains reason if {
	some reason in data.berth.lib.process.deny
	not privileged
}

deny contains "running without a seccomp profile is not allowed" if {
	not input.request.linux.seccomp
	not privileged
}

# --- namespaces --------------------------------------------------------------

# The guards of this section and the mounts' follow one pattern: the rules
# of a section each read one list of its facts, and a request with nothing
# to refuse there has exactly the facts below, so none of them need run.
# Any other value (an item in a list, or a fact this file does not know)
# runs them all. A decision costs about 0.4 µs per rule it runs.
no_namespace_findings := {"missing": [], "unknown": [], "duplicates": [], "user": false, "joined": []}

deny contains reason if {
	input.request.linux.namespaces != no_namespace_findings
	some reason in namespace_deny
}

# A missing entry means "share the host's" (--pid host, --network host…).
namespace_deny contains reason if {
	some type in input.request.linux.namespaces.missing
	reason := object.get(data.boundary.required_namespaces, type, sprintf("a private %s namespace is required", [type]))
}

namespace_deny contains "user namespaces are not supported" if input.request.linux.namespaces.user

namespace_deny contains sprintf("namespace type %s is not allowed", [type]) if {
	some type in input.request.linux.namespaces.unknown
}

namespace_deny contains sprintf("namespace %s is listed twice", [type]) if {
	some type in input.request.linux.namespaces.duplicates
}

namespace_deny contains sprintf("joining an existing %s namespace is not allowed", [j.type]) if {
	some j in input.request.linux.namespaces.joined
	j.type != "network"
}

namespace_deny contains sprintf("network namespace %s is not the sandbox's", [j.path]) if {
	some j in input.request.linux.namespaces.joined
	j.type == "network"
	j.path != input.sandbox.netns_path
}

deny contains sprintf("network mode %s is not supported", [input.request.network_mode]) if not input.request.network_mode in data.boundary.network_modes

# --- devices, hooks, kernel knobs ----------------------------------------------

deny contains sprintf("devices are not allowed (%s)", [concat(", ", sort(paths))]) if {
	count(input.request.linux.devices) > 0
	not privileged
	paths := [d.path | some d in input.request.linux.devices]
}

# --device-cgroup-rule; for --device the device itself is the reason.
deny contains sprintf("device cgroup rule %s is not allowed", [rule]) if {
	some rule in input.request.linux.device_rules.outside_default
	not privileged
	count(input.request.linux.devices) == 0
}

# --security-opt systempaths=unconfined: the gateway would add them back,
# but a request to weaken the container is refused, not silently changed.
deny contains "unmasking system paths is not allowed" if {
	count(input.request.linux.unmasked_paths) > 3
	not privileged
}

deny contains sprintf("unmasking system paths is not allowed (%s)", [concat(", ", input.request.linux.unmasked_paths)]) if {
	count(input.request.linux.unmasked_paths) > 0
	count(input.request.linux.unmasked_paths) <= 3
	not privileged
}

deny contains sprintf("hooks are not allowed (%s)", [concat(", ", input.request.hooks)]) if count(input.request.hooks) > 0

deny contains sprintf("sysctls are not allowed (%s)", [concat(", ", input.request.linux.sysctl)]) if count(input.request.linux.sysctl) > 0

deny contains "uid and gid mappings are not supported" if input.request.linux.id_mappings

deny contains "selinux mount labels are not allowed" if input.request.linux.mount_label != ""

deny contains sprintf("rootfs propagation %s is not allowed", [input.request.linux.rootfs_propagation]) if {
	not input.request.linux.rootfs_propagation in data.boundary.rootfs_propagation
}

deny contains sprintf("a pids limit above %d is not allowed", [data.boundary.max_pids]) if {
	is_number(input.request.linux.pids_limit)
	input.request.linux.pids_limit > data.boundary.max_pids
}

deny contains sprintf("unified cgroup settings are not allowed (%s)", [concat(", ", input.request.linux.unified)]) if {
	count(input.request.linux.unified) > 0
}

deny contains "realtime cpu scheduling is not allowed" if input.request.linux.cpu_realtime

# --- mounts ------------------------------------------------------------------

no_mount_findings := {
	"binds": [], "untyped": [], "unsupported": [], "misplaced": [],
	"writable_kernel": [], "refused_bind_options": [], "refused_tmpfs_options": [],
	"relative_destinations": [], "unnormalized_destinations": [],
	"over_kernel_paths": [], "over_root": false,
}

deny contains reason if {
	input.request.mounts != no_mount_findings
	some reason in mount_deny
}

mount_deny contains sprintf("bind mount source %s is not an absolute path", [x.source]) if {
	some x in input.request.mounts.binds
	not x.bind.source_absolute
}

mount_deny contains sprintf("bind mount source %s must not contain . or .. components", [x.source]) if {
	some x in input.request.mounts.binds
	x.bind.source_absolute
	not x.bind.source_normalized
}

mount_deny contains sprintf("bind mount %s is outside the allowed volume roots", [x.source]) if {
	some x in input.request.mounts.binds
	x.bind.source_absolute
	x.bind.source_normalized
	not x.bind.under_volume_root
}

# runc follows symlinks in a bind source; a link below a volume root could
# point anywhere on the host.
mount_deny contains sprintf("bind mount %s passes through a symlink", [x.source]) if {
	some x in input.request.mounts.binds
	x.bind.under_volume_root
	x.bind.through_symlink
}

mount_deny contains sprintf("bind mount source %s does not exist", [x.source]) if {
	some x in input.request.mounts.binds
	x.bind.under_volume_root
	not x.bind.through_symlink
	not x.bind.exists
}

mount_deny contains sprintf("bind mount option %s is not allowed (%s)", [o.option, o.destination]) if {
	some o in input.request.mounts.refused_bind_options
}

mount_deny contains sprintf("mount at %s has no type", [dest]) if some dest in input.request.mounts.untyped

# proc, sysfs, devpts… only where every container has them (the gateway
# replaces them with its own).
mount_deny contains sprintf("%s mount at %s is not allowed (only at %s)", [x.type, x.destination, concat(", ", x.places)]) if {
	some x in input.request.mounts.misplaced
}

mount_deny contains sprintf("a writable %s is not allowed", [dest]) if {
	some dest in input.request.mounts.writable_kernel
	not privileged
}

mount_deny contains sprintf("mount type %s at %s is not allowed", [x.type, x.destination]) if some x in input.request.mounts.unsupported

mount_deny contains sprintf("tmpfs option %s is not allowed (%s)", [o.option, o.destination]) if {
	some o in input.request.mounts.refused_tmpfs_options
}

mount_deny contains sprintf("mount destination %s is not an absolute path", [dest]) if some dest in input.request.mounts.relative_destinations

mount_deny contains sprintf("mount destination %s must not contain . or .. components", [dest]) if {
	some dest in input.request.mounts.unnormalized_destinations
}

mount_deny contains sprintf("mounting over %s is not allowed", [dest]) if some dest in input.request.mounts.over_kernel_paths

mount_deny contains "mounting over / is not allowed" if input.request.mounts.over_root

# --- root, runtime, metadata ---------------------------------------------------

deny contains "an absolute root path is not allowed" if input.request.root.absolute

deny contains sprintf("root path %s must stay inside the bundle", [input.request.root.path]) if not input.request.root.normalized

deny contains "a runtime is required" if input.request.runtime.name == ""

deny contains sprintf("runtime %s is not allowed (only io.containerd.runc.v2)", [input.request.runtime.name]) if {
	input.request.runtime.name != ""
	input.request.runtime.name != "io.containerd.runc.v2"
}

# Runtime options name the runc binary, its root and CRIU paths.
deny contains "runtime options are not allowed" if input.request.runtime.options

deny contains sprintf("snapshotter %s is not allowed (only %s)", [input.request.snapshotter, input.sandbox.snapshotter]) if {
	input.request.snapshotter != ""
	input.request.snapshotter != input.sandbox.snapshotter
}

# containerd, its shims, runc, CRIU and systemd read these as instructions
# (e.g. org.criu.config, org.systemd.property.ExecStartPre). The first
# check covers every key at once; the loop only runs to name the culprits.
deny contains sprintf("label %s uses a prefix the daemons read", [key]) if {
	strings.any_prefix_match(input.request.labels, data.boundary.daemon_prefixes)
	some key in input.request.labels
	strings.any_prefix_match(key, data.boundary.daemon_prefixes)
}

deny contains sprintf("annotation %s uses a prefix the daemons read", [key]) if {
	strings.any_prefix_match(input.request.annotations, data.boundary.daemon_prefixes)
	some key in input.request.annotations
	strings.any_prefix_match(key, data.boundary.daemon_prefixes)
}

deny contains "the sandbox field is not allowed" if input.request.sandbox_field != ""

deny contains "container extensions are not allowed" if count(input.request.extensions) > 0
