//go:build linux

package newstyle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// SetTarget moves every Handler derived from one NewHandler — those
// derived before the switch included, their attributes and groups kept —
// from one target to another, whatever NewHandler chose.
func TestSetTarget(t *testing.T) {
	t.Setenv(EnvTarget, "")
	for _, start := range []Target{TargetJournal, TargetStdout, TargetNull} {
		t.Run("from "+start.String(), func(t *testing.T) {
			srv := journaltest.NewServer(t)
			var out testutil.Buffer
			h := NewHandler(&Options{Target: start, SocketPath: srv.Path(), Stdout: &out})
			t.Cleanup(func() { h.Close() })
			if d := h.Detection(); d.Target != start {
				t.Fatalf("Detection = %v, want %v", d, start)
			}
			// Derived before any switch: made without the journal's side
			// unless the journal was chosen.
			derived := slog.New(h).With("app", "shop").WithGroup("req")

			steps := []Target{start, TargetJournal, TargetStdout, TargetNull, TargetJournal, TargetStdout}
			var wantJournal, wantStdout []string
			for i, target := range steps {
				if i > 0 {
					d, err := h.SetTarget(target)
					if err != nil || d.Target != target {
						t.Fatalf("SetTarget(%v) = %v, %v", target, d, err)
					}
				}
				if got := h.Target(); got != target {
					t.Fatalf("step %d: Target() = %v, want %v", i, got, target)
				}
				if got := derived.Enabled(context.Background(), slog.LevelInfo); got != (target != TargetNull) {
					t.Errorf("step %d (%v): Enabled = %v", i, target, got)
				}
				// Derived after the switch, too.
				late := slog.New(h).WithGroup("late").With("n", i)
				msg := fmt.Sprintf("step %d", i)
				derived.Info(msg, "id", i)
				late.Info(msg + " late")
				switch target {
				case TargetJournal:
					wantJournal = append(wantJournal, msg, msg+" late")
				case TargetStdout:
					wantStdout = append(wantStdout, msg, msg+" late")
				}
			}

			var got []string
			if len(wantJournal) > 0 {
				for i, r := range srv.Wait(t, len(wantJournal), 5*time.Second) {
					m, _ := r.Entry.Get("MESSAGE")
					got = append(got, m)
					field, want := "REQ_ID", strings.TrimPrefix(m, "step ")
					if i%2 == 1 {
						field, want = "LATE_N", strings.TrimSuffix(want, " late")
					} else if app, _ := r.Entry.Get("APP"); app != "shop" {
						t.Errorf("%q: APP = %q, want shop", m, app)
					}
					if v, _ := r.Entry.Get(field); v != want {
						t.Errorf("%q: %s = %q, want %q", m, field, v, want)
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(wantJournal, ",") {
				t.Errorf("journal got %q, want %q", got, wantJournal)
			}
			got = nil
			for _, l := range out.Lines() {
				msg, _, _ := strings.Cut(strings.TrimPrefix(l, "<6>"), " app=")
				msg, _, _ = strings.Cut(msg, " late.n=")
				if !strings.Contains(l, " late.n=") && !strings.Contains(l, "app=shop req.id=") {
					t.Errorf("line %q lacks its attributes", l)
				}
				got = append(got, msg)
			}
			if strings.Join(got, ",") != strings.Join(wantStdout, ",") {
				t.Errorf("stdout got %q, want %q", got, wantStdout)
			}
			if _, ok := h.JournalStats(); !ok {
				t.Errorf("JournalStats: no Writer after SetTarget(journal)")
			}
		})
	}
}

// SetTarget(TargetAuto) decides again as Detect does, without
// Options.Target or NEWSTYLE_LOG_TARGET.
func TestSetTargetAuto(t *testing.T) {
	srv := journaltest.NewServer(t)
	tests := []struct {
		name       string
		stream     string // JOURNAL_STREAM; "stderr" for the real one
		env        string
		want       Target
		wantReason string
	}{
		{"not under systemd", "", "", TargetStdout, "JOURNAL_STREAM is not set"},
		{"not under systemd, environment ignored", "", "journal", TargetStdout, "JOURNAL_STREAM is not set"},
		{"stderr is the journal", "stderr", "", TargetJournal, "stderr is the journal"},
		{"stderr is the journal, environment ignored", "stderr", "stdout", TargetJournal, "stderr is the journal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := tt.stream
			if stream == "stderr" {
				stream = stderrStream(t)
			}
			t.Setenv("JOURNAL_STREAM", stream)
			t.Setenv(EnvTarget, tt.env)
			var out testutil.Buffer
			h := NewHandler(&Options{Target: TargetNull, SocketPath: srv.Path(), Stdout: &out})
			defer h.Close()
			d, err := h.SetTarget(TargetAuto)
			if err != nil || d.Target != tt.want || !strings.Contains(d.Reason, tt.wantReason) {
				t.Fatalf("SetTarget(auto) = %v, %v; want %v with %q", d, err, tt.want, tt.wantReason)
			}
			if h.Target() != tt.want {
				t.Errorf("Target() = %v, want %v", h.Target(), tt.want)
			}
		})
	}
}

// Options.Target = TargetNull drops everything, unless the environment
// names a target.
func TestOptionsTargetNull(t *testing.T) {
	for _, env := range []string{"", "auto", "stdout"} {
		t.Run("env="+env, func(t *testing.T) {
			t.Setenv(EnvTarget, env)
			t.Setenv("JOURNAL_STREAM", "")
			var out testutil.Buffer
			h := NewHandler(&Options{Target: TargetNull, Stdout: &out, Quiet: true})
			slog.New(h).Error("dropped?")
			if env == "stdout" {
				if h.Target() != TargetStdout || len(out.Lines()) != 1 {
					t.Errorf("%s=stdout: Target %v, %d lines; want stdout, 1", EnvTarget, h.Target(), len(out.Lines()))
				}
				return
			}
			if d := h.Detection(); d.Target != TargetNull || d.Reason != "Options.Target is null" {
				t.Errorf("Detection = %v", d)
			}
			if n := len(out.Lines()); n != 0 {
				t.Errorf("%d lines on stdout, want none", n)
			}
			if st, _ := h.JournalStats(); st.Entries+st.Errors.Total() != 0 {
				t.Errorf("JournalStats = %+v for TargetNull: something went to the journal", st)
			}
		})
	}
}

func TestSetTargetErrors(t *testing.T) {
	t.Setenv(EnvTarget, "")
	srv := journaltest.NewServer(t)
	h := NewHandler(&Options{Target: TargetStdout, SocketPath: srv.Path(), Stdout: &testutil.Buffer{}})
	if _, err := h.SetTarget(Target(42)); !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("SetTarget(42) = %v, want ErrInvalidTarget", err)
	}
	if h.Target() != TargetStdout {
		t.Errorf("an invalid target changed it to %v", h.Target())
	}
	h.Close()
	if _, err := h.SetTarget(TargetJournal); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("SetTarget(journal) after Close = %v, want journal.ErrClosed", err)
	}
	if h.Target() != TargetStdout {
		t.Errorf("a failed SetTarget changed it to %v", h.Target())
	}
	if st, _ := h.JournalStats(); st.Entries+st.Errors.Total() != 0 {
		t.Errorf("JournalStats = %+v: something went to the journal", st)
	}
}

// Records logged from many goroutines while the target changes under
// them: each goes to one target at most (none to null), and the race
// detector has nothing to say.
func TestSetTargetConcurrent(t *testing.T) {
	t.Setenv(EnvTarget, "")
	srv := journaltest.NewServer(t)
	var out testutil.Buffer
	h := NewHandler(&Options{Target: TargetStdout, SocketPath: srv.Path(), Stdout: &out})
	defer h.Close()
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		targets := []Target{TargetJournal, TargetStdout, TargetNull, TargetAuto}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := h.SetTarget(targets[i%len(targets)]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := slog.New(h).With("g", g)
			for i := range each {
				l.Info("r", "i", i)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-flipped

	seen := map[string]int{}
	for _, l := range out.Lines() {
		if !strings.HasPrefix(l, "<6>r g=") {
			t.Errorf("unexpected line %q", l)
			continue
		}
		seen[strings.TrimPrefix(l, "<6>r ")]++
	}
	time.Sleep(100 * time.Millisecond) // datagrams still on their way
	for _, e := range srv.Entries() {
		g, _ := e.Get("G")
		i, _ := e.Get("I")
		seen["g="+g+" i="+i]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s written %d times", k, n)
		}
	}
	if len(seen) > goroutines*each {
		t.Errorf("%d distinct records, want at most %d", len(seen), goroutines*each)
	}
	t.Logf("%d of %d records written (the rest while the target was null)", len(seen), goroutines*each)
}

func TestPriorityLevel(t *testing.T) {
	for p := journal.Priority(-2); p <= 9; p++ {
		l := PriorityLevel(p)
		want := min(max(p, journal.PriEmerg), journal.PriDebug)
		if got := journal.LevelPriority(l); got != want {
			t.Errorf("LevelPriority(PriorityLevel(%d)) = %d, want %d", p, got, want)
		}
	}
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, LevelNotice, slog.LevelWarn, slog.LevelError, LevelCritical, LevelAlert, LevelEmergency} {
		if got := PriorityLevel(journal.LevelPriority(l)); got != l {
			t.Errorf("PriorityLevel(LevelPriority(%v)) = %v", l, got)
		}
	}
}
