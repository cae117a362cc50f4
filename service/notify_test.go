//go:build linux

package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

func TestWithStatus(t *testing.T) {
	for _, tt := range []struct {
		name, state, status, want string
	}{
		{"plain", "READY=1", "serving on :8080", "READY=1\nSTATUS=serving on :8080"},
		{"alone", "", "busy", "STATUS=busy"},
		{"empty", "", "", "STATUS="},
		{"CR and LF", "READY=1", "ok\rMAINPID=1\nSTOPPING=1", `READY=1` + "\n" + `STATUS=ok\rMAINPID=1\nSTOPPING=1`},
		{"NUL, DEL, C1, tab", "", "a\x00b\x7fc\u0085d\te", `STATUS=a\x00b\x7fc\u0085d\te`},
		{"not graphic", "", "\u2028\u202e\ufeff\U000e0001", `STATUS=\u2028\u202e\ufeff\U000e0001`},
		{"invalid UTF-8", "", "a\xffb\xc3", `STATUS=a\xffb\xc3`},
		{"backslash", "", `C:\dir\x00`, `STATUS=C:\\dir\\x00`},
		{"graphic kept", "", "é 日本 \u00a0 ∑ \"q\"", "STATUS=é 日本 \u00a0 ∑ \"q\""},
		{"cut", "READY=1", strings.Repeat("x", 4082), "READY=1\nSTATUS=" + strings.Repeat("x", 4078) + "…"},
		{"fits exactly", "READY=1", strings.Repeat("x", 4081), "READY=1\nSTATUS=" + strings.Repeat("x", 4081)},
		{"cut between characters", "", strings.Repeat("日", 2000), "STATUS=" + strings.Repeat("日", 1362) + "…"},
		{"cut between escapes", "", strings.Repeat("\x01", 2000), "STATUS=" + strings.Repeat(`\x01`, 1021) + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := withStatus(tt.state, tt.status)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), 4096)
		})
	}
}

// readStatus decodes a STATUS= value withStatus wrote: a Go string
// literal's contents, with '"' as it is.
func readStatus(value string) (string, error) {
	return strconv.Unquote(`"` + strings.ReplaceAll(value, `"`, `\"`) + `"`)
}

// withStatus's notification is one systemd keeps whole, with the state's
// assignment and one STATUS=, which reads back as the status, or as its
// start, when it was cut to fit, and only then.
func FuzzWithStatus(f *testing.F) {
	for _, s := range []string{"", "ok", "a\nb\rc", "\x00", `\x00`, `\`, "é", "\xff", "\u2028", `"`,
		strings.Repeat("\x00", 1100), strings.Repeat("é", 3000), strings.Repeat("x", 4081)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, status string) {
		msg := withStatus("READY=1", status)
		as, ok := systemdSees(msg)
		require.True(t, ok, "systemd ignores %q", msg)
		require.Len(t, as, 2, "%q", msg)
		require.Equal(t, "READY=1", as[0])
		value, ok := strings.CutPrefix(as[1], "STATUS=")
		require.True(t, ok)
		require.Equal(t, "READY=1\nSTATUS="+value, msg, "a line break in the value")
		require.True(t, utf8.ValidString(value))
		if got, err := readStatus(value); err == nil && got == status {
			return
		}
		head, ok := strings.CutSuffix(value, "…")
		require.True(t, ok, "%q does not read back as %q, and was not cut", value, status)
		got, err := readStatus(head)
		require.NoError(t, err, "%q", head)
		require.True(t, strings.HasPrefix(status, got), "%q is not the start of %q", got, status)
		// Cut only when the next character or escape (10 bytes at most)
		// did not fit.
		require.Greater(t, len(msg), 4096-10)
	})
}

func TestSendNotify(t *testing.T) {
	abstract := fmt.Sprintf("@newstyle-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, tt := range []struct {
		name    string
		socket  func(t *testing.T) *notifySocket // nil: none that reads
		state   string
		wantErr error // nil: delivered
	}{
		{"path", func(t *testing.T) *notifySocket { return newNotifySocket(t) }, "READY=1", nil},
		{"abstract", func(t *testing.T) *notifySocket {
			n := listenNotify(t, abstract)
			t.Setenv("NOTIFY_SOCKET", abstract)
			return n
		}, "READY=1", nil},
		{"4096 bytes", func(t *testing.T) *notifySocket { return newNotifySocket(t) }, "STATUS=" + strings.Repeat("x", 4089), nil},
		{"not under systemd", func(t *testing.T) *notifySocket { t.Setenv("NOTIFY_SOCKET", ""); return nil }, "READY=1", nil},
		{"over 4096 bytes", func(t *testing.T) *notifySocket { newNotifySocket(t); return nil },
			"STATUS=" + strings.Repeat("x", 4090), errInvalidNotification},
		{"NUL", func(t *testing.T) *notifySocket { newNotifySocket(t); return nil }, "READY=1\nSTATUS=a\x00b", errInvalidNotification},
		{"no socket", func(t *testing.T) *notifySocket {
			t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none"))
			return nil
		}, "READY=1", syscall.ENOENT},
		{"socket that does not read", func(t *testing.T) *notifySocket { stuckNotifySocket(t); return nil },
			"READY=1", os.ErrDeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.socket(t)
			want := os.Getenv("NOTIFY_SOCKET")
			start := time.Now()
			err := sendNotify(context.Background(), tt.state, start.Add(200*time.Millisecond))
			assert.Less(t, time.Since(start), time.Second, "past the deadline")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, want, os.Getenv("NOTIFY_SOCKET"), "NOTIFY_SOCKET changed")
			if n != nil {
				assert.Equal(t, []string{tt.state}, n.settle(t))
			}
		})
	}
}

// A send waiting for a socket that does not read ends with its context:
// the watchdog's ping does not hold Run's return up.
func TestSendNotifyCancelled(t *testing.T) {
	stuckNotifySocket(t)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- sendNotify(ctx, "WATCHDOG=1", time.Now().Add(time.Hour)) }()
	// The send is under way, or about to be: either way it must end.
	cancel()
	select {
	case err := <-result:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled send did not end")
	}
}

// Failures are reported once, then counted: the count when one succeeds
// again, and when Run ends.
func TestNotifyFailuresReportedOnce(t *testing.T) {
	var out testutil.Buffer
	s := &Service{logger: newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out})}
	fail := errors.New("gone")
	for i := 0; i < 5; i++ {
		s.reportNotify("WATCHDOG=1", fail)
	}
	s.reportNotify("WATCHDOG=1", nil)
	s.reportNotify("WATCHDOG=1", nil)
	s.reportNotify("READY=1", fail)
	s.reportNotify("WATCHDOG=1", fail)
	s.reportNotify("WATCHDOG=1", fail)
	s.reportNotifyEnd()
	assert.Equal(t, []string{
		`<4>service: sd_notify failed; further failures are counted, not logged, until one succeeds state="WATCHDOG=1" err=gone`,
		`<6>service: sd_notify works again failed=5`,
		`<4>service: sd_notify failed; further failures are counted, not logged, until one succeeds state="READY=1" err=gone`,
		`<4>service: sd_notify was still failing as the program ended failed=3`,
	}, out.Lines())
}

func TestMultiListener(t *testing.T) {
	listen := func(t *testing.T) net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	t.Run("accepts from each", func(t *testing.T) {
		a, b := listen(t), listen(t)
		m := newMultiListener([]net.Listener{a, b})
		defer m.Close()
		assert.Equal(t, a.Addr().String()+", "+b.Addr().String(), m.Addr().String())
		assert.Equal(t, "tcp", m.Addr().Network())
		for _, ln := range []net.Listener{b, a} {
			require.NoError(t, roundTrip(&dialVia{m, ln.Addr()}))
		}
	})
	t.Run("close", func(t *testing.T) {
		a, b := listen(t), listen(t)
		m := newMultiListener([]net.Listener{a, b})
		go func() {
			c, err := net.Dial("tcp", a.Addr().String())
			if err == nil {
				defer c.Close()
			}
		}()
		accepted := make(chan error, 1)
		go func() { _, err := m.Accept(); accepted <- err }()
		<-accepted // the connection: the goroutines run
		require.NoError(t, m.Close())
		_, err := m.Accept()
		assert.ErrorIs(t, err, net.ErrClosed)
		for _, ln := range []net.Listener{a, b} {
			_, err := ln.Accept()
			assert.ErrorIs(t, err, net.ErrClosed, "a socket is still open")
		}
	})
	t.Run("one socket fails", func(t *testing.T) {
		a, b := listen(t), listen(t)
		m := newMultiListener([]net.Listener{a, b})
		defer m.Close()
		a.Close()
		_, err := m.Accept()
		assert.ErrorIs(t, err, net.ErrClosed, "the failed socket's error")
		require.NoError(t, roundTrip(&dialVia{m, b.Addr()}), "the other socket is still served")
		b.Close()
		_, err = m.Accept()
		assert.ErrorIs(t, err, net.ErrClosed)
		done := make(chan error, 1)
		go func() { _, err := m.Accept(); done <- err }()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, net.ErrClosed, "the last error, once none is left")
		case <-time.After(5 * time.Second):
			t.Fatal("Accept hangs once every socket has failed")
		}
	})
}

// dialVia is m, with the address to dial for roundTrip: one of m's.
type dialVia struct {
	net.Listener
	addr net.Addr
}

func (d *dialVia) Addr() net.Addr { return d.addr }
