package release

import (
	"archive/zip"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite ../api/*.txt from the code (make api)")

const (
	libPath  = "github.com/newstyle-go/newstyle"
	otelPath = libPath + "/otel"
)

// modules are the repository's published modules, and the file of each
// one's API record.
func modules(t *testing.T) map[string]Module {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Module{
		"newstyle.txt": {Path: libPath, Dir: root},
		"otel.txt":     {Path: otelPath, Dir: filepath.Join(root, "otel"), Workspace: filepath.Join(root, "go.work")},
	}
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// TestAPI compares the exported API of each module with its record in
// api/: a change must be deliberate (make api rewrites the record, and
// the diff shows in review).
func TestAPI(t *testing.T) {
	for file, m := range modules(t) {
		t.Run(file, func(t *testing.T) {
			got, err := API(goCmd(), m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				t.Fatalf("%s: no exported API found", m.Path)
			}
			record := filepath.Join("..", "api", file)
			if *update {
				if err := os.WriteFile(record, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("%v (make api writes it)", err)
			}
			want := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			var diff []string
			for _, l := range want {
				if _, found := slices.BinarySearch(got, l); !found {
					diff = append(diff, "- "+l)
				}
			}
			for _, l := range got {
				if _, found := slices.BinarySearch(want, l); !found {
					diff = append(diff, "+ "+l)
				}
			}
			if len(diff) > 0 {
				t.Errorf("the exported API of %s is not api/%s: if the change is deliberate, run make api and commit the record\n%s",
					m.Path, file, strings.Join(diff, "\n"))
			}
		})
	}
}

// userEnv is the environment of a user's go command that fetches the
// modules from proxy and everything else as usual: from this machine's
// module cache, else from the module proxy it uses. Its own module cache
// keeps the local versions out of the shared one.
func userEnv(t *testing.T, proxy string) []string {
	out, err := exec.Command(goCmd(), "env", "GOPROXY", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("go env: %q", out)
	}
	upstream, cache := f[0], f[1]
	return append(os.Environ(),
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"GOFLAGS=-mod=mod -modcacherw",
		"GOPROXY=file://"+proxy+",file://"+filepath.Join(cache, "cache", "download")+","+upstream,
		// The local versions are not in the checksum database; every
		// other module is checked as a user's go command checks it.
		"GONOSUMDB="+libPath,
		"GOMODCACHE="+filepath.Join(t.TempDir(), "modcache"),
	)
}

func run(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(goCmd(), args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestUserModule builds a module outside the repository that depends on
// both modules the way a user's does: go get from a module proxy (here a
// local one made from this checkout, at the version otel/go.mod
// requires: the one being prepared), no workspace, no replace. It also
// checks that each module's zip carries the license, and that
// otel/go.mod is what go mod tidy makes of it against that version.
func TestUserModule(t *testing.T) {
	mods := modules(t)
	lib, otel := mods["newstyle.txt"], mods["otel.txt"]
	version, err := RequiredVersion(otel.Dir, libPath)
	if err != nil {
		t.Fatal(err)
	}
	proxy := t.TempDir()
	if err := WriteProxy(proxy, version, lib, otel); err != nil {
		t.Fatal(err)
	}
	env := userEnv(t, proxy)

	t.Run("license in each zip", func(t *testing.T) {
		license, err := os.ReadFile(filepath.Join(lib.Dir, "LICENSE"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []Module{lib, otel} {
			z, err := zip.OpenReader(filepath.Join(proxy, m.Path, "@v", version+".zip"))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range z.File {
				if f.Name == m.Path+"@"+version+"/LICENSE" {
					r, err := f.Open()
					if err != nil {
						t.Fatal(err)
					}
					var b bytes.Buffer
					_, err = b.ReadFrom(r)
					r.Close()
					found = err == nil && bytes.Equal(b.Bytes(), license)
				}
			}
			z.Close()
			if !found {
				t.Errorf("%s@%s: no LICENSE like the repository's at the module's root", m.Path, version)
			}
		}
	})

	t.Run("otel go.mod tidy", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "otel")
		if err := os.CopyFS(dir, os.DirFS(otel.Dir)); err != nil {
			t.Fatal(err)
		}
		run(t, dir, env, "mod", "tidy")
		want, _ := os.ReadFile(filepath.Join(otel.Dir, "go.mod"))
		got, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
		if !bytes.Equal(got, want) {
			t.Errorf("otel/go.mod is not tidy against %s@%s; go mod tidy makes it:\n%s", libPath, version, got)
		}
	})

	t.Run("a user's module", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string]string{
			"go.mod": "module example.com/user\n\ngo 1.24.0\n",
			"main.go": `package main

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/newstyle-go/newstyle"
	nsotel "github.com/newstyle-go/newstyle/otel"
	"github.com/newstyle-go/newstyle/slogopts"
)

func main() {
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:         newstyle.TargetStdout,
		HandlerOptions: slogopts.HandlerOptions{ContextAttrs: nsotel.ContextAttrs},
	})
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	logger.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "hello from a user's module")
}
`,
			"main_test.go": `package main

import (
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journaltest"
)

func TestLogsToTheJournal(t *testing.T) {
	srv := journaltest.NewServer(t)
	logger := newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetJournal, SocketPath: srv.Path(), SyslogIdentifier: "user"})
	logger.Info("hello", "order_id", "A-1")
	e := srv.Wait(t, 1, 10*time.Second)[0]
	if v, _ := e.Get("ORDER_ID"); v != "A-1" {
		t.Errorf("ORDER_ID = %q", v)
	}
	if err := srv.Err(); err != nil {
		t.Error(err)
	}
}
`,
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(t, dir, env, "get", libPath+"@"+version, otelPath+"@"+version)
		run(t, dir, env, "mod", "tidy")
		gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
		for _, want := range []string{libPath + " " + version, otelPath + " " + version} {
			if !strings.Contains(string(gomod), want) {
				t.Errorf("go.mod does not require %s:\n%s", want, gomod)
			}
		}
		if strings.Contains(string(gomod), "replace") {
			t.Errorf("go.mod has a replace:\n%s", gomod)
		}
		run(t, dir, env, "vet", "./...")
		run(t, dir, env, "test", "-count=1", "./...")
		out := run(t, dir, env, "run", ".")
		want := "<6>hello from a user's module trace_id=0102030405060708090a0b0c0d0e0f10 span_id=0102030405060708 trace_flags=01\n"
		if out != want {
			t.Errorf("go run . printed %q, want %q", out, want)
		}
		t.Logf("%s", fmt.Sprint(run(t, dir, env, "list", "-m", libPath, otelPath)))
	})
}
