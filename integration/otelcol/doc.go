// Package otelcol holds an integration test: entries that newstyle's
// logger writes to a real journald, read by a real OpenTelemetry
// Collector (journald receiver, transform processor, file exporter) with
// the configuration newstyle documents, newstyle.yaml, and checked in the
// OTLP JSON it exports.
//
// The collector is cmd/otelcol-newstyle, a minimal build of the
// collector's Go modules (v0.160.0, core v1.66.0). This is a module of its
// own so that its ~180 requirements stay out of newstyle's go.mod.
//
// The test needs root and a journald of its own, so it runs in the private
// namespace of newstyle's scripts/private-ns.sh, from the repository root:
//
//	scripts/private-ns.sh --journald sh -c 'cd integration/otelcol && go test -tags integration -count=1 -v ./...'
//
// It builds the collector itself with go build, unless
// NEWSTYLE_OTELCOL_BIN names a binary already built:
//
//	cd integration/otelcol && go build -o /tmp/otelcol-newstyle ./cmd/otelcol-newstyle
package otelcol
