package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that handlers (or a child process) may write to
// from several goroutines while a test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns what was written as lines, without their newlines; nil
// when nothing was.
func (b *Buffer) Lines() []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// FailWriter is an io.Writer that fails the test when anything is written
// to it: a logger's stdout that must stay unused.
type FailWriter struct{ TB testing.TB }

func (w FailWriter) Write(p []byte) (int, error) {
	w.TB.Errorf("the logger wrote to stdout: %q", p)
	return len(p), nil
}

// Btoi is 1 for true and 0 for false: a count of the cases that hold.
func Btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
