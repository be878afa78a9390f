# Image names the sandbox may use: records entering its namespace
# (Images.Create/Update, a load, a build's import), the image a container is
# created from, and pulls and pushes the CLI asks about before it starts.
# The gateway computes the facts (admission/image.rs); the rules are data:
# data.site.images when the sandbox owner gives it (`policy_site_data` in
# the gateway's config), else the project's default data.images.
#
# Patterns are globs over `registry/repository` in which `*` matches any
# run of characters, '/' included (the same patterns become BuildKit's
# source policy for `FROM`, whose wildcards match alike).
package berth.images.admit

default allow := false

allow if {
	input.version == 2
	input.request.kind == "image"
	count(deny) == 0
}

r := input.request

rules := data.site.images if {
	data.site.images
} else := data.images

named if {
	r.valid
	not r.dangling
}

deny contains "unsupported policy input version" if input.version != 2

deny contains "request does not match the method" if input.request.kind != "image"

deny contains sprintf("%q is not a valid image reference", [r.name]) if not r.valid

allowed if {
	some pattern in rules.allowed
	glob.match(pattern, null, r.repo)
}

deny contains sprintf("registry and repository %s are not allowed by the image policy", [r.repo]) if {
	named
	not allowed
}

deny contains sprintf("repository %s is refused by the image policy", [r.repo]) if {
	named
	some pattern in rules.refused
	glob.match(pattern, null, r.repo)
}

deny contains sprintf("repository %s is pinned: %s is not one of its allowed digests", [r.repo, substring(r.digest, 0, 19)]) if {
	named
	r.digest != null
	some repo, pins in rules.pinned
	repo == r.repo
	not r.digest in pins
}
