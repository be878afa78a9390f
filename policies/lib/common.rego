# Helpers shared by the berth packages. Not a deciding package: the gateway
# never routes a method here.
package berth.lib.common

# A label or annotation key that containerd, its shims, runc, CRIU or
# systemd read as an instruction (e.g. org.criu.config, org.systemd.property.*).
reserved(key) if {
	some prefix in data.boundary.daemon_prefixes
	startswith(key, prefix)
}

# path is prefix or lies below it (lexically).
under(path, prefix) if path == prefix

under(path, prefix) if startswith(path, concat("", [prefix, "/"]))

has_dotdot(path) if {
	some part in split(path, "/")
	part in {".", ".."}
}

# The request is the one this method's package expects; anything else (a
# generic request routed to a specific package) is refused.
kind_matches if input.request.kind == data.boundary.admitted_methods[input.method]
