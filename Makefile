# herd — the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go
DATA_DIR ?= .herd/demo

.PHONY: demo demo-cluster test check lint deps test-deps build bench fuzz clean

## demo: install what is missing, start a managed ClickHouse, import and publish a synthetic shop, serve the dashboard
demo: deps build
	./bin/herd demo --data-dir $(DATA_DIR)

## demo-cluster: the demo on a local cluster: ZooKeeper, 2 shards × 2 replicas of ClickHouse, two ingest nodes
demo-cluster: deps build
	@./scripts/install-deps.sh zookeeper
	./bin/herd demo --local-cluster --data-dir .herd/demo-cluster

## test: install what is missing, lint, and run every test (real ClickHouse, headless Chromium)
test: test-deps lint
	$(GO) test -race -count=1 -timeout 30m ./...

## check: the fast tier, under a minute: lint and every test that needs no
## server (go test -short: tests that start ClickHouse, ZooKeeper, Chromium or
## herd itself call chtest.Servers and are left to `make test`)
check: lint
	$(GO) test -short -count=1 ./...

## lint: go vet and gofmt must be clean
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

deps:
	@./scripts/install-deps.sh

test-deps:
	@./scripts/install-deps.sh chromium node zookeeper

build:
	$(GO) build -o bin/herd ./cmd/herd

## bench: measure and write docs/benchmarks.md
bench: deps
	$(GO) run ./cmd/benchreport -out docs/benchmarks.md

## fuzz: run every fuzz target for FUZZTIME each (default 300000x: executions); inputs that
## fail are written to the package's testdata/fuzz and then run by every `make test`.
## A count, not a duration: Go 1.26's fuzz coordinator can fail a run whose -fuzztime
## deadline races a busy worker ("context deadline exceeded", no input; go.dev/issue/75804,
## fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 300000x
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "$$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
