package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Workload is one pgbench built-in script.
type Workload struct {
	// Name labels the workload in the report.
	Name string
	// Title describes it in the report's table headings.
	Title string
	// Args select the script; none means pgbench's default TPC-B-like one.
	Args []string
}

// The built-in workloads the benchmark knows, by name.
var (
	SelectOnly = Workload{Name: "select-only", Title: "pgbench -S (select only)", Args: []string{"-S"}}
	TPCB       = Workload{Name: "tpc-b", Title: "pgbench default (TPC-B-like)", Args: nil}
)

// Protocols are pgbench's -M query modes, in report order: simple query,
// unnamed extended (Parse/Bind/Execute per query) and named prepared
// statements, which a transaction pooler must track across server
// connections.
var Protocols = []string{"simple", "extended", "prepared"}

// RunSpec is one pgbench invocation.
type RunSpec struct {
	Workload Workload
	Protocol string
	Clients  int
	// Threads is pgbench -j; it is capped at Clients because pgbench
	// refuses more threads than clients.
	Threads int
	// Seconds is pgbench -T.
	Seconds int
	Host    string
	Port    int
	User    string
	DB      string
}

// Args returns pgbench's command line (without the program name). -n skips
// pgbench's own vacuum: through a pooler it would run on whichever server
// connection is handy, and Run does the equivalent directly instead.
func (s RunSpec) Args() []string {
	threads := s.Threads
	if threads < 1 {
		threads = 1
	}
	if threads > s.Clients {
		threads = s.Clients
	}
	args := []string{"-n",
		"-c", strconv.Itoa(s.Clients),
		"-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(s.Seconds),
		"-M", s.Protocol,
	}
	args = append(args, s.Workload.Args...)
	return append(args, "-h", s.Host, "-p", strconv.Itoa(s.Port), "-U", s.User, s.DB)
}

// Result is what one pgbench run reported.
type Result struct {
	// TPS excludes the initial connection time.
	TPS float64
	// LatencyMs is pgbench's "latency average".
	LatencyMs float64
	// Txns is the number of transactions actually processed.
	Txns int64
	// Failed is pgbench's "number of failed transactions" (serialization
	// and deadlock failures; PostgreSQL 15's pgbench and later).
	Failed int64
	// Aborted is set when a client aborted, which makes the figures
	// incomplete: pgbench then says "Run was aborted".
	Aborted bool
	// AbortedClients counts "client N ... aborted" lines.
	AbortedClients int
	// Errors counts error lines on stderr.
	Errors int
	// FirstError is the first error line on stderr, or "".
	FirstError string
}

// Clean reports whether the run completed without any kind of error.
func (r Result) Clean() bool {
	return !r.Aborted && r.Failed == 0 && r.Errors == 0 && r.TPS > 0
}

// ParseOutput extracts a Result from pgbench's stdout and stderr. It fails
// only when stdout has no tps line at all; a run that aborted part-way still
// parses, with Aborted set.
func ParseOutput(stdout, stderr string) (Result, error) {
	var r Result
	var haveTPS, sawTxns bool
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "number of transactions actually processed:"):
			v := strings.TrimSpace(strings.TrimPrefix(line, "number of transactions actually processed:"))
			// With -t the figure reads "done/planned".
			v, _, _ = strings.Cut(v, "/")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return r, fmt.Errorf("bad transaction count in %q", line)
			}
			r.Txns, sawTxns = n, true
		case strings.HasPrefix(line, "number of failed transactions:"):
			f := strings.Fields(strings.TrimPrefix(line, "number of failed transactions:"))
			if len(f) > 0 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return r, fmt.Errorf("bad failed count in %q", line)
				}
				r.Failed = n
			}
		case strings.HasPrefix(line, "latency average ="):
			f := strings.Fields(strings.TrimPrefix(line, "latency average ="))
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				if err != nil {
					return r, fmt.Errorf("bad latency in %q", line)
				}
				r.LatencyMs = v
			}
		case strings.HasPrefix(line, "tps ="):
			f := strings.Fields(strings.TrimPrefix(line, "tps ="))
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return r, fmt.Errorf("bad tps in %q", line)
			}
			// pgbench before 14 prints two tps lines; the one excluding
			// connection setup is the one comparable with 14+'s single line.
			if !haveTPS || strings.Contains(line, "excluding connections") {
				r.TPS = v
			}
			haveTPS = true
		case strings.Contains(line, "Run was aborted"):
			r.Aborted = true
		}
	}
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.Contains(line, " aborted in command ") {
			r.AbortedClients++
			r.Aborted = true
		}
		if strings.Contains(line, "Run was aborted") {
			r.Aborted = true
		}
		if isErrorLine(line) {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = line
			}
		}
	}
	switch {
	case !haveTPS && sawTxns && r.Txns == 0:
		// pgbench 15 prints no latency or tps when nothing completed, e.g.
		// when every client waited on a lock for the whole run.
		return r, fmt.Errorf("no transaction completed during the run")
	case !haveTPS:
		return r, fmt.Errorf("pgbench printed no tps line")
	}
	return r, nil
}

// isErrorLine recognises pgbench's own error reports ("pgbench: error:",
// "pgbench: fatal:") and server messages it relays.
func isErrorLine(line string) bool {
	for _, marker := range []string{"error:", "fatal:", "ERROR:", "FATAL:", "PANIC:"} {
		if strings.Contains(line, marker) {
			return true
		}
	}
	return false
}

// FirstErrorLine picks the line that best explains a failed run: the first
// error line, else the first non-empty line of stderr, else of stdout.
func FirstErrorLine(stdout, stderr string) string {
	for _, s := range []string{stderr, stdout} {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" && isErrorLine(line) {
				return line
			}
		}
	}
	for _, s := range []string{stderr, stdout} {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				return line
			}
		}
	}
	return ""
}
