package stdoutfallback

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// writeRecorder keeps a copy of every Write call, and notes any two calls
// that overlap.
type writeRecorder struct {
	busy     atomic.Int32
	overlaps atomic.Int32
	mu       sync.Mutex
	writes   [][]byte
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if w.busy.Add(1) != 1 {
		w.overlaps.Add(1)
	}
	defer w.busy.Add(-1)
	c := bytes.Clone(p)
	w.mu.Lock()
	w.writes = append(w.writes, c)
	w.mu.Unlock()
	return len(p), nil
}

// TestConcurrentHandle logs from many goroutines through handlers derived
// from one NewHandler: every Write call must be one whole line, and every
// record must be there once.
func TestConcurrentHandle(t *testing.T) {
	const goroutines, records = 32, 200
	w := &writeRecorder{}
	base := NewHandler(w, nil)
	handlers := []slog.Handler{
		base,
		base.WithAttrs([]slog.Attr{slog.String("with", "attrs")}),
		base.WithGroup("g").WithAttrs([]slog.Attr{slog.Int("n", 1)}),
	}
	// Long lines make an interleaving, were there one, likely.
	pad := strings.Repeat("x", 4000)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logger := slog.New(handlers[g%len(handlers)])
			for i := range records {
				logger.Info(fmt.Sprintf("g%d r%d\nsecond line", g, i), "pad", pad, "who", g)
			}
		}()
	}
	wg.Wait()

	if n := w.overlaps.Load(); n != 0 {
		t.Errorf("%d Write calls overlapped", n)
	}
	if got, want := len(w.writes), goroutines*records; got != want {
		t.Fatalf("%d Write calls, want %d", got, want)
	}
	seen := make(map[string]bool)
	for _, p := range w.writes {
		l, err := testutil.ParseLine(string(p))
		if err != nil {
			t.Fatalf("Write of %.80q…: %v", p, err)
		}
		if seen[l.Msg] {
			t.Fatalf("record %q written twice", l.Msg)
		}
		seen[l.Msg] = true
	}
	for g := range goroutines {
		for i := range records {
			if msg := fmt.Sprintf("g%d r%d\nsecond line", g, i); !seen[msg] {
				t.Fatalf("record %q missing", msg)
			}
		}
	}
}
