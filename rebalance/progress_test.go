package rebalance_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/rebalance"
)

// explainCounter counts the EXPLAINs a connection runs.
type explainCounter struct{ n atomic.Int32 }

func (c *explainCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(strings.TrimSpace(d.SQL), "EXPLAIN") {
		c.n.Add(1)
	}
	return ctx
}

func (c *explainCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// testProgressOnce polls a copy's progress many times: the source's row
// estimate, a planner call per table, is made once per table and range
// rather than on every poll, and a synced copy of a table nobody writes
// counts each of its rows once.
func (e *testEnv) testProgressOnce(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE TABLE a (id bigint PRIMARY KEY, v text);
		INSERT INTO a SELECT g, 'v' FROM generate_series(1, 20000) g;
		CREATE TABLE b (id bigint PRIMARY KEY, v text);
		INSERT INTO b SELECT g, 'v' FROM generate_series(1, 5000) g;
		ANALYZE a, b`)
	ctx := ctxFor(t, 2*time.Minute)
	cfg, err := pgx.ParseConfig(p.srcDSN)
	if err != nil {
		t.Fatal(err)
	}
	explains := &explainCounter{}
	cfg.Tracer = explains
	src, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	a, b := rebalance.Table{Name: "a", Key: "id"}, rebalance.Table{Name: "b", Key: "id"}
	m := p.mover("m8", upperHalf, a, b)
	m.Source = src
	if err := m.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Discard(context.Background()); err != nil {
			t.Errorf("Discard: %v", err)
		}
	})
	polls := 0
	var last rebalance.Progress
	for polls < 3 || !last.Synced() {
		if last, err = m.Progress(ctx); err != nil {
			t.Fatal(err)
		}
		polls++
		time.Sleep(20 * time.Millisecond)
	}
	if got := explains.n.Load(); got != 2 {
		t.Errorf("%d polls of Progress ran %d EXPLAINs on the source, want 2: one per table", polls, got)
	}
	if last.SourceRows() == 0 {
		t.Errorf("progress %+v: no estimate of the source's rows", last)
	}
	var want int64
	for _, tb := range m.Tables {
		n, err := rebalance.RowsIn(ctx, p.src, tb, upperHalf)
		if err != nil {
			t.Fatal(err)
		}
		want += n
	}
	if last.TargetRows() != want {
		t.Errorf("synced progress %+v: %d rows on the target, want the source's %d", last, last.TargetRows(), want)
	}

	// Another range is another estimate. The range goes back before
	// Discard runs, which deletes the move's range from the target.
	func() {
		m.Range = lowerHalf
		defer func() { m.Range = upperHalf }()
		if _, err := m.Progress(ctx); err != nil {
			t.Fatal(err)
		}
		if got := explains.n.Load(); got != 4 {
			t.Errorf("after the range changed: %d EXPLAINs in all, want 4", got)
		}
	}()
}
