//go:build linux

package journal

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/journaltest"
)

// TestStatsInvariant: every Send is in exactly one of Entries, Errors,
// Dropped and Queued, in each mode and whatever happened to it: sent,
// refused (an invalid field), dropped by a full queue, or given up at
// Close while journald stalls.
func TestStatsInvariant(t *testing.T) {
	sum := func(st Stats) uint64 { return st.Entries + st.Errors.Total() + st.Dropped + st.Queued }
	for _, tc := range []struct {
		name  string
		async *AsyncOptions
		stall bool // journald stops reading before the Sends, and never resumes
	}{
		{name: "sync"},
		{name: "sync/stalled", stall: true},
		{name: "async/block", async: &AsyncOptions{}},
		{name: "async/drop-newest/stalled", async: &AsyncOptions{QueueBytes: 16 << 10, OnFull: OnFullDropNewest}, stall: true},
		{name: "async/block/stalled", async: &AsyncOptions{QueueBytes: 16 << 10}, stall: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := journaltest.NewServer(t, journaltest.Version(252))
			timeout := time.Second
			if tc.stall {
				timeout = 5 * time.Millisecond // each Send past the socket's queue waits this long
			}
			w, err := NewWriter(&WriterOptions{SocketPath: srv.Path(), SendTimeout: timeout, Async: tc.async})
			require.NoError(t, err)
			if tc.stall {
				srv.Pause()
			}
			sends := 2000
			if tc.stall {
				sends = 300 // past the socket's queue, each Send waits up to SendTimeout + sliceTimeout
			}
			pad := Field{Name: "PAD", Value: make([]byte, 512)}
			var ok int
			for i := range sends {
				f := Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(i), 10)}
				if i%100 == 7 {
					f.Name = "bad name" // refused: counted in Errors.InvalidField
				}
				if w.Send("counted", PriInfo, f, pad) == nil {
					ok++
				}
			}
			st := w.Stats()
			assert.Equal(t, uint64(sends), sum(st), "before Close: %+v", st)
			assert.Equal(t, uint64(sends/100), st.Errors.InvalidField)
			if tc.async == nil {
				assert.Zero(t, st.Queued)
				assert.Zero(t, st.Dropped)
				assert.Equal(t, uint64(ok), st.Entries, "a synchronous Send's nil error means the entry was taken")
			}
			if !tc.stall {
				require.NoError(t, w.Flush(context.Background()))
				st = w.Stats()
				assert.Zero(t, st.Queued, "after Flush")
				assert.Equal(t, uint64(sends-sends/100), st.Entries)
			}
			err = w.Close()
			if tc.stall && tc.async != nil && !errors.Is(err, ErrTimeout) {
				t.Errorf("Close with journald stalled = %v, want ErrTimeout", err)
			}
			st = w.Stats()
			assert.Equal(t, uint64(sends), sum(st), "after Close: %+v", st)
			assert.Zero(t, st.Queued, "after Close")
			if tc.stall {
				assert.NotZero(t, st.Errors.Timeout+st.Dropped, "a stalled journald loses entries, and they are counted")
			}
		})
	}
}
