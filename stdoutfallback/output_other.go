//go:build !linux

package stdoutfallback

import "os"

// fileMode: without RWF_NOWAIT, every write to a file that may block goes
// through the flusher.
func (o *output) fileMode(*os.File) writeMode { return modeFlusher }

func (o *output) writeNoWait([]byte) (int, error) { panic("unreachable") }
