// Package summary is what stallchild reports to the integration test.
package summary

import (
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// Summary is what stallchild's calls returned.
type Summary struct {
	OK, Timeout, Other int64
	OtherErr           string
	Slowest            time.Duration
	Stats              journal.Stats
	Dropped            uint64 // by the stdout fallback
}
