package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/service"
)

// A program's whole life under Run: its function gets a context that ends
// on SIGTERM, says when it is ready, and logs through slog's default
// logger, which Run set. Outside systemd the notifications are skipped;
// here the log goes to stdout.
func Example() {
	code := service.Run(service.Options{
		Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: os.Stdout},
	}, func(ctx context.Context, svc *service.Service) error {
		svc.Ready("warmed up")
		slog.Info("working", "jobs", 3)
		return nil
	})
	fmt.Println("exit status", code)
	// Output:
	// <6>working jobs=3
	// exit status 0
}
