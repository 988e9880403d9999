# Tandem: `make run` starts a dev server, `make test` runs every test.

GO      ?= go
BIN     ?= bin/tandem
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w
# Test time budget; the whole suite takes a few minutes on 2 cores.
TEST_TIMEOUT ?= 20m
# Fuzz iterations per target (a count, not a duration: a fuzz deadline that
# lands while the fuzzer minimizes an input is reported as a failure).
FUZZTIME ?= 50000x

.PHONY: all build agent run test test-deps vet typecheck-web unit fuzz soak bench bench-turn bench-sfu bench-signaling clean

all: build

## build: static binary in bin/tandem (the Dockerfile runs the same steps)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN) ./cmd/tandem

## agent: bin/tandem with the desktop agent (`tandem agent`), whose screen
## encoder links libvpx through cgo (Debian: gcc pkg-config libvpx-dev);
## with libpipewire-0.3-dev it also shares Wayland desktops (the portal)
AGENT_TAGS := $(shell pkg-config --exists libpipewire-0.3 2>/dev/null || echo nopipewire)
agent:
	@pkg-config --exists vpx || { echo "the agent needs libvpx: apt-get install gcc pkg-config libvpx-dev"; exit 1; }
	@pkg-config --exists libpipewire-0.3 || echo "note: no libpipewire-0.3-dev: this agent shares X11 desktops only, not Wayland"
	CGO_ENABLED=1 $(GO) build -tags '$(AGENT_TAGS)' -trimpath -ldflags='$(LDFLAGS)' -o $(BIN) ./cmd/tandem

## run: a dev server on http://127.0.0.1:7880 — open it in two browser windows
run: build
	./$(BIN) serve --dev

## test: install test dependencies if missing, then vet, race-test everything
## (including headless-Chromium tests) in a loopback-only network namespace,
## and run each fuzz target briefly
## The integration tests (./test: browsers, TURN, nodes) run after the
## others, not beside them: three browsers on two cores need all of both.
test: test-deps vet typecheck-web build
	./scripts/loopback-only.sh $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/test$$')
	./scripts/loopback-only.sh $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./test/
	$(MAKE) --no-print-directory fuzz

test-deps:
	./scripts/test-deps.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## typecheck-web: check the web client's JSDoc types with the TypeScript
## compiler (a dev-only npm package in test/web; the client has no build)
typecheck-web:
	cd test/web && npm ci --no-audit --no-fund --silent && ./node_modules/.bin/tsc -p .

## fuzz: run every native fuzz target in the module for FUZZTIME iterations
## each (scripts/fuzz.sh finds them; FUZZ=<regex> picks some)
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/loopback-only.sh ./scripts/fuzz.sh

## soak: two long soaks (SOAK=30m each) on three nodes: one with Redis
## killed for 30 s every 5 minutes, one on node processes with a node
## SIGKILLed or drained every 5 minutes; every call must end everywhere,
## every answered call be in its members' histories once, no node hold a
## call after, and nothing leak (docs/benchmarks.md)
## (RACE=1: under the race detector, the in-process nodes and the load)
SOAK ?= 30m
soak: test-deps
	TANDEM_SOAK=$(SOAK) ./scripts/loopback-only.sh $(GO) test $(if $(RACE),-race) -count=1 -timeout 25h -run 'TestSoakRedisOutage$$' -v ./internal/loadtest/
	TANDEM_SOAK=$(SOAK) ./scripts/loopback-only.sh $(GO) test $(if $(RACE),-race) -count=1 -timeout 25h -run 'TestSoakNodeKills$$' -v ./cmd/tandem/

## bench: hot-path benchmarks (see docs/benchmarks.md)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./sfu ./signaling/protocol

## bench-turn: Tandem's TURN and coturn side by side (needs coturn)
bench-turn: build
	./scripts/loopback-only.sh ./scripts/bench-turn.sh

## bench-sfu: server CPU per forwarded packet, loss and latency of the SFU
## under synthetic publishers and subscribers (about 1.5 minutes)
bench-sfu: build
	./scripts/loopback-only.sh ./scripts/bench-sfu.sh

## bench-signaling: invites per second and invite→ringing on one node and
## across three nodes on Redis, and memory per idle device (needs redis-server)
bench-signaling: build
	./scripts/loopback-only.sh ./scripts/bench-signaling.sh

clean:
	rm -rf bin
