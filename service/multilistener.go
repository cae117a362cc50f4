package service

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
)

// multiListener is one net.Listener over several: what Listener returns
// for a name systemd passed several sockets under. A goroutine for each
// socket accepts from it, once the first Accept asks, and hands each
// connection (or error) to the next Accept; so it holds at most one
// connection per socket that no Accept has taken yet, which Close closes.
type multiListener struct {
	ls    []net.Listener
	start sync.Once

	accepted chan accepted // from the goroutines to Accept
	closed   chan struct{} // closed by Close
	close    sync.Once

	mu      sync.Mutex
	serving int   // goroutines still accepting
	last    error // the error the last of them ended with
	ended   chan struct{}
}

type accepted struct {
	conn net.Conn
	err  error
}

func newMultiListener(ls []net.Listener) *multiListener {
	return &multiListener{ls: ls, accepted: make(chan accepted), closed: make(chan struct{}),
		serving: len(ls), ended: make(chan struct{})}
}

// Accept returns the next connection on any of the sockets. An error of
// one is returned as it is; a socket whose error is not temporary (see
// net.Error) is no longer accepted from, and once none is left, Accept
// returns the last such error. After Close it returns net.ErrClosed.
func (m *multiListener) Accept() (net.Conn, error) {
	m.start.Do(func() {
		for _, l := range m.ls {
			go m.serve(l)
		}
	})
	select {
	case <-m.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case a := <-m.accepted:
		return a.conn, a.err
	case <-m.closed:
		return nil, net.ErrClosed
	case <-m.ended:
		m.mu.Lock()
		defer m.mu.Unlock()
		return nil, m.last
	}
}

// serve accepts from l until l fails for good or m is closed.
func (m *multiListener) serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		select {
		case m.accepted <- accepted{conn, err}:
		case <-m.closed:
			if conn != nil {
				conn.Close()
			}
			return
		}
		var ne interface{ Temporary() bool }
		if err != nil && !(errors.As(err, &ne) && ne.Temporary()) {
			m.mu.Lock()
			m.serving--
			m.last = err
			if m.serving == 0 {
				close(m.ended)
			}
			m.mu.Unlock()
			return
		}
	}
}

// Close closes every socket; Accept returns net.ErrClosed from now on.
// The error is the first socket's that failed to close.
func (m *multiListener) Close() error {
	var first error
	m.close.Do(func() {
		close(m.closed)
		for _, l := range m.ls {
			if err := l.Close(); err != nil && first == nil {
				first = err
			}
		}
	})
	return first
}

// Addr returns the addresses of all the sockets, in systemd's order.
func (m *multiListener) Addr() net.Addr {
	a := make(multiAddr, len(m.ls))
	for i, l := range m.ls {
		a[i] = l.Addr()
	}
	return a
}

// multiAddr is the address of a multiListener: its sockets' addresses,
// written one after the other, separated by ", ".
type multiAddr []net.Addr

// Network is the sockets' network ("tcp"), or their networks separated
// by "," when they differ.
func (a multiAddr) Network() string {
	var nets []string
	for _, x := range a {
		if n := x.Network(); !slices.Contains(nets, n) {
			nets = append(nets, n)
		}
	}
	return strings.Join(nets, ",")
}

func (a multiAddr) String() string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}
