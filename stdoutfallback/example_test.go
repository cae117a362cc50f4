package stdoutfallback_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/newstyle-go/newstyle/stdoutfallback"
)

// Each record is one line, prefixed with its syslog priority, which
// systemd's stdout stream stores as the entry's PRIORITY. A message with
// a newline stays one line, and one entry.
func Example() {
	logger := slog.New(stdoutfallback.NewHandler(os.Stdout, nil))

	logger.Info("listening", "addr", ":8080")
	logger.Warn("slow request",
		slog.Group("req", "method", "GET", "path", "/search?q=a b"),
		"took", 1500*time.Millisecond)
	logger.Error("payment declined\n<0>not a priority", "order", "A-1042", "reason", `card "expired"`)
	logger.Debug("not written: below Info")
	// Output:
	// <6>listening addr=:8080
	// <4>slow request req.method=GET req.path="/search?q=a b" took=1.5s
	// <3>payment declined\n<0>not a priority order=A-1042 reason="card \"expired\""
}

// tracedError is an error with the stack trace of where it was made, as
// newstyle.WithStack returns.
type tracedError struct{ error }

func (tracedError) Stack() []byte {
	return []byte("main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n")
}

// An error's stack trace is written in the same line as the record, under
// the traceback key.
func Example_traceback() {
	logger := slog.New(stdoutfallback.NewHandler(os.Stdout, nil))

	err := fmt.Errorf("charge: %w", tracedError{errors.New("card declined")})
	logger.Error("payment failed", "err", err)
	// Output:
	// <3>payment failed err="charge: card declined" traceback="main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n"
}
