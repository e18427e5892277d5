package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardgate/shardgate/shardmap"
)

// Targets of the sharding benchmark (`benchrun --sharding`), besides
// TargetDirect (the unsharded server, reached directly).
const (
	// TargetSG1 is shardgate with one shard, the unsharded server, and no
	// shard map.
	TargetSG1 = "sg-1shard"
	// TargetSG2 is shardgate over two shards with a hash map.
	TargetSG2 = "sg-2shards"
)

// ShardingTargets are the sharding benchmark's targets in column order.
var ShardingTargets = []string{TargetDirect, TargetSG1, TargetSG2}

var shardingLabel = map[string]string{TargetDirect: "direct", TargetSG1: "sg1", TargetSG2: "sg2"}

// OverheadTarget is the goal for sg2/sg1 point-select throughput: sharding
// may cost at most 5%.
const OverheadTarget = 0.95

// Names of the benchmark's distribution and tables.
const (
	shardDist    = "bench"
	usersTable   = "users"
	scatterTable = "t"
)

// ShardingSpec is the two-shard proxy's map: users and t hashed on id over
// s0 and s1, which split the signed hash space at 0.
func ShardingSpec() shardmap.Spec {
	return shardmap.Spec{
		DefaultShard: "s0",
		Distributions: []shardmap.DistributionSpec{{
			Name: shardDist, Method: shardmap.MethodHash, KeyType: "bigint",
			Tables: []shardmap.TableSpec{{Name: usersTable, Key: "id"}, {Name: scatterTable, Key: "id"}},
			Shards: []string{"s0", "s1"},
		}},
	}
}

// RenderShardedConfig is RenderShardgateConfig plus a sharding section for
// spec's hash distributions (given by shards, not ranges), in the format
// of shardgate.example.yaml.
func RenderShardedConfig(listen string, poolSize int, primaries []string, spec shardmap.Spec) string {
	var b strings.Builder
	b.WriteString(RenderShardgateConfig(listen, poolSize, primaries))
	b.WriteString("sharding:\n")
	if spec.DefaultShard != "" {
		fmt.Fprintf(&b, "  default_shard: %s\n", spec.DefaultShard)
	}
	b.WriteString("  distributions:\n")
	for _, d := range spec.Distributions {
		fmt.Fprintf(&b, "    - name: %s\n      method: %s\n      key_type: %s\n      tables:\n", d.Name, d.Method, d.KeyType)
		for _, t := range d.Tables {
			fmt.Fprintf(&b, "        - name: %s\n          key: %s\n", t.Name, t.Key)
		}
		fmt.Fprintf(&b, "      shards: [%s]\n", strings.Join(d.Shards, ", "))
	}
	return b.String()
}

// Placer returns the shard index that spec's distribution dist gives an
// integer key, computed as the proxy does (PostgreSQL's
// hashint8extended(id, 0), in Go, against the map's hash ranges).
func Placer(spec shardmap.Spec, shards []string, dist string) (func(int64) int, error) {
	m, err := shardmap.Build(spec, shards, 1, nil)
	if err != nil {
		return nil, err
	}
	d := m.Distribution(dist)
	if d == nil {
		return nil, fmt.Errorf("bench: no distribution %q in the map", dist)
	}
	return func(id int64) int {
		i, err := d.ShardOfHash(shardmap.HashInt(id))
		if err != nil {
			// Build checks that the ranges cover the hash space.
			panic(err)
		}
		return i
	}, nil
}

// PointSelectScript is the pgbench script of the overhead benchmark: one
// single-shard point select by a random key per transaction.
func PointSelectScript(users int) string {
	return fmt.Sprintf("\\set id random(1, %d)\nSELECT id, name, balance FROM %s WHERE id = :id;\n", users, usersTable)
}

// splitmix64 is a fixed pseudo-random function of a row's id, so that the
// sharded and the unsharded copies of the data are the same rows.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ScatterRow returns row id of table t: id, v (a pseudo-random bigint to
// sort on, distinct in practice), x (0..99999, to sum), g (0..9, to group
// by) and pad (16 hex digits).
func ScatterRow(id int64) []any {
	h := splitmix64(uint64(id))
	h2 := splitmix64(h)
	return []any{id, int64(h >> 1), int32(h2 % 100000), int32(id % 10), strconv.FormatUint(h2, 16)}
}

// UserRow returns row id of table users: id, name and balance.
func UserRow(id int64) []any {
	return []any{id, "user-" + strconv.FormatInt(id, 10), id * 7 % 10000}
}

// ScatterQuery is one statement of the scatter benchmark.
type ScatterQuery struct {
	Name string
	SQL  string
	// Ordered: the answer's row order is defined, so answers compare as
	// they come; otherwise they are compared sorted.
	Ordered bool
}

// ScatterQueries read all of t, which no key narrows: through the sharded
// proxy they run on both shards and the answers are merged.
var ScatterQueries = []ScatterQuery{
	{Name: "count", SQL: "SELECT count(*) FROM t", Ordered: true},
	{Name: "top-10", SQL: "SELECT * FROM t ORDER BY v LIMIT 10", Ordered: true},
	{Name: "sum-avg", SQL: "SELECT sum(x), avg(x) FROM t", Ordered: true},
	{Name: "group-by", SQL: "SELECT g, count(*), sum(x), avg(x) FROM t GROUP BY g ORDER BY g", Ordered: true},
	{Name: "rows-1pct", SQL: "SELECT id, v FROM t WHERE x < 1000", Ordered: false},
}

// ScatterModes are the query protocols of the scatter benchmark: simple
// query, and pgx's default (extended, statements prepared once per
// connection).
var ScatterModes = []string{"simple", "prepared"}

// ScatterResult is one (query, protocol) of the scatter benchmark.
type ScatterResult struct {
	Query ScatterQuery
	Mode  string
	// Rows is the number of rows of the direct answer.
	Rows int
	// Times per target, one per timed run.
	Times map[string][]time.Duration
	// CPUMillis is a proxy target's CPU time per query, in ms (the timed
	// runs' total over their count); absent when unknown.
	CPUMillis map[string]float64
	// Mismatch, when not empty, says how a proxy's answer differed from
	// the direct one; the figures are then not comparable.
	Mismatch string
	// Err is the first error of any run; the row has no figures then.
	Err string
}

// Median is the middle duration (the mean of the middle two for an even
// count), 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// PointKey identifies a point-select combination.
type PointKey struct {
	Protocol string
	Clients  int
	Target   string
}

// ShardingReport collects the sharding benchmark's results and renders
// them.
type ShardingReport struct {
	Meta      []string
	Protocols []string
	Clients   []int
	// Point holds one outcome per round for each combination.
	Point map[PointKey][]*Outcome
	// ServerCPU holds, aligned with Point, the CPU time per transaction of
	// the PostgreSQL servers the target used, in µs; negative if unknown.
	ServerCPU map[PointKey][]float64
	Scatter   []*ScatterResult
	Notes     []string
}

// AddPoint records one round of a combination, with the servers' CPU
// time per transaction in µs (negative if unknown).
func (r *ShardingReport) AddPoint(k PointKey, o *Outcome, serverMicros float64) {
	if r.Point == nil {
		r.Point = map[PointKey][]*Outcome{}
		r.ServerCPU = map[PointKey][]float64{}
	}
	r.Point[k] = append(r.Point[k], o)
	r.ServerCPU[k] = append(r.ServerCPU[k], serverMicros)
}

// WeightedMicros averages per-round µs/txn figures weighted by each
// round's transactions, over the rounds that completed; negative when a
// completed round's figure is unknown or nothing completed.
func WeightedMicros(runs []*Outcome, micros []float64) float64 {
	var sum float64
	var txns int64
	for i, o := range runs {
		if o == nil || o.failed() {
			continue
		}
		if i >= len(micros) || micros[i] < 0 {
			return -1
		}
		sum += micros[i] * float64(o.Result.Txns)
		txns += o.Result.Txns
	}
	if txns == 0 {
		return -1
	}
	return sum / float64(txns)
}

// PointStats sums up a combination's rounds.
type PointStats struct {
	// TPS and Ms are means over the rounds.
	TPS, Ms float64
	// CPU is the proxy's CPU time per transaction over all rounds, in µs
	// (weighted by each round's transactions); negative when unknown.
	CPU float64
	// Rounds is how many rounds were summed up.
	Rounds int
	// Problem says why the figures are missing or not clean.
	Problem string
}

// SummarizeRounds averages a combination's rounds. Any failed or unclean
// round is reported in Problem; failed rounds are left out of the figures.
func SummarizeRounds(runs []*Outcome) PointStats {
	var s PointStats
	var problems []string
	var cpuWeighted float64
	var cpuTxns int64
	cpuKnown := true
	for i, o := range runs {
		if o == nil {
			continue
		}
		if o.failed() {
			problems = append(problems, fmt.Sprintf("round %d failed: %s", i+1, o.Err))
			continue
		}
		if !o.clean() {
			problems = append(problems, fmt.Sprintf("round %d: %s", i+1, describeProblems(o)))
		}
		s.Rounds++
		s.TPS += o.Result.TPS
		s.Ms += o.Result.LatencyMs
		if o.CPUMicros < 0 {
			cpuKnown = false
		} else {
			cpuWeighted += o.CPUMicros * float64(o.Result.Txns)
			cpuTxns += o.Result.Txns
		}
	}
	if s.Rounds > 0 {
		s.TPS /= float64(s.Rounds)
		s.Ms /= float64(s.Rounds)
	}
	s.CPU = -1
	if cpuKnown && cpuTxns > 0 {
		s.CPU = cpuWeighted / float64(cpuTxns)
	}
	if s.Rounds == 0 && len(problems) == 0 {
		problems = append(problems, "no runs")
	}
	s.Problem = strings.Join(problems, "; ")
	return s
}

// RoundRatios divides a's tps by b's round by round, over the rounds both
// ran cleanly.
func RoundRatios(a, b []*Outcome) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].clean() && b[i].clean() {
			out = append(out, a[i].Result.TPS/b[i].Result.TPS)
		}
	}
	return out
}

// ratioCell shows the ratio of the means, with the spread of the
// per-round ratios when there are several: "0.97 (0.95-0.99)".
func ratioCell(a, b PointStats, rounds []float64) string {
	if a.Problem != "" || b.Problem != "" || b.TPS == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.3f", a.TPS/b.TPS)
	if len(rounds) > 1 {
		s += fmt.Sprintf(" (%.2f-%.2f)", slices.Min(rounds), slices.Max(rounds))
	}
	return s
}

func cpuCell(s PointStats) string {
	if s.Rounds == 0 || s.CPU < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", s.CPU)
}

// pointTable lays out the overhead benchmark.
func (r *ShardingReport) pointTable() (table, []string) {
	t := table{title: "sharding overhead: point select by key (pgbench script), sg2 (2 shards, hash map) vs sg1 (1 shard, no map)"}
	t.header = []string{"protocol", "clients"}
	for _, tg := range ShardingTargets {
		t.header = append(t.header, shardingLabel[tg]+" tps")
	}
	t.header = append(t.header, "sg2/sg1", "sg1/direct", "sg1 proxy us", "sg2 proxy us", "+proxy us")
	for _, tg := range ShardingTargets {
		t.header = append(t.header, shardingLabel[tg]+" pg us")
	}
	var verdict []string
	met, total := 0, 0
	note := 0
	for _, p := range r.Protocols {
		for _, c := range r.Clients {
			row := []string{p, strconv.Itoa(c)}
			stats := map[string]PointStats{}
			for _, tg := range ShardingTargets {
				s := SummarizeRounds(r.Point[PointKey{p, c, tg}])
				stats[tg] = s
				switch {
				case s.Rounds == 0:
					note++
					row = append(row, fmt.Sprintf("FAILED[%d]", note))
					t.notes = append(t.notes, fmt.Sprintf("[%d] %s c=%d %s: %s", note, p, c, tg, s.Problem))
				case s.Problem != "":
					note++
					row = append(row, fmt.Sprintf("%.0f ERR[%d]", s.TPS, note))
					t.notes = append(t.notes, fmt.Sprintf("[%d] %s c=%d %s: %s", note, p, c, tg, s.Problem))
				default:
					row = append(row, fmt.Sprintf("%.0f", s.TPS))
				}
			}
			sg1, sg2, direct := stats[TargetSG1], stats[TargetSG2], stats[TargetDirect]
			row = append(row,
				ratioCell(sg2, sg1, RoundRatios(r.Point[PointKey{p, c, TargetSG2}], r.Point[PointKey{p, c, TargetSG1}])),
				ratioCell(sg1, direct, nil),
				cpuCell(sg1), cpuCell(sg2))
			if sg1.CPU >= 0 && sg2.CPU >= 0 && sg1.Rounds > 0 && sg2.Rounds > 0 {
				row = append(row, fmt.Sprintf("%+.1f", sg2.CPU-sg1.CPU))
			} else {
				row = append(row, "-")
			}
			for _, tg := range ShardingTargets {
				k := PointKey{p, c, tg}
				if us := WeightedMicros(r.Point[k], r.ServerCPU[k]); us >= 0 {
					row = append(row, fmt.Sprintf("%.1f", us))
				} else {
					row = append(row, "-")
				}
			}
			t.rows = append(t.rows, row)
			if sg1.Problem == "" && sg2.Problem == "" && sg1.TPS > 0 {
				total++
				if sg2.TPS/sg1.TPS >= OverheadTarget {
					met++
				} else {
					verdict = append(verdict, fmt.Sprintf("%s c=%d (%.3f)", p, c, sg2.TPS/sg1.TPS))
				}
			}
		}
	}
	summary := []string{fmt.Sprintf("overhead target sg2/sg1 >= %.2f: met in %d of %d combinations", OverheadTarget, met, total)}
	if len(verdict) > 0 {
		summary[0] += "; missed: " + strings.Join(verdict, ", ")
	}
	return t, summary
}

func fmtDur(d time.Duration) string {
	return fmtMs(float64(d) / float64(time.Millisecond))
}

// scatterTable lays out the scatter benchmark.
func (r *ShardingReport) scatterTable() table {
	t := table{title: "scatter over all rows: sg2 (2 shards, merged) vs direct (1 unsharded server), median ms"}
	t.header = []string{"query", "protocol", "rows"}
	for _, tg := range ShardingTargets {
		t.header = append(t.header, shardingLabel[tg]+" ms")
	}
	t.header = append(t.header, "sg2/direct", "sg1/direct", "sg2 cpu ms/q", "same answer")
	note := 0
	for _, s := range r.Scatter {
		row := []string{s.Query.Name, s.Mode}
		if s.Err != "" {
			note++
			row = append(row, fmt.Sprintf("FAILED[%d]", note))
			for range len(t.header) - len(row) {
				row = append(row, "-")
			}
			t.rows = append(t.rows, row)
			t.notes = append(t.notes, fmt.Sprintf("[%d] %s %s: %s", note, s.Query.Name, s.Mode, s.Err))
			continue
		}
		row = append(row, strconv.Itoa(s.Rows))
		med := map[string]time.Duration{}
		for _, tg := range ShardingTargets {
			med[tg] = Median(s.Times[tg])
			if len(s.Times[tg]) == 0 {
				row = append(row, "-")
			} else {
				row = append(row, fmtDur(med[tg]))
			}
		}
		rat := func(a, b string) string {
			if len(s.Times[a]) == 0 || len(s.Times[b]) == 0 || med[b] == 0 || s.Mismatch != "" {
				return "-"
			}
			return fmt.Sprintf("%.2f", float64(med[a])/float64(med[b]))
		}
		row = append(row, rat(TargetSG2, TargetDirect), rat(TargetSG1, TargetDirect))
		if c, ok := s.CPUMillis[TargetSG2]; ok {
			row = append(row, fmt.Sprintf("%.1f", c))
		} else {
			row = append(row, "-")
		}
		if s.Mismatch == "" {
			row = append(row, "yes")
		} else {
			note++
			row = append(row, fmt.Sprintf("NO[%d]", note))
			t.notes = append(t.notes, fmt.Sprintf("[%d] %s %s: %s", note, s.Query.Name, s.Mode, s.Mismatch))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// scatterSQL lists the scatter queries' text once, below the table.
func scatterSQL() []string {
	var out []string
	for _, q := range ScatterQueries {
		out = append(out, fmt.Sprintf("%-9s %s", q.Name, q.SQL))
	}
	return out
}

const shardingLegend = `direct: the unsharded server (all rows), reached directly. sg1: shardgate with one shard (that server) and no shard map.
sg2: shardgate over two other servers holding the same rows split by hashint8extended(id, 0) (s0 < 0 <= s1), with a hash map.
Point select: tps is the mean over the rounds (pgbench's latency is about clients/tps); sg2/sg1 is the ratio of mean tps,
with the per-round ratios in brackets. proxy us is the proxy process's CPU time (utime+stime from /proc) per transaction;
pg us the CPU per transaction of the PostgreSQL servers the target used (postmaster and its children, backends included).
Scatter: median wall time of one query, client-side, rows read to the end; sg2/direct < 1 means the two shards in parallel
answered faster than one server. cpu ms/q is the proxy's CPU per query (10 ms /proc ticks over the timed runs).
"same answer": the proxies' answers equal the direct one (sorted first when the query has no ORDER BY).`

// WriteText renders the report as plain-text tables.
func (r *ShardingReport) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, m := range r.Meta {
		b.WriteString(m + "\n")
	}
	pt, summary := r.pointTable()
	pt.writeText(&b)
	for _, s := range summary {
		b.WriteString(s + "\n")
	}
	if len(r.Scatter) > 0 {
		r.scatterTable().writeText(&b)
		for _, s := range scatterSQL() {
			b.WriteString("  " + s + "\n")
		}
	}
	b.WriteString("\n" + shardingLegend + "\n")
	for _, n := range r.Notes {
		b.WriteString("NOTE: " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown renders the report as markdown.
func (r *ShardingReport) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# shardgate sharding benchmark\n\n")
	for _, m := range r.Meta {
		b.WriteString("- " + m + "\n")
	}
	pt, summary := r.pointTable()
	pt.writeMarkdown(&b)
	b.WriteString("\n")
	for _, s := range summary {
		b.WriteString(s + "\n")
	}
	if len(r.Scatter) > 0 {
		r.scatterTable().writeMarkdown(&b)
		b.WriteString("\n```\n")
		for _, s := range scatterSQL() {
			b.WriteString(s + "\n")
		}
		b.WriteString("```\n")
	}
	b.WriteString("\n" + strings.ReplaceAll(shardingLegend, "\n", " ") + "\n")
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- **Note:** " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
