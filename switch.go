package newstyle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/stdoutfallback"
)

// retryInterval is how often a Handler that fell back to stdout tries the
// journal again. Trying on every record would make every record wait for
// a journald that is stuck (up to the Writer's send timeout).
var retryInterval = time.Second

// switcher is what the Handlers derived from one NewHandler share: where
// records go, the journal's Writer, and the state of the run-time
// fallback to stdout.
type switcher struct {
	// target is where records go (TargetJournal, TargetStdout or
	// TargetNull), read by every Handle; TargetJournal only while open
	// with a Writer.
	target atomic.Int32
	// down: the journal failed, and records go to stdout until it is
	// tried again (at nextTry), read by every Handle to the journal.
	down atomic.Bool

	// Made by NewHandler, never changed.
	writer    *journal.Writer         // nil when it could not be made
	writerErr error                   // why
	journal   slog.Handler            // NewHandler's, for the reports
	fallback  slog.Handler            // NewHandler's, for the reports
	stdout    *stdoutfallback.Handler // nil with Options.Fallback
	level     slog.Leveler            // Options.Level: every Handler's, whatever its target
	detection Detection

	fallbackPanics atomic.Uint64 // panics of Options.Fallback's Handle, recovered

	mu       sync.Mutex // guards the rest; SetTarget and Close take it
	closed   bool
	nextTry  time.Time // when down: when to try the journal again
	onStdout uint64    // records written to stdout while the journal was the target, not reported yet
	fellBack uint64    // all of them, for Stats
}

func (s *switcher) handle(ctx context.Context, jh, fh slog.Handler, r slog.Record) error {
	var err error
	if s.down.Load() {
		onStdout, retry := s.retryDue()
		if !retry {
			s.count()
			return s.toFallback(ctx, fh, r)
		}
		// The way back is reported before the record that takes it, so
		// that the journal reads in order.
		if err = s.report(ctx, s.journal, slog.LevelInfo, "newstyle: the journal can be reached again; logging to it", nil, onStdout); err == nil {
			s.up(onStdout)
		}
	}
	if err == nil {
		if err = jh.Handle(ctx, r); err == nil {
			return nil
		}
	}
	if switches(err) {
		s.fail(ctx, err)
	} else {
		s.count()
	}
	// The record itself is not lost: stdout takes it.
	if ferr := s.toFallback(ctx, fh, r); ferr != nil {
		return errors.Join(err, ferr)
	}
	return nil
}

// toFallback writes r with fh, the <N> handler or Options.Fallback. The
// program's own Fallback is given only the records it is enabled for,
// and a panic in it is recovered, counted (Stats.FallbackPanics) and
// returned as an error: a logger never takes its program down.
func (s *switcher) toFallback(ctx context.Context, fh slog.Handler, r slog.Record) (err error) {
	if s.stdout != nil {
		return fh.Handle(ctx, r)
	}
	if !fh.Enabled(ctx, r.Level) {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			s.fallbackPanics.Add(1)
			err = fmt.Errorf("newstyle: Options.Fallback's Handle panicked: %v", v)
		}
	}()
	return fh.Handle(ctx, r)
}

// switches reports whether err means the journal is gone for a while,
// rather than that this one record could not go (ErrTooLarge).
func switches(err error) bool {
	return errors.Is(err, journal.ErrUnavailable) || errors.Is(err, journal.ErrTimeout) || errors.Is(err, journal.ErrClosed)
}

// retryDue reports whether the journal, which is down, is to be tried
// again now, and how many records went to stdout meanwhile.
func (s *switcher) retryDue() (onStdout uint64, retry bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.After(s.nextTry) {
		s.nextTry = now.Add(retryInterval)
		return s.onStdout, true
	}
	return 0, false
}

// count counts a record written to stdout while the journal was the
// target.
func (s *switcher) count() {
	s.mu.Lock()
	s.onStdout++
	s.fellBack++
	s.mu.Unlock()
}

// fail records that the journal failed; the first failure after it
// worked is reported, on stdout.
func (s *switcher) fail(ctx context.Context, err error) {
	s.mu.Lock()
	s.onStdout++
	s.fellBack++
	s.nextTry = time.Now().Add(retryInterval)
	s.mu.Unlock()
	if !s.down.Swap(true) {
		_ = s.report(ctx, s.fallback, slog.LevelWarn, "newstyle: the journal cannot be reached; logging to stdout until it can", err, 0)
	}
}

// up records that the journal works again, and that reported of the
// records that went to stdout have been reported; any that went there
// since stay counted for the next report.
func (s *switcher) up(reported uint64) {
	s.mu.Lock()
	s.onStdout -= reported
	s.mu.Unlock()
	s.down.Store(false)
}

func (s *switcher) report(ctx context.Context, h slog.Handler, l slog.Level, msg string, err error, onStdout uint64) error {
	r := slog.NewRecord(time.Now(), l, msg, 0)
	if err != nil {
		r.AddAttrs(slog.String("error", err.Error()))
	}
	if onStdout > 0 {
		r.AddAttrs(slog.Uint64("records_on_stdout", onStdout))
	}
	if h == s.fallback {
		return s.toFallback(ctx, h, r)
	}
	return h.Handle(ctx, r)
}

// setTarget is Handler.SetTarget.
func (s *switcher) setTarget(t Target) (Detection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d Detection
	switch t {
	case TargetStdout, TargetNull:
		d = Detection{Target: t, Reason: "SetTarget(" + t.String() + ")", Forced: true}
	case TargetJournal, TargetAuto:
		switch {
		case s.closed:
			return Detection{}, fmt.Errorf("newstyle: SetTarget(%s): %w", t, journal.ErrClosed)
		case s.writer == nil:
			return Detection{}, fmt.Errorf("newstyle: SetTarget(%s): %w", t, s.writerErr)
		case t == TargetJournal:
			d = Detection{Target: TargetJournal, Reason: "SetTarget(journal)", Forced: true}
		default:
			d = detectOption(TargetAuto, s.writer)
		}
	default:
		return Detection{}, fmt.Errorf("%w: %d", ErrInvalidTarget, int(t))
	}
	s.target.Store(int32(d.Target))
	return d, nil
}

// close marks the Handlers closed and moves them off the journal; it
// returns the journal's Writer, for the caller to close outside the
// lock, so that SetTarget never waits behind a Close.
func (s *switcher) close() *journal.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if Target(s.target.Load()) == TargetJournal {
		s.target.Store(int32(TargetStdout))
	}
	return s.writer
}
