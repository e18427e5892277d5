package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/proxy"
)

func poolSize(n int) func(*proxyConfig) {
	return func(c *proxyConfig) { c.pool.Size = n }
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestClientKilledMidTransaction: a client that vanishes inside a
// transaction must not leave its server in that transaction for the next
// client.
func TestClientKilledMidTransaction(t *testing.T) {
	ctx := ctxT(t)
	db := direct(t)
	if _, err := db.Exec(ctx, "drop table if exists killed; create table killed (id int); grant all on killed to app"); err != nil {
		t.Fatal(err)
	}

	// The detector sees a server left in a transaction when there is one.
	leak := connectDSN(t, primary().DSN("app", "app", "app"))
	if _, err := leak.Exec(ctx, "begin; select 1"); err != nil {
		t.Fatal(err)
	}
	if n := appBackends(t, db)["idle in transaction"]; n != 1 {
		t.Fatalf("detector: want 1 idle in transaction, got %d", n)
	}
	leak.Close(ctx)
	eventually(t, 5*time.Second, func() bool { return appBackends(t, db)["idle in transaction"] == 0 })

	for _, mode := range []proxy.PoolMode{proxy.TransactionMode, proxy.SessionMode} {
		t.Run(mode.String(), func(t *testing.T) {
			p := startProxy(t, mode, poolSize(1))
			a := p.connect(t)
			if _, err := a.Exec(ctx, "begin; insert into killed values (1)"); err != nil {
				t.Fatal(err)
			}
			if n := appBackends(t, db)["idle in transaction"]; n != 1 {
				t.Fatalf("want the client's transaction open, got %v", appBackends(t, db))
			}
			a.PgConn().Conn().Close() // vanish without Terminate

			if !eventually(t, 5*time.Second, func() bool { return appBackends(t, db)["idle in transaction"] == 0 }) {
				t.Fatalf("server left in a transaction: %v", appBackends(t, db))
			}
			// The next client, on the pool's only slot, runs outside any
			// transaction (transaction mode reuses the rolled-back server,
			// session mode opens a fresh one), and the insert is gone.
			b := p.connect(t)
			var xid *int64
			var n int
			if err := b.QueryRow(ctx, "select txid_current_if_assigned(), (select count(*) from killed)").Scan(&xid, &n); err != nil {
				t.Fatal(err)
			}
			if xid != nil || n != 0 {
				t.Fatalf("next client inherited the transaction: xid %v, rows %d", *xid, n)
			}
		})
	}
}

// TestSettingsFollowClient: in transaction mode a client's SETs follow it
// to whichever server serves it, and never leak to other clients.
func TestSettingsFollowClient(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2))
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	var defTZ string
	if err := b.QueryRow(ctx, "show timezone").Scan(&defTZ); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "set time zone 'Asia/Tokyo'; set search_path = \"My Schema\", public; set application_name = 'client-a'"); err != nil {
		t.Fatal(err)
	}
	// A SET rolled back must not stick.
	if _, err := a.Exec(ctx, "begin; set statement_timeout = '7s'; rollback"); err != nil {
		t.Fatal(err)
	}
	pidsA, pidsB := map[uint32]bool{}, map[uint32]bool{}
	type querier interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	check := func(c querier, pids map[uint32]bool, wantTZ, wantPath, wantApp string) {
		t.Helper()
		var pid uint32
		var tz, path, app, timeout string
		err := c.QueryRow(ctx, "select pg_backend_pid(), current_setting('timezone'), current_setting('search_path'), current_setting('application_name'), current_setting('statement_timeout')").
			Scan(&pid, &tz, &path, &app, &timeout)
		if err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
		if tz != wantTZ || path != wantPath || app != wantApp || timeout != "0" {
			t.Fatalf("server %d: timezone %q search_path %q application_name %q statement_timeout %q; want %q %q %q 0",
				pid, tz, path, app, timeout, wantTZ, wantPath, wantApp)
		}
	}
	for i := range 10 {
		// Hold one server in a transaction so the other client must use
		// the other one; alternate who holds it.
		holder := a
		if i%2 == 1 {
			holder = b
		}
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkA := func(q querier) { check(q, pidsA, "Asia/Tokyo", `"My Schema", public`, "client-a") }
		checkB := func(q querier) { check(q, pidsB, defTZ, `"$user", public`, "") }
		if holder == a {
			checkA(tx)
			checkB(b)
		} else {
			checkB(tx)
			checkA(a)
		}
		tx.Commit(ctx)
		p.waitIdle(t)
	}
	// The check is only meaningful if both clients used both servers.
	shared := 0
	for pid := range pidsA {
		if pidsB[pid] {
			shared++
		}
	}
	if len(pidsA) < 2 || shared == 0 {
		t.Fatalf("clients did not move between servers: a %v b %v", pidsA, pidsB)
	}
}

// TestPreparedAcrossServers: protocol-level prepared statements work in
// transaction mode while clients hop between servers.
func TestPreparedAcrossServers(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2), func(c *proxyConfig) { c.opts.PreparedCacheSize = 3 })
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var hopped atomic.Int32
	errs := make(chan error, 8)
	for w := range 4 {
		c := p.connect(t)
		wg.Go(func() {
			pids := map[uint32]bool{}
			for i := range 60 {
				// Five statements per client and a cache of three per
				// server: statements are evicted and prepared again.
				var pid uint32
				var got int
				q := fmt.Sprintf("select pg_backend_pid(), $1::int + %d", i%5)
				if err := c.QueryRow(ctx, q, w*1000+i).Scan(&pid, &got); err != nil {
					errs <- fmt.Errorf("client %d query %d: %w", w, i, err)
					return
				}
				if got != w*1000+i+i%5 {
					errs <- fmt.Errorf("client %d: got %d want %d", w, got, w*1000+i+i%5)
					return
				}
				pids[pid] = true
			}
			if len(pids) > 1 {
				hopped.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hopped.Load() == 0 {
		t.Log("no concurrent client moved between servers this run; the sequential part below does")
	}

	// Sequentially and for certain: a holder's transaction takes one
	// server every other query, so c alternates between the two, and its
	// five statements overflow each server's cache of three.
	c, holder := p.connect(t), p.connect(t)
	pids := map[uint32]bool{}
	for i := range 20 {
		var tx pgx.Tx
		if i%2 == 0 {
			var err error
			if tx, err = holder.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			// BEGIN alone takes no server: its first statement does.
			if _, err := tx.Exec(ctx, "select 1"); err != nil {
				t.Fatal(err)
			}
		}
		var pid uint32
		var got int
		if err := c.QueryRow(ctx, fmt.Sprintf("select pg_backend_pid(), $1::int + %d", i%5), i).Scan(&pid, &got); err != nil || got != i+i%5 {
			t.Fatalf("query %d: %d %v", i, got, err)
		}
		pids[pid] = true
		if tx != nil {
			tx.Commit(ctx)
		}
		p.waitIdle(t)
	}
	if len(pids) != 2 {
		t.Fatalf("c used servers %v, want both", pids)
	}

	// Statement names the client reuses after closing, SQL DEALLOCATE.
	c = p.connect(t)
	if _, err := c.Prepare(ctx, "s1", "select 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "s1", "select 1"); err != nil {
		t.Fatal("re-prepare of the same statement:", err)
	}
	if _, err := c.Exec(ctx, "deallocate s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "deallocate s1"); sqlState(err) != "26000" {
		t.Fatalf("deallocate of a missing statement: %v", err)
	}
	if _, err := c.Exec(ctx, "deallocate all"); err != nil {
		t.Fatal(err)
	}
}

// TestCheckoutTimeout: a client that cannot get a server gets an error
// naming the pool, not a hang. The context deadline catches a hang.
func TestCheckoutTimeout(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(1), func(c *proxyConfig) { c.pool.CheckoutTimeout = 300 * time.Millisecond })
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// BEGIN alone takes no server: its first statement does.
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = b.Exec(qctx, "select 1")
	if sqlState(err) != "53300" {
		t.Fatalf("want 53300, got %v after %v", err, time.Since(start))
	}
	// b is still usable once a server is free.
	tx.Rollback(ctx)
	if _, err := b.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
}

// TestStatementModeLimits: statement mode refuses transactions and
// session state, with errors naming the mode.
func TestStatementModeLimits(t *testing.T) {
	ctx := ctxT(t)
	st := startProxy(t, proxy.StatementMode).connect(t)
	if _, err := st.Exec(ctx, "begin"); sqlState(err) != "25001" {
		t.Fatalf("statement mode BEGIN: %v", err)
	}
	for _, q := range []string{"listen chan", "prepare p as select 1", "create temp table tt (a int)"} {
		if _, err := st.Exec(ctx, q); sqlState(err) != "0A000" {
			t.Fatalf("statement mode %q: %v", q, err)
		}
	}
	if _, err := st.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
}

// TestPinning: in transaction mode, a client that creates session state
// keeps its server, so the state stays usable; other clients are served by
// the rest of the pool, and the next owner of the server finds it clean.
func TestPinning(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2))
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	if _, err := a.Exec(ctx, "create temp table scratch (v int); prepare two as select 2; listen pinned"); err != nil {
		t.Fatal(err)
	}
	var pinnedPID uint32
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pinnedPID); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		// b's transactions can only use the other server.
		var pid uint32
		if err := b.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil || pid == pinnedPID {
			t.Fatalf("b got the pinned server (%d) or failed: %v", pid, err)
		}
		var n, two int
		if err := a.QueryRow(ctx, "insert into scratch values ($1) returning (select count(*) from scratch)", i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := a.QueryRow(ctx, "execute two").Scan(&two); err != nil || two != 2 {
			t.Fatal(two, err)
		}
	}
	if _, err := b.Exec(ctx, "notify pinned, 'x'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := a.WaitForNotification(wctx); err != nil || n.Payload != "x" {
		t.Fatalf("notification on a pinned client: %v %v", n, err)
	}
	// b holds the other server in a transaction while a leaves, so the next
	// client can only get a's former server: it must find it clean.
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// BEGIN alone takes no server: its first statement does.
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	c := p.connect(t)
	var pid uint32
	var tables, stmts int
	// Only this session's temporary schema: pg_tables lists every
	// session's temporary tables.
	if err := c.QueryRow(ctx, `select pg_backend_pid(),
		(select count(*) from pg_class where relname = 'scratch' and relnamespace = pg_my_temp_schema()),
		(select count(*) from pg_prepared_statements where name = 'two')`).Scan(&pid, &tables, &stmts); err != nil {
		t.Fatal(err)
	}
	if pid != pinnedPID {
		t.Fatalf("next client got server %d, not a's former server %d: the check proves nothing", pid, pinnedPID)
	}
	if tables != 0 || stmts != 0 {
		t.Fatalf("a's former server kept its temp table (%d) or prepared statement (%d)", tables, stmts)
	}
}

// TestListenSessionMode: LISTEN/NOTIFY works in session mode.
func TestListenSessionMode(t *testing.T) {
	p := startProxy(t, proxy.SessionMode)
	ctx := ctxT(t)
	l, n := p.connect(t), p.connect(t)
	if _, err := l.Exec(ctx, "listen events"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(ctx, "notify events, 'hello'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	note, err := l.WaitForNotification(wctx)
	if err != nil || note.Payload != "hello" {
		t.Fatalf("notification: %+v %v", note, err)
	}
}

// TestSessionModeReset: a session-mode server is reset before the next
// client gets it.
func TestSessionModeReset(t *testing.T) {
	p := startProxy(t, proxy.SessionMode, poolSize(1))
	ctx := ctxT(t)
	a := p.connect(t)
	var pidA, pidB uint32
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "set application_name = 'left-over'; prepare leftover as select 1"); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	b := p.connect(t)
	var app string
	if err := b.QueryRow(ctx, "select pg_backend_pid(), current_setting('application_name')").Scan(&pidB, &app); err != nil {
		t.Fatal(err)
	}
	if pidA != pidB {
		t.Fatalf("second client got another server (%d, %d): the test proves nothing", pidA, pidB)
	}
	if app == "left-over" {
		t.Fatal("setting leaked to the next client")
	}
	if _, err := b.Exec(ctx, "execute leftover"); sqlState(err) != "26000" {
		t.Fatalf("prepared statement leaked to the next client: %v", err)
	}
}

// TestStaleStatementAfterDDL: after DDL changes what a cached statement
// returns, the client gets PostgreSQL's error once, as directly, and the
// statement works again when its driver prepares it anew; it must not stay
// broken on the servers that share it.
func TestStaleStatementAfterDDL(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2))
	ctx := ctxT(t)
	db := direct(t)
	if _, err := db.Exec(ctx, "drop table if exists ddl_t; create table ddl_t (id int, a int, b int); insert into ddl_t values (1, 2, 3); grant all on ddl_t to app"); err != nil {
		t.Fatal(err)
	}
	c := p.connect(t)
	q := "select * from ddl_t where id = $1"
	if _, err := c.Exec(ctx, q, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "alter table ddl_t drop column a"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, q, 1)
	if err == nil || !strings.Contains(err.Error(), "cached plan must not change result type") {
		t.Fatalf("want the server's stale-plan error once, got %v", err)
	}
	for i := range 3 {
		var id, b int
		if err := c.QueryRow(ctx, q, 1).Scan(&id, &b); err != nil || b != 3 {
			t.Fatalf("attempt %d after re-prepare: %d %v", i, b, err)
		}
	}
}

// TestAdvisoryLockPins: a session-level advisory lock belongs to the
// server session, so a transaction-mode client taking one is pinned and
// can release it. Without the pin, b's transaction would take a's former
// server (the pool reuses the last one returned) and a's unlock would run
// on the other server and fail.
func TestAdvisoryLockPins(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2))
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	if _, err := a.Exec(ctx, "select pg_advisory_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var got bool
	if err := tx.QueryRow(ctx, "select pg_try_advisory_lock(4242)").Scan(&got); err != nil || got {
		t.Fatalf("b took a's lock (%v, %v)", got, err)
	}
	if err := a.QueryRow(ctx, "select pg_advisory_unlock(4242)").Scan(&got); err != nil || !got {
		t.Fatalf("a could not release its own lock (%v, %v)", got, err)
	}
}

// TestSetConfigFollowsClient: a setting changed with set_config() rather
// than SET follows the client to another server, as the server reported
// it; one changed in a rolled-back transaction does not.
func TestSetConfigFollowsClient(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(2))
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	var pid1, pid2 uint32
	if err := a.QueryRow(ctx, "select pg_backend_pid() from set_config('application_name', 'via-set-config', false)").Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "begin; select set_config('TimeZone', 'Asia/Tokyo', false); rollback"); err != nil {
		t.Fatal(err)
	}
	p.waitIdle(t)
	// b holds a's last server, so a must run on the other one.
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var held uint32
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&held); err != nil {
		t.Fatal(err)
	}
	var app, tz string
	if err := a.QueryRow(ctx, "select pg_backend_pid(), current_setting('application_name'), current_setting('TimeZone')").Scan(&pid2, &app, &tz); err != nil {
		t.Fatal(err)
	}
	if pid2 == held || pid2 != held && held != pid1 {
		t.Fatalf("a ran on server %d, b held %d, a's first was %d: a did not move, the test proves nothing", pid2, held, pid1)
	}
	if app != "via-set-config" || tz == "Asia/Tokyo" {
		t.Fatalf("on server %d (was %d): application_name %q, TimeZone %q", pid2, pid1, app, tz)
	}
}
