# Helpers shared by the berth packages. Not a deciding package: the gateway
# never routes a method here.
#
# Rules here are written inline where they run per item (user functions are
# an order of magnitude slower than builtins in regorus).
package berth.lib.common

# The request is the one this method's package expects; anything else (a
# generic request routed to a specific package) is refused.
kind_matches if input.request.kind == data.boundary.admitted_methods[input.method]
