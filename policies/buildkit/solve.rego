# Control.Solve (BuildKit): a Dockerfile build whose output goes back to the
# client, nothing else. The gateway then replaces the entitlements with
# network.host, forces the RUN steps into the daemon's network namespace and
# sets the proxy build args (buildkit/solve.rs); none of that is the client's
# to ask for, so any client value is refused here rather than overwritten
# silently.
package berth.control.solve

default allow := false

allow if {
	input.version == 2
	input.request.kind == "solve"
	count(deny) == 0
}

r := input.request

b := data.buildkit

deny contains "unsupported policy input version" if input.version != 2

deny contains "request does not match the method" if input.request.kind != "solve"

deny contains "the build ref must be 1 to 128 letters, digits, '.', '_' or '-'" if {
	not regex.match(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, r.ref)
}

# The gateway grants network.host itself; security.insecure (privileged RUN
# steps) and device entitlements are never granted.
deny contains sprintf("entitlement %s is not allowed in this sandbox", [e]) if some e in r.entitlements

deny contains sprintf("frontend %s is not allowed (only dockerfile.v0)", [r.frontend]) if {
	r.frontend != ""
	not r.frontend in b.frontends
}

deny contains "a build without a frontend is not allowed (only dockerfile.v0)" if {
	r.frontend == ""
	not r.definition
}

# A raw LLB graph names its own sources, mounts, network and security modes
# per step; the gateway shapes builds through the Dockerfile frontend's
# options and does not decide LLB op by op.
deny contains "raw LLB definitions are not allowed: only Dockerfile builds are decided by this gateway" if r.definition

deny contains sprintf("frontend inputs are not allowed (%s): they are raw LLB definitions", [concat(", ", r.frontend_inputs)]) if {
	count(r.frontend_inputs) > 0
}

exporter_types contains e.type if some e in r.exporters

exporter_types contains r.exporter_deprecated.type if r.exporter_deprecated != null

deny contains "an exporter without a type is not allowed" if "" in exporter_types

deny contains sprintf("exporter %s is not allowed: %s", [t, reason]) if {
	some t in exporter_types
	reason := b.store_exporters[t]
}

deny contains sprintf("exporter %s is not allowed (only %s)", [t, concat(", ", b.exporters)]) if {
	some t in exporter_types
	t != ""
	not t in b.exporters
	not b.store_exporters[t]
}

# Daemons before BuildKit 0.13 read only the deprecated fields, later ones
# only Exporters: both must say the same, or the policy would have decided
# an output other than the one produced.
deny contains "the deprecated exporter fields and the exporters list disagree" if not r.exporters_agree

deny contains sprintf("cache imports are not allowed (%s)", [concat(", ", r.cache.imports)]) if count(r.cache.imports) > 0

deny contains sprintf("cache exports are not allowed (%s)", [concat(", ", r.cache.exports)]) if count(r.cache.exports) > 0

deny contains "internal builds are not allowed: every build stays in the daemon's history" if r.internal

deny contains "source policies are not allowed" if r.source_policy

deny contains "session source policies are not allowed" if r.source_policy_session != ""

deny contains "session exporters are not allowed: the request must name its exporters" if r.enable_session_exporter

# Frontend options: an allowlist of names and prefixes; some refusals carry
# their own reason.
attr_allowed(k) if k in b.frontend_attrs

attr_allowed(k) if {
	some p in b.frontend_attr_prefixes
	startswith(k, p)
}

deny contains sprintf("frontend option %s is not allowed: %s", [k, reason]) if {
	some k, _ in r.frontend_attrs
	reason := b.refused_attrs[k]
}

deny contains sprintf("frontend option %s is not allowed", [k]) if {
	some k, _ in r.frontend_attrs
	not b.refused_attrs[k]
	not attr_allowed(k)
}

deny contains sprintf("platform %s is not allowed (only the native %s)", [p, r.native_platform]) if {
	p := r.frontend_attrs.platform
	p != ""
	p != r.native_platform
}

deny contains sprintf("image-resolve-mode %s is not allowed", [m]) if {
	m := r.frontend_attrs["image-resolve-mode"]
	not m in b.image_resolve_modes
}

deny contains "extra hosts are not allowed" if r.frontend_attrs["add-hosts"] != ""

# A named context may come from the session's content store or from a
# frontend input, never from a registry, git, an URL or a daemon path.
deny contains sprintf("named context %s=%s is not allowed (only oci-layout:// or input: values)", [name, v]) if {
	some k, v in r.frontend_attrs
	startswith(k, "context:")
	name := substring(k, 8, -1)
	not strings.any_prefix_match(v, b.context_value_prefixes)
}
