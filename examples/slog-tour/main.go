// Command slog-tour logs a few records through newstyle.NewLogger: the
// README's tour. Under systemd (or with NEWSTYLE_LOG_TARGET=journal) they
// go to the journal, elsewhere to stdout as <N>-prefixed lines.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/newstyle-go/newstyle"
)

func main() {
	h := newstyle.NewHandler(&newstyle.Options{SyslogIdentifier: "slog-tour"})
	slog.SetDefault(slog.New(h))
	fmt.Fprintln(os.Stderr, "slog-tour: logging to", h.Detection())

	slog.Info("order placed", "order_id", "A-1042", slog.Group("customer", "id", 7, "tier", "gold"))
	if err := charge(); err != nil {
		slog.Error("payment failed", "order_id", "A-1042", "err", err)
	}
}

func charge() error {
	return newstyle.WithStack(errors.New("card declined"))
}
