//go:build !unix

package journaltest

import (
	"errors"
	"fmt"
	"runtime"
)

// Without unix datagram sockets (Windows has stream sockets only) there is
// no Server: Listen reports it, and NewServer skips the test. Parse,
// Encode and the entry types work everywhere.

const maxSocketPath = 108

type sock struct{}

func listen(string) (*sock, error) {
	return nil, fmt.Errorf("journaltest: no unix datagram sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func (*sock) wait() (bool, error) { return false, errors.ErrUnsupported }
func (*sock) wakeup()             {}
func (*sock) close(string)        {}

func (s *Server) receive() bool { return false }
