package newstyle

import (
	"testing"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// TestOptionsNamespace checks which socket NewHandler's journal Writer
// sends to: Namespace's when SocketPath is empty, SocketPath's when set.
func TestOptionsNamespace(t *testing.T) {
	t.Setenv(EnvTarget, "")
	srv := journaltest.NewServer(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"neither", Options{}, journal.DefaultSocketPath},
		{"namespace", Options{Namespace: "billing"}, "/run/systemd/journal.billing/socket"},
		{"socket path wins", Options{Namespace: "billing", SocketPath: srv.Path()}, srv.Path()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Target = TargetJournal
			h := NewHandler(&opts)
			defer h.Close()
			if h.sw.writer == nil {
				t.Fatalf("no journal Writer: %v", h.Detection())
			}
			if got := h.sw.writer.SocketPath(); got != tt.want {
				t.Errorf("Writer's SocketPath() = %q, want %q", got, tt.want)
			}
		})
	}
}
