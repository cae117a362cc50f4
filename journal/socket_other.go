//go:build !linux

package journal

import "time"

// journald exists only on Linux: elsewhere every send reports ErrNoSocket,
// so that callers fall back as they would on a Linux without journald.
type socket struct{ path string }

func openSocket(path string) (*socket, error) { return &socket{path: path}, nil }

func (s *socket) send([]byte, time.Duration, <-chan struct{}) (bool, error) {
	return false, &sendError{kind: ErrNoSocket, path: s.path}
}

func (s *socket) probe() error { return &sendError{kind: ErrNoSocket, path: s.path} }

func (s *socket) release() error { return nil }

func (s *socket) batches() bool { return false }
