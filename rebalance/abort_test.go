package rebalance_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
)

// testDiscardPartialCopy aborts a move while one table is copied and
// another is still copying: the target must end with none of the range,
// the source with no fence, and nothing may replicate afterwards.
func (e *testEnv) testDiscardPartialCopy(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE TABLE small (id bigint PRIMARY KEY, v text);
		INSERT INTO small SELECT g, 'v' FROM generate_series(1, 1000) g;
		CREATE TABLE big (id bigint PRIMARY KEY, v text);
		INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g`)
	small, big := rebalance.Table{Name: "small", Key: "id"}, rebalance.Table{Name: "big", Key: "id"}
	m := p.mover("m2", upperHalf, small, big)
	ctx := ctxFor(t, 2*time.Minute)
	if err := m.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for the small table to land while the big one copies.
	for {
		pr, err := m.Progress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Tables[0].State == "r" || pr.Tables[0].State == "s" {
			t.Logf("discarding at %+v", pr)
			if pr.Tables[1].State == "r" {
				t.Log("the big table is copied already: a weak case")
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	twice(t, "Discard", func() error { return m.Discard(ctx) })
	if left := leftovers(t, p); len(left) > 0 {
		t.Fatalf("left after Discard: %v", left)
	}
	mustExec(t, p.src, "INSERT INTO small SELECT g, 'late' FROM generate_series(1001, 2000) g") // the fence is gone
	time.Sleep(300 * time.Millisecond)
	for _, tb := range m.Tables {
		if n, err := rebalance.RowsIn(ctx, p.dst, tb, upperHalf); err != nil || n != 0 {
			t.Errorf("%s: %d rows of the range on the target after Discard (%v)", tb, n, err)
		}
	}
	if n := queryInt(t, p.src, "SELECT count(*) FROM big"); n != 400000 {
		t.Errorf("the source lost rows: big has %d", n)
	}
	// The move can start over.
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Discard(ctx); err != nil {
		t.Fatal(err)
	}
}

// testSchemaOnEmptyTarget creates tables with constraints, defaults,
// sequences, a foreign key between them, a non-public schema and a name
// that needs quoting on an empty target, then refuses a target table of
// another shape.
func (e *testEnv) testSchemaOnEmptyTarget(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE SCHEMA app;
		CREATE TABLE app.parent (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, score int CHECK (score >= 0) DEFAULT 0);
		CREATE TABLE "Odd ""Name""" (id bigserial PRIMARY KEY, parent_id bigint REFERENCES app.parent, note varchar(20) DEFAULT 'x',
			at timestamptz NOT NULL DEFAULT now());
		CREATE INDEX odd_parent ON "Odd ""Name""" (parent_id, at DESC)`)
	tables := []rebalance.Table{{Schema: "app", Name: "parent", Key: "id"}, {Name: `Odd "Name"`, Key: "id"}}
	m := p.mover("m3", upperHalf, tables...)
	ctx := ctxFor(t, time.Minute)
	// An earlier move's fence on the source is not for the target.
	if err := p.mover("m0", lowerHalf, tables...).Fence(ctx); err != nil {
		t.Fatal(err)
	}
	twice(t, "EnsureSchema", func() error { return m.EnsureSchema(ctx) })
	describe := `SELECT format('%s %s', c.relname, pg_get_indexdef(i.indexrelid)) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('app', 'public')
		UNION ALL SELECT format('%s %s', conrelid::regclass, pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace IN ('app'::regnamespace, 'public'::regnamespace)
		UNION ALL SELECT format('%s %s %s', attrelid::regclass, attname, pg_get_expr(adbin, adrelid)) FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum
		UNION ALL SELECT 'sequence ' || oid::regclass FROM pg_class WHERE relkind = 'S'
		ORDER BY 1`
	src, dst := queryStrings(t, p.src, describe), queryStrings(t, p.dst, describe)
	if !slices.Equal(src, dst) || len(src) < 8 {
		t.Fatalf("schema differs:\nsource %q\ntarget %q", src, dst)
	}
	if n := queryInt(t, p.dst, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"); n != 0 {
		t.Errorf("%d triggers on the target: the source's fences were copied", n)
	}
	mustExec(t, p.dst, `INSERT INTO app.parent (id, name) VALUES (1, 'a'); INSERT INTO "Odd ""Name""" (parent_id) VALUES (1)`)

	mustExec(t, p.src, "CREATE TABLE shaped (id bigint PRIMARY KEY, a int, b text)")
	mustExec(t, p.dst, "CREATE TABLE shaped (id bigint PRIMARY KEY, a bigint, c text)")
	err := p.mover("m3", upperHalf, rebalance.Table{Name: "shaped", Key: "id"}).EnsureSchema(ctx)
	var mismatch *rebalance.SchemaMismatchError
	if !errors.As(err, &mismatch) || len(mismatch.Problems) != 3 {
		t.Fatalf("EnsureSchema over a table of another shape: %v", err)
	}
	t.Logf("mismatch: %v", err)
}

// testReplicaIdentity refuses tables whose key the publication could not
// filter updates and deletes on, before creating anything; a table with
// replica identity full moves.
func (e *testEnv) testReplicaIdentity(t *testing.T) {
	p := e.newPair(t)
	ctx := ctxFor(t, time.Minute)
	for _, sql := range []string{
		"CREATE TABLE by_other (a bigint PRIMARY KEY, b bigint)",
		"CREATE TABLE no_pk (a bigint, b bigint)",
		"CREATE TABLE full_ident (a bigint PRIMARY KEY, b bigint); ALTER TABLE full_ident REPLICA IDENTITY FULL",
	} {
		mustExec(t, p.src, sql)
		mustExec(t, p.dst, sql)
	}
	for _, name := range []string{"by_other", "no_pk"} {
		m := p.mover("m4", upperHalf, rebalance.Table{Name: name, Key: "b"})
		err := m.StartCopy(ctx)
		var rie *rebalance.ReplicaIdentityError
		if !errors.As(err, &rie) {
			t.Fatalf("%s: StartCopy: %v, want a ReplicaIdentityError", name, err)
		}
		t.Logf("%s: %v", name, err)
		if left := leftovers(t, p); len(left) > 0 {
			t.Fatalf("a refused StartCopy left %v", left)
		}
	}
	mustExec(t, p.src, "INSERT INTO full_ident SELECT g, g FROM generate_series(1, 1000) g")
	m := p.mover("m4", upperHalf, rebalance.Table{Name: "full_ident", Key: "b"})
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	mustExec(t, p.src, "UPDATE full_ident SET b = b + 1") // accepted: the whole old row is published
	if _, err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := m.Verify(ctx); err != nil || !rep.Equal() {
		t.Fatalf("Verify: %v %v", rep, err)
	}
	if err := m.Discard(ctx); err != nil {
		t.Fatal(err)
	}
}

// testCopyThroughput copies a million rows of about 100 bytes and reports
// the rate, and that of Cleanup deleting them.
func (e *testEnv) testCopyThroughput(t *testing.T) {
	rows := 1_000_000
	if os.Getenv("REBALANCE_BENCH_ROWS") != "" {
		fmt.Sscan(os.Getenv("REBALANCE_BENCH_ROWS"), &rows)
	}
	p := e.newPair(t)
	ctx := ctxFor(t, 5*time.Minute)
	start := time.Now()
	mustExec(t, p.src, fmt.Sprintf(`CREATE TABLE wide (id bigint PRIMARY KEY, a int NOT NULL, b bigint, c text, d timestamptz);
		INSERT INTO wide SELECT g, g %% 100000, g * 7, md5(g::text) || md5((-g)::text), now() FROM generate_series(1, %d) g`, rows))
	mustExec(t, p.src, "VACUUM ANALYZE wide")
	size := queryInt(t, p.src, "SELECT pg_table_size('wide')")
	t.Logf("loaded %d rows (%d MB, %d bytes a row) in %v", rows, size>>20, size/int64(rows), time.Since(start).Round(time.Millisecond))
	// All but one hash value, so that the filter is computed for every row.
	all := rebalance.Range{Method: shardmap.MethodHash, KeyType: "bigint", Lo: "-9223372036854775807"}
	wide := rebalance.Table{Name: "wide", Key: "id"}
	inRange, err := rebalance.RowsIn(ctx, p.src, wide, all)
	if err != nil {
		t.Fatal(err)
	}
	m := p.mover("m5", all, wide)
	if err := m.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	copied := queryInt(t, p.dst, "SELECT count(*) FROM wide")
	fmt.Printf("rebalance: copied %d rows in %v: %.0f rows/s\n", copied, took.Round(time.Millisecond), float64(copied)/took.Seconds())
	if copied != inRange {
		t.Errorf("copied %d rows, the source has %d in the range", copied, inRange)
	}
	if err := m.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StopReplication(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	n, err := m.Cleanup(ctx, rebalance.DefaultBatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	fmt.Printf("rebalance: cleanup deleted %d rows in %v: %.0f rows/s\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if n != copied {
		t.Errorf("cleanup deleted %d rows, %d were copied", n, copied)
	}
}
