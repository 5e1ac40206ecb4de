# dwal — see README.md. `make run` and `make test` do all the set-up they need.
GO      ?= go
PKGS    := ./...
RUNARGS ?=

.PHONY: run test race vet lint cross bench bench-micro fuzz build cluster jepsen

build:
	$(GO) build -o bin/dwal ./cmd/dwal

# The main job: write a few hundred MiB durably into a temporary directory,
# replay and verify it, print the backend, throughput and commit latency.
run: build
	./bin/dwal demo $(RUNARGS)

# Three raftkv nodes (examples/raftkv) on this machine: writes, a SIGKILL
# of the leader, the failover, and every key read back (scripts/cluster.sh).
cluster:
	$(GO) build -o bin/raftkv ./examples/raftkv
	bash scripts/cluster.sh bin/raftkv

# The Jepsen-style test of examples/raftkv (examples/raftkv/jepsen): real
# processes over TCP, kills and partitions, the history checked for
# linearizability. make test runs one 15 s run; this runs RUNS runs of
# DURATION each, seeds SEED, SEED+1, ... (JEPSEN_DIR keeps their data).
SEED     ?= 1
DURATION ?= 60s
RUNS     ?= 1
JEPSEN_DIR ?=
jepsen:
	$(GO) test -count=1 -timeout 0 -run '^TestJepsen$$' -v ./examples/raftkv/jepsen \
	  -jepsen.seed $(SEED) -jepsen.duration $(DURATION) -jepsen.runs $(RUNS) $(if $(JEPSEN_DIR),-jepsen.dir $(JEPSEN_DIR))

vet:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt would change: $$fmt"; exit 1; fi
	$(GO) vet $(PKGS)
	cd bench/peers && $(GO) vet ./...

# vet + the race-enabled test suite (the command CI runs).
test: vet cross
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@# allocation counts need a build without the race detector
	$(GO) test -count=1 -run 'Allocations|Alloc' ./engine/...
	@# each fuzz target briefly (make fuzz runs them longer)
	bash scripts/fuzz.sh 10s

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# The portable backend and its tests must build on every platform.
cross:
	GOOS=darwin  $(GO) build $(PKGS)
	GOOS=windows $(GO) build $(PKGS)
	GOOS=freebsd $(GO) build $(PKGS)
	@# compile (not run) every test package for each platform
	GOOS=darwin  $(GO) test -count=1 -exec true $(PKGS) >/dev/null
	GOOS=windows $(GO) test -count=1 -exec true $(PKGS) >/dev/null
	GOOS=freebsd $(GO) test -count=1 -exec true $(PKGS) >/dev/null

# The benchmark program, bin/dwalbench (its own command, so that bin/dwal
# links no plotting or histogram library): dwal beside its peers
# (bench/peers), the seed-style baseline, the floors and fio's device limit,
# on BENCH_DIR's disk (default: the temporary directory); writes
# bench/results/ (<timestamp>.json, latest.json, latest.txt, PNG plots).
# Roughly 6 minutes (BENCHARGS=--warm adds the steady-state cells: about
# twice that). BENCHARGS=--quick: a ~30 s smoke run.
BENCH_DIR ?=
BENCHARGS ?=
bench:
	$(GO) build -o bin/dwalbench ./bench/cmd/dwalbench
	./bin/dwalbench --out bench/results $(if $(BENCH_DIR),--dir $(BENCH_DIR)) $(BENCHARGS)
	@# hashicorp/raft's log stores (about a minute): raftstore, raft-wal, raft-boltdb
	./bin/dwalbench --workloads raft --fio off --out bench/results/raft $(if $(BENCH_DIR),--dir $(BENCH_DIR)) $(BENCHARGS)

# Go micro-benchmarks of the engine and its backends.
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x ./engine/...

# Longer fuzzing than make test's (FUZZTIME per target).
FUZZTIME ?= 2m
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)
