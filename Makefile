# bprof: build, regenerate the BPF objects, test, benchmark, demo.
GO      ?= go
CLANG   ?= clang-19
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/bprof

.PHONY: build generate check-generated test bench soak demo fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/bprof

# Rebuild the committed BPF objects from bpf/*.c (needs clang-19 and libbpf-dev)
# and the allocation sampler pkg/memory/allocsampler.so from native/allocsampler (gcc).
generate:
	$(GO) generate ./pkg/...

# CI: the committed objects must be what the sources compile to (both builds
# are reproducible: no build IDs, no paths).
check-generated: generate
	git diff --exit-code -- pkg/ || (echo "generated BPF objects or allocation sampler are stale: run make generate and commit" && exit 1)

# The whole suite, BPF tests included (they need root; BPROF_NO_SKIP=1 makes a skip a failure).
# Prints what go test prints, then names the tests that skipped and how to run them all.
test:
	GO=$(GO) $(GO) run ./internal/testsummary -count=1 -p 1 -timeout 20m ./...

# Benchmarks: not part of make test. Sets up the peers (perf, bpftrace, libbpf-tools,
# austin in the trixie root), then rewrites docs/BENCHMARKS.md (bench/README.md).
bench: build
	bench/peers.sh
	$(GO) run ./bench -out docs/BENCHMARKS.md

# The agent's soak (docs/RELIABILITY.md): minutes of churn and endpoint faults; not part of make test.
# SOAK_DURATION=3m for a shorter run (at least 110s).
SOAK_DURATION ?= 10m
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -count=1 -timeout 60m -run TestSoak -v ./tests/soak/

# Run every fuzz target for a short while.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

# Build bprof, profile the bundled workload from its start for 5 s, write
# demo.pb.gz (pprof) and demo.svg (flame graph), show the top functions.
demo: build
	$(BIN) record -d 5s -o demo.pb.gz --svg demo.svg -- python3 testdata/workload/demo.py
	@$(GO) tool pprof -top -nodecount=15 demo.pb.gz 2>/dev/null
	@echo
	@echo "wrote $(CURDIR)/demo.svg: a flame graph, open it in a browser (click a frame to zoom)"
	@echo "wrote $(CURDIR)/demo.pb.gz: pprof, e.g. go tool pprof -http :8080 demo.pb.gz"

clean:
	rm -rf bin demo.pb.gz demo.svg
