package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Target names: where pgbench connects.
const (
	TargetDirect    = "direct"
	TargetShardgate = "shardgate"
	TargetPgBouncer = "pgbouncer"
)

// Key identifies one run in the matrix.
type Key struct {
	Workload string
	Protocol string
	Clients  int
	Target   string
}

func (k Key) String() string {
	return fmt.Sprintf("%s / %s / %d clients / %s", k.Workload, k.Protocol, k.Clients, k.Target)
}

// Outcome is one run's result as the report shows it.
type Outcome struct {
	Result Result
	// Err is set when the run failed: pgbench exited non-zero, aborted or
	// printed nothing usable. Its figures are then not reported.
	Err string
	// CPUMicros is the proxy's CPU time per transaction in microseconds;
	// negative when unknown or when the target is not a proxy.
	CPUMicros float64
	// Warn reports trouble seen around an otherwise complete run, such as
	// server sessions a proxy left inside a transaction.
	Warn string
}

func (o *Outcome) failed() bool { return o.Err != "" }

// clean is a run whose figures can be compared without a caveat.
func (o *Outcome) clean() bool { return o != nil && !o.failed() && o.Warn == "" && o.Result.Clean() }

// Report collects the matrix of runs and renders it.
type Report struct {
	// Meta lines ("key: value") describe the setup above the tables.
	Meta      []string
	Workloads []Workload
	Protocols []string
	Clients   []int
	// Targets that took part, in column order; pgbouncer may be absent.
	Targets []string
	// Notes are shown after the tables, e.g. why pgbouncer is missing.
	Notes []string
	Runs  map[Key]*Outcome
}

// Set records a run.
func (r *Report) Set(k Key, o *Outcome) {
	if r.Runs == nil {
		r.Runs = map[Key]*Outcome{}
	}
	r.Runs[k] = o
}

func (r *Report) has(target string) bool {
	for _, t := range r.Targets {
		if t == target {
			return true
		}
	}
	return false
}

// table is a rendered-agnostic grid: WriteText and WriteMarkdown lay out the
// same cells, so the terminal and the notes file cannot disagree.
type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

// short column labels keep the text table within a terminal's width.
var targetLabel = map[string]string{
	TargetDirect:    "direct",
	TargetShardgate: "sg",
	TargetPgBouncer: "pgb",
}

func (r *Report) tables() []table {
	var out []table
	note := 0
	for _, w := range r.Workloads {
		t := table{title: w.Name + ": " + w.Title}
		t.header = []string{"protocol", "clients"}
		for _, tg := range r.Targets {
			t.header = append(t.header, targetLabel[tg]+" tps", targetLabel[tg]+" ms")
		}
		withPgb := r.has(TargetPgBouncer)
		t.header = append(t.header, "sg/direct")
		if withPgb {
			t.header = append(t.header, "sg/pgb")
		}
		t.header = append(t.header, "sg us/txn")
		if withPgb {
			t.header = append(t.header, "pgb us/txn")
		}
		for _, p := range r.Protocols {
			for _, c := range r.Clients {
				row := []string{p, strconv.Itoa(c)}
				get := func(tg string) *Outcome {
					return r.Runs[Key{Workload: w.Name, Protocol: p, Clients: c, Target: tg}]
				}
				for _, tg := range r.Targets {
					o := get(tg)
					switch {
					case o == nil:
						row = append(row, "-", "-")
					case o.failed():
						note++
						row = append(row, fmt.Sprintf("FAILED[%d]", note), "-")
						t.notes = append(t.notes, fmt.Sprintf("[%d] %s %s c=%d %s: failed: %s", note, w.Name, p, c, tg, o.Err))
					case !o.Result.Clean() || o.Warn != "":
						note++
						row = append(row, fmt.Sprintf("%.0f ERR[%d]", o.Result.TPS, note), fmtMs(o.Result.LatencyMs))
						t.notes = append(t.notes, fmt.Sprintf("[%d] %s %s c=%d %s: %s", note, w.Name, p, c, tg, describeProblems(o)))
					default:
						row = append(row, fmt.Sprintf("%.0f", o.Result.TPS), fmtMs(o.Result.LatencyMs))
					}
				}
				sg := get(TargetShardgate)
				row = append(row, ratio(sg, get(TargetDirect)))
				if withPgb {
					row = append(row, ratio(sg, get(TargetPgBouncer)))
				}
				row = append(row, cpu(sg))
				if withPgb {
					row = append(row, cpu(get(TargetPgBouncer)))
				}
				t.rows = append(t.rows, row)
			}
		}
		out = append(out, t)
	}
	return out
}

func fmtMs(ms float64) string {
	if ms >= 100 {
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.3f", ms)
}

// ratio compares throughput only between clean runs: a ratio against a
// run that lost clients would flatter or blame the wrong side.
func ratio(a, b *Outcome) string {
	if !a.clean() || !b.clean() {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Result.TPS/b.Result.TPS)
}

func cpu(o *Outcome) string {
	if o == nil || o.failed() || o.CPUMicros < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", o.CPUMicros)
}

// describeProblems explains why a complete run is not clean.
func describeProblems(o *Outcome) string {
	var parts []string
	if !o.Result.Clean() {
		parts = append(parts, describeErrors(o.Result))
	}
	if o.Warn != "" {
		parts = append(parts, o.Warn)
	}
	return strings.Join(parts, "; ")
}

func describeErrors(r Result) string {
	var parts []string
	if r.Aborted {
		parts = append(parts, "run aborted (figures incomplete)")
	}
	if r.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed transactions", r.Failed))
	}
	if r.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d error line(s), first: %s", r.Errors, r.FirstError))
	}
	if len(parts) == 0 {
		parts = append(parts, "no transactions")
	}
	return strings.Join(parts, "; ")
}

// legend explains the columns once, below the tables.
const legend = `tps excludes connection setup; ms is pgbench's average latency.
sg/direct and sg/pgb divide shardgate's tps by the other target's (1.00 = as fast).
us/txn is the proxy process's CPU time (utime+stime from /proc) per transaction:
the steadiest figure on a small shared machine.`

// WriteText renders the report as aligned plain-text tables.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, m := range r.Meta {
		b.WriteString(m + "\n")
	}
	for _, t := range r.tables() {
		t.writeText(&b)
	}
	b.WriteString("\n" + legend + "\n")
	for _, n := range r.Notes {
		b.WriteString("NOTE: " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown renders the report as markdown, to paste into notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# shardgate benchmark\n\n")
	for _, m := range r.Meta {
		b.WriteString("- " + m + "\n")
	}
	for _, t := range r.tables() {
		t.writeMarkdown(&b)
	}
	b.WriteString("\n" + strings.ReplaceAll(legend, "\n", " ") + "\n")
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- **Note:** " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeText renders t as an aligned plain-text table under its title,
// followed by its notes.
func (t table) writeText(b *strings.Builder) {
	b.WriteString("\n== " + t.title + " ==\n")
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = len(h)
	}
	for _, row := range t.rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			// Labels left, figures right, as one reads them.
			if i < 2 {
				fmt.Fprintf(b, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(b, "%*s", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	for _, row := range t.rows {
		line(row)
	}
	for _, n := range t.notes {
		b.WriteString(n + "\n")
	}
}

// writeMarkdown renders t as a markdown table under a heading, followed
// by its notes as a list.
func (t table) writeMarkdown(b *strings.Builder) {
	b.WriteString("\n## " + t.title + "\n\n")
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|")
	for i := range t.header {
		if i < 2 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, row := range t.rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	if len(t.notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.notes {
			// Error text may hold markdown; a code span keeps it literal.
			num, rest, _ := strings.Cut(n, " ")
			b.WriteString("- " + num + " `" + strings.ReplaceAll(rest, "`", "'") + "`\n")
		}
	}
}
