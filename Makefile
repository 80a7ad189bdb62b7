# Canopy: run `make help` for the targets.

GO        ?= go
BIN       := bin/canopy
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X canopy.dev/canopy/internal/buildinfo.Version=$(VERSION) \
             -X canopy.dev/canopy/internal/buildinfo.Commit=$(COMMIT)

# Real parts the tests use; each can be overridden from the environment.
CANOPY_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
CANOPY_FIXTURES          ?= $(abspath $(CURDIR)/../shared/fixtures)
export CANOPY_TEST_POSTGRES_URL CANOPY_FIXTURES

.PHONY: help build run test testbin bench lint fuzz generate e2e clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/canopy
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/canopy

run: build ## start Canopy on SQLite at 127.0.0.1:8080
	./$(BIN) serve

testbin: ## build kube-apiserver and etcd for envtest once and print their folder
	@scripts/testbin.sh

test: ## run every test against real SQLite, PostgreSQL, Prometheus and kube-apiserver
	KUBEBUILDER_ASSETS="$$(scripts/testbin.sh)" $(GO) test -count=1 -timeout 30m ./...

bench: ## print the benchmark figures the README reports
	scripts/bench.sh

fuzz: ## run every fuzz target for a short while (FUZZTIME=30s)
	scripts/fuzz.sh

lint: ## go vet and gofmt
	$(GO) vet ./...
	$(GO) vet -tags e2e ./internal/e2e/
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

generate: ## regenerate code from api/openapi.yaml
	$(GO) generate ./...

e2e: ## the main job end to end on real parts (prints a report of each step)
	KUBEBUILDER_ASSETS="$$(scripts/testbin.sh)" scripts/e2e.sh

clean: ## remove build output
	rm -rf bin
