//go:build linux

package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// When a run is noisy: its figures do not reproduce, and it prints no
// headline ratio.
const (
	// loadPerCPU is the highest 1-minute load average per CPU, before the
	// run or after it, of a quiet run. The run itself keeps about two
	// tasks busy (journald and the client), so the reading after it is
	// taken once that has decayed (-settle).
	loadPerCPU = 0.3
	// maxSpread is the highest spread of a client's entries/s over its
	// rounds, (max−min)/median, of a quiet run.
	maxSpread = 0.15
	// minRounds is the fewest rounds whose spread says anything.
	minRounds = 3
)

// machine is the state of the machine around a run, and what it ran.
type machine struct {
	when       time.Time
	systemd    string // journalctl --version's first line
	goVersion  string
	cpus       int
	loadBefore float64 // 1-minute load average before the first round
	loadAfter  float64 // and after the last
	rateLimit  string  // journald's rate limit, as its configuration says
	// rateLimitOff says that journald.conf turns the rate limit off.
	rateLimitOff bool
}

// loadLimit is the highest load average of a quiet run on this machine.
func (m machine) loadLimit() float64 { return loadPerCPU * float64(m.cpus) }

// run is a whole run: every measurement, by client and goroutines, in
// round order.
type run struct {
	machine
	entries, rounds int
	best            int // measurements a round keeps the fastest of
	clients         []string
	gs              []int
	res             map[string]map[int][]result
}

// summary is a median with the least and greatest value it is taken of.
type summary struct{ med, min, max float64 }

func summarize(xs []float64) summary {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return summary{math.NaN(), math.NaN(), math.NaN()}
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{med, s[0], s[len(s)-1]}
}

// spread is (max−min)/median.
func (s summary) spread() float64 { return (s.max - s.min) / s.med }

// perSec and cpu summarize one client's rounds at g goroutines.
func (r *run) perSec(c string, g int) summary {
	return r.summarizeBy(c, g, func(m result) float64 { return m.perSec })
}

func (r *run) cpu(c string, g int) summary {
	return r.summarizeBy(c, g, func(m result) float64 { return m.cpu })
}

func (r *run) summarizeBy(c string, g int, f func(result) float64) summary {
	var xs []float64
	for _, m := range r.res[c][g] {
		xs = append(xs, f(m))
	}
	return summarize(xs)
}

// noise returns why the run is noisy, nothing for a quiet one.
func (r *run) noise() []string {
	var why []string
	if r.rounds < minRounds {
		why = append(why, fmt.Sprintf("%d round(s): the spread of fewer than %d says nothing", r.rounds, minRounds))
	}
	for _, l := range []struct {
		when string
		load float64
	}{{"before", r.loadBefore}, {"after", r.loadAfter}} {
		if l.load > r.loadLimit() {
			why = append(why, fmt.Sprintf("load average %s the run %.2f > %.2f (%.1f × %d CPUs)", l.when, l.load, r.loadLimit(), loadPerCPU, r.cpus))
		}
	}
	for _, g := range r.gs {
		for _, c := range r.clients {
			if s := r.perSec(c, g); s.spread() > maxSpread {
				why = append(why, fmt.Sprintf("%s, %d goroutine(s): entries/s spread %.0f%% over the rounds (%s) > %.0f%%",
					clientTitle[c], g, 100*s.spread(), minMax(s, 0), 100*maxSpread))
			}
		}
	}
	return why
}

// ratio is one headline ratio, computed per round.
type ratio struct {
	title string
	f     func(m map[string]result) float64
}

// The clients of the ratios, and the ratios.
var (
	peers       = []string{"go-systemd", "slog-journal"}
	ratioNeeds  = []string{"go-systemd", "slog-journal", "newstyle", "newstyle-async", "ceiling"}
	ratioTables = []ratio{
		{"async / ceiling", func(m map[string]result) float64 { return m["newstyle-async"].perSec / m["ceiling"].perSec }},
		{"async / fastest peer", func(m map[string]result) float64 { return m["newstyle-async"].perSec / fastestPeer(m) }},
		{"async CPU / cheapest peer's", func(m map[string]result) float64 { return m["newstyle-async"].cpu / cheapestPeer(m) }},
		{"sync / fastest peer", func(m map[string]result) float64 { return m["newstyle"].perSec / fastestPeer(m) }},
		{"sync CPU / cheapest peer's", func(m map[string]result) float64 { return m["newstyle"].cpu / cheapestPeer(m) }},
	}
)

// fastestPeer is the most entries/s of a peer in one round, cheapestPeer
// the least client CPU per entry.
func fastestPeer(m map[string]result) float64 {
	return max(m[peers[0]].perSec, m[peers[1]].perSec)
}

func cheapestPeer(m map[string]result) float64 {
	return min(m[peers[0]].cpu, m[peers[1]].cpu)
}

// ratio summarizes a ratio over the rounds: each round's clients are
// compared with each other, never with another round's.
func (r *run) ratio(g int, f func(map[string]result) float64) summary {
	var xs []float64
	for i := range r.res[r.clients[0]][g] {
		m := map[string]result{}
		for _, c := range r.clients {
			m[c] = r.res[c][g][i]
		}
		xs = append(xs, f(m))
	}
	return summarize(xs)
}

// hasRatioClients says whether every client of the ratios was measured.
func (r *run) hasRatioClients() bool {
	for _, c := range ratioNeeds {
		if !slices.Contains(r.clients, c) {
			return false
		}
	}
	return true
}

// markdown is the report of bench/e2e.md.
func (r *run) markdown() string {
	var b strings.Builder
	b.WriteString("# make bench-e2e\n\n")
	fmt.Fprintf(&b, "%s; %s; %d CPUs; %s. %s entries a measurement, %d interleaved rounds%s; medians, min–max over the rounds.\n\n",
		r.when.UTC().Format("2006-01-02 15:04 MST"), r.systemd, r.cpus, r.goVersion, thousands(float64(r.entries)), r.rounds, r.bestOf())
	fmt.Fprintf(&b, "journald's rate limit: %s. By default journald keeps 10,000 entries per 30 s from each unit and drops the rest (README: \"journald's rate limit\"); these figures are what it stores with none.\n\n", r.rateLimit)
	fmt.Fprintf(&b, "journald's files: %s, so that no measurement crosses a rotation.\n\n", fileLimits)
	fmt.Fprintf(&b, "Load average (1 minute): %.2f before the run, %.2f after it; a quiet run stays at or under %.2f (%.1f × %d CPUs).\n\n",
		r.loadBefore, r.loadAfter, r.loadLimit(), loadPerCPU, r.cpus)
	why := r.noise()
	if len(why) == 0 {
		fmt.Fprintf(&b, "**Quiet run**: the load stayed low and every client's entries/s stayed within %.0f%% over the rounds.\n\n", 100*maxSpread)
	} else {
		fmt.Fprintf(&b, "**NOISY RUN: these figures do not reproduce, and no headline ratio is printed.**\n\n")
		for _, w := range why {
			fmt.Fprintf(&b, "- %s\n", w)
		}
		b.WriteString("\n")
	}
	b.WriteString("| client | goroutines | entries/s | min–max | spread | client CPU µs/entry | min–max |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, g := range r.gs {
		for _, c := range r.clients {
			ps, cs := r.perSec(c, g), r.cpu(c, g)
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %.1f%% | %.2f | %s |\n",
				clientTitle[c], g, thousands(ps.med), minMax(ps, 0), 100*ps.spread(), cs.med, minMax(cs, 2))
		}
	}
	switch {
	case len(why) > 0:
	case !r.hasRatioClients():
		fmt.Fprintf(&b, "\nNo ratios: they need every client (%s).\n", strings.Join(ratioNeeds, ", "))
	default:
		b.WriteString("\nRatios, each round's clients against each other: medians, min–max over the rounds.\n\n| goroutines |")
		for _, rt := range ratioTables {
			fmt.Fprintf(&b, " %s |", rt.title)
		}
		b.WriteString("\n| ---: |" + strings.Repeat(" ---: |", len(ratioTables)) + "\n")
		for _, g := range r.gs {
			fmt.Fprintf(&b, "| %d |", g)
			for _, rt := range ratioTables {
				s := r.ratio(g, rt.f)
				fmt.Fprintf(&b, " %.2f (%s) |", s.med, minMax(s, 2))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// bestOf says what a round's figure is when it measures a client more
// than once.
func (r *run) bestOf() string {
	if r.best < 2 {
		return ""
	}
	return fmt.Sprintf(", each keeping a client's fastest of %d measurements, made in turn with the others' (others on the machine only ever slow one down)", r.best)
}

// minMax formats a summary's range with prec decimals (0: thousands
// separated).
func minMax(s summary, prec int) string {
	if prec == 0 {
		return thousands(s.min) + "–" + thousands(s.max)
	}
	return strconv.FormatFloat(s.min, 'f', prec, 64) + "–" + strconv.FormatFloat(s.max, 'f', prec, 64)
}

// thousands formats v rounded, with a comma every three digits.
func thousands(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// chart draws each client's median entries/s, a group of bars per number
// of goroutines, with a whisker from the least to the greatest round, and
// says whether the run was quiet.
func (r *run) chart() string {
	const w, h, left, top, barW, gap = 760, 400, 70, 70, 44, 40
	colors := []string{"#9e9e9e", "#bdbdbd", "#64b5f6", "#1565c0", "#2e7d32"}
	peak := 0.0
	for _, c := range r.clients {
		for _, g := range r.gs {
			peak = max(peak, r.perSec(c, g).max)
		}
	}
	step := niceStep(peak / 4)
	ticks := int(math.Ceil(peak / step))
	peak = step * float64(ticks)
	base := float64(h - 80)
	plotH := base - top
	y := func(v float64) float64 { return base - plotH*v/peak }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	each := ""
	if r.best > 1 {
		each = fmt.Sprintf(" (each the fastest of %d)", r.best)
	}
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">entries/s stored by a real systemd-journald: median of %d rounds%s, whiskers min–max</text>`+"\n", left, r.rounds, each)
	limit := "journald's rate limit off"
	if !r.rateLimitOff {
		limit = "journald's rate limit ON"
	}
	fmt.Fprintf(&b, `<text x="%d" y="38">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf(
		"%s, %d CPUs, %s entries a measurement, %s", r.systemd, r.cpus, thousands(float64(r.entries)), limit)))
	if len(r.noise()) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="56">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf(
			"quiet run: load %.2f before, %.2f after (limit %.2f); every client within %.0f%% over the rounds",
			r.loadBefore, r.loadAfter, r.loadLimit(), 100*maxSpread)))
	} else {
		fmt.Fprintf(&b, `<text x="%d" y="56" fill="#c62828" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf(
			"NOISY RUN, figures do not reproduce: load %.2f before, %.2f after (limit %.2f); see e2e.md",
			r.loadBefore, r.loadAfter, r.loadLimit())))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="black"/>`+"\n", left, base, w-20, base)
	for i := 0; i <= ticks; i++ {
		v := step * float64(i)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%sk</text>`+"\n", left-6, y(v)+4, strconv.FormatFloat(v/1000, 'f', -1, 64))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>`+"\n", left, y(v), w-20, y(v))
	}
	x := left + gap
	for _, g := range r.gs {
		x0 := x
		for i, c := range r.clients {
			s := r.perSec(c, g)
			fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%.0f" fill="%s"/>`+"\n", x, y(s.med), barW, base-y(s.med), colors[i%len(colors)])
			mid := x + barW/2
			fmt.Fprintf(&b, `<path d="M%d %.0fV%.0fM%d %.0fH%dM%d %.0fH%d" stroke="black"/>`+"\n",
				mid, y(s.min), y(s.max), mid-6, y(s.min), mid+6, mid-6, y(s.max), mid+6)
			x += barW + 4
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="middle">%d goroutine(s)</text>`+"\n", (x0+x)/2, base+18, g)
		x += gap
	}
	for i, c := range r.clients {
		lx, ly := left+(i%3)*230, int(base)+34+(i/3)*18
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, ly, colors[i%len(colors)], lx+16, ly+10, html.EscapeString(clientTitle[c]))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep is the least of 1, 2, 2.5 or 5 times a power of ten that is
// at least v: the step of the chart's axis.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
