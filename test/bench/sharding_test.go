package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/shardmap"
)

// The generated config is one shardgate accepts, with the map we meant.
func TestRenderShardedConfigLoads(t *testing.T) {
	spec := ShardingSpec()
	text := RenderShardedConfig("127.0.0.1:7000", 32, []string{"127.0.0.1:5001", "127.0.0.1:5002"}, spec)
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config does not load: %v\n%s", err, text)
	}
	if got := cfg.MapSpec(); !reflect.DeepEqual(got, spec) {
		t.Fatalf("map spec = %+v, want %+v", got, spec)
	}
	if got := cfg.ShardNames(); !reflect.DeepEqual(got, []string{"s0", "s1"}) {
		t.Fatalf("shards = %v", got)
	}
	if cfg.Pool.Size != 32 || cfg.Listen.Addr != "127.0.0.1:7000" || cfg.Runtime.MaxProcs != 1 {
		t.Fatalf("pool.size %d, listen.addr %q, runtime.max_procs %d", cfg.Pool.Size, cfg.Listen.Addr, cfg.Runtime.MaxProcs)
	}
	m, err := cfg.ShardMap()
	if err != nil || m.Distribution(shardDist) == nil {
		t.Fatalf("shard map: %v, %v", m, err)
	}
	for _, table := range []string{usersTable, scatterTable} {
		if p, _ := m.Table("", table); p == shardmap.Unsharded {
			t.Errorf("table %s is not sharded in the map", table)
		}
	}
}

// The unsharded proxy's config has no sharding section: every table is on
// its one shard.
func TestRenderShardgateConfigUnsharded(t *testing.T) {
	text := RenderShardgateConfig("127.0.0.1:7000", 64, []string{"127.0.0.1:5001"})
	if strings.Contains(text, "sharding") {
		t.Fatalf("unexpected sharding section:\n%s", text)
	}
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := cfg.ShardMap(); err != nil || m.Sharded() {
		t.Fatalf("map of the unsharded config: sharded=%v, %v", m != nil && m.Sharded(), err)
	}
}

// Two shards split the signed hash space at 0: s0 owns the negative
// hashes.
func TestPlacerSplitsAtZero(t *testing.T) {
	place, err := Placer(ShardingSpec(), []string{"s0", "s1"}, shardDist)
	if err != nil {
		t.Fatal(err)
	}
	counts := [2]int{}
	for id := int64(1); id <= 10000; id++ {
		s := place(id)
		if want := map[bool]int{true: 0, false: 1}[shardmap.HashInt(id) < 0]; s != want {
			t.Fatalf("id %d (hash %d) placed on s%d, want s%d", id, shardmap.HashInt(id), s, want)
		}
		counts[s]++
	}
	if counts[0] < 4500 || counts[1] < 4500 {
		t.Fatalf("placement of 10000 ids is lopsided: %v", counts)
	}
	if _, err := Placer(ShardingSpec(), []string{"s0", "s1"}, "nope"); err == nil {
		t.Fatal("no error for an unknown distribution")
	}
}

func TestPointSelectScript(t *testing.T) {
	got := PointSelectScript(1000)
	want := "\\set id random(1, 1000)\nSELECT id, name, balance FROM users WHERE id = :id;\n"
	if got != want {
		t.Fatalf("script = %q, want %q", got, want)
	}
}

func TestRowsDeterministic(t *testing.T) {
	for _, id := range []int64{1, 2, 999999} {
		a, b := ScatterRow(id), ScatterRow(id)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("ScatterRow(%d) differs between calls: %v, %v", id, a, b)
		}
		if a[0] != id || a[1].(int64) < 0 {
			t.Fatalf("ScatterRow(%d) = %v", id, a)
		}
		if x := a[2].(int32); x < 0 || x >= 100000 {
			t.Fatalf("x = %d out of range", x)
		}
		if g := a[3].(int32); g != int32(id%10) {
			t.Fatalf("g = %d", g)
		}
	}
	if got := UserRow(12); !reflect.DeepEqual(got, []any{int64(12), "user-12", int64(84)}) {
		t.Fatalf("UserRow(12) = %v", got)
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	in := ms(9, 1, 5)
	if got := Median(in); got != 5*time.Millisecond {
		t.Fatalf("Median = %v", got)
	}
	if !slices.Equal(in, ms(9, 1, 5)) {
		t.Fatal("Median reordered its input")
	}
	if got := Median(ms(4, 1, 3, 2)); got != 2500*time.Microsecond {
		t.Fatalf("Median of an even count = %v", got)
	}
	if got := Median(nil); got != 0 {
		t.Fatalf("Median(nil) = %v", got)
	}
}

func ok(tps, ms, cpu float64, txns int64) *Outcome {
	return &Outcome{Result: Result{TPS: tps, LatencyMs: ms, Txns: txns}, CPUMicros: cpu}
}

func TestSummarizeRounds(t *testing.T) {
	s := SummarizeRounds([]*Outcome{ok(1000, 1, 10, 1000), ok(3000, 3, 30, 3000)})
	if s.TPS != 2000 || s.Ms != 2 || s.Rounds != 2 || s.Problem != "" {
		t.Fatalf("stats = %+v", s)
	}
	// CPU is weighted by transactions: (10*1000 + 30*3000) / 4000.
	if s.CPU != 25 {
		t.Fatalf("CPU = %v, want 25", s.CPU)
	}
	failed := &Outcome{Err: "boom", CPUMicros: -1}
	s = SummarizeRounds([]*Outcome{failed, ok(1000, 1, -1, 1000)})
	if s.Rounds != 1 || s.TPS != 1000 || s.CPU != -1 || !strings.Contains(s.Problem, "round 1 failed: boom") {
		t.Fatalf("stats with a failed round = %+v", s)
	}
	unclean := ok(500, 1, 5, 500)
	unclean.Result.Errors, unclean.Result.FirstError = 1, "ERROR: x"
	if s := SummarizeRounds([]*Outcome{unclean}); s.Rounds != 1 || !strings.Contains(s.Problem, "ERROR: x") {
		t.Fatalf("stats with an unclean round = %+v", s)
	}
	if s := SummarizeRounds(nil); s.Problem == "" {
		t.Fatal("no runs, no problem")
	}
}

func TestRoundRatios(t *testing.T) {
	a := []*Outcome{ok(90, 1, 1, 90), {Err: "x"}, ok(50, 1, 1, 50)}
	b := []*Outcome{ok(100, 1, 1, 100), ok(100, 1, 1, 100), ok(100, 1, 1, 100)}
	if got := RoundRatios(a, b); !slices.Equal(got, []float64{0.9, 0.5}) {
		t.Fatalf("RoundRatios = %v", got)
	}
}

func TestRowKeyAndDiff(t *testing.T) {
	if RowKey([][]byte{nil}) == RowKey([][]byte{[]byte("NULL")}) {
		t.Fatal("NULL and the text NULL render alike")
	}
	if RowKey([][]byte{[]byte("a|b")}) == RowKey([][]byte{[]byte("a"), []byte("b")}) {
		t.Fatal("a separator inside a value is ambiguous")
	}
	if d := diffAnswers([]string{"1", "2"}, []string{"1", "2"}); d != "" {
		t.Fatalf("equal answers differ: %s", d)
	}
	if d := diffAnswers([]string{"1", "2"}, []string{"1", "3"}); !strings.Contains(d, "row 2") {
		t.Fatalf("diff = %q", d)
	}
	if d := diffAnswers([]string{"1", "2"}, []string{"1"}); !strings.Contains(d, "1 rows, direct has 2") {
		t.Fatalf("diff = %q", d)
	}
}

func sampleShardingReport() *ShardingReport {
	r := &ShardingReport{Meta: []string{"date: today"}, Protocols: []string{"simple", "prepared"}, Clients: []int{16}}
	for _, round := range []struct{ direct, sg1, sg2 float64 }{{40000, 30000, 28800}, {42000, 31000, 29000}} {
		r.AddPoint(PointKey{"simple", 16, TargetDirect}, ok(round.direct, 0.4, -1, int64(round.direct)), 30)
		r.AddPoint(PointKey{"simple", 16, TargetSG1}, ok(round.sg1, 0.5, 20, int64(round.sg1)), 31)
		r.AddPoint(PointKey{"simple", 16, TargetSG2}, ok(round.sg2, 0.55, 24, int64(round.sg2)), 33)
	}
	r.AddPoint(PointKey{"prepared", 16, TargetDirect}, ok(60000, 0.2, -1, 60000), 25)
	r.AddPoint(PointKey{"prepared", 16, TargetSG1}, ok(33000, 0.4, 20, 33000), -1)
	r.AddPoint(PointKey{"prepared", 16, TargetSG2}, &Outcome{Err: "proxy died", CPUMicros: -1}, -1)
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	r.Scatter = []*ScatterResult{
		{Query: ScatterQueries[0], Mode: "simple", Rows: 1,
			Times:     map[string][]time.Duration{TargetDirect: ms(40, 42, 41), TargetSG1: ms(43, 44, 45), TargetSG2: ms(20, 30, 22)},
			CPUMillis: map[string]float64{TargetSG2: 0.5}},
		{Query: ScatterQueries[1], Mode: "simple", Rows: 10, Mismatch: "row 1 differs",
			Times: map[string][]time.Duration{TargetDirect: ms(40), TargetSG1: ms(40), TargetSG2: ms(40)}},
		{Query: ScatterQueries[2], Mode: "prepared", Err: "sg-2shards: timeout"},
	}
	return r
}

func TestShardingReportText(t *testing.T) {
	var b strings.Builder
	if err := sampleShardingReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	// Column widths depend on the cells; compare with spaces collapsed.
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"date: today",
		// Mean tps 41000 / 30500 / 28900; sg2/sg1 is 28900/30500, the
		// rounds 0.96 and 0.94; sg1/direct 30500/41000; proxy CPU
		// weighted by transactions, sg2 - sg1 = +4.0 us; servers' CPU.
		"simple 16 41000 30500 28900 0.948 (0.94-0.96) 0.744 20.0 24.0 +4.0 30.0 31.0 33.0",
		"prepared 16 60000 33000 FAILED[1] - 0.550 20.0 - - 25.0 - -",
		"[1] prepared c=16 sg-2shards: round 1 failed: proxy died",
		"overhead target sg2/sg1 >= 0.95: met in 0 of 1 combinations; missed: simple c=16 (0.948)",
		// Scatter medians 41, 44, 22 ms.
		"count simple 1 41.000 44.000 22.000 0.54 1.07 0.5 yes",
		"top-10 simple 10 40.000 40.000 40.000 - - - NO[1]",
		"[1] top-10 simple: row 1 differs",
		"sum-avg prepared FAILED[2] - - - - - - -",
		"[2] sum-avg prepared: sg-2shards: timeout",
		"count SELECT count(*) FROM t",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestShardingReportMarkdown(t *testing.T) {
	var b strings.Builder
	if err := sampleShardingReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# shardgate sharding benchmark",
		"| protocol | clients | direct tps | sg1 tps | sg2 tps |",
		"| simple | 16 | 41000 | 30500 | 28900 | 0.948 (0.94-0.96) |",
		"- [1] `prepared c=16 sg-2shards: round 1 failed: proxy died`",
		"| query | protocol | rows | direct ms |",
		"```\ncount     SELECT count(*) FROM t\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWeightedMicros(t *testing.T) {
	runs := []*Outcome{ok(1, 1, 1, 1000), {Err: "x"}, ok(1, 1, 1, 3000)}
	// The failed round's figure is ignored: (10*1000 + 30*3000) / 4000.
	if got := WeightedMicros(runs, []float64{10, -1, 30}); got != 25 {
		t.Fatalf("WeightedMicros = %v, want 25", got)
	}
	if got := WeightedMicros(runs, []float64{10, 20, -1}); got >= 0 {
		t.Fatalf("WeightedMicros with an unknown figure = %v, want negative", got)
	}
	if got := WeightedMicros([]*Outcome{{Err: "x"}}, []float64{5}); got >= 0 {
		t.Fatalf("WeightedMicros of failed rounds only = %v", got)
	}
}

func TestParseProcTimes(t *testing.T) {
	b, err := os.ReadFile("testdata/proc-stat-shardgate.txt")
	if err != nil {
		t.Fatal(err)
	}
	// ppid 1, utime 20, stime 26, cutime 0, cstime 0.
	got, err := ParseProcTimes(b)
	if err != nil || got != (ProcTimes{PPid: 1, Self: 46, Reaped: 0}) {
		t.Fatalf("ParseProcTimes = %+v, %v", got, err)
	}
	// A postgres backend: the command may hold spaces and ')'.
	stat := "77 (postgres: app app 127.0.0.1(5) idle) S 70 70 70 0 -1 4194560 10 0 0 0 7 5 3 2 20 0 1 0 100 0 0\n"
	if got, err := ParseProcTimes([]byte(stat)); err != nil || got != (ProcTimes{PPid: 70, Self: 12, Reaped: 5}) {
		t.Fatalf("ParseProcTimes = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "42 (x) S 1 2 3", "42 (x) S x 42 42 0 -1 0 0 0 0 0 1 1 1 1"} {
		if _, err := ParseProcTimes([]byte(bad)); err == nil {
			t.Errorf("ParseProcTimes(%q): no error", bad)
		}
	}
}

func TestTreeTicks(t *testing.T) {
	procs := map[int]ProcTimes{
		10: {PPid: 1, Self: 5, Reaped: 100}, // postmaster; exited backends' time in Reaped
		11: {PPid: 10, Self: 7},             // live backend
		12: {PPid: 10, Self: 3},             // background writer
		13: {PPid: 11, Self: 1000},          // not a child of the postmaster
		20: {PPid: 1, Self: 50},             // another server
	}
	if got := TreeTicks(10, procs); got != 115 {
		t.Fatalf("TreeTicks = %d, want 115", got)
	}
	if got := TreeTicks(99, procs); got != 0 {
		t.Fatalf("TreeTicks of a missing postmaster = %d", got)
	}
}

func TestServerCPUTicksNeedsPostmaster(t *testing.T) {
	if _, err := ServerCPUTicks(t.TempDir()); err == nil {
		t.Fatal("no error for a data directory without postmaster.pid")
	}
}
