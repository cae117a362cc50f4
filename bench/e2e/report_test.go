//go:build linux

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quietRun is a run of every client, 2 CPUs, 3 rounds, whose rounds
// differ by at most 10%.
func quietRun() *run {
	r := &run{
		machine: machine{
			when: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), systemd: "systemd 252 (252.39-1~deb12u1)",
			goVersion: "go1.26.8", cpus: 2, loadBefore: 0.05, loadAfter: 0.40,
			rateLimit: "off (RateLimitBurst=0 in /etc/systemd/journald.conf)", rateLimitOff: true,
		},
		entries: 200000, rounds: 3, clients: clients, gs: []int{1, 4},
		res: map[string]map[int][]result{},
	}
	base := map[string]result{
		"go-systemd":     {48000, 20},
		"slog-journal":   {40000, 24},
		"newstyle":       {50000, 9},
		"newstyle-async": {98000, 1.8},
		"ceiling":        {100000, 6},
	}
	for _, c := range clients {
		r.res[c] = map[int][]result{}
		for _, g := range r.gs {
			for _, k := range []float64{1, 1.1, 1.05} {
				r.res[c][g] = append(r.res[c][g], result{base[c].perSec * k, base[c].cpu * k})
			}
		}
	}
	return r
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want summary
	}{
		{"odd", []float64{3, 1, 2}, summary{2, 1, 3}},
		{"even", []float64{4, 1, 3, 2}, summary{2.5, 1, 4}},
		{"one", []float64{7}, summary{7, 7, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, summarize(tc.xs))
		})
	}
	assert.InDelta(t, 0.1, summary{100, 95, 105}.spread(), 1e-9)
}

func TestNoise(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *run)
		want   []string // what the reasons say, in order; none: quiet
	}{
		{"quiet", func(*run) {}, nil},
		{"at the load limit", func(r *run) { r.loadBefore, r.loadAfter = 0.6, 0.6 }, nil},
		{"loaded before", func(r *run) { r.loadBefore = 0.61 }, []string{"load average before the run 0.61 > 0.60 (0.3 × 2 CPUs)"}},
		{"loaded after", func(r *run) { r.loadAfter = 2.5 }, []string{"load average after the run 2.50 > 0.60"}},
		{"more CPUs, higher limit", func(r *run) { r.cpus, r.loadBefore = 8, 2.3 }, nil},
		{"spread", func(r *run) { r.res["slog-journal"][4][1].perSec = 31000 }, []string{
			"slog-journal, 4 goroutine(s): entries/s spread 28% over the rounds (31,000–42,000) > 15%"}},
		{"too few rounds", func(r *run) {
			r.rounds = 2
			for _, c := range r.clients {
				for _, g := range r.gs {
					r.res[c][g] = r.res[c][g][:2]
				}
			}
		}, []string{"2 round(s): the spread of fewer than 3 says nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := quietRun()
			tc.change(r)
			why := r.noise()
			require.Len(t, why, len(tc.want), "%q", why)
			for i, w := range tc.want {
				assert.Contains(t, why[i], w)
			}
			md := r.markdown()
			if len(tc.want) == 0 {
				assert.Contains(t, md, "**Quiet run**")
				assert.Contains(t, md, "sync / fastest peer")
				assert.Contains(t, r.chart(), "quiet run")
			} else {
				assert.Contains(t, md, "**NOISY RUN")
				assert.NotContains(t, md, "Ratios", "a noisy run prints no headline ratio")
				assert.NotContains(t, md, "sync / fastest peer")
				assert.Contains(t, r.chart(), "NOISY RUN")
			}
		})
	}
}

func TestMarkdownQuiet(t *testing.T) {
	md := quietRun().markdown()
	for _, want := range []string{
		"systemd 252 (252.39-1~deb12u1); 2 CPUs; go1.26.8. 200,000 entries a measurement, 3 interleaved rounds",
		"journald's rate limit: off (RateLimitBurst=0 in /etc/systemd/journald.conf). By default journald keeps 10,000 entries per 30 s",
		"Load average (1 minute): 0.05 before the run, 0.40 after it; a quiet run stays at or under 0.60 (0.3 × 2 CPUs).",
		// median, min–max and spread beside it; CPU the same.
		"| newstyle Send | 1 | 52,500 | 50,000–55,000 | 9.5% | 9.45 | 9.00–9.90 |",
		// Each round's ratio: newstyle / go-systemd is 50/48 in every round.
		"| 1 | 0.98 (0.98–0.98) | 2.04 (2.04–2.04) | 0.09 (0.09–0.09) | 1.04 (1.04–1.04) | 0.45 (0.45–0.45) |",
	} {
		assert.Contains(t, md, want)
	}
}

// A round that measures each client several times keeps the fastest
// measurement, with its own CPU, and the report and chart say so.
func TestBestOf(t *testing.T) {
	ms := []result{{60000, 8}, {90000, 6}, {75000, 7}}
	assert.Equal(t, result{90000, 6}, fastest(ms))
	assert.Equal(t, result{1, 2}, fastest([]result{{1, 2}}))

	r := quietRun()
	assert.NotContains(t, r.markdown(), "fastest of")
	r.best = 3
	assert.Contains(t, r.markdown(), "200,000 entries a measurement, 3 interleaved rounds, each keeping a client's fastest of 3 measurements, made in turn with the others'")
	assert.Contains(t, r.chart(), "median of 3 rounds (each the fastest of 3), whiskers min–max")
}

func TestMarkdownSubsetHasNoRatios(t *testing.T) {
	r := quietRun()
	r.clients = []string{"newstyle", "ceiling"}
	md := r.markdown()
	assert.Contains(t, md, "No ratios: they need every client")
	assert.NotContains(t, md, "async / ceiling")
}

func TestChartWhiskers(t *testing.T) {
	svg := quietRun().chart()
	// A bar and a whisker per client and goroutine count.
	assert.Equal(t, 2*len(clients), strings.Count(svg, `<path d="M`))
	assert.Equal(t, 2*len(clients)+len(clients), strings.Count(svg, "<rect "))
	assert.Contains(t, svg, "median of 3 rounds, whiskers min–max")
	assert.True(t, strings.HasPrefix(svg, "<svg ") && strings.HasSuffix(svg, "</svg>\n"))
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 48912.4: "48,912", 1234567: "1,234,567", -1500: "-1,500"} {
		assert.Equal(t, want, thousands(in), "%v", in)
	}
}

func TestNiceStep(t *testing.T) {
	for in, want := range map[float64]float64{22500: 25000, 9000: 10000, 12000: 20000, 15000: 20000, 20000: 20000, 0.3: 0.5} {
		assert.Equal(t, want, niceStep(in), "%v", in)
	}
}
