module github.com/newstyle-go/newstyle/bench

go 1.26.8

replace github.com/newstyle-go/newstyle => ../

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/newstyle-go/newstyle v0.0.0-00010101000000-000000000000
	github.com/systemd/slog-journal v0.1.2
	golang.org/x/sys v0.50.0
)

require (
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
