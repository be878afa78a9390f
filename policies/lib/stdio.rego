# Stdio of tasks.create and tasks.exec (boundary rule 4): a client path makes
# the shim open (and append to) any host file as root, binary:// runs a host
# program as root. Only "" (not connected) and the gateway relay pass.
package berth.lib.stdio

deny contains sprintf("%s must be empty or the gateway relay, not a %s (%s)", [name, word, s.value]) if {
	some name, s in input.request.stdio
	not s.kind in data.boundary.stdio_kinds
	word := object.get(data.boundary.stdio_words, s.kind, s.kind)
}
