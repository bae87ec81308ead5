# floe — the two commands: `make run` and `make test`.
GO      ?= go
BIN     := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
# Tests find tools here (FLOE_VERSITYGW etc. override).
export FLOE_REPO_ROOT := $(CURDIR)

VERSITYGW_VERSION := v1.8.0
GOTEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: all build run test test-unit test-e2e deps bench lint fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/floe ./cmd/floe
	$(GO) build -o $(BIN)/floectl ./cmd/floectl

# run starts floe with the embedded defaults: embedded etcd, a filesystem
# object store, the Iceberg REST catalog and the schema registry.
run: build
	$(BIN)/floe serve --data-dir $(CURDIR)/floe-data

# deps installs what the tests use on a fresh machine (idempotent).
deps:
	bash scripts/deps.sh

test: deps build
	$(GO) vet ./...
	$(GO) test $(GOTEST_FLAGS) ./...
	cd deploy/kubernetes && $(GO) test -count=1 ./...

bench: deps build
	bash scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# fuzz runs every parser fuzz target for a short while.
fuzz:
	$(GO) test -run XXX -fuzz FuzzValidate -fuzztime 30s ./internal/kbatch
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./internal/streamobj
	$(GO) test -run XXX -fuzz FuzzParseFrame -fuzztime 30s ./broker

clean:
	rm -rf $(BIN) floe-data
