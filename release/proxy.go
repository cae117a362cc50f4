package release

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// WriteProxy writes a module proxy into dir (GOPROXY=file://DIR) that
// serves each module at version as a tag of this checkout would: list,
// .info, .mod and .zip, the zip made by the module zip rules from the
// files git tracks in the module's directory, as they are in the work
// tree (nested modules left out).
func WriteProxy(dir, version string, mods ...Module) error {
	for _, m := range mods {
		escaped, err := module.EscapePath(m.Path)
		if err != nil {
			return err
		}
		at := filepath.Join(dir, filepath.FromSlash(escaped), "@v")
		if err := os.MkdirAll(at, 0o755); err != nil {
			return err
		}
		gomod, err := os.ReadFile(filepath.Join(m.Dir, "go.mod"))
		if err != nil {
			return err
		}
		info := fmt.Sprintf(`{"Version":%q,"Time":%q}`, version, time.Now().UTC().Format(time.RFC3339))
		for name, data := range map[string][]byte{
			"list":            []byte(version + "\n"),
			version + ".info": []byte(info),
			version + ".mod":  gomod,
		} {
			if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
				return err
			}
		}
		files, err := moduleFiles(m.Dir)
		if err != nil {
			return err
		}
		z, err := os.Create(filepath.Join(at, version+".zip"))
		if err != nil {
			return err
		}
		err = modzip.Create(z, module.Version{Path: m.Path, Version: version}, files)
		if cerr := z.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("release: zip of %s@%s: %w", m.Path, version, err)
		}
	}
	return nil
}

// moduleFiles are the files git tracks in dir, less those of modules
// nested in it and those deleted from the work tree.
func moduleFiles(dir string) ([]modzip.File, error) {
	out, err := exec.Command("git", "-C", dir, "ls-files", "-z").Output()
	if err != nil {
		return nil, fmt.Errorf("release: git ls-files in %s: %w", dir, err)
	}
	names := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	nested := map[string]bool{}
	for _, n := range names {
		if path.Base(n) == "go.mod" && path.Dir(n) != "." {
			nested[path.Dir(n)] = true
		}
	}
	var files []modzip.File
	for _, n := range names {
		inNested := false
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			inNested = inNested || nested[d]
		}
		if inNested {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			continue
		}
		files = append(files, workFile{dir: dir, name: n})
	}
	return files, nil
}

// workFile is a file of the work tree, for modzip.Create.
type workFile struct{ dir, name string }

func (f workFile) Path() string                 { return f.name }
func (f workFile) Lstat() (fs.FileInfo, error)  { return os.Lstat(filepath.Join(f.dir, f.name)) }
func (f workFile) Open() (io.ReadCloser, error) { return os.Open(filepath.Join(f.dir, f.name)) }

// RequiredVersion is the version of module path that the go.mod in dir
// requires: the release otel/go.mod names is the one being prepared.
func RequiredVersion(dir, modPath string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) >= 2 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == modPath {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("release: %s/go.mod does not require %s", dir, modPath)
}
