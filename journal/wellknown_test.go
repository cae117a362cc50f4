package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestMessageID(t *testing.T) {
	const want = "fc2e22bc6ee647b6b90729ab34a250b1"
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"32 lower-case hex", want, true},
		{"32 upper-case hex", strings.ToUpper(want), true},
		{"UUID form", "fc2e22bc-6ee6-47b6-b907-29ab34a250b1", true},
		{"empty", "", false},
		{"31 digits", want[:31], false},
		{"33 digits", want + "0", false},
		{"not hex", "zc2e22bc6ee647b6b90729ab34a250b1", false},
		{"dashes in the wrong places", "fc2e22b-c6ee6-47b6-b907-29ab34a250b1", false},
		{"newline", want[:31] + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := MessageID(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidMessageID) {
					t.Fatalf("MessageID(%q) error = %v, want ErrInvalidMessageID", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MessageID(%q): %v", tt.in, err)
			}
			if f.Name != "MESSAGE_ID" || string(f.Value) != want {
				t.Errorf("MessageID(%q) = %s=%s, want MESSAGE_ID=%s", tt.in, f.Name, f.Value, want)
			}
		})
	}
}

func TestErrnoField(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" for none
	}{
		{"bare errno", syscall.ENOENT, "2"},
		{"wrapped by fmt", fmt.Errorf("open config: %w", syscall.EACCES), "13"},
		{"inside PathError", &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOTDIR}, "20"},
		{"os.ErrNotExist is not an errno", os.ErrNotExist, ""},
		{"nil", nil, ""},
		{"zero errno", syscall.Errno(0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := ErrnoField(tt.err)
			if tt.want == "" {
				if ok {
					t.Fatalf("ErrnoField(%v) = %s=%s, want none", tt.err, f.Name, f.Value)
				}
				return
			}
			if !ok || f.Name != "ERRNO" || string(f.Value) != tt.want {
				t.Fatalf("ErrnoField(%v) = %s=%s %v, want ERRNO=%s", tt.err, f.Name, f.Value, ok, tt.want)
			}
		})
	}
}
