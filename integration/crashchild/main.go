// Command crashchild is the program of the integration tier's crash
// tests: it captures its crashes (package crash) into the journal, prints
// its crash watcher's PID on stdout, and crashes as -kind says. The tests
// build it without -race (the race detector allows 8128 goroutines, and a
// crash past the cap needs tens of thousands).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/crash"
)

func main() {
	kind := flag.String("kind", "panic", "panic, or many (a panic with GOTRACEBACK=all and -n goroutines)")
	n := flag.Int("n", 1000, "goroutines beside the panic, for -kind many")
	ident := flag.String("ident", "crashchild", "SYSLOG_IDENTIFIER")
	namespace := flag.String("namespace", "", "journal namespace")
	flag.Parse()

	err := crash.Capture(&crash.Options{SyslogIdentifier: *ident, Target: newstyle.TargetJournal, Namespace: *namespace})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashchild:", err)
		os.Exit(1)
	}
	fmt.Println(watcher())
	switch *kind {
	case "panic":
		go panicInGoroutine()
	case "many":
		block := make(chan struct{})
		for range *n {
			go func() { <-block }()
		}
		debug.SetTraceback("all")
		go panicAmongMany(*n)
	}
	time.Sleep(time.Minute)
}

func panicInGoroutine() { panic("crashchild: a panic in a goroutine") }

func panicAmongMany(n int) { panic(fmt.Sprintf("crashchild: a panic among %d goroutines", n)) }

// watcher returns the PID of this process's crash watcher, its one
// child, listed under the thread that started it.
func watcher() string {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	var children []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		children = append(children, strings.Fields(string(b))...)
	}
	return strings.Join(children, " ")
}
