//go:build !linux

package stdoutfallback

import "os"

// fileMode: without RWF_NOWAIT, every write to a file that may block goes
// through the flusher.
func (o *output) fileMode(*os.File) writeMode { return modeFlusher }

// writeNoWait is never reached here (fileMode never chooses modeNoWait),
// but should it be, it behaves as Linux's for a file that refuses
// RWF_NOWAIT: it writes nothing, and the line and every later one go to
// the flusher. A logger does not panic on a path it believes unreachable.
func (o *output) writeNoWait([]byte) (int, error) {
	o.mode = modeFlusher
	return 0, nil
}
