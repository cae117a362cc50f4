package journal

import (
	"errors"
	"strings"
	"testing"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

func TestAppendEntry(t *testing.T) {
	ident := appendStringField(nil, "SYSLOG_IDENTIFIER", "app")
	tests := []struct {
		name    string
		message string
		pri     Priority
		ident   []byte
		fields  []Field
		want    string
	}{
		{
			name: "text form", message: "hello", pri: PriInfo, ident: ident,
			fields: []Field{StringField("USER", "ada")},
			want:   "MESSAGE=hello\nPRIORITY=6\nSYSLOG_IDENTIFIER=app\nUSER=ada\n",
		},
		{
			name: "newline in message takes the binary form", message: "a\nb", pri: PriErr,
			want: "MESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00a\nb\nPRIORITY=3\n",
		},
		{
			name: "empty values", message: "", pri: PriDebug,
			fields: []Field{{Name: "EMPTY"}},
			want:   "MESSAGE=\nPRIORITY=7\nEMPTY=\n",
		},
		{
			name: "equals sign and NUL stay in the text form", message: "x=y", pri: PriNotice,
			fields: []Field{StringField("A", "=\x00=")},
			want:   "MESSAGE=x=y\nPRIORITY=5\nA==\x00=\n",
		},
		{
			name: "invalid UTF-8 byte for byte", message: "m", pri: PriWarning,
			fields: []Field{{Name: "RAW", Value: []byte{0xff, 0xfe, '\n'}}},
			want:   "MESSAGE=m\nPRIORITY=4\nRAW\n\x03\x00\x00\x00\x00\x00\x00\x00\xff\xfe\n\n",
		},
		{
			name: "order kept and names repeat", message: "m", pri: PriAlert,
			fields: []Field{StringField("B", "1"), StringField("A", "2"), StringField("B", "3")},
			want:   "MESSAGE=m\nPRIORITY=1\nB=1\nA=2\nB=3\n",
		},
		{
			name: "a field can not forge another", message: "m\nPRIORITY=0", pri: PriInfo,
			fields: []Field{StringField("A", "x\nB=y\n\nMESSAGE=z")},
			want: "MESSAGE\n\x0c\x00\x00\x00\x00\x00\x00\x00m\nPRIORITY=0\nPRIORITY=6\n" +
				"A\n\x10\x00\x00\x00\x00\x00\x00\x00x\nB=y\n\nMESSAGE=z\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, _, err := checkEntry(tt.message, tt.pri, tt.ident, tt.fields, maxEntrySize)
			if err != nil {
				t.Fatalf("checkEntry: %v", err)
			}
			got := string(appendEntry(nil, tt.message, tt.pri, tt.ident, tt.fields))
			if got != tt.want {
				t.Errorf("appendEntry =\n%q\nwant\n%q", got, tt.want)
			}
			if len(got) > size {
				t.Errorf("encoded %d bytes, more than checkEntry's bound %d", len(got), size)
			}
		})
	}
}

func TestCheckEntry(t *testing.T) {
	ident := appendStringField(nil, "SYSLOG_IDENTIFIER", "app")
	// With MESSAGE, PRIORITY and SYSLOG_IDENTIFIER, maxFieldCount in all.
	most := make([]Field, maxFieldCount-3)
	for i := range most {
		most[i] = StringField("F", "")
	}
	tooMany := append(most[:len(most):len(most)], StringField("F", ""))
	tests := []struct {
		name      string
		pri       Priority
		fields    []Field
		wantErr   error
		wantIdent bool
	}{
		{name: "valid", pri: PriInfo, fields: []Field{StringField("A", "1")}},
		{name: "own identifier", pri: PriInfo, fields: []Field{StringField("SYSLOG_IDENTIFIER", "x")}, wantIdent: true},
		{name: "priority below 0", pri: -1, wantErr: ErrInvalidPriority},
		{name: "priority above 7", pri: 8, wantErr: ErrInvalidPriority},
		{name: "invalid name", pri: PriInfo, fields: []Field{StringField("a", "1")}, wantErr: ErrInvalidFieldName},
		{name: "name with newline", pri: PriInfo, fields: []Field{StringField("A\nB", "1")}, wantErr: ErrInvalidFieldName},
		{name: "name with equals", pri: PriInfo, fields: []Field{StringField("A=B", "1")}, wantErr: ErrInvalidFieldName},
		{name: "trusted name", pri: PriInfo, fields: []Field{StringField("_PID", "1")}, wantErr: ErrInvalidFieldName},
		{name: "MESSAGE is Send's", pri: PriInfo, fields: []Field{StringField("MESSAGE", "1")}, wantErr: ErrInvalidFieldName},
		{name: "PRIORITY is Send's", pri: PriInfo, fields: []Field{StringField("PRIORITY", "0")}, wantErr: ErrInvalidFieldName},
		{name: "invalid name after valid ones", pri: PriInfo, fields: []Field{StringField("A", "1"), StringField("", "1")}, wantErr: ErrInvalidFieldName},
		{name: "most fields journald takes", pri: PriInfo, fields: most},
		{name: "one field too many", pri: PriInfo, fields: tooMany, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, hasIdent, err := checkEntry("m", tt.pri, ident, tt.fields, maxEntrySize)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("checkEntry error = %v, want %v", err, tt.wantErr)
			}
			if hasIdent != tt.wantIdent {
				t.Errorf("hasIdent = %v, want %v", hasIdent, tt.wantIdent)
			}
		})
	}
}

// TestCheckEntrySizeLimits checks journald's DATA_SIZE_MAX at the byte
// where it starts to refuse.
func TestCheckEntrySizeLimits(t *testing.T) {
	if testing.Short() {
		testutil.CannotRun(t, "-short: it allocates 768 MiB")
	}
	big := make([]byte, maxDataSize-len("BIG=")+1)
	_, _, err := checkEntry("m", PriInfo, nil, []Field{{Name: "BIG", Value: big}}, maxEntrySize)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"BIG"`) {
		t.Fatalf("field one byte over DATA_SIZE_MAX: error = %v, want ErrTooLarge naming BIG", err)
	}
	if _, _, err := checkEntry("m", PriInfo, nil, []Field{{Name: "BIG", Value: big[:len(big)-1]}}, maxEntrySize); err != nil {
		t.Fatalf("field at DATA_SIZE_MAX: %v", err)
	}
}

func TestEntrySizeLimit(t *testing.T) {
	value := make([]byte, maxUnprivilegedEntrySize)
	fields := []Field{{Name: "BIG", Value: value}}
	if _, _, err := checkEntry("m", PriInfo, nil, fields, entrySizeLimit(1000)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("32 MiB from an unprivileged sender: %v, want ErrTooLarge", err)
	}
	if _, _, err := checkEntry("m", PriInfo, nil, fields, entrySizeLimit(0)); err != nil {
		t.Errorf("32 MiB from root: %v", err)
	}
	fields[0].Value = value[:maxUnprivilegedEntrySize-1024]
	if _, _, err := checkEntry("m", PriInfo, nil, fields, entrySizeLimit(1000)); err != nil {
		t.Errorf("just under 32 MiB from an unprivileged sender: %v", err)
	}
}
