package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
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

func TestCodeFields(t *testing.T) {
	pcs := make([]uintptr, 1)
	runtime.Callers(1, pcs)
	_, _, line, _ := runtime.Caller(0)
	fields := CodeFields(pcs[0])
	if len(fields) != 3 {
		t.Fatalf("CodeFields = %v, want 3 fields", fields)
	}
	got := map[string]string{}
	for _, f := range fields {
		got[f.Name] = string(f.Value)
	}
	if !strings.HasSuffix(got["CODE_FILE"], "journal/wellknown_test.go") {
		t.Errorf("CODE_FILE = %q", got["CODE_FILE"])
	}
	if got["CODE_LINE"] != strconv.Itoa(line-1) {
		t.Errorf("CODE_LINE = %q, want %d", got["CODE_LINE"], line-1)
	}
	if got["CODE_FUNC"] != "github.com/newstyle-go/newstyle/journal.TestCodeFields" {
		t.Errorf("CODE_FUNC = %q", got["CODE_FUNC"])
	}
	if CodeFields(0) != nil {
		t.Error("CodeFields(0) is not nil")
	}
}

func TestSyslogIdentifier(t *testing.T) {
	if f := SyslogIdentifier("web"); f.Name != "SYSLOG_IDENTIFIER" || string(f.Value) != "web" {
		t.Errorf("SyslogIdentifier(web) = %s=%s", f.Name, f.Value)
	}
	if f := SyslogIdentifier(""); string(f.Value) != ProgramName() || len(f.Value) == 0 {
		t.Errorf("SyslogIdentifier(\"\") = %q, want the program name %q", f.Value, ProgramName())
	}
}
