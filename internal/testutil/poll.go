package testutil

import "time"

// Poll calls done every interval until it returns true, and reports
// whether it did before timeout passed. It is the one way the tests wait
// for something that happens a moment later (an entry stored, a process
// started, a descriptor closed): never a fixed sleep.
//
// done runs on the caller's goroutine, so it may call t.Fatal, and it may
// keep what it read in variables of the caller's for the check after
// Poll. It is called at least once, and Poll gives up only when a call
// has returned false after timeout passed.
func Poll(timeout, interval time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}
