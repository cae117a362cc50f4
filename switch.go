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
)

// retryInterval is how often a Handler that fell back to stdout tries the
// journal again. Trying on every record would make every record wait for
// a journald that is stuck (up to the Writer's send timeout).
var retryInterval = time.Second

// switcher is the journal-or-stdout state shared by the Handlers derived
// from one NewHandler.
type switcher struct {
	// target is where records go (a Target: TargetJournal, TargetStdout
	// or TargetNull), read by every Handle. It is TargetJournal only
	// once side is set.
	target atomic.Int32
	// side is the journal's Writer and Handler, nil until the journal
	// was a target; makeJournal makes it. setMu serialises SetTarget.
	side        atomic.Pointer[journalSide]
	makeJournal func() (*journalSide, error)
	setMu       sync.Mutex
	closed      bool // Close was called: no journal side is made any more

	// The reports go through the handlers NewHandler made (side's and
	// this one), not through a derived one that carries its own
	// attributes and groups.
	fallback slog.Handler

	mu       sync.Mutex
	down     bool      // records go to stdout
	nextTry  time.Time // when down: when to try the journal again
	failures uint64    // records written to stdout because the journal failed
}

func (s *switcher) handle(ctx context.Context, jh, fh slog.Handler, r slog.Record) error {
	try, wasDown, onStdout := s.tryJournal()
	if !try {
		s.count()
		return fh.Handle(ctx, r)
	}
	var err error
	if wasDown {
		// The way back is reported before the record that takes it, so
		// that the journal reads in order.
		err = report(ctx, s.side.Load().handler, slog.LevelInfo, "newstyle: the journal can be reached again; logging to it", nil, onStdout)
		if err == nil {
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
	if ferr := fh.Handle(ctx, r); ferr != nil {
		return errors.Join(err, ferr)
	}
	return nil
}

// switches reports whether err means the journal is gone for a while,
// rather than that this one record could not go (ErrTooLarge).
func switches(err error) bool {
	return errors.Is(err, journal.ErrUnavailable) || errors.Is(err, journal.ErrTimeout) || errors.Is(err, journal.ErrClosed)
}

// tryJournal reports whether this record goes to the journal first, and
// if so whether the journal was down, with how many records went to
// stdout meanwhile.
func (s *switcher) tryJournal() (try, wasDown bool, onStdout uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return true, false, 0
	}
	if now := time.Now(); now.After(s.nextTry) {
		s.nextTry = now.Add(retryInterval)
		return true, true, s.failures
	}
	return false, true, 0
}

func (s *switcher) count() {
	s.mu.Lock()
	s.failures++
	s.mu.Unlock()
}

// fail records that the journal failed; the first failure after it
// worked is reported, on stdout.
func (s *switcher) fail(ctx context.Context, err error) {
	s.mu.Lock()
	s.failures++
	first := !s.down
	s.down = true
	s.nextTry = time.Now().Add(retryInterval)
	s.mu.Unlock()
	if first {
		_ = report(ctx, s.fallback, slog.LevelWarn, "newstyle: the journal cannot be reached; logging to stdout until it can", err, 0)
	}
}

// up records that the journal works again, and that reported of the
// records that went to stdout have been reported; any that went there
// since stay counted for the next report.
func (s *switcher) up(reported uint64) {
	s.mu.Lock()
	s.down = false
	s.failures -= reported
	s.mu.Unlock()
}

func report(ctx context.Context, h slog.Handler, l slog.Level, msg string, err error, onStdout uint64) error {
	r := slog.NewRecord(time.Now(), l, msg, 0)
	if err != nil {
		r.AddAttrs(slog.String("error", err.Error()))
	}
	if onStdout > 0 {
		r.AddAttrs(slog.Uint64("records_on_stdout", onStdout))
	}
	return h.Handle(ctx, r)
}

// setTarget is Handler.SetTarget.
func (s *switcher) setTarget(t Target) (Detection, error) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	var d Detection
	switch t {
	case TargetStdout, TargetNull:
		d = Detection{Target: t, Reason: "SetTarget(" + t.String() + ")"}
	case TargetJournal, TargetAuto:
		if s.closed {
			return Detection{}, fmt.Errorf("newstyle: SetTarget(%s): %w", t, journal.ErrClosed)
		}
		side := s.side.Load()
		if side == nil {
			var err error
			if side, err = s.makeJournal(); err != nil {
				// Tried again at the next call: nothing is kept of a
				// failure.
				return Detection{}, fmt.Errorf("newstyle: SetTarget(%s): %w", t, err)
			}
			s.side.Store(side)
		}
		if t == TargetJournal {
			d = Detection{Target: TargetJournal, Reason: "SetTarget(journal)"}
		} else {
			d = detectOption(TargetAuto, side.writer)
		}
	default:
		return Detection{}, fmt.Errorf("%w: %d", ErrInvalidTarget, int(t))
	}
	s.target.Store(int32(d.Target))
	return d, nil
}

// close marks the Handlers closed and moves them off the journal; it
// returns the journal's side, for the caller to close outside the lock,
// so that SetTarget never waits behind a Close.
func (s *switcher) close() *journalSide {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.closed = true
	if Target(s.target.Load()) == TargetJournal {
		s.target.Store(int32(TargetStdout))
	}
	return s.side.Load()
}
