package slogcore

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/newstyle-go/newstyle/internal/buffer"
	"github.com/newstyle-go/newstyle/slogopts"
)

// Format is how one handler writes attributes. The walk over a record's
// attributes calls it once per leaf attribute, with the prefix that the
// enclosing groups make.
type Format interface {
	// AppendAttr appends the attribute key, under prefix, with value v
	// (resolved, not a group).
	AppendAttr(dst, prefix []byte, key string, v slog.Value) []byte
	// AppendGroup appends to prefix what the group name adds to it.
	AppendGroup(prefix []byte, name string) []byte
}

// Handler is the state both handlers share: options, the attributes
// formatted by WithAttrs, and the groups opened by WithGroup. Its methods
// return new Handlers; a Handler is never changed once made, so it is safe
// for concurrent use.
type Handler struct {
	opts   *slogopts.HandlerOptions
	format Format
	attrs  []byte   // WithAttrs' attributes, formatted
	nattrs int      // how many attributes attrs holds
	trace  []byte   // the traceback of an error among them
	prefix []byte   // the open groups, formatted
	groups []string // the open groups' names, for ReplaceAttr
}

// New returns a Handler for opts, writing with f.
func New(opts slogopts.HandlerOptions, f Format) *Handler {
	return &Handler{opts: &opts, format: f}
}

// Enabled reports whether records at level l are handled: at or above
// Options.Level, Info when that is nil.
func (h *Handler) Enabled(l slog.Level) bool {
	min := slog.LevelInfo
	if h.opts.Level != nil {
		min = h.opts.Level.Level()
	}
	return l >= min
}

// WithAttrs returns a Handler whose records carry attrs, formatted now,
// once, rather than for every record. No attributes: h itself.
func (h *Handler) WithAttrs(attrs []slog.Attr) *Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	s := getState()
	s.prefix = append(s.prefix[:0], h.prefix...)
	s.buf = append(s.buf[:0], h.attrs...)
	s.trace = append(s.trace[:0], h.trace...)
	s.n = h.nattrs
	for _, a := range attrs {
		s.buf = h.appendAttr(s, s.buf, s.prefix, h.groups, a)
	}
	h2.attrs = append([]byte(nil), s.buf...)
	h2.nattrs = s.n
	h2.trace = append([]byte(nil), s.trace...)
	putState(s)
	return &h2
}

// WithGroup returns a Handler whose later attributes are in group name.
// An empty name: h itself. A group that gets no attributes leaves no
// trace in the output.
func (h *Handler) WithGroup(name string) *Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.format.AppendGroup(append([]byte(nil), h.prefix...), name)
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

// Record is what a handler writes of one record: its built-in parts after
// ReplaceAttr; AppendAttrs writes its attributes.
type Record struct {
	Message   string
	HasMsg    bool // false when ReplaceAttr removed the message
	Level     slog.Level
	HasLevel  bool
	Time      time.Time // zero when the handler does not want it or it is absent
	Source    *slog.Source
	NumAttrs  int    // how many attributes AppendAttrs wrote
	Traceback []byte // tracebacks AppendAttrs found or captured, nil for none

	s   *state
	h   *Handler
	r   slog.Record
	ctx context.Context
}

// Begin prepares r for writing. wantTime says whether the handler writes
// the time at all, so that ReplaceAttr is not asked about a time that is
// not written. The caller writes the built-in parts, then the attributes
// with AppendAttrs, straight into its own buffer, and calls End when it is
// done with the result.
func (h *Handler) Begin(ctx context.Context, r slog.Record, wantTime bool) *Record {
	s := getState()
	rec := &s.rec
	*rec = Record{Message: r.Message, HasMsg: true, Level: r.Level, HasLevel: true, s: s, h: h, r: r, ctx: ctx}
	if wantTime && !r.Time.IsZero() {
		rec.Time = r.Time
	}
	if h.opts.AddSource && r.PC != 0 {
		rec.Source = h.source(s, r.PC)
	}
	if rep := h.opts.ReplaceAttr; rep != nil {
		h.replaceBuiltins(rec, rep)
	}
	return rec
}

// AppendAttrs appends the attributes, WithAttrs' (formatted once, when
// they were given) then the record's, to dst: the record is written into
// one buffer, with no copy. It sets NumAttrs and Traceback: the stacks of
// error attributes and, with StackLevel, the logging goroutine's.
func (rec *Record) AppendAttrs(dst []byte) []byte {
	s, h := rec.s, rec.h
	dst = append(dst, h.attrs...)
	s.trace = append(s.trace[:0], h.trace...)
	s.n = h.nattrs
	if rec.r.NumAttrs() > 0 {
		s.prefix = append(s.prefix[:0], h.prefix...)
		rec.r.Attrs(func(a slog.Attr) bool {
			dst = h.appendAttr(s, dst, s.prefix, h.groups, a)
			return true
		})
	}
	if ca := h.opts.ContextAttrs; ca != nil && rec.ctx != nil {
		// The context's attributes stand outside the groups the handler
		// opened: a trace id is the record's, not a group's.
		s.ctx = ca(rec.ctx, s.ctx[:0])
		for _, a := range s.ctx {
			dst = h.appendAttr(s, dst, nil, nil, a)
		}
		clear(s.ctx) // the values may hold pointers; the pool keeps s
	}
	if h.opts.StackLevel != nil && rec.r.Level >= h.opts.StackLevel.Level() {
		s.trace = appendRecordStack(s.trace, rec.r.PC)
	}
	rec.NumAttrs = s.n
	if len(s.trace) > 0 {
		rec.Traceback = s.trace
	}
	return dst
}

// End returns the record's buffers for reuse.
func (rec *Record) End() { putState(rec.s) }

func (h *Handler) replaceBuiltins(rec *Record, rep func([]string, slog.Attr) slog.Attr) {
	if a := rep(nil, slog.String(slog.MessageKey, rec.Message)); isEmpty(a) {
		rec.HasMsg = false
	} else {
		rec.Message = Resolve(a.Value).String()
	}
	if a := rep(nil, slog.Any(slog.LevelKey, rec.Level)); isEmpty(a) {
		rec.HasLevel = false
	} else if l, ok := Resolve(a.Value).Any().(slog.Level); ok {
		rec.Level = l
	}
	if !rec.Time.IsZero() {
		a := rep(nil, slog.Time(slog.TimeKey, rec.Time))
		rec.Time = time.Time{}
		if v := Resolve(a.Value); !isEmpty(a) && v.Kind() == slog.KindTime {
			rec.Time = v.Time()
		}
	}
	if rec.Source != nil {
		a := rep(nil, slog.Any(slog.SourceKey, rec.Source))
		src, _ := Resolve(a.Value).Any().(*slog.Source)
		rec.Source = src
	}
}

// source finds the file, line and function of pc. runtime.CallersFrames
// allocates, so what it finds is kept per pc: a program logs from a fixed
// set of places.
func (h *Handler) source(s *state, pc uintptr) *slog.Source {
	sourceCache.RLock()
	src, ok := sourceCache.m[pc]
	sourceCache.RUnlock()
	if !ok {
		s.pcs[0] = pc
		f, _ := runtime.CallersFrames(s.pcs[:]).Next()
		src = slog.Source{Function: f.Function, File: f.File, Line: f.Line}
		sourceCache.Lock()
		if len(sourceCache.m) < maxSources {
			sourceCache.m[pc] = src
		}
		sourceCache.Unlock()
	}
	s.src = src
	return &s.src
}

// maxSources bounds the cache of sources, against code generated at run
// time; past it, sources are looked up every time.
const maxSources = 1 << 14

var sourceCache = struct {
	sync.RWMutex
	m map[uintptr]slog.Source
}{m: make(map[uintptr]slog.Source)}

// appendAttr formats a (a group's attributes, recursively) under prefix.
// prefix may be appended to: what lies past its length is scratch space.
func (h *Handler) appendAttr(s *state, dst, prefix []byte, groups []string, a slog.Attr) []byte {
	a.Value = Resolve(a.Value)
	if rep := h.opts.ReplaceAttr; rep != nil && a.Value.Kind() != slog.KindGroup {
		a = rep(groups, a)
		a.Value = Resolve(a.Value)
	}
	if isEmpty(a) {
		return dst
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return dst
		}
		if a.Key != "" {
			prefix = h.format.AppendGroup(prefix, a.Key)
			if h.opts.ReplaceAttr != nil {
				groups = append(groups[:len(groups):len(groups)], a.Key)
			}
		}
		for _, ga := range attrs {
			dst = h.appendAttr(s, dst, prefix, groups, ga)
		}
		return dst
	}
	// Any boxes the value, and so allocates, for every other kind.
	if a.Value.Kind() == slog.KindAny {
		if err, ok := a.Value.Any().(error); ok {
			s.trace = appendErrorStack(s.trace, err)
		}
	}
	s.n++
	return h.format.AppendAttr(dst, prefix, a.Key, a.Value)
}

// appendErrorStack adds the stack err carries, if any, to a record's
// traceback. An error whose Unwrap or Stack panics (a nil pointer, say)
// carries none: the record goes on without it.
func appendErrorStack(dst []byte, err error) (out []byte) {
	defer func() {
		if recover() != nil {
			out = dst
		}
	}()
	if st := findStack(err); st != nil {
		return appendTraceback(dst, st.Stack())
	}
	return dst
}

// appendTraceback adds one more stack to a record's traceback; several are
// separated by an empty line, all in the one field.
func appendTraceback(dst, stack []byte) []byte {
	if len(dst) > 0 {
		if dst[len(dst)-1] != '\n' {
			dst = append(dst, '\n')
		}
		dst = append(dst, '\n')
	}
	return append(dst, stack...)
}

// appendRecordStack captures the stack of the code that logged: the frames
// of slog and of the handlers above the logging call (pc) are left out.
func appendRecordStack(dst []byte, pc uintptr) []byte {
	pcs := callers(1)
	for i, p := range pcs {
		if p == pc {
			pcs = pcs[i:]
			break
		}
	}
	return appendTraceback(dst, AppendStack(nil, pcs))
}

// isEmpty reports whether a is the zero Attr, which slog handlers drop.
func isEmpty(a slog.Attr) bool {
	return a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil
}

// state is one record's scratch space, pooled.
type state struct {
	buf, prefix, trace []byte
	ctx                []slog.Attr // ContextAttrs' attributes
	n                  int         // attributes in buf
	rec                Record
	src                slog.Source
	pcs                [1]uintptr
}

var statePool = sync.Pool{New: func() any {
	return &state{buf: make([]byte, 0, 1024), prefix: make([]byte, 0, 64), ctx: make([]slog.Attr, 0, 8)}
}}

func getState() *state { return statePool.Get().(*state) }

func putState(s *state) {
	// Scratch that grew for a huge record is not kept alive by the pool.
	if cap(s.buf) > buffer.MaxPooled || cap(s.trace) > buffer.MaxPooled || cap(s.prefix) > buffer.MaxPooled {
		return
	}
	s.rec = Record{}
	statePool.Put(s)
}
