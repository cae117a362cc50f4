package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/service"
)

// A program's whole life under Run: its function gets a context that ends
// on SIGTERM, says when it is ready, and logs through slog's default
// logger, which Run set. Outside systemd the notifications are skipped;
// here the log goes to stdout.
func Example() {
	code := service.Run(&service.Options{
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

// A start that takes longer than the unit's TimeoutStartSec=, as a
// migration may: each step asks systemd for more time, so that a start
// that hangs is still failed. Outside systemd ExtendTimeout does nothing.
func ExampleService_ExtendTimeout() {
	steps := []string{"schema", "cache"}
	code := service.Run(&service.Options{
		Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: os.Stdout},
	}, func(ctx context.Context, svc *service.Service) error {
		for _, step := range steps {
			if err := svc.ExtendTimeout(30 * time.Second); err != nil {
				return err
			}
			slog.Info("migrating", "step", step)
		}
		svc.Ready("serving")
		return nil
	})
	fmt.Println("exit status", code)
	// Output:
	// <6>migrating step=schema
	// <6>migrating step=cache
	// exit status 0
}
