# shardgate: see README.md.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run test unit bench bench-sharding bench-rebalance bench-ryw acceptance vet fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shardgate ./cmd/shardgate
	$(GO) build -o bin/devcluster ./test/cmd/devcluster

# A local cluster (2 shards, each a primary and a streaming replica, under
# ./.run) with shardgate on 127.0.0.1:6432 in the foreground. Ctrl-C stops
# everything. RUNFLAGS=--spare=1 adds a third shard that owns no data yet,
# to try shardgate rebalance on.
run: build
	@.ci/install-deps
	./bin/devcluster --dir .run --shards 2 --replicas 1 --proxy-bin ./bin/shardgate --listen 127.0.0.1:6432 $(RUNFLAGS)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Unit tests and integration tests against real PostgreSQL servers that
# the tests start themselves.
test: vet
	$(GO) test -count=1 -timeout 20m ./...

unit:
	$(GO) test -count=1 -short ./...

# shardgate vs direct PostgreSQL vs pgbouncer, in one run.
bench: build
	@.ci/install-deps
	$(GO) run ./test/cmd/benchrun

# Sharding: point selects by key through shardgate over 2 hash shards vs
# 1 shard without a map (and PostgreSQL directly), then scatter queries
# over 1M rows on 2 shards vs one unsharded server; ~6 minutes. Pass flags
# with BENCHFLAGS, e.g. make bench-sharding BENCHFLAGS=--quick.
bench-sharding: build
	@.ci/install-deps
	$(GO) run ./test/cmd/benchrun --sharding $(BENCHFLAGS)

# Online moves (shardgate rebalance move) while clients write through
# shardgate, on 2 fresh shards: the copy rate of half of 1M rows, then 10
# cutovers of a 1/16 hash range back and forth, with p50/p99/max of the
# tool's write pause and of the longest client write to the moving range;
# under a minute on 2 cores. Pass flags with BENCHFLAGS, e.g.
# make bench-rebalance BENCHFLAGS=--quick.
bench-rebalance:
	@.ci/install-deps
	$(GO) run ./test/cmd/rebalancebench $(BENCHFLAGS)

# Read-your-writes under load: 64 clients through an in-process shardgate
# while WAL replay is paused at random on two replicas, then the same with
# every read on the primary. Fails on any stale read. Pass flags with
# RYWFLAGS, e.g. make bench-ryw RYWFLAGS=-quick.
bench-ryw:
	@.ci/install-deps
	$(GO) build -o bin/rywload ./test/cmd/rywload
	./bin/rywload $(RYWFLAGS)

# pgx's own test suite through shardgate (session and transaction mode).
acceptance: build
	@.ci/install-deps
	$(GO) test -count=1 -timeout 30m -run TestPgxSuite ./test/acceptance/

fmt:
	gofmt -w .

clean:
	rm -rf bin .run
