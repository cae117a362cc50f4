//go:build linux

package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/slogopts"
)

// val is the value of e's field name ("" when e has none).
func val(e journaltest.Entry, name string) string {
	v, _ := e.Get(name)
	return v
}

// newJournalService is a Service made by New that logs to srv, whatever
// the environment says.
func newJournalService(t *testing.T, srv *journaltest.Server) *Service {
	t.Helper()
	return New(&Options{Log: &newstyle.Options{
		Target: newstyle.TargetJournal, SocketPath: srv.Path(), SyslogIdentifier: "http-test",
		IgnoreEnv: true, Quiet: true,
	}})
}

func get(t *testing.T, url string) (int, string, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A handler's panic under RecoverHTTP is one CRIT entry with its stack in
// TRACEBACK and the request's method and path; the server serves on, and
// net/http logs nothing of its own through ErrorLog. http.ErrAbortHandler
// is not a crash.
func TestRecoverHTTP(t *testing.T) {
	srv := journaltest.NewServer(t)
	svc := newJournalService(t, srv)
	mux := http.NewServeMux()
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) {
		var m map[string]int
		//lint:ignore SA5000 the handler's bug this test is about: a write to a nil map
		m["nil map"]++
	})
	mux.HandleFunc("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "fine") })
	ts := httptest.NewUnstartedServer(svc.RecoverHTTP(mux))
	ts.Config.ErrorLog = svc.ErrorLog()
	ts.Start()
	defer ts.Close()

	_, _, err := get(t, ts.URL+"/crash")
	require.Error(t, err, "the crashed request's connection is closed, as net/http does")
	_, _, err = get(t, ts.URL+"/abort")
	require.Error(t, err)
	code, body, err := get(t, ts.URL+"/ok")
	require.NoError(t, err, "the server serves on after a handler's panic")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "fine", body)

	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	assert.Equal(t, "2", val(e, "PRIORITY"))
	assert.Contains(t, val(e, "MESSAGE"), "assignment to entry in nil map")
	assert.Equal(t, "GET", val(e, "METHOD"))
	assert.Equal(t, "/crash", val(e, "PATH"))
	tb := val(e, "TRACEBACK")
	assert.Contains(t, tb, "service.TestRecoverHTTP", "the stack is the handler's")
	assert.Contains(t, tb, "\n", "the stack is one field, lines and all")
	// Nothing else: no entry for the abort, no "http: panic serving" from
	// net/http through ErrorLog.
	// (net/http logs before it closes the connection the client saw end,
	// and a synchronous Writer has sent an entry when Send returns, so a
	// marker logged now comes after anything logged for those requests.)
	svc.Logger().Info("marker")
	got := srv.Wait(t, 2, 5*time.Second)
	assert.Len(t, got, 2, "one entry for the crash, then the marker")
	assert.Equal(t, "marker", val(got[len(got)-1].Entry, "MESSAGE"))
	require.NoError(t, srv.Err())
}

// ErrorLog writes each message as a record at error, one entry each.
func TestErrorLog(t *testing.T) {
	srv := journaltest.NewServer(t)
	svc := newJournalService(t, srv)
	svc.ErrorLog().Printf("http: TLS handshake error from %s: %v", "192.0.2.1:4242", errors.New("EOF"))
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	assert.Equal(t, "3", val(e, "PRIORITY"))
	assert.Equal(t, "http: TLS handshake error from 192.0.2.1:4242: EOF", val(e, "MESSAGE"))
}

// ExitOnHTTPPanic ends the program as ExitOnPanic does: one CRIT entry,
// then exit status 2.
func TestExitOnHTTPPanic(t *testing.T) {
	srv := journaltest.NewServer(t)
	svc := newJournalService(t, srv)
	exited := make(chan int, 1)
	orig := osExit
	osExit = func(code int) { exited <- code; runtime.Goexit() }
	t.Cleanup(func() { osExit = orig })
	h := svc.ExitOnHTTPPanic(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	select {
	case code := <-exited:
		assert.Equal(t, ExitPanic, code)
	case <-time.After(5 * time.Second):
		t.Fatal("no exit")
	}
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	assert.Equal(t, "2", val(e, "PRIORITY"))
	assert.Equal(t, "service: panic: handler bug", val(e, "MESSAGE"))
	assert.NotEmpty(t, val(e, "TRACEBACK"))
}

func TestLevelHandler(t *testing.T) {
	var lv slog.LevelVar
	h := LevelHandler(&lv)
	// "form:" bodies are sent as curl -d sends them.
	do := func(method, body string) (int, string) {
		target := "/debug/level"
		if q, ok := strings.CutPrefix(body, "?"); ok {
			target, body = target+"?"+q, ""
		}
		form, isForm := strings.CutPrefix(body, "form:")
		r := httptest.NewRequest(method, target, strings.NewReader(form))
		if isForm {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	for _, tc := range []struct {
		method, body string
		code         int
		answer       string
		level        slog.Level
	}{
		{"GET", "", 200, "info", slog.LevelInfo},
		{"PUT", "debug", 200, "debug", slog.LevelDebug},
		{"POST", "form:level=warning", 200, "warning", slog.LevelWarn},
		{"PUT", "form:debug", 200, "debug", slog.LevelDebug}, // curl -X PUT -d debug
		{"PUT", "?level=notice", 200, "notice", newstyle.LevelNotice},
		{"PUT", "WARNING", 200, "warning", slog.LevelWarn},
		{"PUT", "CRIT", 200, "crit", newstyle.LevelCritical},
		{"PUT", "INFO+999999999999", 400, "", newstyle.LevelCritical},
		{"PUT", "DEBUG-4", 400, "", newstyle.LevelCritical},
		{"PUT", "ERROR+9223372036854775807", 400, "", newstyle.LevelCritical},
		{"PUT", "info" + strings.Repeat(" ", 70) + "junk", 413, "", newstyle.LevelCritical},
		{"PUT", "form:level=%zz", 400, "", newstyle.LevelCritical},
		{"PUT", "3\n", 200, "err", slog.LevelError},
		{"PUT", "INFO+2", 200, "notice", slog.LevelInfo + 2},
		{"PUT", "crit", 200, "crit", newstyle.LevelCritical},
		{"PUT", "loud", 400, "", newstyle.LevelCritical},
		{"PUT", "8", 400, "", newstyle.LevelCritical},
		{"DELETE", "", 405, "", newstyle.LevelCritical},
		{"GET", "", 200, "crit", newstyle.LevelCritical},
	} {
		code, answer := do(tc.method, tc.body)
		assert.Equal(t, tc.code, code, "%s %q", tc.method, tc.body)
		if tc.code == 200 {
			assert.Equal(t, tc.answer, answer, "%s %q", tc.method, tc.body)
		}
		assert.Equal(t, tc.level, lv.Level(), "after %s %q", tc.method, tc.body)
	}
}

// Level is the logger's own LevelVar: setting it changes what is logged.
func TestServiceLevel(t *testing.T) {
	srv := journaltest.NewServer(t)
	svc := newJournalService(t, srv)
	svc.Logger().Debug("hidden")
	svc.Level().Set(slog.LevelDebug)
	svc.Logger().Debug("shown")
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	assert.Equal(t, "shown", val(e, "MESSAGE"))
	assert.Equal(t, "7", val(e, "PRIORITY"))
	st := svc.LogStats()
	assert.Equal(t, uint64(1), st.Journal.Entries, "LogStats: %+v", st)

	// A LevelVar of the program's own is the one the Service uses.
	var lv slog.LevelVar
	svc = New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	assert.NotSame(t, &lv, svc.Level())
	svc = New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull, HandlerOptions: slogopts.HandlerOptions{Level: &lv}}})
	assert.Same(t, &lv, svc.Level())
}

// New makes a Service for tests: its OnStop hooks run at Shutdown, which
// reports a failed hook and one that outlives the context.
func TestNewShutdown(t *testing.T) {
	svc := New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	var mu sync.Mutex // the hooks run at once
	var ran []string
	hook := func(name string) func(context.Context) error {
		return func(context.Context) error { mu.Lock(); defer mu.Unlock(); ran = append(ran, name); return nil }
	}
	svc.OnStop("first", hook("first"))
	svc.OnStop("second", hook("second"))
	require.NoError(t, svc.Shutdown(context.Background()))
	assert.ElementsMatch(t, []string{"first", "second"}, ran)

	svc = New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	svc.OnStop("fails", func(context.Context) error { return errors.New("disk full") })
	assert.Error(t, svc.Shutdown(context.Background()))

	svc = New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	release := make(chan struct{})
	defer close(release)
	svc.OnStop("hangs", func(context.Context) error { <-release; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := svc.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// A handler that ends with runtime.Goexit under RecoverHTTP is a crash
// too: one CRIT entry.
func TestRecoverHTTPGoexit(t *testing.T) {
	srv := journaltest.NewServer(t)
	svc := newJournalService(t, srv)
	h := svc.RecoverHTTP(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { runtime.Goexit() }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/gone", nil))
	}()
	<-done
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	assert.Equal(t, "2", val(e, "PRIORITY"))
	assert.Equal(t, "service: HTTP handler ended without returning: runtime.Goexit", val(e, "MESSAGE"))
	assert.Equal(t, "/gone", val(e, "PATH"))
}

// Shutdown runs the hooks once, however often and however concurrently
// it is called; a cancelled context ends the wait at once.
func TestShutdownOnce(t *testing.T) {
	svc := New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	var runs atomic.Int32
	svc.OnStop("count", func(context.Context) error { runs.Add(1); return nil })
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, svc.Shutdown(context.Background()))
		}()
	}
	wg.Wait()
	require.NoError(t, svc.Shutdown(context.Background()))
	assert.Equal(t, int32(1), runs.Load())

	svc = New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}, ShutdownTimeout: time.Minute})
	release := make(chan struct{})
	defer close(release)
	svc.OnStop("hangs", func(context.Context) error { <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.ErrorIs(t, svc.Shutdown(ctx), context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second, "a cancelled context ends the wait")
}

// New makes the logger as Run does: DEBUG_INVOCATION=1 starts it at debug.
func TestNewDebugInvocation(t *testing.T) {
	t.Setenv(EnvDebugInvocation, "1")
	svc := New(&Options{Log: &newstyle.Options{Target: newstyle.TargetNull}})
	assert.Equal(t, slog.LevelDebug, svc.Level().Level())
}
