package crash

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

// catalogFile is the module's message catalog.
const catalogFile = "../catalog/newstyle.catalog"

// moduleMessageIDs are the MESSAGE_IDs of the module's own entries: the
// catalog explains each, and nothing else.
var moduleMessageIDs = []string{MessageID, journal.DroppedMessageID, journal.CallbackPanicMessageID}

func TestCatalogExplainsEveryMessageID(t *testing.T) {
	data, err := os.ReadFile(catalogFile)
	require.NoError(t, err)
	header := regexp.MustCompile(`(?m)^-- ([0-9a-f]{32})\n`)
	var ids []string
	entries := header.Split(string(data), -1)[1:]
	for i, m := range header.FindAllStringSubmatch(string(data), -1) {
		ids = append(ids, m[1])
		head, body, ok := strings.Cut(entries[i], "\n\n")
		require.True(t, ok, "%s: headers, an empty line, the text", m[1])
		for _, h := range []string{"Subject: ", "Defined-By: newstyle\n", "Support: ", "Documentation: "} {
			assert.Contains(t, "\n"+head+"\n", "\n"+h, "%s lacks %s", m[1], h)
			if h == "Subject: " {
				assert.True(t, strings.HasPrefix(head, h), "%s: the subject first", m[1])
			}
		}
		assert.Greater(t, len(strings.TrimSpace(body)), 200, "%s explains", m[1])
	}
	want := append([]string(nil), moduleMessageIDs...)
	sort.Strings(ids)
	sort.Strings(want)
	assert.Equal(t, want, ids)
}

// TestCatalogAsJournalctlReadsIt builds a catalog database from the file
// with the system's journalctl, as journalctl --update-catalog does when
// it is installed.
func TestCatalogAsJournalctlReadsIt(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		testutil.CannotRun(t, "no journalctl")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	data, err := os.ReadFile(catalogFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "newstyle.catalog"), data, 0o644))
	out, err := exec.Command("journalctl", "--root="+root, "--update-catalog").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("journalctl", "--root="+root, "--list-catalog").Output()
	require.NoError(t, err)
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, subject, _ := strings.Cut(line, " ")
		listed = append(listed, id)
		assert.True(t, strings.HasPrefix(subject, "newstyle: "), "%q", line)
	}
	want := append([]string(nil), moduleMessageIDs...)
	sort.Strings(want)
	assert.Equal(t, want, listed)
}
