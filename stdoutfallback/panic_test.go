package stdoutfallback

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// A value whose method panics is written as log/slog writes it, and the
// rest of the record is written, whether it comes with the record or
// through WithAttrs.
func TestHandlerPanickyValues(t *testing.T) {
	for _, tc := range testutil.PanickyValues() {
		for _, via := range []string{"record", "WithAttrs"} {
			t.Run(tc.Name+"/"+via, func(t *testing.T) {
				var buf bytes.Buffer
				l := slog.New(NewHandler(&buf, nil))
				if via == "WithAttrs" {
					l = l.With("before", 1, "v", tc.Value, "after", 2)
					l.Error("kept")
				} else {
					l.Error("kept", "before", 1, "v", tc.Value, "after", 2)
				}
				want := "<3>kept before=1 v=" + quoted(tc.Want) + " after=2\n"
				if got := buf.String(); got != want {
					t.Errorf("line = %q, want %q", got, want)
				}
			})
		}
	}
}

func quoted(s string) string {
	if strings.ContainsAny(s, ` ="\`) || s == "" {
		return strconv.Quote(s)
	}
	return s
}
