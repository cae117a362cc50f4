package service

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/crash"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// No test here starts a crash watcher: started from a test binary, it
// would be the test binary again, outliving the test. Run's use of
// crash.Capture is tested with a stand-in here, and for real by the
// container tier (integration/container), with cmd/newstyle-demo.
func init() { startCrashCapture = func(*crash.Options) error { return nil } }

// captureWith makes Run's crash capture the stand-in f for the test.
func captureWith(t *testing.T, f func(*crash.Options) error) {
	orig := startCrashCapture
	startCrashCapture = f
	t.Cleanup(func() { startCrashCapture = orig })
}

func TestRunCapturesCrashes(t *testing.T) {
	var got []crash.Options
	captureWith(t, func(o *crash.Options) error {
		got = append(got, *o)
		return nil
	})
	var out testutil.Buffer
	log := &newstyle.Options{SyslogIdentifier: "shop", Target: newstyle.TargetStdout, Namespace: "billing", Stdout: &out}
	code := Run(&Options{Log: log}, func(context.Context, *Service) error { return nil })
	require.Equal(t, ExitOK, code)
	require.Len(t, got, 1, "Run captures crashes by default")
	o := got[0]
	assert.Equal(t, "shop", o.SyslogIdentifier)
	assert.Equal(t, newstyle.TargetStdout, o.Target, "where the logger's records go")
	assert.Equal(t, "billing", o.Namespace)
	assert.Empty(t, o.SocketPath)
	assert.NotNil(t, o.OnWatcherExit)

	// The identifier Run's logger has by default: the program's name.
	got = nil
	Run(&Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out, SocketPath: "/run/x/socket"}},
		func(context.Context, *Service) error { return nil })
	require.Len(t, got, 1)
	assert.NotEmpty(t, got[0].SyslogIdentifier)
	assert.Equal(t, "/run/x/socket", got[0].SocketPath)

	got = nil
	Run(&Options{Log: log, DisableCrashCapture: true}, func(context.Context, *Service) error { return nil })
	assert.Empty(t, got, "DisableCrashCapture turns it off")
}

func TestRunReportsCrashCapture(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // logged, "" for nothing
	}{
		{"started", nil, ""},
		{"the program captures already", crash.ErrCapturing, ""},
		{"not on this system", crash.ErrUnsupported, ""},
		{"turned off by the operator", crash.ErrDisabled, "<6>service: crash capture is off (NEWSTYLE_CRASH_CAPTURE)"},
		{"the watcher did not start", fmt.Errorf("crash: starting the watcher: %w", errors.New("exec: denied")),
			`<4>service: crash capture is off: the crash watcher did not start err="crash: starting the watcher: exec: denied"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			captureWith(t, func(*crash.Options) error { return tc.err })
			var out testutil.Buffer
			Run(&Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out}},
				func(context.Context, *Service) error { return nil })
			if tc.want == "" {
				assert.NotContains(t, out.String(), "crash")
				return
			}
			assert.Contains(t, out.String(), tc.want+"\n")
		})
	}
}

func TestRunLogsTheWatchersEnd(t *testing.T) {
	ended := errors.New("crash: the watcher (pid 7) ended: signal: killed; crashes are no longer captured")
	captureWith(t, func(o *crash.Options) error {
		o.OnWatcherExit(ended)
		return nil
	})
	var out testutil.Buffer
	Run(&Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out}},
		func(context.Context, *Service) error { return nil })
	assert.Contains(t, out.String(),
		`<4>service: the crash watcher ended; crashes are no longer captured err="crash: the watcher (pid 7) ended: signal: killed; crashes are no longer captured"`)
}
