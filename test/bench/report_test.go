package bench

import (
	"strings"
	"testing"
)

// sampleReport has one clean row, one row with a failed pgbouncer run and
// a shardgate run with errors, and one row that was never run.
func sampleReport() *Report {
	r := &Report{
		Meta:      []string{"pool: 64"},
		Workloads: []Workload{SelectOnly},
		Protocols: []string{"simple", "prepared"},
		Clients:   []int{1, 16},
		Targets:   []string{TargetDirect, TargetShardgate, TargetPgBouncer},
		Notes:     []string{"pgbouncer 1.18.0 predates max_prepared_statements"},
	}
	set := func(p string, c int, tg string, o *Outcome) {
		r.Set(Key{Workload: SelectOnly.Name, Protocol: p, Clients: c, Target: tg}, o)
	}
	set("simple", 1, TargetDirect, &Outcome{Result: Result{TPS: 10000, LatencyMs: 0.1, Txns: 100000}, CPUMicros: -1})
	set("simple", 1, TargetShardgate, &Outcome{Result: Result{TPS: 5000, LatencyMs: 0.2, Txns: 50000}, CPUMicros: 25.04})
	set("simple", 1, TargetPgBouncer, &Outcome{Result: Result{TPS: 8000, LatencyMs: 0.125, Txns: 80000}, CPUMicros: 11.3})
	set("prepared", 1, TargetDirect, &Outcome{Result: Result{TPS: 12000, LatencyMs: 0.083, Txns: 120000}, CPUMicros: -1})
	set("prepared", 1, TargetShardgate, &Outcome{Result: Result{TPS: 6000, LatencyMs: 0.166, Txns: 60000, Errors: 1,
		FirstError: "pgbench: error: boom"}, CPUMicros: 20})
	set("prepared", 1, TargetPgBouncer, &Outcome{Err: `pgbench: error: ERROR:  prepared statement "P_0" already exists (12 of 16 clients aborted)`,
		Result: Result{TPS: 33000, Aborted: true}, CPUMicros: 9})
	return r
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `pool: 64

== select-only: pgbench -S (select only) ==
protocol  clients  direct tps  direct ms       sg tps  sg ms    pgb tps  pgb ms  sg/direct  sg/pgb  sg us/txn  pgb us/txn
simple    1             10000      0.100         5000  0.200       8000   0.125       0.50    0.62       25.0        11.3
simple    16                -          -            -      -          -       -          -       -          -           -
prepared  1             12000      0.083  6000 ERR[1]  0.166  FAILED[2]       -          -       -       20.0           -
prepared  16                -          -            -      -          -       -          -       -          -           -
[1] select-only prepared c=1 shardgate: 1 error line(s), first: pgbench: error: boom
[2] select-only prepared c=1 pgbouncer: failed: pgbench: error: ERROR:  prepared statement "P_0" already exists (12 of 16 clients aborted)

` + legend + `
NOTE: pgbouncer 1.18.0 predates max_prepared_statements
`
	if got := b.String(); got != want {
		t.Fatalf("WriteText:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"# shardgate benchmark\n\n- pool: 64\n",
		"## select-only: pgbench -S (select only)\n\n",
		"| protocol | clients | direct tps | direct ms | sg tps | sg ms | pgb tps | pgb ms | sg/direct | sg/pgb | sg us/txn | pgb us/txn |\n",
		"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
		"| simple | 1 | 10000 | 0.100 | 5000 | 0.200 | 8000 | 0.125 | 0.50 | 0.62 | 25.0 | 11.3 |\n",
		"| prepared | 1 | 12000 | 0.083 | 6000 ERR[1] | 0.166 | FAILED[2] | - | - | - | 20.0 | - |\n",
		"- [2] `select-only prepared c=1 pgbouncer: failed: pgbench: error: ERROR:  prepared statement \"P_0\" already exists (12 of 16 clients aborted)`\n",
		"- **Note:** pgbouncer 1.18.0 predates max_prepared_statements\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, got)
		}
	}
}

// Without pgbouncer its columns and ratio disappear rather than show
// dashes forever.
func TestReportWithoutPgBouncer(t *testing.T) {
	r := sampleReport()
	r.Targets = []string{TargetDirect, TargetShardgate}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "pgb tps") || strings.Contains(b.String(), "sg/pgb  ") {
		t.Fatalf("pgbouncer columns present:\n%s", b.String())
	}
}

func TestWarnMakesRunUnclean(t *testing.T) {
	r := sampleReport()
	r.Runs[Key{Workload: SelectOnly.Name, Protocol: "simple", Clients: 1, Target: TargetShardgate}].Warn = "sessions left idle in transaction"
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "5000 ERR[1]") || !strings.Contains(out, "[1] select-only simple c=1 shardgate: sessions left idle in transaction") {
		t.Fatalf("warning not flagged:\n%s", out)
	}
}
