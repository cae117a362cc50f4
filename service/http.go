package service

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
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
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logAbnormalEnd("", v, "method", r.Method, "path", r.URL.Path)
			panic(http.ErrAbortHandler)
		}()
		next.ServeHTTP(w, r)
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

// LevelHandler returns an http.Handler that reads and sets lv: GET
// answers the level's syslog name ("info"), PUT or POST sets it from the
// request's body or its "level" form value, as a syslog name (emerg …
// debug), a number 0–7, or slog's own name (DEBUG, INFO, WARN, ERROR,
// with an offset such as "INFO+2"), and answers the new name. It does no
// authentication: mount it where only those who may change the level
// reach it (behind the program's own authorisation, or on a socket of
// its own).
//
//	mux.Handle("/debug/level", adminOnly(service.LevelHandler(svc.Level())))
func LevelHandler(lv *slog.LevelVar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			v := r.FormValue("level")
			if v == "" {
				b, err := io.ReadAll(io.LimitReader(r.Body, 64))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				v = strings.TrimSpace(string(b))
			}
			l, err := parseLevel(v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			lv.Set(l)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, journal.LevelPriority(lv.Level()).String()+"\n")
	})
}

// parseLevel reads a level by its syslog name or number, or by slog's
// name.
func parseLevel(v string) (slog.Level, error) {
	if p, err := journal.ParsePriority(v); err == nil {
		return newstyle.PriorityLevel(p), nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("service: invalid level %q: emerg … debug, 0–7, or DEBUG, INFO, WARN, ERROR", v)
	}
	return l, nil
}
