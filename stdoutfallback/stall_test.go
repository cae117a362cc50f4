//go:build unix

package stdoutfallback

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// blockingWriter is an io.Writer that is not a file and blocks until
// released, as a writer to a remote end that stopped reading would.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	w       io.Writer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// stalledOutputs are outputs that take nothing until the test starts
// reading: a Go pipe (non-blocking, in the network poller), a pipe in
// blocking mode (as stdout is when it is a pipe), and a writer that is not
// a file. Each returns the writer, the reader, and the function that
// starts reading.
func stalledOutputs(t *testing.T) map[string]func() (io.Writer, io.Reader, func()) {
	return map[string]func() (io.Writer, io.Reader, func()){
		"os.Pipe": func() (io.Writer, io.Reader, func()) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return w, r, func() {}
		},
		"blocking pipe": func() (io.Writer, io.Reader, func()) {
			var p [2]int
			syscall.ForkLock.RLock()
			err := syscall.Pipe(p[:])
			if err == nil {
				syscall.CloseOnExec(p[0])
				syscall.CloseOnExec(p[1])
			}
			syscall.ForkLock.RUnlock()
			if err != nil {
				t.Fatal(err)
			}
			r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
			t.Cleanup(func() { r.Close(); w.Close() })
			return w, r, func() {}
		},
		"io.Writer": func() (io.Writer, io.Reader, func()) {
			r, w := io.Pipe()
			bw := &blockingWriter{release: make(chan struct{}), w: w}
			t.Cleanup(func() { r.Close(); w.Close() })
			var once sync.Once
			return bw, r, func() { once.Do(func() { close(bw.release) }) }
		},
	}
}

// A writer nobody reads: every Handle returns within WriteTimeout plus a
// margin, whatever it returns; once the reader reads, a line reports the
// count of dropped records, and every record not counted is there, whole,
// one line each.
func TestStalledOutputIsBounded(t *testing.T) {
	const (
		timeout  = 100 * time.Millisecond
		margin   = 300 * time.Millisecond
		loggers  = 8
		perLog   = 20
		padding  = 2000 // bytes per record, so that the pipe (64 KiB) fills
		maxTotal = loggers * perLog
	)
	for name, mk := range stalledOutputs(t) {
		t.Run(name, func(t *testing.T) {
			w, r, startReading := mk()
			h := NewHandler(w, &HandlerOptions{WriteTimeout: timeout})
			l := slog.New(h)
			pad := strings.Repeat("x", padding)

			var wg sync.WaitGroup
			var dropped, late atomic.Int64
			for g := 0; g < loggers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perLog; i++ {
						id := strconv.Itoa(g*perLog + i)
						start := time.Now()
						err := l.Handler().Handle(context.Background(), record("rec "+id, "id", id, "pad", pad))
						if time.Since(start) > timeout+margin {
							late.Add(1)
						}
						switch {
						case errors.Is(err, ErrTimeout):
							dropped.Add(1)
						case err != nil:
							t.Errorf("Handle: %v", err)
						}
					}
				}()
			}
			wg.Wait()
			if late.Load() > 0 {
				t.Errorf("%d calls took longer than %v + %v", late.Load(), timeout, margin)
			}
			if dropped.Load() == 0 {
				t.Fatal("nothing was dropped: the output never stalled")
			}
			if got := h.TimedOut(); got != uint64(dropped.Load()) {
				t.Errorf("TimedOut() = %d, want the %d ErrTimeout returned", got, dropped.Load())
			}

			// Now the reader reads, and nobody logs: the report comes all
			// the same.
			startReading()
			seen := map[string]bool{}
			var reported uint64
			sc := bufio.NewScanner(r)
			sc.Buffer(nil, 1<<20)
			lines := make(chan string)
			go func() {
				defer close(lines)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			want := uint64(maxTotal)
			deadline := time.After(10 * time.Second)
			for uint64(len(seen))+reported < want {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatalf("output ended after %d records and %d reported dropped", len(seen), reported)
					}
					if rest, ok := strings.CutPrefix(line, "<4>stdoutfallback: records dropped: "); ok {
						_, n, _ := strings.Cut(rest, " dropped=")
						v, err := strconv.ParseUint(n, 10, 64)
						if err != nil {
							t.Fatalf("report %q: %v", line, err)
						}
						reported += v
						continue
					}
					id, ok := recordID(line, pad)
					if !ok {
						t.Fatalf("line %q is not a whole record", line)
					}
					if seen[id] {
						t.Fatalf("record %s written twice", id)
					}
					seen[id] = true
				case <-deadline:
					t.Fatalf("after 10 s: %d records and %d reported dropped, want %d in all", len(seen), reported, want)
				}
			}
			if reported != uint64(dropped.Load()) {
				t.Errorf("reports say %d dropped, Handle returned ErrTimeout %d times", reported, dropped.Load())
			}
			t.Logf("%d records written, %d dropped and reported", len(seen), reported)
		})
	}
}

func record(msg string, args ...any) slog.Record {
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
	r.Add(args...)
	return r
}

// recordID returns the id of a line the test wrote, if the line is whole.
func recordID(line, pad string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "<6>rec ")
	if !ok {
		return "", false
	}
	id, tail, ok := strings.Cut(rest, " ")
	return id, ok && tail == "id="+id+" pad="+pad
}

// With a negative WriteTimeout, Handle waits for the writer as long as it
// takes, and drops nothing.
func TestNegativeWriteTimeoutWaits(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	bw := &blockingWriter{release: make(chan struct{}), w: pw}
	h := NewHandler(bw, &HandlerOptions{WriteTimeout: -1})
	done := make(chan error, 1)
	go func() { done <- h.Handle(context.Background(), record("waits")) }()
	select {
	case err := <-done:
		t.Fatalf("Handle returned %v before the writer took the line", err)
	case <-time.After(DefaultWriteTimeout + 500*time.Millisecond):
	}
	close(bw.release)
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.TimedOut() != 0 {
		t.Errorf("TimedOut() = %d", h.TimedOut())
	}
}

// A writer that panics is an error for that record, not a crash.
func TestPanickingWriter(t *testing.T) {
	for _, w := range []io.Writer{panicWriter{}} {
		h := NewHandler(w, nil)
		err := h.Handle(context.Background(), record("m"))
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("Handle = %v, want the panic as an error", err)
		}
		if err := h.Handle(context.Background(), record("again")); err == nil {
			t.Error("the second Handle: no error")
		}
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("writer broke") }

// A pipe that is read, but slowly enough to fill now and then: lines that
// the kernel takes only in part are finished by the flusher, and every
// record arrives whole, once, with nothing dropped.
func TestBusyPipeKeepsLinesWhole(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	h := NewHandler(w, nil)
	pad := strings.Repeat("y", 5000)
	const loggers, perLog = 8, 300
	got := make(chan map[string]bool)
	go func() {
		seen := map[string]bool{}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for len(seen) < loggers*perLog && sc.Scan() {
			id, ok := recordID(sc.Text(), pad)
			if !ok || seen[id] {
				t.Errorf("line %.80q… is not a new whole record", sc.Text())
				break
			}
			seen[id] = true
			if len(seen)%100 == 0 {
				time.Sleep(time.Millisecond) // a slow reader
			}
		}
		got <- seen
	}()
	var wg sync.WaitGroup
	for g := 0; g < loggers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perLog; i++ {
				id := strconv.Itoa(g*perLog + i)
				if err := h.Handle(context.Background(), record("rec "+id, "id", id, "pad", pad)); err != nil {
					t.Errorf("Handle: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if seen := <-got; len(seen) != loggers*perLog {
		t.Errorf("%d records read, want %d", len(seen), loggers*perLog)
	}
	if h.TimedOut() != 0 {
		t.Errorf("TimedOut() = %d", h.TimedOut())
	}
}
