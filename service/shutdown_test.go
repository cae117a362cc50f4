//go:build linux

package service

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// What the shutdown waits for, and what ends it early: each case stops a
// program with SIGTERM and something that does not go as it should.
func TestShutdownCases(t *testing.T) {
	for _, tt := range []struct {
		name string
		// program is the function, given what it may block on until
		// the test ends.
		program  func(hold <-chan struct{}, reloading chan<- struct{}) func(context.Context, *Service) error
		reload   func(hold <-chan struct{}, reloading chan<- struct{}) func(context.Context) error
		during   func(t *testing.T, reloading <-chan struct{}) // before SIGTERM
		after    func(t *testing.T)                            // after SIGTERM
		want     int
		wantExit int // the status the process exits with, -1: none
		wantLog  string
	}{
		{
			name: "SIGABRT while the function ignores the stop",
			program: func(hold <-chan struct{}, _ chan<- struct{}) func(context.Context, *Service) error {
				return func(ctx context.Context, svc *Service) error {
					svc.Ready("")
					<-ctx.Done()
					<-hold
					return nil
				}
			},
			after:    func(t *testing.T) { signalSelf(t, syscall.SIGABRT) },
			want:     ExitPanic,
			wantExit: ExitPanic,
			wantLog:  "<2>service: aborted; the stacks of all goroutines follow",
		},
		{
			name: "runtime.Goexit in a stop hook",
			program: func(hold <-chan struct{}, _ chan<- struct{}) func(context.Context, *Service) error {
				return func(ctx context.Context, svc *Service) error {
					svc.OnStop("goexit", func(context.Context) error { goexitHere(); return nil })
					svc.Ready("")
					<-ctx.Done()
					return nil
				}
			},
			want:     ExitOK, // the test's exit returns; the process would have ended with 2
			wantExit: ExitPanic,
			wantLog:  `<2>service: stop hook "goexit" ended without returning: runtime.Goexit`,
		},
		{
			name: "Reload that ignores the stop",
			program: func(hold <-chan struct{}, _ chan<- struct{}) func(context.Context, *Service) error {
				return func(ctx context.Context, svc *Service) error {
					svc.Ready("")
					<-ctx.Done()
					return nil
				}
			},
			reload: func(hold <-chan struct{}, reloading chan<- struct{}) func(context.Context) error {
				return func(context.Context) error { close(reloading); <-hold; return nil }
			},
			during: func(t *testing.T, reloading <-chan struct{}) {
				signalSelf(t, syscall.SIGHUP)
				<-reloading
			},
			want:     ExitDeadline,
			wantExit: -1,
			wantLog:  "<3>service: shutdown deadline passed; Reload has not returned",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNotifySocket(t)
			hold := released(t)
			reloading := make(chan struct{})
			exited := make(chan int, 1)
			orig := osExit
			osExit = func(code int) { exited <- code }
			t.Cleanup(func() { osExit = orig })
			var out testutil.Buffer
			opts := testOptions(&out)
			opts.ShutdownTimeout = 500 * time.Millisecond
			if tt.reload != nil {
				opts.Reload = tt.reload(hold, reloading)
			}
			code := runAsync(opts, tt.program(hold, reloading))
			n.started(t)
			if tt.during != nil {
				tt.during(t, reloading)
			}
			start := time.Now()
			signalSelf(t, syscall.SIGTERM)
			if tt.after != nil {
				n.waitFor(t, "STOPPING=1")
				tt.after(t)
			}
			assert.Equal(t, tt.want, wait(t, code))
			assert.LessOrEqual(t, time.Since(start), opts.ShutdownTimeout+time.Second)
			select {
			case c := <-exited:
				assert.Equal(t, tt.wantExit, c)
			default:
				assert.Equal(t, -1, tt.wantExit, "the process did not exit")
			}
			require.Contains(t, out.String(), tt.wantLog)
			assert.Equal(t, 1, strings.Count(out.String(), tt.wantLog))
		})
	}
}
