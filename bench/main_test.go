//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// theDrain is the drain process, or nil with drainErr saying why not.
var (
	theDrain *drain
	drainErr error
)

// reexecEnv marks the process that TestMain started again as "bench".
const reexecEnv = "NEWSTYLE_BENCH_REEXEC"

func TestMain(m *testing.M) {
	if os.Getenv(drainEnv) != "" {
		runDrain()
		return
	}
	// slog-journal sends SYSLOG_IDENTIFIER=basename(os.Args[0]), read when
	// its package is initialised: start this binary again as "bench" so
	// that it sends the same identifier as the others.
	if filepath.Base(os.Args[0]) != identifier && os.Getenv(reexecEnv) == "" {
		os.Setenv(reexecEnv, "1")
		args := append([]string{identifier}, os.Args[1:]...)
		err := syscall.Exec("/proc/self/exe", args, os.Environ())
		fmt.Fprintln(os.Stderr, "bench: exec as", identifier+":", err)
		os.Exit(2)
	}

	// The drain is started from this thread, which stays alive and locked
	// until the process exits: see startDrain's Pdeathsig.
	runtime.LockOSThread()
	theDrain, drainErr = startDrain()
	code := m.Run()
	if theDrain != nil {
		fmt.Printf("drain (socket queue length %d): %v\n", theDrain.qlen, theDrain.counts())
		theDrain.stop()
	}
	os.Exit(code)
}

// needDrain returns the drain, or stops the test or benchmark with why
// there is none.
func needDrain(tb testing.TB) *drain {
	tb.Helper()
	if drainErr != nil {
		tb.Fatal(drainErr)
	}
	return theDrain
}
