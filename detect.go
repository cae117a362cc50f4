package newstyle

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/newstyle-go/newstyle/journal"
)

// goos is runtime.GOOS; the tests change it.
var goos = runtime.GOOS

// EnvTarget is the environment variable that forces the target:
// "journal", "stdout", or "auto" (the same as unset).
const EnvTarget = "NEWSTYLE_LOG_TARGET"

// Detection is what NewHandler chose, and why, in words for a person.
type Detection struct {
	Target Target // TargetJournal or TargetStdout
	Reason string
}

func (d Detection) String() string { return d.Target.String() + ": " + d.Reason }

// Detect says where a Handler made now with default options would write,
// and why.
func Detect() Detection {
	w, err := journal.NewWriter(&journal.WriterOptions{})
	if err != nil {
		return Detection{Target: TargetStdout, Reason: err.Error()}
	}
	defer w.Close()
	return detect(TargetAuto, w)
}

// detect applies the rule: the environment, then the option, then
// JOURNAL_STREAM against stderr and a probe of journald's socket.
func detect(opt Target, w *journal.Writer) Detection {
	switch v := os.Getenv(EnvTarget); strings.ToLower(v) {
	case "journal":
		return Detection{Target: TargetJournal, Reason: EnvTarget + "=" + v}
	case "stdout":
		return Detection{Target: TargetStdout, Reason: EnvTarget + "=" + v}
	case "", "auto":
		return detectOption(opt, w)
	default:
		// A typo must not silently change where logs go, nor stop the
		// program: decide as if unset, and say so.
		d := detectOption(opt, w)
		d.Reason += " (" + EnvTarget + "=" + strconv.Quote(v) + " is not journal, stdout or auto: ignored)"
		return d
	}
}

// detectOption applies the rule after the environment.
func detectOption(opt Target, w *journal.Writer) Detection {
	switch opt {
	case TargetJournal:
		return Detection{Target: TargetJournal, Reason: "Options.Target is TargetJournal"}
	case TargetStdout:
		return Detection{Target: TargetStdout, Reason: "Options.Target is TargetStdout"}
	}

	if goos != "linux" {
		return Detection{Target: TargetStdout, Reason: "journald exists only on Linux, and this is " + goos}
	}
	stream := os.Getenv("JOURNAL_STREAM")
	if stream == "" {
		return Detection{Target: TargetStdout, Reason: "JOURNAL_STREAM is not set: stderr is not the journal"}
	}
	// systemd sets JOURNAL_STREAM to the device and inode of the
	// service's own stdout/stderr; a child whose stderr was redirected
	// must not take it for its own.
	if ok, err := sdjournal.StderrIsJournalStream(); !ok || err != nil {
		return Detection{Target: TargetStdout, Reason: "JOURNAL_STREAM=" + stream + " is not stderr: output was redirected"}
	}
	if err := w.Probe(); err != nil {
		return Detection{Target: TargetStdout, Reason: "stderr is the journal, but its socket is unreachable: " + err.Error()}
	}
	return Detection{Target: TargetJournal, Reason: "stderr is the journal (JOURNAL_STREAM) and " + w.SocketPath() + " listens"}
}
