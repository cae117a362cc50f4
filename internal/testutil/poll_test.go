package testutil

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	tests := []struct {
		name    string
		doneAt  int // the call that returns true; 0 for none
		timeout time.Duration
		want    bool
		calls   int // the calls Poll makes; 0: at least 2
	}{
		{name: "done at once", doneAt: 1, timeout: time.Hour, want: true, calls: 1},
		{name: "done at the third call", doneAt: 3, timeout: time.Hour, want: true, calls: 3},
		{name: "never done", timeout: 50 * time.Millisecond, want: false},
		{name: "no time at all: one call", timeout: 0, want: false, calls: 1},
		{name: "done at the last call, past the deadline", doneAt: 1, timeout: 0, want: true, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			got := Poll(tt.timeout, time.Millisecond, func() bool {
				calls++
				return calls == tt.doneAt
			})
			took := time.Since(start)
			if got != tt.want {
				t.Errorf("Poll = %v, want %v", got, tt.want)
			}
			if tt.calls != 0 && calls != tt.calls || calls < 1 {
				t.Errorf("%d calls of done, want %d", calls, tt.calls)
			}
			if !tt.want && took < tt.timeout {
				t.Errorf("Poll gave up after %v, before its timeout of %v", took, tt.timeout)
			}
			if !tt.want && tt.timeout > 0 && calls < 2 {
				t.Errorf("%d calls of done in %v, polling every 1ms", calls, tt.timeout)
			}
		})
	}
}
