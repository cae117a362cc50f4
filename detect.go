package newstyle

import (
	"os"
	"runtime"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/newstyle-go/newstyle/journal"
)

// goos is runtime.GOOS; the tests change it.
var goos = runtime.GOOS

// EnvTarget is the environment variable that forces the target: journal,
// stdout (or console), null, or auto (the same as unset); see
// ParseTarget. It is the operator's word, given in the unit file, and
// wins over Options.Target. Any other value is ignored, and said in the
// Detection.
const EnvTarget = "NEWSTYLE_LOG_TARGET"

// Detection is what NewHandler chose, and why, in words for a person.
type Detection struct {
	Target Target // TargetJournal, TargetStdout or TargetNull
	Reason string
	// Forced: the target was given (NEWSTYLE_LOG_TARGET,
	// Options.Target, SetTarget), not chosen by the automatic rule.
	Forced bool
}

func (d Detection) String() string { return d.Target.String() + ": " + d.Reason }

// Detect says where a Handler made now with default options would write,
// and why.
func Detect() Detection {
	w, err := journal.NewWriter(&journal.WriterOptions{})
	if err != nil {
		return Detection{Target: TargetStdout, Reason: "the journal cannot be used: " + err.Error()}
	}
	defer w.Close()
	d, _ := detect(TargetAuto, w, false)
	return d
}

// envTarget reads EnvTarget: the target it forces (TargetAuto: none),
// and the error of a value it cannot read.
func envTarget() (Target, error) {
	v, ok := os.LookupEnv(EnvTarget)
	if !ok || v == "" {
		return TargetAuto, nil
	}
	return ParseTarget(v)
}

// detect applies the rule: the environment (unless ignoreEnv), then the
// option, then JOURNAL_STREAM against stderr and a probe of journald's
// socket (w is nil when the journal cannot be used). It returns the
// error of an environment value it could not read, which it ignored.
func detect(opt Target, w *journal.Writer, ignoreEnv bool) (Detection, error) {
	if ignoreEnv {
		return detectOption(opt, w), nil
	}
	env, err := envTarget()
	if env != TargetAuto {
		return Detection{Target: env, Reason: EnvTarget + "=" + os.Getenv(EnvTarget), Forced: true}, nil
	}
	d := detectOption(opt, w)
	if err != nil {
		// A typo must not silently change where logs go, nor stop the
		// program: decide as if unset, and say so.
		d.Reason += " (" + EnvTarget + ": " + err.Error() + "; ignored)"
	}
	return d, err
}

// detectOption applies the rule after the environment.
func detectOption(opt Target, w *journal.Writer) Detection {
	switch opt {
	case TargetJournal, TargetStdout, TargetNull:
		return Detection{Target: opt, Reason: "Options.Target is " + opt.String(), Forced: true}
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
	if w == nil {
		return Detection{Target: TargetStdout, Reason: "stderr is the journal, but no journal Writer could be made"}
	}
	if err := w.Probe(); err != nil {
		return Detection{Target: TargetStdout, Reason: "stderr is the journal, but its socket is unreachable: " + err.Error()}
	}
	return Detection{Target: TargetJournal, Reason: "stderr is the journal (JOURNAL_STREAM) and " + w.SocketPath() + " listens"}
}
