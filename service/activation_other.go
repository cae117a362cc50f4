//go:build !unix

package service

import (
	"log/slog"
	"os"
)

// takePassed unsets the socket-activation variables: systemd passes no
// descriptors where there are no unix sockets.
func takePassed(*slog.Logger) passedFDs {
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	return passedFDs{}
}
