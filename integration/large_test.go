//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// TestLargeValues sends values of 1 MiB, which fits in a datagram of the
// Writer's raised send buffer, and 16 MiB, which does not and must go by
// memfd, and reads each back whole.
func TestLargeValues(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		binary    bool // random bytes; else random lines of printable text
		wantMemfd bool // the entry must have gone by memfd
	}{
		{name: "1MiB binary", size: 1 << 20, binary: true},
		// Text, because journalctl takes 7 s and 700 MB to print 16 MiB
		// of bytes as a JSON array of numbers. Its newlines still make
		// it a value of the binary form on the wire.
		{name: "16MiB text", size: 16 << 20, wantMemfd: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ident := uniqueIdent(t)
			w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident})

			value := randomValue(tt.size, tt.binary)
			sum := sha256.Sum256(value)

			if err := w.Send("a large value", journal.PriInfo,
				journal.Field{Name: "PAYLOAD", Value: value},
				journal.StringField("PAYLOAD_SHA256", hex.EncodeToString(sum[:]))); err != nil {
				t.Fatalf("Send of %d bytes: %v", tt.size, err)
			}
			st := w.Stats()
			if st.Entries != 1 || st.Errors.Total() != 0 {
				t.Fatalf("Stats() = %+v, want 1 entry and no errors", st)
			}
			if tt.wantMemfd && st.Memfd != 1 {
				t.Errorf("Stats().Memfd = %d, want 1: a %d-byte entry does not fit in a datagram", st.Memfd, tt.size)
			}
			t.Logf("sent %d bytes, by memfd: %v", st.Bytes, st.Memfd == 1)

			entries := waitJournal(t, query{ident: ident}, 30*time.Second,
				func(es []entry) bool { return len(es) >= 1 })
			if len(entries) != 1 {
				t.Fatalf("journal has %d entries with SYSLOG_IDENTIFIER=%s, want 1", len(entries), ident)
			}
			e := entries[0]
			got := e["PAYLOAD"]
			if len(got) != 1 {
				t.Fatalf("PAYLOAD has %d values, want 1", len(got))
			}
			if len(got[0]) != tt.size {
				t.Fatalf("PAYLOAD is %d bytes, want %d", len(got[0]), tt.size)
			}
			if gotSum := sha256.Sum256(got[0]); gotSum != sum {
				t.Errorf("PAYLOAD sha256 = %x, want %x", gotSum, sum)
			}
			if v, err := e.Value("PAYLOAD_SHA256"); err != nil || v != hex.EncodeToString(sum[:]) {
				t.Errorf("PAYLOAD_SHA256 = %q (%v), want %x", v, err, sum)
			}
			if v, err := e.Value("_TRANSPORT"); err != nil || v != "journal" {
				t.Errorf("_TRANSPORT = %q (%v), want journal", v, err)
			}
		})
	}
}

// randomValue returns size random bytes (with newlines, NULs and invalid
// UTF-8 throughout), or with text, random lines of printable ASCII.
func randomValue(size int, binary bool) []byte {
	value := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(size >> 20)})
	_, _ = rng.Read(value)
	if !binary {
		const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 =.,\n"
		for i, b := range value {
			value[i] = alphabet[int(b)%len(alphabet)]
		}
	}
	return value
}
