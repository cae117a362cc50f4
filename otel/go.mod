module github.com/newstyle-go/newstyle/otel

go 1.24.0

require (
	github.com/newstyle-go/newstyle v0.1.0
	go.opentelemetry.io/otel/trace v1.41.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	go.opentelemetry.io/otel v1.41.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
