//go:build linux

// Command e2e measures journald clients end to end: how many entries a
// second a real systemd-journald stores from each, and how much CPU the
// client spends per entry. It must run as root in the private namespace of
// scripts/private-ns.sh (make bench-e2e), where it starts a fresh
// journald, on empty journal directories, for every measurement.
//
// Each measurement is one client sending -entries entries of the bench
// workload from a child process with -goroutines goroutines, timed from
// the child's first send until `journalctl --sync` returns (journald has
// stored everything sent before), then checked: journalctl must count
// every entry back. Rounds interleave the clients; the report gives
// medians of per-round ratios.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	slogjournal "github.com/systemd/slog-journal"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/bench/workload"
	"github.com/newstyle-go/newstyle/journal"
)

// The workload of the bench module.
const message = workload.Message

var workloadFields = workload.Fields

// The clients, in the order of the report.
var clients = []string{"go-systemd", "slog-journal", "newstyle", "newstyle-async", "ceiling"}

var clientTitle = map[string]string{
	"go-systemd":     "go-systemd journal.Send",
	"slog-journal":   "slog-journal",
	"newstyle":       "newstyle Send",
	"newstyle-async": "newstyle async (Block)",
	"ceiling":        "ceiling: pre-encoded, 100 a datagram",
}

const (
	journaldPath = "/lib/systemd/systemd-journald"
	socketPath   = "/run/systemd/journal/socket"
	batchOf      = 100 // entries per datagram of the ceiling
)

func main() {
	child := flag.String("child", "", "internal: run one client")
	goroutines := flag.Int("goroutines", 1, "internal: goroutines of the client")
	entries := flag.Int("entries", 200000, "entries per measurement")
	rounds := flag.Int("rounds", 3, "rounds, each measuring every client")
	only := flag.String("clients", "", "comma-separated clients to measure (default: all)")
	svg := flag.String("svg", "e2e.svg", "where to write the chart")
	md := flag.String("md", "e2e.md", "where to write the table")
	flag.Parse()
	if *only != "" {
		clients = strings.Split(*only, ",")
	}
	if *child != "" {
		if err := runClient(*child, *goroutines, *entries); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(*entries, *rounds, *svg, *md); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

// result is one measurement.
type result struct {
	perSec float64 // entries stored per second
	cpu    float64 // client CPU µs per entry
}

func run(entries, rounds int, svgPath, mdPath string) error {
	if os.Getenv("NEWSTYLE_PRIVATE_NS") != "1" {
		return errors.New("run me in scripts/private-ns.sh (make bench-e2e): I start and stop journald, and wipe its journal")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	gs := []int{1, 4}
	res := map[string]map[int][]result{}
	for _, c := range clients {
		res[c] = map[int][]result{}
	}
	for r := 0; r < rounds; r++ {
		for _, g := range gs {
			order := append([]string(nil), clients...)
			// Interleaved: each round starts with another client.
			k := r % len(order)
			order = append(order[k:], order[:k]...)
			for _, c := range order {
				m, err := measure(exe, c, g, entries, r)
				if err != nil {
					return fmt.Errorf("%s, %d goroutines, round %d: %w", c, g, r+1, err)
				}
				fmt.Printf("round %d  %-15s %d goroutine(s): %8.0f entries/s  %6.2f µs CPU/entry\n", r+1, c, g, m.perSec, m.cpu)
				res[c][g] = append(res[c][g], m)
			}
		}
	}
	table := report(res, gs, rounds, entries)
	fmt.Print(table)
	if err := os.WriteFile(mdPath, []byte(table), 0o644); err != nil {
		return err
	}
	return os.WriteFile(svgPath, []byte(chart(res, gs)), 0o644)
}

// measure runs one client against a fresh journald.
func measure(exe, client string, g, entries, round int) (result, error) {
	stop, err := startJournald()
	if err != nil {
		return result{}, err
	}
	defer stop()
	ident := fmt.Sprintf("e2e-%s-%d-%d", client, g, round)
	cmd := exec.Command(exe, "-child", client, "-goroutines", strconv.Itoa(g), "-entries", strconv.Itoa(entries))
	cmd.Args[0] = ident // slog-journal takes SYSLOG_IDENTIFIER from os.Args[0]
	cmd.Env = append(os.Environ(), "E2E_IDENT="+ident)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	// The child says "go" once it is set up, just before its first send.
	line, err := bufio.NewReader(out).ReadString('\n')
	start := time.Now()
	if err != nil || line != "go\n" {
		cmd.Wait()
		return result{}, fmt.Errorf("child did not start: %q %v", line, err)
	}
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("child: %w", err)
	}
	if out, err := exec.Command("journalctl", "--sync").CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("journalctl --sync: %v: %s", err, out)
	}
	elapsed := time.Since(start)
	n, err := count(ident)
	if err != nil {
		return result{}, err
	}
	if n != entries {
		return result{}, fmt.Errorf("journalctl counts %d entries of %d", n, entries)
	}
	u := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(u.Utime.Nano() + u.Stime.Nano())
	return result{
		perSec: float64(entries) / elapsed.Seconds(),
		cpu:    float64(cpu.Microseconds()) / float64(entries),
	}, nil
}

// count counts the entries of ident in the journal.
func count(ident string) (int, error) {
	cmd := exec.Command("journalctl", "-t", ident, "-o", "cat", "--output-fields=USER_ID", "--no-pager", "-q")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "u-48213" {
			n++
		}
	}
	return n, cmd.Wait()
}

// startJournald starts a journald on empty directories and returns once
// its socket takes datagrams.
func startJournald() (stop func(), err error) {
	for _, dir := range []string{"/run/log/journal", "/var/log/journal", "/run/systemd/journal"} {
		if err := clearDir(dir); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(journaldPath)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console")
	log, err := os.Create("/run/systemd/e2e-journald.log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		log.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if listening() {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("journald did not listen within 10 s")
		}
	}
}

func listening() bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: socketPath}) == nil
}

func clearDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// runClient sends entries from g goroutines with one client.
func runClient(client string, g, entries int) error {
	ident := os.Getenv("E2E_IDENT")
	var send func(i int) error
	var done func() error = func() error { return nil }
	switch client {
	case "go-systemd":
		vars := map[string]string{"SYSLOG_IDENTIFIER": ident}
		for _, f := range workloadFields {
			vars[f[0]] = f[1]
		}
		send = func(int) error { return sdjournal.Send(message, sdjournal.PriErr, vars) }
	case "slog-journal":
		h, err := slogjournal.NewHandler(nil)
		if err != nil {
			return err
		}
		l := slog.New(h)
		ctx := context.Background()
		attrs := [5]slog.Attr{}
		for i, f := range workloadFields {
			attrs[i] = slog.String(f[0], f[1])
		}
		send = func(int) error {
			l.LogAttrs(ctx, slog.LevelError, message, attrs[0], attrs[1], attrs[2], attrs[3], attrs[4])
			return nil
		}
	case "newstyle", "newstyle-async":
		opts := &journal.WriterOptions{SyslogIdentifier: ident, SendTimeout: -1}
		if client == "newstyle-async" {
			// The workload is at priority err, which waits for delivery
			// by default (SyncPriority): here every entry is queued.
			opts.Async = &journal.AsyncOptions{SyncPriority: journal.NoSyncPriority}
		}
		w, err := journal.NewWriter(opts)
		if err != nil {
			return err
		}
		fields := make([]journal.Field, len(workloadFields))
		for i, f := range workloadFields {
			fields[i] = journal.StringField(f[0], f[1])
		}
		send = func(int) error { return w.Send(message, journal.PriErr, fields...) }
		done = w.Close
	case "ceiling":
		c, err := newCeiling(ident, entries)
		if err != nil {
			return err
		}
		send = c.send
		entries = len(c.datagrams)
	default:
		return fmt.Errorf("no client %q", client)
	}

	if p := os.Getenv("E2E_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("go")
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < entries; i += g {
				if err := send(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return done()
}

// ceiling sends pre-encoded datagrams of batchOf entries: the most this
// journald takes, with nothing else to do.
type ceiling struct {
	fd        int
	addr      unix.RawSockaddrUnix
	addrLen   uint32
	datagrams [][]byte
}

func newCeiling(ident string, entries int) (*ceiling, error) {
	var one []byte
	field := func(name, value string) {
		if strings.Contains(value, "\n") {
			one = append(one, name...)
			one = append(one, '\n')
			one = binary.LittleEndian.AppendUint64(one, uint64(len(value)))
			one = append(one, value...)
			one = append(one, '\n')
			return
		}
		one = append(one, name+"="+value+"\n"...)
	}
	field("MESSAGE", message)
	field("PRIORITY", "3")
	field("SYSLOG_IDENTIFIER", ident)
	for _, f := range workloadFields {
		field(f[0], f[1])
	}
	c := &ceiling{}
	for left := entries; left > 0; left -= batchOf {
		var d []byte
		for i := 0; i < min(batchOf, left); i++ {
			if i > 0 {
				d = append(d, '\n')
			}
			d = append(d, one...)
		}
		c.datagrams = append(c.datagrams, d)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	c.fd = fd
	c.addr.Family = unix.AF_UNIX
	for i := 0; i < len(socketPath); i++ {
		c.addr.Path[i] = int8(socketPath[i])
	}
	c.addrLen = uint32(unsafe.Offsetof(c.addr.Path)) + uint32(len(socketPath)) + 1
	return c, nil
}

func (c *ceiling) send(i int) error {
	d := c.datagrams[i]
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&d[0])), uintptr(len(d)),
			unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&c.addr)), uintptr(c.addrLen))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios returns, per round, f(round's results).
func ratios(res map[string]map[int][]result, g int, f func(map[string]result) float64) []float64 {
	var out []float64
	for r := range res[clients[0]][g] {
		m := map[string]result{}
		for _, c := range clients {
			m[c] = res[c][g][r]
		}
		out = append(out, f(m))
	}
	return out
}

func report(res map[string]map[int][]result, gs []int, rounds, entries int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d entries a measurement, %d rounds; medians.\n\n", entries, rounds)
	fmt.Fprintf(&b, "| client | goroutines | entries/s | client CPU µs/entry |\n| --- | ---: | ---: | ---: |\n")
	for _, g := range gs {
		for _, c := range clients {
			var ps, cs []float64
			for _, m := range res[c][g] {
				ps, cs = append(ps, m.perSec), append(cs, m.cpu)
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.2f |\n", clientTitle[c], g, median(ps), median(cs))
		}
	}
	fmt.Fprintf(&b, "\nMedians of per-round ratios:\n\n| goroutines | async / ceiling | async / fastest peer | async CPU / cheapest peer's | sync / fastest peer | sync CPU / fastest peer's |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, g := range gs {
		fastest := func(m map[string]result) result {
			if m["go-systemd"].perSec >= m["slog-journal"].perSec {
				return m["go-systemd"]
			}
			return m["slog-journal"]
		}
		cheapest := func(m map[string]result) float64 { return min(m["go-systemd"].cpu, m["slog-journal"].cpu) }
		fmt.Fprintf(&b, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", g,
			median(ratios(res, g, func(m map[string]result) float64 { return m["newstyle-async"].perSec / m["ceiling"].perSec })),
			median(ratios(res, g, func(m map[string]result) float64 { return m["newstyle-async"].perSec / fastest(m).perSec })),
			median(ratios(res, g, func(m map[string]result) float64 { return m["newstyle-async"].cpu / cheapest(m) })),
			median(ratios(res, g, func(m map[string]result) float64 { return m["newstyle"].perSec / fastest(m).perSec })),
			median(ratios(res, g, func(m map[string]result) float64 { return m["newstyle"].cpu / fastest(m).cpu })),
		)
	}
	return b.String()
}

// chart draws the median entries/s of each client, a group of bars per
// number of goroutines.
func chart(res map[string]map[int][]result, gs []int) string {
	const w, h, left, top, barW, gap = 760, 360, 70, 40, 22, 40
	colors := []string{"#9e9e9e", "#bdbdbd", "#64b5f6", "#1565c0", "#2e7d32"}
	max := 0.0
	med := map[string]map[int]float64{}
	for _, c := range clients {
		med[c] = map[int]float64{}
		for _, g := range gs {
			var ps []float64
			for _, m := range res[c][g] {
				ps = append(ps, m.perSec)
			}
			med[c][g] = median(ps)
			if med[c][g] > max {
				max = med[c][g]
			}
		}
	}
	plotH := float64(h - top - 70)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">entries/s stored by a real systemd-journald (median)</text>`+"\n", left)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-70, w-20, h-70)
	for i := 0; i <= 4; i++ {
		v := max * float64(i) / 4
		y := float64(h-70) - plotH*float64(i)/4
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%.0fk</text>`+"\n", left-6, y+4, v/1000)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>`+"\n", left, y, w-20, y)
	}
	x := left + gap
	for _, g := range gs {
		x0 := x
		for i, c := range clients {
			bh := plotH * med[c][g] / max
			fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%.0f" fill="%s"/>`+"\n", x, float64(h-70)-bh, barW*2, bh, colors[i])
			x += barW*2 + 4
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%d goroutine(s)</text>`+"\n", (x0+x)/2, h-52, g)
		x += gap
	}
	for i, c := range clients {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+(i%3)*230, h-36+(i/3)*18, colors[i], left+(i%3)*230+16, h-26+(i/3)*18, clientTitle[c])
	}
	b.WriteString("</svg>\n")
	return b.String()
}
