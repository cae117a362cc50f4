package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
)

// Listener returns the listening socket systemd passed under name
// (FileDescriptorName= in the .socket unit, "LISTEN_FDNAMES"). When the
// process was not socket-activated, it listens on TCP address fallback
// itself; an empty fallback is then an error. When it was activated but
// no socket has that name, the error says which names there are.
//
// Several sockets under one name (systemd's default when a .socket unit
// has several Listen…= lines and no FileDescriptorName=) are served as
// one: the listener returned accepts from each, its Addr lists them all,
// and Close closes them all. Calling Listener again for the name returns
// the same listener.
//
// Only listening sockets are served. A descriptor of another kind passed
// under name (a datagram socket from ListenDatagram=, a FIFO) is left
// open as it is, and Listener returns ErrNotListener for a name that has
// only such; Run's log lists them all once, when the sockets are taken.
// When LISTEN_FDS counts descriptors that are not open, the variables
// are not systemd's: no descriptor is taken (those that are open may be
// Go's own, or the program's), a warning says so, and Listener listens
// on fallback as outside systemd.
func (s *Service) Listener(name, fallback string) (net.Listener, error) {
	s.takeListeners()
	if ln := s.passed.listeners[name]; ln != nil {
		return ln, nil
	}
	if others := s.passed.others[name]; len(others) > 0 {
		return nil, fmt.Errorf("%w: systemd passed %q as %s", ErrNotListener, name, strings.Join(others, "; "))
	}
	if len(s.passed.listeners) == 0 {
		if fallback == "" {
			return nil, fmt.Errorf("%w, and no address to listen on for socket %q", ErrNotActivated, name)
		}
		return net.Listen("tcp", fallback)
	}
	return nil, fmt.Errorf("%w: %q (systemd passed %s)", ErrNoSuchSocket, name, strings.Join(s.passed.names(), ", "))
}

// Activated reports whether systemd passed a listening socket under name
// (socket activation): whether Listener(name, …) returns systemd's socket
// rather than listening itself or failing. A program cannot tell from
// LISTEN_FDNAMES itself: the first call of Activated or Listener takes
// the sockets and unsets the variables, so that a child process does not
// take them too.
func (s *Service) Activated(name string) bool {
	s.takeListeners()
	return s.passed.listeners[name] != nil
}

// takeListeners takes the sockets systemd passed, once.
func (s *Service) takeListeners() {
	s.listenOnce.Do(func() {
		logger := s.logger
		if logger == nil {
			logger = slog.Default()
		}
		s.passed = takePassed(logger)
	})
}

// ErrNotActivated is returned, wrapped, by Listener when systemd passed
// no sockets and no fallback address was given. Give a fallback address
// for the program to run outside systemd too, or start it through its
// .socket unit.
var ErrNotActivated = errors.New("service: not socket-activated")

// ErrNoSuchSocket is returned, wrapped, by Listener when systemd passed
// sockets but none under the name asked for; the error lists the names
// it passed. The fallback address is not tried, since the unit and the
// program disagree: make the .socket unit's FileDescriptorName= and the
// name given to Listener the same.
var ErrNoSuchSocket = errors.New("service: no socket of that name")

// ErrNotListener is returned, wrapped, by Listener when what systemd
// passed under the name is no listening socket (ListenDatagram=,
// ListenFIFO=, …); the error says what each descriptor is. The fallback
// address is not tried: the unit and the program disagree.
var ErrNotListener = errors.New("service: not a listening socket")

// listenFDsStart is the first descriptor systemd passes
// (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// passedFDs are the descriptors systemd passed, by name.
type passedFDs struct {
	listeners map[string]net.Listener // one for each name, however many sockets it has
	others    map[string][]string     // what each descriptor that is not served is
}

// names lists every name systemd passed a descriptor under.
func (p passedFDs) names() []string {
	var names []string
	for n := range p.listeners {
		names = append(names, n)
	}
	for n := range p.others {
		if p.listeners[n] == nil {
			names = append(names, n+" (not listening)")
		}
	}
	sort.Strings(names)
	return names
}
