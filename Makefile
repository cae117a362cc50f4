# make deps   install what the targets below need (Debian 12, as root),
#             staticcheck included
# make test   every tier, in this order (each a target of its own):
#   vet          go vet and staticcheck (pinned: STATICCHECK_VERSION), with
#                each tier's build tags, and the bench and otel modules
#   vet-cross    go vet ./... (tests included) for linux, darwin, freebsd
#                and windows, both modules
#   unit         unit tests with -race
#   alloc        the allocation counts, without -race
#   unit-floor   the unit tests again with the oldest Go the module
#                supports (go.mod's go line; fetched through the module proxy)
#   otel         the otel module (trace ids from OpenTelemetry spans)
#   release-check  the release module (release/): the exported API equals
#                its record in api/, and a user's module outside the repo
#                builds against both modules fetched from a local module
#                proxy made from this checkout (go get, no replace)
#   integration  against a real systemd-journald in a private namespace,
#                journal-upload → journal-remote included
#   integration-257  the same tests against systemd 257's journald,
#                journalctl, systemd-cat and journal-remote (see below)
#   otelcol      the OpenTelemetry Collector's journald receiver, built
#                from Go modules, against a private journald
#   bench-check  the benchmark module's own checks, in a private namespace
#   container    cmd/newstyle-demo under a real systemd booted with
#                systemd-nspawn (root)
#   container-257  the same, the container booting systemd 257
# make demo   run examples/journal-writer and examples/slog-tour against a
#             private journald and show their entries as journalctl does;
#             then cmd/newstyle-demo as a service in a throwaway systemd
#             container: requests, an error, a panic and the restart, a
#             crash no recover sees (one entry by the crash watcher), as
#             journalctl -o json-pretty shows them (scripts/demo-container.sh);
#             make demo SYSTEMD=257 does all of it on systemd 257
# make bench  the benchmarks of the bench module, in a private namespace
# make bench-e2e  entries/s a real journald stores from each client, and
#             the client's CPU per entry (bench/e2e)
# make fuzz   every Fuzz target of the module,
#             FUZZTIME (20s) each
# make api    rewrite api/*.txt, the record of the exported API, after a
#             deliberate change (review its diff)
#
# Nothing here touches the host's journal: every journald runs in the
# private mount and PID namespace of scripts/private-ns.sh, or in a
# container whose /etc, /var and network are its own.
#
# Two systemd generations: the host's (Debian 12: 252) and Debian 13's 257,
# from a root tree pinned in scripts/systemd-257.pin, built by mmdebstrap
# the first time it is needed (45-90 s) and cached in
# /var/cache/newstyle (NEWSTYLE_TREE_CACHE) until the pin changes
# (scripts/systemd-tree.sh). What runs on 257, and how to run anything
# there:
#   container-257    the container tier, the container booting the tree
#                    (NEWSTYLE_SYSTEMD_TREE=DIR NEWSTYLE_SYSTEMD=257)
#   integration-257  the integration tests, built on the host
#                    (go test -c) and run with
#                    scripts/private-ns.sh --systemd 257 BINARY: CMD
#                    chrooted into an overlay of the tree, in the private
#                    namespace, so journald, journalctl and the rest are
#                    257's. Every test of the package runs there
#                    (TestJournaldDifferential* included); each package
#                    prints the systemd it ran
#                    on, and the tests whose outcome depends on it run as
#                    subtests named after it (systemd257).
# Any command runs the same way: scripts/private-ns.sh --systemd 257
# [--journald] CMD (CMD sees NEWSTYLE_SYSTEMD=257; `journalctl --version`
# says "systemd 257 (257.13-1~deb13u1)").

GO ?= go
export GO
# go.work (the library and otel) is for development and the otel target:
# otel/go.mod requires a released version of the library, which the
# workspace takes from this checkout. Every other target runs its module
# alone, as a user's build does: in workspace mode ./... would also reach
# otel's packages, and a module outside go.work (bench/,
# integration/otelcol, release/) would not build at all.
export GOWORK := off
WORKSPACE := GOWORK=$(CURDIR)/go.work
# The systems whose go vet (tests included) must pass: the library builds
# on all of them; journald and memfds are Linux's.
VET_GOOS := linux darwin freebsd windows
FUZZTIME ?= 20s
export FUZZTIME
# staticcheck, pinned: make deps installs this version into TOOLS_BIN
# (go install, GOBIN), and the vet target runs it from there, so the one
# on PATH (if any) does not matter.
STATICCHECK_VERSION := v0.8.2
TOOLS_BIN ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(TOOLS_BIN)/staticcheck
# The oldest Go the module supports: go.mod says go 1.24.
GO_FLOOR ?= go1.24.11

PRIVATE_NS := scripts/private-ns.sh
DEMO_BIN := bin/journal-writer
# The SYSLOG_IDENTIFIER examples/journal-writer sends with.
DEMO_IDENT := journal-writer-example
# The systemd generation of make demo: the host's by default (quickest on
# a fresh Debian 12 machine), or 257.
SYSTEMD ?=
SYSTEMD_OPT := $(if $(SYSTEMD),--systemd $(SYSTEMD))
# The tests that count allocations: meaningless under -race, where
# sync.Pool drops items on purpose, so they run in a pass of their own.
ALLOC_TESTS := Allocations$$

.PHONY: deps test vet vet-cross unit alloc unit-floor otel release-check api integration integration-257 otelcol bench-check container container-257 demo bench bench-e2e fuzz

deps:
	scripts/deps.sh
	$(STATICCHECK) -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))' || \
		GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

test: deps vet vet-cross unit alloc unit-floor otel release-check integration integration-257 otelcol bench-check container container-257

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	$(GO) vet -tags container ./integration/container/
	cd bench && $(GO) vet ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags integration ./...
	$(STATICCHECK) -tags container ./...
	cd bench && $(STATICCHECK) ./...
	cd otel && $(WORKSPACE) $(STATICCHECK) ./...

vet-cross:
	for goos in $(VET_GOOS); do \
		echo "vet: GOOS=$$goos"; \
		GOOS=$$goos $(GO) vet ./... && (cd otel && GOOS=$$goos $(WORKSPACE) $(GO) vet ./...) || exit 1; \
	done

unit:
	$(GO) test -race -count=1 -skip '$(ALLOC_TESTS)' ./...

alloc:
	$(GO) test -count=1 -run '$(ALLOC_TESTS)' ./...

unit-floor:
	GOTOOLCHAIN=$(GO_FLOOR) $(GO) test -count=1 ./...

# The otel module (its own go.mod: the core never depends on
# OpenTelemetry), with the newest Go and the oldest supported.
otel:
	cd otel && $(WORKSPACE) $(GO) vet ./... && $(WORKSPACE) $(GO) test -race -count=1 ./...
	cd otel && GOTOOLCHAIN=$(GO_FLOOR) $(WORKSPACE) $(GO) test -count=1 ./...

# A module of its own (golang.org/x/mod), outside the workspace.
release-check:
	cd release && $(GO) vet ./... && $(GO) test -count=1 ./...

api:
	cd release && $(GO) test -count=1 -run '^TestAPI$$' -update .

# Each tier on each systemd says which it runs on: "systemd 252 (…)".
integration: deps
	$(PRIVATE_NS) sh -c 'journalctl --version | head -n 1 && $(GO) test -race -tags integration -count=1 ./integration/...'

# The test binary is built here and run inside the tree, from its
# package's directory as go test would.
integration-257: deps
	$(GO) test -c -race -tags integration -o bin/integration.test ./integration
	cd integration && ../$(PRIVATE_NS) --systemd 257 ../bin/integration.test \
		-test.count=1 -test.timeout=30m

# The OpenTelemetry Collector (journald receiver, transform, file
# exporter), built from Go modules (integration/otelcol, a module of its
# own), against a private journald, with the shipped config. Its first
# build on a fresh machine takes about 5 minutes and 1 GB of memory.
otelcol: deps
	cd integration/otelcol && $(GO) vet -tags integration ./...
	$(PRIVATE_NS) --journald sh -c 'cd integration/otelcol && $(GO) test -tags integration -count=1 -timeout 30m ./...'

# Each client of the benchmarks sends the workload it claims to, byte for
# byte.
bench-check: deps
	$(PRIVATE_NS) sh -c 'cd bench && $(GO) test -count=1 -run . ./...'

# One systemd container for the package. Run from the package's directory
# (go test's local directory mode), so that its output, the version of
# the systemd it booted included, shows when it passes too.
container: deps
	cd integration/container && $(GO) test -tags container -count=1 -timeout 15m

container-257: deps
	tree=$$(scripts/systemd-tree.sh 257) && cd integration/container && \
		NEWSTYLE_SYSTEMD=257 NEWSTYLE_SYSTEMD_TREE=$$tree \
		$(GO) test -tags container -count=1 -timeout 15m

# journalctl --sync returns once journald has stored every entry sent
# before it, so the listing is complete.
demo: deps
	$(GO) build -o $(DEMO_BIN) ./examples/journal-writer
	$(GO) build -o bin/slog-tour ./examples/slog-tour
	$(PRIVATE_NS) $(SYSTEMD_OPT) --journald sh -c 'journalctl --version | head -n 1 && $(DEMO_BIN) && journalctl --sync && \
		journalctl -o json-pretty --all --no-pager -t $(DEMO_IDENT) && \
		echo "--- the same slog records, through the journal, then through the stdout fallback:" && \
		NEWSTYLE_LOG_TARGET=journal bin/slog-tour && journalctl --sync && \
		journalctl -o json-pretty --all --no-pager -t slog-tour && \
		NEWSTYLE_LOG_TARGET=stdout bin/slog-tour'
	scripts/demo-container.sh $(SYSTEMD_OPT)

bench: deps
	$(PRIVATE_NS) sh -c 'cd bench && $(GO) test -run XXX -bench . -benchmem -count 6'

# End to end against a real journald (started anew for every measurement):
# E2E_ENTRIES entries, 1 and 4 goroutines, each client, E2E_ROUNDS
# interleaved rounds (3 at least: fewer make a noisy run), each keeping
# each client's fastest of E2E_BEST passes over the clients; writes
# bench/e2e.md and the chart bench/e2e.svg that README.md shows. It
# waits up to 3 minutes before and after for a quiet load average, and
# marks a run noisy, with no headline ratio, when the load or the spread
# of the rounds is too high (bench/README.md).
# The defaults are those of the published figures (about 15 minutes).
E2E_ENTRIES ?= 100000
E2E_ROUNDS ?= 3
E2E_BEST ?= 5
bench-e2e: deps
	$(PRIVATE_NS) sh -c 'cd bench && $(GO) run ./e2e -entries $(E2E_ENTRIES) -rounds $(E2E_ROUNDS) -best $(E2E_BEST) -svg e2e.svg -md e2e.md'

fuzz:
	scripts/fuzz.sh
