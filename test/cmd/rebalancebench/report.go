package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is a run's results.
type report struct {
	cfg      config
	meta     []string
	copies   []moveResult // [0,) under load, then back without
	cutovers []moveResult
	load     loadTotals
	checks   []string
	notes    []string
	problems []string
}

// loadTotals are the clients' writes over the whole run.
type loadTotals struct {
	updates, inserts, errs, notFound int64
	samples                          []string
}

func (r *report) hasResults() bool { return len(r.copies) > 0 }

func (r *report) problem(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}

// table is a markdown table, padded so that it also reads as text.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(b, " %-*s |", width[i], c)
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for _, w := range width {
		b.WriteString(strings.Repeat("-", w+2) + "|")
	}
	b.WriteString("\n")
	for _, row := range t.rows {
		line(row)
	}
}

// writeText prints the report: meta, copy rate, cutovers, summary,
// checks.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# shardgate rebalance benchmark\n\n")
	for _, m := range r.meta {
		b.WriteString("- " + m + "\n")
	}

	b.WriteString("\n## Copy rate ([0,) = half the hash space)\n\n")
	ct := table{header: []string{"move", "client writes/s", "rows copied", "copy took", "rows/s", "write pause", "attempts", "whole move", "worst write in range", "worst write elsewhere"}}
	for _, m := range r.copies {
		rate, inW, outW := "none", "-", "-"
		if m.loaded {
			rate, inW, outW = fmt.Sprintf("%.0f", m.writesPerSec()), fmtDur(m.seen.inMax), fmtDur(m.seen.outMax)
		}
		ct.add(moveName(m), rate, fmt.Sprint(m.rowsCopied), fmtDur(m.copyTook), fmt.Sprintf("%.0f", m.rowsPerSec()),
			fmtDur(m.pause), fmt.Sprint(m.attempts), fmtDur(m.wall), inW, outW)
	}
	ct.write(&b)

	if len(r.cutovers) > 0 {
		fmt.Fprintf(&b, "\n## Cutovers ([0, 2^60) = 1/16 of the hash space, back and forth, %d clients writing)\n\n", r.cfg.clients)
		t := table{header: []string{"#", "move", "rows copied", "copy took", "tool write pause", "worst write in range", "writes in range", "worst write elsewhere", "client writes/s", "attempts", "whole move"}}
		var pauses, inW, outW []time.Duration
		for i, m := range r.cutovers {
			t.add(fmt.Sprint(i+1), moveName(m), fmt.Sprint(m.rowsCopied), fmtDur(m.copyTook), fmtDur(m.pause),
				fmtDur(m.seen.inMax), fmt.Sprint(m.seen.inN), fmtDur(m.seen.outMax), fmt.Sprintf("%.0f", m.writesPerSec()), fmt.Sprint(m.attempts), fmtDur(m.wall))
			pauses, inW, outW = append(pauses, m.pause), append(inW, m.seen.inMax), append(outW, m.seen.outMax)
		}
		t.write(&b)
		fmt.Fprintf(&b, "\n## Write pause over %d cutovers\n\n", len(r.cutovers))
		s := table{header: []string{"", "p50", "p99", "max"}}
		for _, row := range []struct {
			name string
			ds   []time.Duration
		}{
			{"tool's write pause (freeze to owner switch)", pauses},
			{"longest client write to the moving range, per move", inW},
			{"longest client write elsewhere, per move", outW},
		} {
			s.add(row.name, fmtDur(percentile(row.ds, 50)), fmtDur(percentile(row.ds, 99)), fmtDur(percentile(row.ds, 100)))
		}
		s.write(&b)
	}

	b.WriteString("\n## Checks\n\n")
	l := r.load
	fmt.Fprintf(&b, "- client writes: %d updates, %d inserts, %d error(s) (%d update(s) that found no row)\n", l.updates, l.inserts, l.errs, l.notFound)
	for _, s := range l.samples {
		b.WriteString("  - error: " + s + "\n")
	}
	for _, c := range r.checks {
		b.WriteString("- " + c + "\n")
	}
	b.WriteString("\n" + legend + "\n")
	for _, n := range r.notes {
		b.WriteString("NOTE: " + n + "\n")
	}
	for _, p := range r.problems {
		b.WriteString("PROBLEM: " + p + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

const legend = `copy took: the tool's figure, from the subscription's creation until the initial copy is done, the slot's lag
is under 1 MiB and a marker row has reached the target; the tool looks every 500ms, so small copies read slow.
write pause: the tool's, from freezing the range in the catalog map to switching its owner.
worst write in range: the longest any client waited for one write to a key of the moving range while the move ran
(held by the proxy during the pause, then sent to the new owner); with W such writes a second it falls short of the
proxy's hold by up to about 1/W. elsewhere: the same for the other keys.`

func moveName(m moveResult) string {
	from := m.from
	if from == "" {
		from = "?"
	}
	return fmt.Sprintf("%s %s -> %s", rangeText(m.req), from, m.req.to)
}

func rangeText(r moveReq) string {
	return fmt.Sprintf("[%s, %s)", hashBound(r.lo, "-inf"), hashBound(r.hi, "+inf"))
}

// percentile is the nearest-rank p-th percentile of ds (p 100: the max).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// fmtDur rounds a duration for the tables: 3 significant figures or so.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 100*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func rateText(rate int) string {
	if rate == 0 {
		return "each as fast as it can (no rate limit)"
	}
	return fmt.Sprintf("%d writes/s in total", rate)
}

// machineLine says what the numbers ran on.
func machineLine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = ", " + strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	// Other work on a shared machine skews the figures; the load average
	// at the start says whether there was any.
	load := ""
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			load = ", load average " + f[0] + " at the start"
		}
	}
	return fmt.Sprintf("machine: %d CPUs (%s/%s%s); the clients, both servers, shardgate and the move tool share them%s",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, model, load)
}
