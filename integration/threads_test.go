//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/integration/stallchild/summary"
)

// stallChild builds cmd/stallchild once, without -race: the race detector
// dies at 8128 live goroutines, and the test runs 40,000.
func stallChild(t *testing.T) string {
	return buildChild(t, "github.com/newstyle-go/newstyle/integration/stallchild")
}

var (
	childrenMu sync.Mutex
	children   = map[string]string{} // built binaries, by package
)

// buildChild builds the program pkg, without -race, once per test binary,
// and returns its path.
func buildChild(t *testing.T, pkg string) string {
	t.Helper()
	childrenMu.Lock()
	defer childrenMu.Unlock()
	if bin, ok := children[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "child")
	if err != nil {
		t.Fatal(err)
	}
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v: %s", pkg, err, out)
	}
	children[pkg] = bin
	return bin
}

// threadsOf reads a process's OS thread count; false once it has exited
// (a zombie, not yet reaped, keeps its /proc entry).
func threadsOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	threads := -1
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok && strings.HasPrefix(strings.TrimSpace(v), "Z") {
			return 0, false
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0, false
			}
		}
	}
	return threads, threads >= 0
}

// TestStalledJournaldThreads stops journald with SIGSTOP (a journald stuck
// on a slow disk reads nothing) and has a child process start 20,000 and
// 40,000 goroutines that log once each, through a journal.Writer and
// through newstyle's logger. The child must survive (Go dies at 10,000
// threads), keep its thread count low, see every call return within its
// bound, count every outcome; through the logger, every record must be in
// the journal or on stdout once journald runs again.
func TestStalledJournaldThreads(t *testing.T) {
	const (
		sendTimeout = time.Second
		// Through the logger, the 40,000 records that find the journal
		// stalled all go to stdout within about a second, one write each,
		// and the test reads them under -race on a CI machine that may be
		// busy: 1 s for stdout dropped 2% of them there once. The test is
		// about threads and bounds, not stdout's speed, so stdout gets
		// time enough, and the bound grows with it.
		writeTimeout = 5 * time.Second
		margin       = time.Second
		maxThreads   = 64 // GOMAXPROCS (2 here) and the runtime's own
	)
	bin := stallChild(t)
	for _, via := range []string{"writer", "logger"} {
		for _, n := range []int{20000, 40000} {
			t.Run(via+"/"+strconv.Itoa(n), func(t *testing.T) {
				ident := uniqueIdent(t)
				cont := stopSystemJournald(t)

				cmd := exec.Command(bin, "-via", via, "-n", strconv.Itoa(n), "-ident", ident, "-timeout", sendTimeout.String(), "-write-timeout", writeTimeout.String())
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// stdout is read as it comes, as journald reads a
				// service's: the fallback's records land there.
				onStdout := make(chan map[int]int, 1)
				go func() {
					ids := map[int]int{}
					sc := bufio.NewScanner(stdout)
					for sc.Scan() {
						if _, v, ok := strings.Cut(sc.Text(), " id="); ok {
							if id, err := strconv.Atoi(v); err == nil {
								ids[id]++
							}
						}
					}
					onStdout <- ids
				}()
				peak := 0
				for {
					n, alive := threadsOf(cmd.Process.Pid)
					if !alive {
						break
					}
					peak = max(peak, n)
					time.Sleep(time.Millisecond)
				}
				stdoutIDs := <-onStdout
				waitErr := cmd.Wait()
				cont()
				if waitErr != nil {
					t.Fatalf("child: %v\n%s", waitErr, lastLines(stderr.String(), 20))
				}
				var sum summary.Summary
				if err := json.Unmarshal(stderr.Bytes(), &sum); err != nil {
					t.Fatalf("child's summary: %v\n%s", err, lastLines(stderr.String(), 20))
				}
				t.Logf("%s, %d goroutines: peak %d threads; %d ok, %d timed out, %d other; slowest call %v; Stats %+v; %d on stdout, %d dropped there",
					via, n, peak, sum.OK, sum.Timeout, sum.Other, sum.Slowest, sum.Stats, len(stdoutIDs), sum.Dropped)

				if peak > maxThreads {
					t.Errorf("peak of %d OS threads, want at most %d", peak, maxThreads)
				}
				// A record through the logger waits at most SendTimeout
				// for the journal, then WriteTimeout for stdout.
				bound := sendTimeout
				if via == "logger" {
					bound += writeTimeout
				}
				if sum.Slowest > bound+margin {
					t.Errorf("slowest call took %v, want at most %v + %v", sum.Slowest, bound, margin)
				}
				if sum.Other != 0 || sum.OK+sum.Timeout != int64(n) {
					t.Errorf("%d ok + %d timed out of %d calls; %d other errors (%s)", sum.OK, sum.Timeout, n, sum.Other, sum.OtherErr)
				}
				// Through the logger, records that come once the switch to
				// stdout is made go there without trying the journal.
				st := sum.Stats
				if sends := st.Entries + st.Errors.Total(); sends > uint64(n) || (via == "writer" && sends != uint64(n)) ||
					st.Errors.Timeout != st.Errors.Total() {
					t.Errorf("Stats %+v: want %d sends counted, every failure a timeout", st, n)
				}

				// What journald took before it stopped is in the journal;
				// through the logger, everything else is on stdout.
				entries := waitJournal(t, query{ident: ident, fields: []string{"ID"}}, 20*time.Second,
					func(es []entry) bool { return uint64(len(es)) >= st.Entries })
				inJournal := map[int]int{}
				for _, e := range entries {
					v, err := e.Value("ID")
					id, err2 := strconv.Atoi(v)
					if err != nil || err2 != nil {
						t.Fatalf("entry without a valid ID: %v", e)
					}
					inJournal[id]++
				}
				if uint64(len(entries)) != st.Entries {
					t.Errorf("%d entries in the journal, Stats counts %d sent", len(entries), st.Entries)
				}
				switch via {
				case "writer":
					if int64(len(entries)) != sum.OK || st.Errors.Timeout != uint64(sum.Timeout) {
						t.Errorf("%d entries in the journal for %d Sends that returned nil", len(entries), sum.OK)
					}
				case "logger":
					if sum.Timeout != 0 || sum.Dropped != 0 {
						t.Errorf("%d records failed, %d dropped: stdout was read, nothing should be lost", sum.Timeout, sum.Dropped)
					}
					missing, twice := 0, 0
					for id := 0; id < n; id++ {
						switch inJournal[id] + stdoutIDs[id] {
						case 0:
							missing++
						case 1:
						default:
							twice++
						}
					}
					if missing > 0 || twice > 0 {
						t.Errorf("of %d records, %d are neither in the journal nor on stdout, %d in both or twice", n, missing, twice)
					}
				}
			})
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
