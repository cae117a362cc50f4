// Package release checks what a release of newstyle publishes: the
// exported API of every public package of its modules, recorded in
// ../api/*.txt so that a change to it is deliberate and shows in review,
// and that a user's module builds against both modules fetched from a
// module proxy (a local one, made from this checkout). It is a module of
// its own (it needs golang.org/x/mod), imported by nothing; make
// release-check runs its tests, make api rewrites the record.
package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Module is a module of the repository.
type Module struct {
	Path string // the module path
	Dir  string // its directory
	// Workspace: its packages are listed in the repository's workspace
	// (go.work), for a module that requires an unreleased version of
	// another; else alone (GOWORK=off).
	Workspace string
}

// listed is what go list says of a package.
type listed struct {
	ImportPath string
	Name       string
	Export     string
	DepOnly    bool
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// API returns the exported API of m's public packages (no internal
// package, no command) as the go command builds them for linux/amd64:
// one line per exported constant, variable, function, type, struct
// field, interface method and method, each with its type, sorted.
func API(goCmd string, m Module) ([]string, error) {
	cmd := exec.Command(goCmd, "list", "-e", "-export", "-deps", "-json=ImportPath,Name,Export,DepOnly,Module,Error", m.Path+"/...")
	cmd.Dir = m.Dir
	gowork := "off"
	if m.Workspace != "" {
		gowork = m.Workspace
	}
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOWORK="+gowork)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("release: go list in %s: %v: %s", m.Dir, err, stderr.Bytes())
	}
	exports := map[string]string{}
	var public []listed
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("release: go list output: %w", err)
		}
		exports[p.ImportPath] = p.Export
		if p.DepOnly || p.Module == nil || p.Module.Path != m.Path || p.Name == "main" ||
			slices.Contains(strings.Split(p.ImportPath, "/"), "internal") {
			continue
		}
		if p.Error != nil {
			if p.Export == "" && strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
				continue // a directory of tests only (integration)
			}
			return nil, fmt.Errorf("release: %s: %s", p.ImportPath, p.Error.Err)
		}
		public = append(public, p)
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("release: no export data for %s", path)
		}
		return os.Open(file)
	})
	var lines []string
	for _, p := range public {
		pkg, err := imp.Import(p.ImportPath)
		if err != nil {
			return nil, fmt.Errorf("release: %s: %w", p.ImportPath, err)
		}
		lines = append(lines, packageAPI(pkg)...)
	}
	slices.Sort(lines)
	return slices.Compact(lines), nil
}

// shortPath names the repository's packages without the host part:
// newstyle/journal.
func shortPath(path string) string {
	return strings.TrimPrefix(path, "github.com/newstyle-go/")
}

// packageAPI is the API of one package.
func packageAPI(pkg *types.Package) []string {
	qf := func(p *types.Package) string {
		if p == pkg {
			return ""
		}
		return shortPath(p.Path())
	}
	ts := func(t types.Type) string { return types.TypeString(t, qf) }
	prefix := shortPath(pkg.Path()) + ": "
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, prefix+fmt.Sprintf(format, args...)) }
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Const:
			add("const %s %s = %s", name, ts(obj.Type()), obj.Val().ExactString())
		case *types.Var:
			add("var %s %s", name, ts(obj.Type()))
		case *types.Func:
			add("func %s%s", name, signature(obj.Type().(*types.Signature), ts))
		case *types.TypeName:
			typeAPI(obj, ts, add)
		}
	}
	return lines
}

// typeAPI describes a type: its kind, its exported fields or interface
// methods, and its methods (those of T, and those only *T has).
func typeAPI(obj *types.TypeName, ts func(types.Type) string, add func(string, ...any)) {
	name := obj.Name()
	if obj.IsAlias() {
		add("type %s = %s", name, ts(obj.Type()))
		return
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		add("type %s %s", name, ts(obj.Type()))
		return
	}
	tparams := typeParams(named.TypeParams(), ts)
	switch u := named.Underlying().(type) {
	case *types.Struct:
		add("type %s%s struct", name, tparams)
		for i := range u.NumFields() {
			f := u.Field(i)
			switch {
			case !f.Exported():
			case f.Embedded():
				add("type %s struct, embedded %s", name, ts(f.Type()))
			default:
				add("type %s struct, field %s %s", name, f.Name(), ts(f.Type()))
			}
		}
	case *types.Interface:
		add("type %s%s interface", name, tparams)
		for i := range u.NumMethods() {
			m := u.Method(i)
			if m.Exported() {
				add("type %s interface, method %s%s", name, m.Name(), signature(m.Type().(*types.Signature), ts))
			} else {
				add("type %s interface, unexported methods", name)
			}
		}
		return
	default:
		add("type %s%s %s", name, tparams, ts(u))
	}
	values := types.NewMethodSet(named)
	pointers := types.NewMethodSet(types.NewPointer(named))
	for i := range pointers.Len() {
		m := pointers.At(i).Obj()
		if !m.Exported() {
			continue
		}
		recv := "*" + name
		if values.Lookup(m.Pkg(), m.Name()) != nil {
			recv = name
		}
		add("method (%s) %s%s", recv, m.Name(), signature(m.Type().(*types.Signature), ts))
	}
}

// signature writes a function's type without parameter names, which
// callers do not see: (T1, ...T2) (R1, R2).
func signature(sig *types.Signature, ts func(types.Type) string) string {
	var b strings.Builder
	b.WriteString(typeParams(sig.TypeParams(), ts))
	b.WriteByte('(')
	for i := range sig.Params().Len() {
		if i > 0 {
			b.WriteString(", ")
		}
		t := sig.Params().At(i).Type()
		if sig.Variadic() && i == sig.Params().Len()-1 {
			b.WriteString("..." + ts(t.(*types.Slice).Elem()))
			continue
		}
		b.WriteString(ts(t))
	}
	b.WriteByte(')')
	switch n := sig.Results().Len(); n {
	case 0:
	case 1:
		b.WriteString(" " + ts(sig.Results().At(0).Type()))
	default:
		b.WriteString(" (")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ts(sig.Results().At(i).Type()))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func typeParams(tps *types.TypeParamList, ts func(types.Type) string) string {
	if tps.Len() == 0 {
		return ""
	}
	var parts []string
	for i := range tps.Len() {
		tp := tps.At(i)
		parts = append(parts, tp.Obj().Name()+" "+ts(tp.Constraint()))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
