# berth — the two commands a newcomer needs are `make demo` and `make test`.
# Both run as root on a fresh Debian machine of this kind: they install what
# is missing, build, start the local sandbox stack and stop what they started.

SHELL := /bin/bash
CARGO ?= cargo
STACK := fixtures/stack

.PHONY: all deps build unit-test integration-test test demo stack-up stack-down sandbox status bench bench-build bench-registry load lint clean

all: build

deps:
	$(STACK)/install-deps.sh

build: deps
	$(CARGO) build --release --workspace --locked

unit-test: build
	$(CARGO) test --release --workspace --locked --lib --bins

# The integration tests drive the real daemons of the stack; they fail
# loudly when it is missing.
# The build tests run one at a time: they share one BuildKit and the
# sandbox's image store, and several of them remove what they built. Every
# other integration test binary is listed in INTEGRATION_TESTS.
INTEGRATION_TESTS := attacks attacks_load buildkit_facade egress image_cmds image_policy images lifecycle pull raw_api refusals run tty two_sandboxes userns
# The fault tests restart containerd, the BuildKit host and the gateway
# (fixtures/stack/restart.sh): they run alone, after everything else, one
# at a time.
FAULT_TESTS := faults
integration-test:
	@for f in cli/tests/*.rs buildkit-gateway/tests/*.rs; do n=$$(basename "$$f" .rs); \
	  case " $(INTEGRATION_TESTS) build $(FAULT_TESTS) " in *" $$n "*) ;; \
	  *) echo "integration test $$n is not listed in INTEGRATION_TESTS (Makefile)" >&2; exit 1;; esac; done
	$(CARGO) test --release --workspace --locked $(addprefix --test ,$(INTEGRATION_TESTS))
	$(CARGO) test --release --workspace --locked --test build -- --test-threads=1
	$(CARGO) test --release --workspace --locked $(addprefix --test ,$(FAULT_TESTS)) -- --test-threads=1

# The stack is always taken down again, whether the tests pass or not.
test: unit-test
	@set -u; status=0; \
	$(STACK)/up.sh || status=$$?; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory integration-test || status=$$?; fi; \
	$(STACK)/down.sh || true; \
	exit $$status

demo: build
	$(STACK)/up.sh
	$(STACK)/demo.sh

stack-up: build
	$(STACK)/up.sh

stack-down:
	$(STACK)/down.sh

sandbox:
	$(STACK)/sandbox

status:
	$(STACK)/status.sh

bench: build
	fixtures/bench/run.sh

# The build path against docker buildx on the same BuildKit (stack up).
bench-build: build
	fixtures/bench/build.sh

# Pull and push against docker through the same proxy (stack up).
bench-registry: build
	fixtures/bench/registry.sh

# 50 parallel run --rm and 10 parallel builds through one gateway (stack up).
load: build
	fixtures/load/run.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

clean: stack-down
	$(CARGO) clean
