# Talos — build, run and test.
#
#   make build          go build ./...
#   make run            the daemon on embedded defaults in a fresh TALOS_HOME (no services needed)
#   make test           gofmt check, real services up, go vet, go test -race, services down
#   make bench          benchmarks only
#   make services-up    start Redis, PostgreSQL, Docker, Chroma and Ollama, build the test images (scripts/services.sh)
#   make services-down  stop them
#   make fmt-check      fail if gofmt would change a file
#
# PKGS narrows test/bench to some packages: make test PKGS=./internal/config/...
#
# `make test` passes TALOS_TEST_REQUIRE_SERVICES through: with =1 (as .ci/run sets it) an
# integration test whose service is missing fails instead of skipping, and a failed
# `services.sh up` fails the run. Services that were already all running before `make test`
# (someone's `make services-up`) are left running afterwards; TALOS_SERVICES_KEEP=1 keeps
# them in any case.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

GO       ?= go
PKGS     ?= ./...
SERVICES := scripts/services.sh

# go-nvml's cgo code uses deprecated declarations; without this the build fails on -Werror setups.
CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
export CGO_CFLAGS

ifdef TALOS_TEST_REQUIRE_SERVICES
export TALOS_TEST_REQUIRE_SERVICES
endif

.PHONY: build run test bench services-up services-down fmt-check

build:
	$(GO) build ./...

# Builds the daemon into ./bin/talos (gitignored; rebuilt each time, so no stray binaries pile
# up in temporary folders) and runs the binary itself, so SIGINT/SIGTERM reach the daemon
# directly (not `go run`). Without TALOS_HOME it makes a fresh home with mktemp.
BIN := bin/talos

run:
	@set -e; \
	export TALOS_HOME="$${TALOS_HOME:-$$(mktemp -d)}"; \
	mkdir -p "$(dir $(BIN))"; \
	$(GO) build -o "$(BIN)" ./cmd/talos; \
	echo "make run: TALOS_HOME=$$TALOS_HOME, binary $(BIN)"; \
	"$(BIN)" init; \
	exec "$(BIN)" run

# testdata folders may hold deliberately broken Go files; they are not checked.
fmt-check:
	@out="$$(find . -name '*.go' -not -path '*/testdata/*' -not -path './.git/*' -print0 | xargs -0r gofmt -l 2>&1)"; \
	if [ -n "$$out" ]; then \
		echo "gofmt would change these files (run: gofmt -w <file>):"; \
		echo "$$out"; \
		exit 1; \
	fi

test: fmt-check
	@set -u; rc=0; keep="$${TALOS_SERVICES_KEEP:-0}"; \
	if [ "$$keep" != 1 ] && $(SERVICES) status >/dev/null 2>&1; then \
		keep=1; echo "make test: services were already running; they stay running afterwards"; \
	fi; \
	if $(SERVICES) up; then \
		eval "$$($(SERVICES) env)"; \
	elif [ "$${TALOS_TEST_REQUIRE_SERVICES:-}" = 1 ]; then \
		rc=1; echo "make test: services did not start and TALOS_TEST_REQUIRE_SERVICES=1" >&2; \
	else \
		echo "make test: WARNING: services did not start; integration tests will skip" >&2; \
	fi; \
	if [ "$$rc" = 0 ]; then \
		$(GO) vet $(PKGS) && $(GO) test -race -count=1 -timeout 60m $(PKGS) || rc=$$?; \
	fi; \
	if [ "$$rc" = 0 ] && $(GO) list $(PKGS) 2>/dev/null | grep -x 'github.com/talos-ironclad/talos/firewall/train' >/dev/null; then \
		echo "make test: firewall model reproducibility, without -race (too slow under it)"; \
		$(GO) test -count=1 -timeout 10m -run '^TestCommittedModelIsReproducible$$' ./firewall/train/ || rc=$$?; \
	fi; \
	if [ "$$keep" != 1 ]; then $(SERVICES) down || true; fi; \
	exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

services-up:
	$(SERVICES) up

services-down:
	$(SERVICES) down
