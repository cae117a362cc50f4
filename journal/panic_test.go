//go:build linux

package journal

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// A value whose method panics is written as log/slog writes it, and the
// rest of the record is delivered, whether it comes with the record or
// through WithAttrs.
func TestHandlerPanickyValues(t *testing.T) {
	for _, tc := range testutil.PanickyValues() {
		for _, via := range []string{"record", "WithAttrs"} {
			t.Run(tc.Name+"/"+via, func(t *testing.T) {
				h, srv := handlerServer(t, nil)
				l := slog.New(h)
				if via == "WithAttrs" {
					l = l.With("before", 1, "v", tc.Value, "after", 2)
					l.Error("kept")
				} else {
					l.Error("kept", "before", 1, "v", tc.Value, "after", 2)
				}
				e := srv.Wait(t, 1, 5*time.Second)[0].Entry
				got := strings.Join(fieldsOf(e), "|")
				for _, want := range []string{"MESSAGE=kept", "PRIORITY=3", "BEFORE=1", "V=" + tc.Want, "AFTER=2"} {
					if !strings.Contains(got, want) {
						t.Errorf("entry %q lacks %q", got, want)
					}
				}
			})
		}
	}
}

// The built-in attributes go through ReplaceAttr too: a message that
// ReplaceAttr makes a panicking value does not lose the record.
func TestHandlerPanickyReplacedMessage(t *testing.T) {
	h, srv := handlerServer(t, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.MessageKey {
			return slog.Any(a.Key, testutil.PanicValuer{})
		}
		return a
	}}})
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)); err != nil {
		t.Fatal(err)
	}
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	if got := strings.Join(fieldsOf(e), "|"); !strings.Contains(got, "MESSAGE=!PANIC: boom in LogValue") {
		t.Errorf("entry %q", got)
	}
}
