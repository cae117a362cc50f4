package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// notifyMax is the longest notification systemd reads. It ignores a
// longer datagram whole (NOTIFY_BUFFER_MAX in src/core/manager.c), as it
// ignores one with a NUL in it, and it splits what it keeps into
// assignments at every '\n' and '\r'.
const notifyMax = 4096

// notifyTimeout bounds each notification: how long a send waits for
// systemd to take it when the socket's queue is full. The wait is a
// parked goroutine (the socket is non-blocking, its deadline kept by Go's
// poller), not an OS thread. A variable for the tests.
var notifyTimeout = 2 * time.Second

// errInvalidNotification is what sendNotify says of a notification
// systemd would ignore. The library's own never are; the check is what
// keeps them so.
var errInvalidNotification = errors.New("service: sd_notify: a notification systemd would ignore")

// sendNotify sends state, a notification, to systemd's NOTIFY_SOCKET (a
// path, or an abstract address written with a leading '@', as
// sd_notify(3) takes them), waiting at most until deadline, or until ctx
// ends, for the socket to take it. A program not started by systemd (no
// NOTIFY_SOCKET) is not an error: nothing is sent. NOTIFY_SOCKET is left
// set.
//
// A new connected socket per notification, as go-systemd's SdNotify and
// libsystemd use: a connected datagram socket is what the poller can
// wait on when systemd's queue is full (the kernel wakes it as the queue
// drains), and a new one finds a socket systemd re-created.
func sendNotify(ctx context.Context, state string, deadline time.Time) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if len(state) > notifyMax {
		return fmt.Errorf("%w: %d bytes, over %d", errInvalidNotification, len(state), notifyMax)
	}
	if i := strings.IndexByte(state, 0); i >= 0 {
		return fmt.Errorf("%w: a NUL at byte %d", errInvalidNotification, i)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("service: sd_notify: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("service: sd_notify: %w", err)
	}
	// A deadline in the past ends a Write under way.
	defer context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("service: sd_notify: %w", err)
	}
	return nil
}

// notify sends state within notifyTimeout, or until ctx ends.
func notify(ctx context.Context, state string) error {
	return sendNotify(ctx, state, time.Now().Add(notifyTimeout))
}

// withStatus returns the notification of state, the library's own
// assignments one a line (or none), followed by STATUS=status. The status
// is made a value systemd keeps whole: every control character (C0, DEL,
// C1: '\n' and '\r' among them, which would start an assignment of their
// own; NUL, which would make systemd ignore the notification), every
// other rune that is not graphic (U+2028, bidirectional overrides, …) and
// every byte of invalid UTF-8 (systemd ignores a STATUS= that is not
// UTF-8) is written as Go escapes it ("\r", "\x00", "\u2028"), and '\'
// as "\\", as in the stdout fallback's lines: what is written reads back
// as a Go string literal does. A status too long for the notification to
// stay within notifyMax bytes is cut, between two characters or escapes,
// and ends in "…".
func withStatus(state, status string) string {
	b := make([]byte, 0, min(notifyMax, len(state)+len("\nSTATUS=")+len(status)+len(ellipsis)))
	if state != "" {
		b = append(b, state...)
		b = append(b, '\n')
	}
	b = append(b, "STATUS="...)
	return string(appendStatus(b, status, notifyMax-len(b)))
}

// ellipsis ends a status cut to fit.
const ellipsis = "…"

// appendStatus appends s, escaped (see withStatus), in at most room
// bytes: cut between two characters, or escapes, with ellipsis after.
func appendStatus(dst []byte, s string, room int) []byte {
	start := len(dst)
	fit := start // where to cut: the last boundary with room for ellipsis after it
	for i := 0; i < len(s); {
		if len(dst)-start+len(ellipsis) <= room {
			fit = len(dst)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = appendHexEscape(dst, 'x', uint32(s[i]), 2)
		case r == '\\':
			dst = append(dst, `\\`...)
		case unicode.IsGraphic(r):
			dst = append(dst, s[i:i+size]...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < utf8.RuneSelf:
			dst = appendHexEscape(dst, 'x', uint32(r), 2)
		case r <= 0xffff:
			dst = appendHexEscape(dst, 'u', uint32(r), 4)
		default:
			dst = appendHexEscape(dst, 'U', uint32(r), 8)
		}
		i += size
		if len(dst)-start > room {
			if room < len(ellipsis) {
				return dst[:start]
			}
			return append(dst[:fit], ellipsis...)
		}
	}
	return dst
}

// appendHexEscape appends \ kind and the n lowest hex digits of v.
func appendHexEscape(dst []byte, kind byte, v uint32, n int) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '\\', kind)
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

// notifyFailures reports failed notifications once a run of them, not
// once each: a socket that is gone fails every watchdog ping, tens of
// times a second. The first failure is logged with its error; the rest
// are counted, and the count is logged when a notification goes through
// again, or when Run ends.
type notifyFailures struct {
	mu     sync.Mutex
	failed int // in the current run of failures; 0: none
}

// notifyf sends state, reporting a failure as notifyFailures says.
func (s *Service) notifyf(state string) { s.notifyCtx(context.Background(), state) }

// notifyCtx is notifyf for a sender that ctx may cut short: the watchdog,
// whose pings must not hold Run's return up.
func (s *Service) notifyCtx(ctx context.Context, state string) {
	err := notify(ctx, state)
	if err != nil && ctx.Err() != nil {
		return // cut short by the stop: no fault of the socket's
	}
	s.reportNotify(state, err)
}

// reportNotify reports the outcome err of sending state.
func (s *Service) reportNotify(state string, err error) {
	s.fails.mu.Lock()
	failed := s.fails.failed
	if err != nil {
		s.fails.failed++
	} else {
		s.fails.failed = 0
	}
	s.fails.mu.Unlock()
	switch {
	case err != nil && failed == 0:
		s.logger.Warn("service: sd_notify failed; further failures are counted, not logged, until one succeeds",
			"state", state, "err", err)
	case err == nil && failed > 0:
		s.logger.Info("service: sd_notify works again", "failed", failed)
	}
}

// reportNotifyEnd logs, as Run ends, how many notifications failed since
// the one failure logged.
func (s *Service) reportNotifyEnd() {
	s.fails.mu.Lock()
	failed := s.fails.failed
	s.fails.mu.Unlock()
	if failed > 1 {
		s.logger.Warn("service: sd_notify was still failing as the program ended", "failed", failed)
	}
}
