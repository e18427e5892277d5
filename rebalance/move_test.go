package rebalance_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
)

// moveRows is the size of the moved table.
const moveRows = 100_000

// testMoveUnderWrites moves the upper hash half of a table while a writer
// inserts, updates (also across the range's edge) and deletes rows on
// the source, and calls every method twice.
func (e *testEnv) testMoveUnderWrites(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, note text)`)
	mustExec(t, p.src, fmt.Sprintf(`INSERT INTO items SELECT g, g %% 1000, md5(g::text) FROM generate_series(1, %d) g`, moveRows))
	items := rebalance.Table{Name: "items", Key: "id"}
	m := p.mover("m1", upperHalf, items)
	ctx := ctxFor(t, 3*time.Minute)

	twice(t, "EnsureSchema", func() error { return m.EnsureSchema(ctx) })
	w := startWriter(t, p.srcDSN)
	twice(t, "StartCopy", func() error { return m.StartCopy(ctx) })
	copyStart := time.Now()
	var last rebalance.Progress
	for !last.Synced() {
		pr, err := m.Progress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = pr
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("initial copy of ~%d rows synced in %v: %+v", last.SourceRows(), time.Since(copyStart).Round(time.Millisecond), last)
	if last.TargetRows() == 0 || last.SourceRows() < moveRows/3 || last.SourceRows() > moveRows*2/3 {
		t.Errorf("progress %+v: expected rows on both sides near %d", last, moveRows/2)
	}
	// Let changes flow through the apply worker for a while.
	for w.writes.Load() < 5000 {
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		d, err := m.WaitCaughtUp(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("WaitCaughtUp %d under writes: %v", i, d)
	}
	if _, err := m.Cleanup(ctx, 100, nil); !errors.Is(err, rebalance.ErrStillReplicating) {
		t.Fatalf("Cleanup while replicating: got %v, want ErrStillReplicating", err)
	}

	w.fenced.Store(true)
	twice(t, "Fence", func() error { return m.Fence(ctx) })
	d, err := m.WaitCaughtUp(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WaitCaughtUp after the fence: %v", d)
	w.awaitRefusals(t, 20)
	for range 2 {
		rep, err := m.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Equal() {
			t.Fatalf("Verify: %s", rep)
		}
		t.Logf("Verify: %s", rep)
	}
	twice(t, "StopReplication", func() error { return m.StopReplication(ctx) })
	if left := leftovers(t, p); len(left) > 0 {
		t.Fatalf("left after StopReplication: %v", left)
	}
	w.stop(t)
	t.Logf("writer: %d writes, %d refused by the fence; last refusal: %v", w.writes.Load(), w.refused.Load(), w.lastRefusal.Load())
	if msg := w.lastRefusal.Load(); msg == nil || !contains(msg.Message, "m1", "public.items", "this range now lives on shard s1") {
		t.Errorf("fence message %v: want the move, the table and the new shard", msg)
	}

	outside := `SELECT count(*) || ':' || sum(hashtext(i::text)) FROM items i WHERE NOT ` + rebalance.Filter(upperHalf, "id")
	var before, after string
	if err := p.src.QueryRow(ctx, outside).Scan(&before); err != nil {
		t.Fatal(err)
	}
	var deleted []int64
	for range 2 {
		n, err := m.Cleanup(ctx, 1000, func(n int64) { deleted = append(deleted, n) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Cleanup deleted %d rows in %d batches", n, len(deleted))
	}
	if err := p.src.QueryRow(ctx, outside).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("rows outside the range changed in Cleanup: %s, then %s", before, after)
	}
	if n, err := rebalance.RowsIn(ctx, p.src, items, upperHalf); err != nil || n != 0 {
		t.Errorf("range rows on the source after Cleanup: %d, %v", n, err)
	}
	for _, c := range []struct {
		conn  *pgx.Conn
		owned rebalance.Range
	}{{p.src, lowerHalf}, {p.dst, upperHalf}} {
		if n, err := rebalance.CheckPlacement(ctx, c.conn, items, []rebalance.Range{c.owned}); err != nil || n != 0 {
			t.Errorf("misplaced rows: %d, %v", n, err)
		}
	}
	if n, err := rebalance.CheckPlacement(ctx, p.dst, items, []rebalance.Range{lowerHalf}); err != nil || n == 0 {
		t.Errorf("CheckPlacement found %d rows of the upper half on the target outside the lower half (%v): want all", n, err)
	}
	twice(t, "Unfence", func() error { return m.Unfence(ctx) })
	if n := queryInt(t, p.src, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sg%' OR tgfoid IN (SELECT oid FROM pg_proc WHERE proname LIKE 'sg\\_%')"); n != 0 {
		t.Errorf("%d fence triggers left after Unfence", n)
	}
	mustExec(t, p.src, "INSERT INTO items VALUES (-1, 0, 'after unfence')") // hashes to either half: the fence is gone
	mustExec(t, p.src, "DELETE FROM items WHERE id = -1")
}

// writer keeps changing the moved table on the source, inside and
// outside the range: inserts, updates of other columns and of the key
// (which carries rows across the range's edge), deletes, and some
// transactions of several statements. Before the fence no write may
// fail; after it, only with the fence's SQLSTATE.
//
// startWriter starts its goroutine; stop ends it and reports its
// failure through t.
type writer struct {
	fenced      atomic.Bool
	writes      atomic.Int64
	refused     atomic.Int64
	lastRefusal atomic.Pointer[pgconn.PgError]
	cancel      context.CancelFunc
	done        chan struct{}
	mu          sync.Mutex
	err         error
}

func startWriter(t *testing.T, dsn string) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	conn := connect(t, dsn)
	t.Cleanup(func() { w.cancel(); <-w.done })
	go func() {
		defer close(w.done)
		w.fail(w.run(ctx, conn))
	}()
	return w
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && err != nil && !errors.Is(err, context.Canceled) {
		w.err = err
	}
}

func (w *writer) run(ctx context.Context, conn *pgx.Conn) error {
	r := rand.New(rand.NewPCG(7, 8))
	next := int64(moveRows)
	existing := func() int64 { return r.Int64N(next) + 1 }
	for ctx.Err() == nil {
		var err error
		switch op := r.IntN(10); {
		case op < 3:
			next++
			_, err = conn.Exec(ctx, "INSERT INTO items VALUES ($1, $2, 'new')", next, op)
		case op < 6:
			_, err = conn.Exec(ctx, "UPDATE items SET n = n + 1, note = 'updated' WHERE id = $1", existing())
		case op < 7:
			next++
			_, err = conn.Exec(ctx, "UPDATE items SET id = $2 WHERE id = $1", existing(), next)
		case op < 8:
			_, err = conn.Exec(ctx, "DELETE FROM items WHERE id = $1", existing())
		default:
			next++
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1, 1, 'tx')", next); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "UPDATE items SET n = -n WHERE id = $1", existing()); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "DELETE FROM items WHERE id = $1", existing())
				return err
			})
		}
		var pe *pgconn.PgError
		switch {
		case err == nil:
			w.writes.Add(1)
		case errors.As(err, &pe) && pe.Code == rebalance.FenceSQLState && w.fenced.Load():
			w.refused.Add(1)
			w.lastRefusal.Store(pe)
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("writer (fenced %v): %w", w.fenced.Load(), err)
		}
	}
	return nil
}

// awaitRefusals waits until the fence refused n writes.
func (w *writer) awaitRefusals(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.refused.Load() < n {
		if time.Now().After(deadline) {
			w.stop(t)
			t.Fatalf("the fence refused %d writes in 10s, want %d", w.refused.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writer) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatal(w.err)
	}
}

// testMoveOtherMethods moves a key range of text (compared in C), one of
// timestamptz and directory keys of uuid through the whole data path:
// each filter must also be a valid publication row filter.
func (e *testEnv) testMoveOtherMethods(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE TABLE names (name text PRIMARY KEY, n int);
		INSERT INTO names SELECT chr(65 + g % 58) || g, g FROM generate_series(1, 5000) g;
		CREATE TABLE events (at timestamptz PRIMARY KEY, n int);
		INSERT INTO events SELECT '2024-01-01'::timestamptz + g * interval '1 hour', g FROM generate_series(1, 5000) g;
		CREATE TABLE tenants (id uuid PRIMARY KEY, n int);
		INSERT INTO tenants SELECT md5(g::text)::uuid, g FROM generate_series(1, 5000) g`)
	keys := queryStrings(t, p.src, "SELECT id::text FROM tenants ORDER BY n LIMIT 50")
	for i, c := range []struct {
		table rebalance.Table
		r     rebalance.Range
	}{
		{rebalance.Table{Name: "names", Key: "name"}, rebalance.Range{Method: shardmap.MethodRange, KeyType: "text", Lo: "M", Hi: "a"}},
		{rebalance.Table{Name: "events", Key: "at"}, rebalance.Range{Method: shardmap.MethodRange, KeyType: "timestamptz", Lo: "2024-03-01 12:00:00+05:30"}},
		{rebalance.Table{Name: "tenants", Key: "id"}, rebalance.Range{Method: shardmap.MethodDirectory, KeyType: "uuid", Keys: keys}},
	} {
		m := p.mover(fmt.Sprintf("k%d", i), c.r, c.table)
		ctx := ctxFor(t, time.Minute)
		for _, step := range []func(context.Context) error{m.EnsureSchema, m.StartCopy, func(ctx context.Context) error {
			_, err := m.WaitCaughtUp(ctx)
			return err
		}, m.Fence, m.StopReplication} {
			if err := step(ctx); err != nil {
				t.Fatalf("%s: %v", c.table, err)
			}
		}
		rep, err := m.Verify(ctx)
		if err != nil || !rep.Equal() || rep.Tables[0].Source.Rows == 0 {
			t.Fatalf("%s: Verify: %s, %v", c.table, rep, err)
		}
		if _, err := m.Cleanup(ctx, 0, nil); err != nil {
			t.Fatal(err)
		}
		if n, err := rebalance.RowsIn(ctx, p.src, c.table, c.r); err != nil || n != 0 {
			t.Fatalf("%s: %d rows left on the source (%v)", c.table, n, err)
		}
		if n, err := rebalance.CheckPlacement(ctx, p.dst, c.table, []rebalance.Range{c.r}); err != nil || n != 0 {
			t.Fatalf("%s: %d rows misplaced on the target (%v)", c.table, n, err)
		}
		t.Logf("%s: %s", c.table, rep)
	}
}
