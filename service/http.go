package service

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
)

// RecoverHTTP returns next with a panic in a request's handler logged as
// every panic of the program is: one entry at CRIT, the handler's stack
// in its traceback field, with the request's method and path. net/http
// recovers a handler's panic itself, but logs it through
// http.Server.ErrorLog, the stack squeezed into the message, at no
// priority that stands out. After logging, the request is aborted as
// net/http aborts it (the connection is closed, and the server serves
// on), with no second report. A panic with http.ErrAbortHandler
// (httputil.ReverseProxy's when a client goes away) is not a crash: it is
// passed on untouched.
//
// For a handler's panic to end the program instead, as a panic in
// Run's function does (exit status 2, Restart=on-failure), use
// ExitOnHTTPPanic.
//
//	srv := &http.Server{Handler: svc.RecoverHTTP(mux), ErrorLog: svc.ErrorLog()}
func (s *Service) RecoverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		returned := false
		defer func() {
			v := recover()
			if v == nil && returned {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			// v nil: runtime.Goexit (or panic(nil) under
			// GODEBUG=panicnil=1), a crash all the same.
			s.logAbnormalEnd("HTTP handler", v, "method", r.Method, "path", r.URL.Path)
			if v != nil {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(w, r)
		returned = true
	})
}

// ExitOnHTTPPanic returns next with a panic in a request's handler ending
// the process through ExitOnPanic: logged at CRIT with its stack, one
// entry, then exit status 2, so that systemd restarts a program whose
// state nobody knows any more. http.ErrAbortHandler is passed on.
func (s *Service) ExitOnHTTPPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer s.ExitOnPanic()
		next.ServeHTTP(w, r)
	})
}

// ErrorLog returns a *log.Logger for http.Server.ErrorLog (and other
// packages that take one) that writes each message as a record of the
// Service's logger at slog.LevelError: TLS handshake failures, accept
// errors and the like then reach the journal with a priority, one entry
// each.
func (s *Service) ErrorLog() *log.Logger {
	return slog.NewLogLogger(s.logger.Handler(), slog.LevelError)
}

// Level returns the level of the Service's logger, and of every logger
// derived from it: Options.Log.Level when that is a *slog.LevelVar, else
// one Run made. Setting it changes what is logged at once, as
// systemctl service-log-level does through LogControl1 (which sets this
// same LevelVar).
func (s *Service) Level() *slog.LevelVar { return s.level }

// LevelHandler returns an http.Handler that reads and sets lv: GET (and
// HEAD) answers the level's syslog name ("info"); PUT or POST sets it and
// answers the new name. The level is the URL's "level" parameter, else
// the request's body: plain text, or a form with a "level" value (curl -d
// level=debug), or a form of the bare name (curl -d debug). It is a
// syslog name (emerg, alert, crit, err, warning, notice, info, debug, in
// any case), a number 0–7, or slog's own name (DEBUG, INFO, WARN, ERROR,
// with an offset such as "INFO+2"), between debug and emerg. A body past
// 64 bytes is refused (413), anything else it cannot read with 400 and
// why; the level is then unchanged.
//
// It does no authentication: mount it where only those who may change the
// level reach it (behind the program's own authorisation, or on a socket
// of its own). A level above crit hides the CRIT entries of panics too.
//
//	mux.Handle("/debug/level", adminOnly(service.LevelHandler(svc.Level())))
func LevelHandler(lv *slog.LevelVar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			v, code, err := levelOf(w, r)
			if err == nil {
				var l slog.Level
				if l, err = parseLevel(v); err == nil {
					lv.Set(l)
				}
				code = http.StatusBadRequest
			}
			if err != nil {
				http.Error(w, err.Error(), code)
				return
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, journal.LevelPriority(lv.Level()).String()+"\n")
	})
}

// maxLevelBody bounds the body LevelHandler reads.
const maxLevelBody = 64

// levelOf reads the level a PUT or POST asks for (see LevelHandler), and
// the status to answer when it cannot.
func levelOf(w http.ResponseWriter, r *http.Request) (string, int, error) {
	if v := r.URL.Query().Get("level"); v != "" {
		return v, 0, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLevelBody))
	if err != nil {
		var tooLong *http.MaxBytesError
		if errors.As(err, &tooLong) {
			return "", http.StatusRequestEntityTooLarge, fmt.Errorf("service: the level's request body is longer than %d bytes", maxLevelBody)
		}
		return "", http.StatusBadRequest, fmt.Errorf("service: reading the level's request body: %w", err)
	}
	body := strings.TrimSpace(string(b))
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(body)
		if err != nil {
			return "", http.StatusBadRequest, fmt.Errorf("service: the level's form %q: %w", body, err)
		}
		if v := form.Get("level"); v != "" {
			return v, 0, nil
		}
		if len(form) == 1 && !strings.Contains(body, "=") {
			return body, 0, nil // curl -d debug
		}
	}
	return body, 0, nil
}

// parseLevel reads a level by its syslog name (in any case) or number, or
// by slog's name, between debug and emerg.
func parseLevel(v string) (slog.Level, error) {
	if p, err := journal.ParsePriority(strings.ToLower(v)); err == nil {
		return newstyle.PriorityLevel(p), nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil || l < slog.LevelDebug || l > newstyle.LevelEmergency {
		return 0, fmt.Errorf("service: invalid level %q: emerg … debug, 0–7, or DEBUG, INFO, WARN, ERROR (with an offset, from DEBUG to ERROR+8)", v)
	}
	return l, nil
}
