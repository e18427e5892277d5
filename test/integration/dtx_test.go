package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
)

// tableDecisions is a DecisionLog in a table on a test server.
type tableDecisions struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

func newTableDecisions(t *testing.T, h *cluster.Host) *tableDecisions {
	t.Helper()
	conn := connectDSN(t, h.DSN("postgres", "", "postgres"))
	if _, err := conn.Exec(ctxT(t), "create table if not exists shardgate_decisions (gid text primary key, commit bool not null)"); err != nil {
		t.Fatal(err)
	}
	return &tableDecisions{conn: conn}
}

func (d *tableDecisions) Decide(ctx context.Context, gid string, commit bool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.conn.Exec(ctx, "insert into shardgate_decisions values ($1, $2) on conflict do nothing", gid, commit); err != nil {
		return false, err
	}
	err := d.conn.QueryRow(ctx, "select commit from shardgate_decisions where gid = $1", gid).Scan(&commit)
	return commit, err
}

func (d *tableDecisions) ForgetDecision(ctx context.Context, gid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.conn.Exec(ctx, "delete from shardgate_decisions where gid = $1", gid)
	return err
}

func (d *tableDecisions) count(t *testing.T) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int
	if err := d.conn.QueryRow(ctxT(t), "select count(*) from shardgate_decisions where commit").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func withTwoPhase(tp *proxy.TwoPhase) func(*proxyConfig) {
	return func(cfg *proxyConfig) { cfg.opts.TwoPhase = tp }
}

// preparedOn counts the prepared transactions left on each shard. It is
// polled, so it closes its connections at once.
func preparedOn(t *testing.T, c *cluster.Cluster) []int64 {
	t.Helper()
	var counts []int64
	for i := range c.Shards {
		conn, err := connectDSNErr(c.Shards[i].Primary.DSN("postgres", "", "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		err = conn.QueryRow(ctxT(t), "select count(*) from pg_prepared_xacts").Scan(&n)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	return counts
}

func distSchema(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, ddl := range []string{
		"create table users (id bigint primary key, name text)",
		"create table orders (id bigint, user_id bigint, total numeric, primary key (user_id, id))",
		"create table events (id bigint primary key, what text)",
		"create table countries (code text primary key, name text)",
		// A deferred unique constraint fails at PREPARE TRANSACTION, the
		// way to make one shard refuse the commit.
		"create table notes (id int primary key, body text unique deferrable initially deferred)",
	} {
		if _, err := conn.Exec(ctxT(t), ddl, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
}

func TestDistributedTransactions(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	log := newTableDecisions(t, c.Shards[0].Primary)
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec), withTwoPhase(&proxy.TwoPhase{Log: log, Node: "test"}))
	ctx := ctxT(t)
	conn := p.connect(t)
	distSchema(t, conn)
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))
	users := func(shard int) int64 { return countOn(t, c, shard, "select count(*) from users") }
	simple := pgx.QueryExecModeSimpleProtocol

	for _, mode := range []pgx.QueryExecMode{simple, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(fmt.Sprintf("commit/%v", mode), func(t *testing.T) {
			conn.Exec(ctx, "delete from users", simple)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int64{a, b} {
				if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", mode, id); err != nil {
					t.Fatalf("insert %d: %v", id, err)
				}
			}
			// Inside the transaction, its own writes on both shards show.
			var n int
			if err := tx.QueryRow(ctx, "select count(*) from users", mode).Scan(&n); err != nil || n != 2 {
				t.Fatalf("count inside the transaction = %d, %v", n, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if users(0) != 1 || users(1) != 1 {
				t.Fatalf("after commit the shards hold %d and %d users, want 1 and 1", users(0), users(1))
			}
			if got := preparedOn(t, c); got[0]+got[1] != 0 {
				t.Fatalf("prepared transactions left: %v", got)
			}
			if n := log.count(t); n != 0 {
				t.Fatalf("%d decisions left in the log", n)
			}
		})
	}

	t.Run("rollback", func(t *testing.T) {
		conn.Exec(ctx, "delete from users", simple)
		tx, _ := conn.Begin(ctx)
		tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", a)
		tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", b)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if users(0)+users(1) != 0 {
			t.Fatal("a rolled back transaction left rows")
		}
	})

	t.Run("error aborts every shard", func(t *testing.T) {
		conn.Exec(ctx, "delete from users", simple)
		conn.Exec(ctx, "insert into users (id, name) values ($1, 'old')", b)
		tx, _ := conn.Begin(ctx)
		if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", a); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'dup')", b)
		expectCode(t, err, "23505", "")
		_, err = tx.Exec(ctx, "select 1")
		expectCode(t, err, "25P02", "")
		tx.Commit(ctx) // a failed transaction's COMMIT rolls back
		if users(0)+users(1) != 1 {
			t.Fatalf("after a failed transaction %d users, want the 1 from before", users(0)+users(1))
		}
	})

	t.Run("a shard that refuses to prepare rolls back all", func(t *testing.T) {
		conn.Exec(ctx, "delete from users", simple)
		conn.Exec(ctx, "delete from notes", simple)
		tx, _ := conn.Begin(ctx)
		tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", a)
		tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", b)
		// Two notes on the default shard with one body: the deferred
		// constraint fails when that shard prepares.
		tx.Exec(ctx, "insert into notes values (1, 'same'), (2, 'same')")
		err := tx.Commit(ctx)
		expectCode(t, err, "23505", "on shard s0")
		if users(0)+users(1) != 0 {
			t.Fatalf("a commit that failed on one shard left %d users", users(0)+users(1))
		}
		if got := preparedOn(t, c); got[0]+got[1] != 0 {
			t.Fatalf("prepared transactions left: %v", got)
		}
	})

	t.Run("statements over several shards", func(t *testing.T) {
		conn.Exec(ctx, "delete from users", simple)
		// A multi-row INSERT is split by shard.
		tag, err := conn.Exec(ctx, fmt.Sprintf("insert into users (id, name) values (%d, 'a'), (%d, 'b')", a, b), simple)
		if err != nil || tag.String() != "INSERT 0 2" {
			t.Fatalf("multi-row insert: %v %v", tag, err)
		}
		if users(0) != 1 || users(1) != 1 {
			t.Fatalf("split insert: shards hold %d and %d", users(0), users(1))
		}
		// With bind parameters (extended protocol), each shard gets its
		// rows' parameters, renumbered; NULLs and a parameter outside
		// the rows included.
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
			rows, err := conn.Query(ctx, "insert into users (id, name) values ($1, $2), ($3, $4), ($5, null) on conflict (id) do update set name = $6 returning id", mode,
				a+100, "p", b, "q", a, "upserted")
			if err != nil {
				t.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil || len(ids) != 3 || rows.CommandTag().String() != "INSERT 0 3" {
				t.Fatalf("%v: split insert with parameters: %v %v %v", mode, ids, rows.CommandTag(), err)
			}
			conn.Exec(ctx, "delete from users where id = $1", a+100)
		}
		var upserted string
		if err := conn.QueryRow(ctx, "select name from users where id = $1", b).Scan(&upserted); err != nil || upserted != "upserted" {
			t.Fatalf("the ON CONFLICT parameter reached the shard as %q, %v", upserted, err)
		}
		// An UPDATE without a key runs on every shard, atomically.
		tag, err = conn.Exec(ctx, "update users set name = 'all'", simple)
		if err != nil || tag.String() != "UPDATE 2" {
			t.Fatalf("update everywhere: %v %v", tag, err)
		}
		// Reference tables are written on every shard; the client hears
		// of its one row once.
		var codes []string
		rows, _ := conn.Query(ctx, "insert into countries values ('fr', 'France') returning code")
		codes, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(codes) != 1 || rows.CommandTag().String() != "INSERT 0 1" {
			t.Fatalf("reference insert: %v %v %v", codes, rows.CommandTag(), err)
		}
		for i := range c.Shards {
			if n := countOn(t, c, i, "select count(*) from countries where code = 'fr'"); n != 1 {
				t.Fatalf("shard %d has %d copies of the reference row", i, n)
			}
		}
		// A failure on one shard undoes the statement on the others.
		_, err = conn.Exec(ctx, "update users set id = id where name = 'all' and 1/(id - $1) > -100", b)
		expectCode(t, err, "22012", "")
		if n := countOn(t, c, 0, "select count(*) from users where name = 'all'") + countOn(t, c, 1, "select count(*) from users where name = 'all'"); n != 2 {
			t.Fatal("rows changed")
		}
	})
	if got := preparedOn(t, c); got[0]+got[1] != 0 {
		t.Fatalf("prepared transactions left: %v", got)
	}
}

// TestTwoPhaseOff shows the refusal without two-phase commit: nothing of
// the transaction commits, and reads over several shards still work.
func TestTwoPhaseOff(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec))
	ctx := ctxT(t)
	conn := p.connect(t)
	distSchema(t, conn)
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))

	tx, _ := conn.Begin(ctx)
	if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", a); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "select count(*) from users").Scan(&n); err != nil || n != 1 {
		t.Fatalf("a read over both shards inside the transaction: %d %v", n, err)
	}
	_, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", b)
	expectCode(t, err, "0A000", "two-phase commit")
	tx.Commit(ctx)
	if n := countOn(t, c, 0, "select count(*) from users") + countOn(t, c, 1, "select count(*) from users"); n != 0 {
		t.Fatalf("%d rows committed by a refused transaction", n)
	}
	_, err = conn.Exec(ctx, "update users set name = 'y'")
	expectCode(t, err, "0A000", "two-phase commit")
}

// TestTwoPhaseRecovery stops a commit between PREPARE and COMMIT
// PREPARED, as a crash would, and shows that a proxy starting with the
// same node name resolves it: rolled back without a recorded decision,
// committed with one. Either way no shard holds half of it.
func TestTwoPhaseRecovery(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	log := newTableDecisions(t, c.Shards[0].Primary)
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))
	total := func() int64 {
		return countOn(t, c, 0, "select count(*) from users") + countOn(t, c, 1, "select count(*) from users")
	}

	for _, decided := range []bool{false, true} {
		t.Run(fmt.Sprintf("decided=%v", decided), func(t *testing.T) {
			stuck := make(chan string, 1)
			hang := make(chan struct{})
			defer close(hang)
			var armed atomic.Bool
			tp := &proxy.TwoPhase{Log: &hangingLog{DecisionLog: log, armed: &armed, hangAfterRecord: decided, stuck: stuck, hang: hang}, Node: "crashy"}
			if !decided {
				tp.AfterPrepare = func(gid string) {
					if armed.Load() {
						stuck <- gid
						<-hang
					}
				}
			}
			p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec), withTwoPhase(tp))
			ctx := ctxT(t)
			conn := p.connect(t)
			if !decided {
				distSchema(t, conn)
			}
			if _, err := conn.Exec(ctx, "delete from users"); err != nil {
				t.Fatal(err)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int64{a, b} {
				if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", id); err != nil {
					t.Fatal(err)
				}
			}
			armed.Store(true)
			go tx.Commit(context.Background())
			var gid string
			select {
			case gid = <-stuck:
			case <-time.After(20 * time.Second):
				t.Fatal("the commit never reached the point of the crash")
			}
			// The "crashed" proxy stands still: both shards hold the
			// prepared transaction, and nothing is committed.
			if got := preparedOn(t, c); got[0] != 1 || got[1] != 1 {
				t.Fatalf("prepared on the shards: %v, want 1 and 1", got)
			}
			if total() != 0 {
				t.Fatal("rows visible before the commit")
			}
			// A new proxy with the same node name resolves it at start.
			p2 := startProxy(t, proxy.TransactionMode, withShards(t, c, spec), withTwoPhase(&proxy.TwoPhase{Log: log, Node: "crashy"}))
			want := int64(0)
			if decided {
				want = 2
			}
			if !eventually(t, 10*time.Second, func() bool {
				got := preparedOn(t, c)
				return got[0]+got[1] == 0
			}) {
				t.Fatalf("in-doubt transaction %s not resolved: prepared %v", gid, preparedOn(t, c))
			}
			if got := total(); got != want {
				t.Fatalf("after recovery %d rows, want %d", got, want)
			}
			_ = p2
		})
	}
	// Without the resolver, the prepared transaction would stay: shown by
	// a node name that is not the crashed one's.
	t.Run("another node leaves it alone", func(t *testing.T) {
		stuck := make(chan string, 1)
		hang := make(chan struct{})
		defer close(hang)
		tp := &proxy.TwoPhase{Log: log, Node: "one", AfterPrepare: func(gid string) { stuck <- gid; <-hang }}
		p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec), withTwoPhase(tp))
		ctx := ctxT(t)
		conn := p.connect(t)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.Shards {
			onShard(t, c, i, "delete from users").Close()
		}
		for _, id := range []int64{a, b} {
			if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", id); err != nil {
				t.Fatal(err)
			}
		}
		go tx.Commit(context.Background())
		select {
		case <-stuck:
		case <-time.After(20 * time.Second):
			t.Fatal("the commit never reached the point of the crash")
		}
		startProxy(t, proxy.TransactionMode, withShards(t, c, spec), withTwoPhase(&proxy.TwoPhase{Log: log, Node: "other"}))
		time.Sleep(time.Second)
		if got := preparedOn(t, c); got[0] != 1 || got[1] != 1 {
			t.Fatalf("prepared on the shards: %v, want 1 and 1 (another node's are not ours)", got)
		}
		for i := range c.Shards {
			h := c.Shards[i].Primary
			conn := connectDSN(t, h.DSN("postgres", "", "app"))
			rows, _ := conn.Query(ctx, "select gid from pg_prepared_xacts")
			gids, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, g := range gids {
				if !strings.HasPrefix(g, "shardgate:one:") {
					t.Fatalf("unexpected gid %q", g)
				}
				conn.Exec(ctx, "rollback prepared '"+g+"'")
			}
		}
	})
}

// hangingLog stands still after recording a decision, when asked: the
// point of a crash after the decision and before COMMIT PREPARED.
type hangingLog struct {
	proxy.DecisionLog
	armed           *atomic.Bool
	hangAfterRecord bool
	stuck           chan string
	hang            chan struct{}
}

func (h *hangingLog) Decide(ctx context.Context, gid string, commit bool) (bool, error) {
	got, err := h.DecisionLog.Decide(ctx, gid, commit)
	if err == nil && commit && h.hangAfterRecord && h.armed.Load() {
		h.stuck <- gid
		<-h.hang
	}
	return got, err
}

// TestShardedCopyFrom splits COPY FROM STDIN by shard, in text, CSV and
// binary format, and checks each row landed where the server's own hash
// says; a COPY that fails anywhere leaves nothing behind.
func TestShardedCopyFrom(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec),
		withTwoPhase(&proxy.TwoPhase{Log: newTableDecisions(t, c.Shards[0].Primary), Node: "copy"}))
	ctx := ctxT(t)
	conn := p.connect(t)
	distSchema(t, conn)
	total := func(table string) int64 {
		return countOn(t, c, 0, "select count(*) from "+table) + countOn(t, c, 1, "select count(*) from "+table)
	}
	misplaced := func() int64 {
		return countOn(t, c, 0, "select count(*) from users where hashint8extended(id, 0) >= 0") +
			countOn(t, c, 1, "select count(*) from users where hashint8extended(id, 0) < 0")
	}
	var text, csv strings.Builder
	for i := range 500 {
		fmt.Fprintf(&text, "%d\tname\\t%d\n", i, i)
		fmt.Fprintf(&csv, "%d,\"name, \"\"%d\"\"\"\n", 1000+i, i)
	}
	tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(text.String()), "copy users (id, name) from stdin")
	if err != nil || tag.RowsAffected() != 500 {
		t.Fatalf("text copy: %v %v", tag, err)
	}
	tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("id,name\n"+csv.String()), "copy users from stdin (format csv, header true)")
	if err != nil || tag.RowsAffected() != 500 {
		t.Fatalf("csv copy: %v %v", tag, err)
	}
	var rows [][]any
	for i := range 500 {
		rows = append(rows, []any{int64(2000 + i), fmt.Sprintf("bin %d", i)})
	}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "name"}, pgx.CopyFromRows(rows))
	if err != nil || n != 500 {
		t.Fatalf("binary copy: %d %v", n, err)
	}
	if got := total("users"); got != 1500 {
		t.Fatalf("%d users after the copies, want 1500", got)
	}
	if got := misplaced(); got != 0 {
		t.Fatalf("%d rows on the wrong shard", got)
	}
	if countOn(t, c, 0, "select count(*) from users") == 0 || countOn(t, c, 1, "select count(*) from users") == 0 {
		t.Fatal("the copy did not spread")
	}
	var name string
	if err := conn.QueryRow(ctx, "select name from users where id = 1007").Scan(&name); err != nil || name != `name, "7"` {
		t.Fatalf("csv row read back as %q, %v", name, err)
	}
	if err := conn.QueryRow(ctx, "select name from users where id = 7").Scan(&name); err != nil || name != "name\t7" {
		t.Fatalf("text row read back as %q, %v", name, err)
	}

	// A bad row anywhere fails the whole copy, on every shard.
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("5000\tok\n5001\tok\nnot-a-number\tbad\n"), "copy users (id, name) from stdin")
	expectCode(t, err, "22P02", "")
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("5000\tok\n5001\tok\n1\tduplicate\n"), "copy users (id, name) from stdin")
	expectCode(t, err, "23505", "")
	if got := total("users"); got != 1500 {
		t.Fatalf("%d users after failed copies, want 1500", got)
	}
	// The connection goes on working.
	if err := conn.QueryRow(ctx, "select count(*) from users").Scan(&n); err != nil || n != 1500 {
		t.Fatalf("after the failed copies: %d %v", n, err)
	}

	// A reference table gets every row on every shard.
	tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("de\tGermany\nit\tItaly\n"), "copy countries from stdin")
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("reference copy: %v %v (the client copied 2 rows)", tag, err)
	}
	for i := range c.Shards {
		if n := countOn(t, c, i, "select count(*) from countries"); n != 2 {
			t.Fatalf("shard %d holds %d countries, want 2", i, n)
		}
	}
}

// TestShardedEdges holds cases the differential test found: each failed
// before its fix.
func TestShardedEdges(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec),
		withTwoPhase(&proxy.TwoPhase{Log: newTableDecisions(t, c.Shards[0].Primary), Node: "edges"}))
	ctx := ctxT(t)
	conn := p.connect(t)
	distSchema(t, conn)
	simple := pgx.QueryExecModeSimpleProtocol
	for id := range 10 {
		if _, err := conn.Exec(ctx, "insert into users (id, name) values ($1, 'u')", id); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	d := m.Distribution("users")

	t.Run("quoted LIMIT and OFFSET over several shards", func(t *testing.T) {
		rows, _ := conn.Query(ctx, "select id from users order by id limit '2' offset '1'", simple)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
			t.Fatalf("got %v, %v; want [1 2]", ids, err)
		}
	})

	t.Run("reference write tags in the extended protocol", func(t *testing.T) {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
			tag, err := conn.Exec(ctx, "insert into countries (code, name) values ($1, 'x')", mode, fmt.Sprint(mode))
			if err != nil || tag.String() != "INSERT 0 1" {
				t.Fatalf("%v: %v %v, want INSERT 0 1", mode, tag, err)
			}
		}
		tag, err := conn.Exec(ctx, "update countries set name = $1", "y")
		if err != nil || tag.String() != "UPDATE 2" {
			t.Fatalf("update of the reference table: %v %v, want UPDATE 2 (two rows, once)", tag, err)
		}
	})

	t.Run("COPY TO with a header or in binary over several shards", func(t *testing.T) {
		var out strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &out, "copy users to stdout with (format csv, header)"); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "id,name\n"); n != 1 || !strings.HasPrefix(out.String(), "id,name\n") || strings.Count(out.String(), "\n") != 11 {
			t.Fatalf("csv with header: %d header lines in\n%s", n, out.String())
		}
		var bin strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &bin, "copy users to stdout with (format binary)"); err != nil {
			t.Fatal(err)
		}
		// The server itself must read it back as one copy: one signature,
		// every row, one trailer.
		direct := connectDSN(t, c.Shards[0].Primary.DSN("app", "app", "app"))
		direct.Exec(ctx, "create temp table back (id bigint, name text)")
		tag, err := direct.PgConn().CopyFrom(ctx, strings.NewReader(bin.String()), "copy back from stdin with (format binary)")
		if err != nil || tag.RowsAffected() != 10 {
			t.Fatalf("binary copy read back: %v %v", tag, err)
		}
	})

	t.Run("numeric literal for an integer key", func(t *testing.T) {
		var n int
		if err := conn.QueryRow(ctx, "select count(*) from users where id = 2.0", simple).Scan(&n); err != nil || n != 1 {
			t.Fatalf("id = 2.0: %d %v, want 1 row as from the server", n, err)
		}
		if err := conn.QueryRow(ctx, "select count(*) from users where id = 2.5", simple).Scan(&n); err != nil || n != 0 {
			t.Fatalf("id = 2.5: %d %v, want 0 rows", n, err)
		}
		// Assigned, 10.5 is rounded to 11: the row must be where 11 lives.
		if _, err := conn.Exec(ctx, "insert into users (id, name) values (10.5, 'rounded')", simple); err != nil {
			t.Fatal(err)
		}
		want, _ := m.Locate(ctx, d, mustKey(t, "11"))
		if n := countOn(t, c, want, "select count(*) from users where id = 11"); n != 1 {
			t.Fatalf("the row of key 10.5 (stored as 11) is not on shard %d", want)
		}
	})

	t.Run("a statement described before the transaction's first", func(t *testing.T) {
		// pgx describes a new statement before it binds it; the describe
		// must not pin the transaction to a shard it never uses.
		a, b := twoKeysOnTwoShards(t, d)
		key := a
		if i, _ := m.Locate(ctx, d, mustKey(t, fmt.Sprint(a))); i == m.DefaultShard() {
			key = b // a key off the default shard, where the describe goes
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("update users set name = 'described %v' where id = $1", mode), mode, key); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "savepoint a", simple); err != nil {
				t.Fatalf("%v: savepoint in a one-shard transaction: %v", mode, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func mustKey(t *testing.T, s string) shardmap.Key {
	t.Helper()
	k, err := shardmap.ParseKey(shardmap.KindInt, s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDistributedSavepoints: savepoints in a transaction over several
// shards behave as on one server, including for a shard that joined
// after the savepoint was made, in both protocols.
func TestDistributedSavepoints(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec),
		withTwoPhase(&proxy.TwoPhase{Log: newTableDecisions(t, c.Shards[0].Primary), Node: "savepoints"}))
	ctx := ctxT(t)
	conn := p.connect(t)
	distSchema(t, conn)
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))
	simple := pgx.QueryExecModeSimpleProtocol
	names := func() []string {
		rows, _ := conn.Query(ctx, "select name from users order by name", simple)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	exec := func(tx pgx.Tx, sql string, extended bool, args ...any) error {
		if extended {
			// pgx sends a statement without arguments in the simple
			// protocol; pgconn's ExecParams is the extended one.
			_, err := tx.Conn().PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
			return err
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	for _, extended := range []bool{false, true} {
		t.Run(fmt.Sprintf("extended=%v", extended), func(t *testing.T) {
			conn.Exec(ctx, "delete from users", simple)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(exec(tx, "insert into users (id, name) values ($1, 'a')", false, a))
			must(exec(tx, "savepoint sp", extended))
			// Shard b joins after the savepoint: rolling back to it must
			// undo b's insert too.
			must(exec(tx, "insert into users (id, name) values ($1, 'b')", false, b))
			must(exec(tx, "rollback to savepoint sp", extended))
			// An error on one shard aborts the transaction until a
			// rollback to a savepoint.
			must(exec(tx, "insert into users (id, name) values ($1, 'b2')", false, b))
			must(exec(tx, "savepoint sp2", extended))
			err = exec(tx, "insert into users (id, name) values ($1, 'dup')", false, b)
			expectCode(t, err, "23505", "")
			expectCode(t, exec(tx, "select 1", false), "25P02", "")
			must(exec(tx, "rollback to savepoint sp2", extended))
			must(exec(tx, "release savepoint sp", extended))
			must(exec(tx, "insert into users (id, name) values ($1, 'c')", false, a+1000003))
			must(tx.Commit(ctx))
			if got := names(); !slices.Equal(got, []string{"a", "b2", "c"}) {
				t.Fatalf("after the transaction: %v, want [a b2 c]", got)
			}
		})
	}
}
