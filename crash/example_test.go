package crash_test

import (
	"errors"
	"log/slog"

	"github.com/newstyle-go/newstyle/crash"
)

// A program that does not use package service captures its crashes
// first thing in main: from then on, a panic no recover sees, or a fatal
// error of the runtime, is one journal entry at crit.
func Example() {
	if err := crash.Capture(nil); err != nil && !errors.Is(err, crash.ErrUnsupported) {
		slog.Warn("crashes are not captured", "err", err)
	}
	// … the program
}

// Where the program logs under an identifier and to a journal namespace
// of its own, its crashes go there too.
func Example_options() {
	err := crash.Capture(&crash.Options{
		SyslogIdentifier: "shop",
		Namespace:        "billing",
		OnWatcherExit: func(err error) {
			slog.Warn("the crash watcher ended", "err", err)
		},
	})
	if err != nil {
		slog.Warn("crashes are not captured", "err", err)
	}
}
