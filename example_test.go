package newstyle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/newstyle-go/newstyle"
)

// A daemon makes its logger once. Under systemd it writes to the journal,
// one entry per record, and `journalctl -t shop -o json-pretty` shows the
// attributes as fields and the stack in TRACEBACK; elsewhere, as here, it
// writes <N>-prefixed lines to stdout.
func Example() {
	logger := newstyle.NewLogger(&newstyle.Options{
		SyslogIdentifier: "shop",
		Target:           newstyle.TargetStdout, // what auto-detection picks off systemd
		Stdout:           os.Stdout,
	})
	slog.SetDefault(logger)

	slog.Info("order placed", "order_id", "A-1042", "items", 3)
	slog.Log(context.Background(), newstyle.LevelNotice, "stock low", "sku", "X-7")
	slog.Error("payment failed", "err", errors.New("card declined\nby issuer"))
	// Output:
	// <6>order placed order_id=A-1042 items=3
	// <5>stock low sku=X-7
	// <3>payment failed err="card declined\nby issuer"
}

// Detect tells what a logger would write to here, and why.
func ExampleDetect() {
	os.Setenv(newstyle.EnvTarget, "stdout")
	defer os.Unsetenv(newstyle.EnvTarget)
	fmt.Println(newstyle.Detect())
	// Output: stdout: NEWSTYLE_LOG_TARGET=stdout
}
