package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/shardmap"
)

// The admin console, end to end: every command through psql (simple
// protocol, text results) and through pgx (extended protocol with its
// statement cache: Parse, Describe, then Bind asking binary results for
// int8, bool and float8, so the console's binary encoding is decoded by a
// real driver).

const consoleVersion = "9.9.9-console-test"

// consoleAdmin gives a test proxy an admin console: postgres may run
// every command, consolestats only SHOW; app is in neither list.
func consoleAdmin(cfg *proxyConfig) {
	cfg.opts.Users["consolestats"] = &proxy.User{
		Credential: auth.Credential{User: "consolestats", Method: auth.MethodTrust}, ServerUser: "postgres"}
	cfg.opts.Admin = proxy.AdminOptions{Users: []string{"postgres"}, StatsUsers: []string{"consolestats"}}
	cfg.opts.Version = consoleVersion
	cfg.opts.Config = func() [][2]string {
		return [][2]string{{"listen.addr", "127.0.0.1:6432"}, {"pool.size", "10"}, {"users.app.password", "(redacted)"}}
	}
}

// consoleDSN is a connection string for the proxy's console.
func consoleDSN(p *testProxy, user, password string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=shardgate sslmode=disable", host, port, user)
	if password != "" {
		dsn += " password=" + password
	}
	return dsn
}

// consoleConnect opens a pgx console session; notices returns the
// NOTICE messages it has received so far.
func consoleConnect(t *testing.T, p *testProxy, user string) (c *pgx.Conn, notices func() []string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(consoleDSN(p, user, ""))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		got = append(got, n.Message)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("console login as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// consolePsql runs psql with one -c per command, CSV output and verbose
// errors (so SQLSTATEs show).
func consolePsql(t *testing.T, dsn string, cmds ...string) (stdout, stderr string, err error) {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatal("psql is not installed:", err)
	}
	args := []string{"-X", "--csv", "-v", "VERBOSITY=verbose", "-d", dsn}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", args...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGAPPNAME=console_test")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// consolePsqlOK runs commands with psql as postgres and fails the test on
// any error.
func consolePsqlOK(t *testing.T, p *testProxy, cmds ...string) string {
	t.Helper()
	out, errOut, err := consolePsql(t, consoleDSN(p, "postgres", ""), cmds...)
	if err != nil || strings.Contains(errOut, "ERROR") {
		t.Fatalf("psql %q: %v\nstdout: %s\nstderr: %s", cmds, err, out, errOut)
	}
	return out
}

// consolePsqlErr runs one command with psql as user and checks that it
// fails with SQLSTATE code and a message mentioning text.
func consolePsqlErr(t *testing.T, p *testProxy, user, cmd, code, text string) {
	t.Helper()
	out, errOut, _ := consolePsql(t, consoleDSN(p, user, ""), cmd)
	if !strings.Contains(errOut, "ERROR:  "+code+":") || !strings.Contains(errOut, text) {
		t.Fatalf("psql %q as %s: want ERROR %s mentioning %q\nstdout: %s\nstderr: %s", cmd, user, code, text, out, errOut)
	}
}

// consoleResult is one command's result: columns and rows as text (NULL
// reads as ""), whatever the protocol.
type consoleResult struct {
	// cols are "name:type" from pgx, "name" from psql.
	cols []string
	rows []map[string]string
	// binary counts the columns pgx received in binary format.
	binary int
	// via is "psql" or "pgx".
	via string
}

var consoleTypeNames = map[uint32]string{20: "int8", 16: "bool", 701: "float8", 25: "text"}

// consoleWantCols are the documented columns of each SHOW.
var consoleWantCols = map[string]string{
	"POOLS": "database:text user:text shard:text host:text role:text cl_active:int8 cl_waiting:int8 sv_active:int8 " +
		"sv_idle:int8 sv_used:int8 sv_login:int8 pool_size:int8 maxwait:int8 maxwait_us:int8 pool_mode:text paused:bool",
	"STATS": "database:text user:text shard:text host:text role:text total_xact_count:int8 total_query_count:int8 " +
		"total_error_count:int8 total_received:int8 total_sent:int8 total_xact_time:int8 total_query_time:int8 " +
		"total_wait_time:int8 avg_xact_time:int8 avg_query_time:int8 avg_wait_time:int8 checkout_timeouts:int8 connect_errors:int8",
	"CLIENTS": "id:int8 user:text database:text state:text addr:text connect_time:text pool_mode:text shard:text " +
		"server:text server_pid:int8 in_transaction:bool pinned:bool prepared:int8",
	"SERVERS": "shard:text host:text role:text user:text database:text state:text pid:int8 connect_time:text " +
		"request_time:text client_id:int8",
	"HOSTS": "shard:text host:text zone:text role:text primary:bool state:text lsn:text lag_bytes:int8 lag_seconds:float8 " +
		"reads:int8 primary_reads_ryw:int8 primary_reads_lag:int8 primary_reads_no_replica:int8 ban_reason:text " +
		"banned_for:float8 retry_in:float8",
	"SHARDS":   "index:int8 shard:text primary:text hosts:int8 replicas_up:int8 default:bool paused:bool",
	"SHARDMAP": "version:int8 distribution:text method:text key_type:text tables:text lower:text upper:text shard:text",
	"PREPARED": "client_id:int8 name:text server_name:text query:text",
	"CONFIG":   "key:text value:text",
	"VERSION":  "version:text",
	"FANOUTS":  "kind:text count:int8",
	"HELP":     "command:text description:text",
}

// consolePgx runs a command through pgx's default (cached, extended
// protocol) mode.
func consolePgx(t *testing.T, c *pgx.Conn, sql string) consoleResult {
	t.Helper()
	rows, err := c.Query(ctxT(t), sql)
	if err != nil {
		t.Fatalf("pgx %q: %v", sql, err)
	}
	defer rows.Close()
	r := consoleResult{via: "pgx"}
	for _, f := range rows.FieldDescriptions() {
		r.cols = append(r.cols, f.Name+":"+consoleTypeNames[f.DataTypeOID])
		if f.Format == pgx.BinaryFormatCode {
			r.binary++
		}
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("pgx %q: decoding a row: %v", sql, err)
		}
		row := map[string]string{}
		for i, v := range vals {
			row[rows.FieldDescriptions()[i].Name] = consoleText(v)
		}
		r.rows = append(r.rows, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgx %q: %v", sql, err)
	}
	return r
}

// consoleText writes a decoded value as psql prints it.
func consoleText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		if x {
			return "t"
		}
		return "f"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	}
	return fmt.Sprintf("<%T %v>", v, v)
}

// consolePsqlResult runs one command through psql as postgres.
func consolePsqlResult(t *testing.T, p *testProxy, sql string) consoleResult {
	t.Helper()
	out := consolePsqlOK(t, p, sql)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("psql %q: cannot read CSV output %q: %v", sql, out, err)
	}
	r := consoleResult{cols: recs[0], via: "psql"}
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, v := range rec {
			row[recs[0][i]] = v
		}
		r.rows = append(r.rows, row)
	}
	return r
}

// consoleBoth runs sql through psql and through pgx, checks the columns
// against the documented ones, and hands each result to check.
func consoleBoth(t *testing.T, p *testProxy, adm *pgx.Conn, sql, object string, check func(t *testing.T, r consoleResult)) {
	t.Helper()
	want := strings.Fields(consoleWantCols[object])
	t.Run("psql", func(t *testing.T) {
		r := consolePsqlResult(t, p, sql)
		var names []string
		for _, w := range want {
			names = append(names, strings.Split(w, ":")[0])
		}
		if !slices.Equal(r.cols, names) {
			t.Fatalf("%s columns:\n got %v\nwant %v", sql, r.cols, names)
		}
		check(t, r)
	})
	t.Run("pgx", func(t *testing.T) {
		r := consolePgx(t, adm, sql)
		if !slices.Equal(r.cols, want) {
			t.Fatalf("%s columns:\n got %v\nwant %v", sql, r.cols, want)
		}
		if strings.Contains(consoleWantCols[object], ":int8") && r.binary == 0 {
			t.Fatalf("%s: pgx received no column in binary format; the test no longer checks the binary encoding", sql)
		}
		check(t, r)
	})
}

// consoleRows returns the rows whose column col is val.
func consoleRows(r consoleResult, col, val string) []map[string]string {
	var out []map[string]string
	for _, row := range r.rows {
		if row[col] == val {
			out = append(out, row)
		}
	}
	return out
}

// consoleRow returns the only row matching every col=val pair.
func consoleRow(t *testing.T, r consoleResult, pairs ...string) map[string]string {
	t.Helper()
	var out []map[string]string
next:
	for _, row := range r.rows {
		for i := 0; i+1 < len(pairs); i += 2 {
			if row[pairs[i]] != pairs[i+1] {
				continue next
			}
		}
		out = append(out, row)
	}
	if len(out) != 1 {
		t.Fatalf("want one row with %v, got %d in %v", pairs, len(out), r.rows)
	}
	return out[0]
}

func consoleInt(t *testing.T, row map[string]string, col string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(row[col], 10, 64)
	if err != nil {
		t.Fatalf("column %s = %q: %v (row %v)", col, row[col], err, row)
	}
	return n
}

// consoleWant checks that each col=val pair holds in row.
func consoleWant(t *testing.T, row map[string]string, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if row[pairs[i]] != pairs[i+1] {
			t.Errorf("column %s = %q, want %q (row %v)", pairs[i], row[pairs[i]], pairs[i+1], row)
		}
	}
}

// consoleCode checks that err carries SQLSTATE code and mentions text.
func consoleCode(t *testing.T, err error, code, text string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(pe.Message, text) {
		t.Fatalf("got %v, want SQLSTATE %s mentioning %q", err, code, text)
	}
}

// consoleExec runs a command through pgx's extended protocol (pgx's Exec
// without arguments would use the simple one) and returns its tag.
func consoleExec(ctx context.Context, c *pgx.Conn, sql string) (string, error) {
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return "", err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.CommandTag().String(), rows.Err()
}

// consoleAsync runs f in a goroutine; the channel gets its error.
func consoleAsync(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// consoleBlocked checks that ch gets nothing for d.
func consoleBlocked(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s completed (err %v) within %s; it should wait", what, err, d)
	case <-time.After(d):
	}
}

// consoleDone waits for ch and checks it got no error.
func consoleDone(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not complete within %s", what, d)
	}
}

// TestConsoleShow runs every SHOW after some traffic, through psql and
// pgx, and checks the columns and that the rows describe that traffic.
func TestConsoleShow(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, withTopology(pg, lsnRouting()), consoleAdmin, func(cfg *proxyConfig) {
		m, err := shardmap.Build(shardmap.Spec{}, []string{"s0"}, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.opts.ShardMap = m // as the daemon does with no sharding section
	})
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	for i := range 3 {
		var n int
		if err := a.QueryRow(ctx, "select $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("select $1::int + 1: %d, %v", n, err)
		}
		if err := pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "select 1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if !inRecovery(t, a, "") {
		t.Fatal("a read ran on the primary: SHOW HOSTS would have no replica reads to show")
	}
	p.waitIdle(t)
	// b stays inside a transaction on the primary while the SHOWs run.
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var bpid uint32
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&bpid); err != nil {
		t.Fatal(err)
	}
	aID, bID := strconv.FormatUint(uint64(a.PgConn().PID()), 10), strconv.FormatUint(uint64(b.PgConn().PID()), 10)
	adm, _ := consoleConnect(t, p, "postgres")
	admID := strconv.FormatUint(uint64(adm.PgConn().PID()), 10)
	prim, rep := primary().Addr(), replica().Addr()

	t.Run("POOLS", func(t *testing.T) {
		consoleBoth(t, p, adm, "SHOW POOLS", "POOLS", func(t *testing.T, r consoleResult) {
			row := consoleRow(t, r, "user", "app", "database", "app", "host", prim)
			consoleWant(t, row, "shard", "s0", "role", "primary", "pool_size", "10", "pool_mode", "transaction", "paused", "f")
			if consoleInt(t, row, "sv_active") < 1 || consoleInt(t, row, "cl_active") < 1 {
				t.Errorf("b holds a primary server, yet sv_active/cl_active are %s/%s", row["sv_active"], row["cl_active"])
			}
			consoleWant(t, consoleRow(t, r, "user", "app", "host", rep), "role", "replica", "paused", "f")
		})
	})
	t.Run("STATS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show stats", "STATS", func(t *testing.T, r consoleResult) {
			row := consoleRow(t, r, "user", "app", "database", "app", "host", prim)
			consoleWant(t, row, "shard", "s0", "role", "primary")
			for _, col := range []string{"total_xact_count", "total_query_count", "total_received", "total_sent", "total_query_time"} {
				if consoleInt(t, row, col) <= 0 {
					t.Errorf("primary pool: %s = %s after 3 transactions", col, row[col])
				}
			}
			row = consoleRow(t, r, "user", "app", "host", rep)
			if consoleInt(t, row, "total_query_count") <= 0 {
				t.Errorf("replica pool: total_query_count = %s after reads", row["total_query_count"])
			}
		})
	})
	t.Run("CLIENTS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show clients", "CLIENTS", func(t *testing.T, r consoleResult) {
			consoleWant(t, consoleRow(t, r, "id", aID), "user", "app", "database", "app", "state", "idle",
				"pool_mode", "transaction", "server", "", "in_transaction", "f")
			if consoleInt(t, consoleRow(t, r, "id", aID), "prepared") < 1 {
				t.Errorf("client %s prepared statements, yet prepared is 0", aID)
			}
			consoleWant(t, consoleRow(t, r, "id", bID), "user", "app", "state", "active", "shard", "s0", "server", prim,
				"server_pid", strconv.FormatUint(uint64(bpid), 10), "in_transaction", "t")
			consoleWant(t, consoleRow(t, r, "id", admID), "user", "postgres", "database", "shardgate", "state", "admin")
			if n := len(consoleRows(r, "state", "admin")); r.via == "psql" && n != 2 {
				t.Errorf("%d admin sessions listed, want psql's and pgx's", n)
			}
			for _, row := range r.rows {
				if _, err := time.Parse("2006-01-02 15:04:05.000 MST", row["connect_time"]); err != nil {
					t.Errorf("connect_time %q: %v", row["connect_time"], err)
				}
			}
		})
	})
	t.Run("SERVERS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show servers", "SERVERS", func(t *testing.T, r consoleResult) {
			consoleWant(t, consoleRow(t, r, "pid", strconv.FormatUint(uint64(bpid), 10)),
				"host", prim, "role", "primary", "shard", "s0", "user", "app", "database", "app", "state", "active", "client_id", bID)
			if len(consoleRows(r, "host", rep)) == 0 {
				t.Errorf("no server connection to the replica listed, though reads ran there")
			}
			for _, row := range r.rows {
				consoleServerExists(t, row)
			}
		})
	})
	t.Run("HOSTS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show hosts", "HOSTS", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 2 {
				t.Fatalf("want the primary and the replica, got %v", r.rows)
			}
			lsn := regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`)
			pr := consoleRow(t, r, "host", prim)
			consoleWant(t, pr, "shard", "s0", "role", "primary", "primary", "t", "state", "up", "ban_reason", "", "banned_for", "")
			rr := consoleRow(t, r, "host", rep)
			consoleWant(t, rr, "shard", "s0", "role", "replica", "primary", "f", "state", "up", "ban_reason", "", "banned_for", "")
			for _, row := range []map[string]string{pr, rr} {
				if !lsn.MatchString(row["lsn"]) {
					t.Errorf("lsn %q", row["lsn"])
				}
			}
			if consoleInt(t, rr, "reads") < 1 {
				t.Errorf("replica reads = %s after reads ran there", rr["reads"])
			}
			if f, err := strconv.ParseFloat(rr["lag_seconds"], 64); err != nil || f < 0 {
				t.Errorf("lag_seconds %q: %v", rr["lag_seconds"], err)
			}
		})
	})
	t.Run("SHARDS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show shards", "SHARDS", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 1 {
				t.Fatalf("want one shard, got %v", r.rows)
			}
			consoleWant(t, r.rows[0], "index", "0", "shard", "s0", "primary", prim, "hosts", "2", "replicas_up", "1",
				"default", "t", "paused", "f")
		})
	})
	t.Run("SHARDMAP", func(t *testing.T) {
		consoleBoth(t, p, adm, "show shardmap", "SHARDMAP", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 1 {
				t.Fatalf("want the unsharded row, got %v", r.rows)
			}
			consoleWant(t, r.rows[0], "version", "7", "distribution", "", "method", "unsharded", "shard", "s0")
		})
	})
	t.Run("PREPARED", func(t *testing.T) {
		consoleBoth(t, p, adm, "show prepared", "PREPARED", func(t *testing.T, r consoleResult) {
			row := consoleRow(t, r, "client_id", aID, "query", "select $1::int + 1")
			if !strings.HasPrefix(row["name"], "stmtcache_") || row["server_name"] == "" {
				t.Errorf("name %q (want pgx's stmtcache_...), server_name %q", row["name"], row["server_name"])
			}
		})
	})
	t.Run("CONFIG", func(t *testing.T) {
		consoleBoth(t, p, adm, "show config", "CONFIG", func(t *testing.T, r consoleResult) {
			want := []map[string]string{{"key": "listen.addr", "value": "127.0.0.1:6432"}, {"key": "pool.size", "value": "10"},
				{"key": "users.app.password", "value": "(redacted)"}}
			if fmt.Sprint(r.rows) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", r.rows, want)
			}
		})
	})
	t.Run("VERSION", func(t *testing.T) {
		consoleBoth(t, p, adm, "show version", "VERSION", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 1 || !strings.HasPrefix(r.rows[0]["version"], "shardgate "+consoleVersion+" (go") {
				t.Errorf("got %v, want shardgate %s (go...)", r.rows, consoleVersion)
			}
		})
	})
	t.Run("FANOUTS", func(t *testing.T) {
		// A bug once: the parser's list of SHOW objects lacked FANOUTS, so
		// it refused a command SHOW HELP advertised (one table, consoleShows,
		// now feeds both). With one shard
		// nothing fans out, so the traffic above leaves every count at 0;
		// TestConsoleShowFanOuts checks the counts over two shards.
		consoleBoth(t, p, adm, "show fanouts", "FANOUTS", func(t *testing.T, r consoleResult) {
			var kinds []string
			for _, row := range r.rows {
				kinds = append(kinds, row["kind"])
				consoleWant(t, row, "count", "0")
			}
			if !slices.Equal(kinds, []string{"read", "write", "ddl", "copy"}) {
				t.Errorf("kinds %v", kinds)
			}
		})
	})
	t.Run("HELP", func(t *testing.T) {
		consoleBoth(t, p, adm, "show help", "HELP", func(t *testing.T, r consoleResult) {
			for _, c := range []string{"SHOW POOLS", "SHOW FANOUTS", "RELOAD", "PAUSE [pool]", "RESUME [pool]", "BAN host",
				"UNBAN host", "KILL client_id", "SHUTDOWN"} {
				if row := consoleRow(t, r, "command", c); row["description"] == "" {
					t.Errorf("%s has no description", c)
				}
			}
		})
	})
}

// consoleServerExists checks that a SHOW SERVERS row is a live backend of
// its user on its host.
func consoleServerExists(t *testing.T, row map[string]string) {
	t.Helper()
	var h = primary()
	if row["host"] == replica().Addr() {
		h = replica()
	} else if row["host"] != primary().Addr() {
		t.Fatalf("server on unknown host %q", row["host"])
	}
	db := connectDSN(t, h.DSN("postgres", "", "app"))
	var n int
	if err := db.QueryRow(ctxT(t), "select count(*) from pg_stat_activity where pid = $1 and usename = $2 and datname = $3",
		consoleInt(t, row, "pid"), row["user"], row["database"]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("SHOW SERVERS lists pid %s on %s, which pg_stat_activity does not have (row %v)", row["pid"], row["host"], row)
	}
}

// TestConsoleShowShardMap checks SHOW SHARDMAP and SHOW SHARDS with a map
// of two shards: a hash distribution of two ranges, a range distribution
// and a reference table; and the unsharded row without a map.
func TestConsoleShowShardMap(t *testing.T) {
	spec := shardmap.Spec{
		Distributions: []shardmap.DistributionSpec{
			{Name: "users", Method: shardmap.MethodHash, KeyType: "bigint", Shards: []string{"s0", "s1"},
				Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}, {Name: "orders", Key: "user_id"}}},
			{Name: "events", Method: shardmap.MethodRange, KeyType: "bigint",
				Tables: []shardmap.TableSpec{{Name: "events", Key: "id"}},
				Ranges: []shardmap.RangeSpec{{Hi: "1000", Shard: "s0"}, {Lo: "1000", Hi: "2000", Shard: "s1"}}},
		},
		ReferenceTables: []string{"countries"},
	}
	// Both shards name the shared primary: the console only reads the map.
	p := startProxy(t, proxy.TransactionMode, consoleAdmin, func(cfg *proxyConfig) {
		cfg.opts.Shards = []proxy.Shard{{Name: "s0", Primary: primary().Addr()}, {Name: "s1", Primary: primary().Addr()}}
		m, err := shardmap.Build(spec, []string{"s0", "s1"}, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.opts.ShardMap = m
	})
	adm, _ := consoleConnect(t, p, "postgres")
	t.Run("SHARDMAP", func(t *testing.T) {
		consoleBoth(t, p, adm, "show shardmap", "SHARDMAP", func(t *testing.T, r consoleResult) {
			want := [][]string{
				{"3", "users", "hash", "bigint", "users(id), orders(user_id)", "-inf", "0", "s0"},
				{"3", "users", "hash", "bigint", "users(id), orders(user_id)", "0", "+inf", "s1"},
				{"3", "events", "range", "bigint", "events(id)", "-inf", "1000", "s0"},
				{"3", "events", "range", "bigint", "events(id)", "1000", "2000", "s1"},
				{"3", "(reference)", "reference", "", "countries", "", "", "every shard"},
			}
			var got [][]string
			for _, row := range r.rows {
				got = append(got, []string{row["version"], row["distribution"], row["method"], row["key_type"], row["tables"],
					row["lower"], row["upper"], row["shard"]})
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got\n%v\nwant\n%v", got, want)
			}
		})
	})
	t.Run("SHARDS", func(t *testing.T) {
		consoleBoth(t, p, adm, "show shards", "SHARDS", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 2 {
				t.Fatalf("want two shards, got %v", r.rows)
			}
			consoleWant(t, r.rows[0], "index", "0", "shard", "s0", "primary", primary().Addr(), "hosts", "1", "default", "t", "paused", "f")
			consoleWant(t, r.rows[1], "index", "1", "shard", "s1", "primary", primary().Addr(), "hosts", "1", "default", "f", "paused", "f")
		})
	})
	t.Run("HOSTS", func(t *testing.T) {
		// Without a topology each shard's primary shows, unmonitored.
		consoleBoth(t, p, adm, "show hosts", "HOSTS", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 2 {
				t.Fatalf("want two rows, got %v", r.rows)
			}
			for i, row := range r.rows {
				consoleWant(t, row, "shard", fmt.Sprintf("s%d", i), "host", primary().Addr(), "role", "primary", "primary", "t", "state", "unmonitored")
			}
		})
	})
	t.Run("no map", func(t *testing.T) {
		// Options.ShardMap documents nil as the same as a map without
		// distributions, which shows as one "unsharded" row. A bug once:
		// showShardMap (proxy/consolecmd.go) returned no rows when the
		// server had no map at all.
		p := startProxy(t, proxy.TransactionMode, consoleAdmin)
		adm, _ := consoleConnect(t, p, "postgres")
		consoleBoth(t, p, adm, "show shardmap", "SHARDMAP", func(t *testing.T, r consoleResult) {
			if len(r.rows) != 1 {
				t.Fatalf("want the unsharded row, got %v", r.rows)
			}
			consoleWant(t, r.rows[0], "method", "unsharded", "shard", "s0")
		})
	})
}

// consoleFanOuts reads SHOW FANOUTS through pgx as a map of kind to
// count.
func consoleFanOuts(t *testing.T, adm *pgx.Conn) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, row := range consolePgx(t, adm, "show fanouts").rows {
		got[row["kind"]] = consoleInt(t, row, "count")
	}
	return got
}

// TestConsoleShowFanOuts checks that SHOW FANOUTS counts each statement
// run over both shards of a two-shard cluster once, under its kind, and
// none of those that stay on one shard.
func TestConsoleShowFanOuts(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	decisions := newTableDecisions(t, c.Shards[0].Primary)
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec), consoleAdmin,
		withTwoPhase(&proxy.TwoPhase{Log: decisions, Node: "test"})) // so that a write may span both shards
	adm, _ := consoleConnect(t, p, "postgres")
	ctx := ctxT(t)
	simple := pgx.QueryExecModeSimpleProtocol
	conn := p.connect(t)
	m, err := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))

	zero := map[string]int64{"read": 0, "write": 0, "ddl": 0, "copy": 0}
	if got := consoleFanOuts(t, adm); fmt.Sprint(got) != fmt.Sprint(zero) {
		t.Fatalf("a new proxy shows fan-outs %v, want %v", got, zero)
	}

	// DDL runs on every shard: 2 ddl.
	for _, ddl := range []string{
		"create table users (id bigint primary key, name text)",
		"create table countries (code text primary key, name text)",
	} {
		if _, err := conn.Exec(ctx, ddl, simple); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	for i := range c.Shards {
		if n := countOn(t, c, i, "select count(*) from pg_tables where tablename in ('users', 'countries')"); n != 2 {
			t.Fatalf("shard %d has %d of the 2 tables", i, n)
		}
	}

	// Statements on one shard's keys do not fan out, in either protocol.
	for _, mode := range []pgx.QueryExecMode{simple, pgx.QueryExecModeCacheStatement} {
		for _, id := range []int64{a, b} {
			if _, err := conn.Exec(ctx, "update users set name = 'y' where id = $1", mode, id); err != nil {
				t.Fatalf("%v: update %d: %v", mode, id, err)
			}
		}
	}
	for _, id := range []int64{a, b} {
		if _, err := conn.Exec(ctx, "insert into users (id, name) values ($1, 'u')", id); err != nil {
			t.Fatalf("insert %d: %v", id, err)
		}
		var name string
		if err := conn.QueryRow(ctx, "select name from users where id = $1", id).Scan(&name); err != nil || name != "u" {
			t.Fatalf("user %d: %q %v", id, name, err)
		}
	}
	if got := consoleFanOuts(t, adm); got["read"] != 0 || got["write"] != 0 || got["copy"] != 0 {
		t.Fatalf("after statements on one shard each, fan-outs %v; want no read, write or copy counted", got)
	}

	// Reads without a key, or with keys on both shards: 3 reads.
	for _, q := range []struct {
		sql  string
		mode pgx.QueryExecMode
		args []any
	}{
		{"select id from users", simple, nil},
		{"select id from users", pgx.QueryExecModeCacheStatement, nil},
		{"select id from users where id = any($1)", pgx.QueryExecModeCacheStatement, []any{[]int64{a, b}}},
	} {
		rows, _ := conn.Query(ctx, q.sql, append([]any{q.mode}, q.args...)...)
		if ids, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(ids) != 2 {
			t.Fatalf("%v: %s: %v %v, want the users of both shards", q.mode, q.sql, ids, err)
		}
	}
	// A statement the proxy refuses before it goes out is no fan-out: a
	// LIMIT it cannot read for the merge.
	var pe *pgconn.PgError
	if _, err := conn.Exec(ctx, "select id from users order by id limit 'x'", simple); !errors.As(err, &pe) || pe.Code != "22P02" {
		t.Fatalf("unreadable LIMIT over several shards: %v, want 22P02 from the proxy", err)
	}
	// A write without a key, and one to a reference table: 2 writes,
	// each on both shards.
	if tag, err := conn.Exec(ctx, "update users set name = 'x'", simple); err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("update without a key: %v %v", tag, err)
	}
	if _, err := conn.Exec(ctx, "insert into countries (code, name) values ('fr', 'France')"); err != nil {
		t.Fatal(err)
	}
	for i := range c.Shards {
		if n := countOn(t, c, i, "select count(*) from users where name = 'x'"); n != 1 {
			t.Fatalf("shard %d: %d users renamed by the update without a key, want 1", i, n)
		}
		if n := countOn(t, c, i, "select count(*) from countries"); n != 1 {
			t.Fatalf("shard %d holds %d countries, want 1", i, n)
		}
	}
	// COPY TO STDOUT reads every shard: 1 copy.
	var out strings.Builder
	if tag, err := conn.PgConn().CopyTo(ctx, &out, "copy users to stdout"); err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("copy to stdout: %v %v", tag, err)
	}

	want := map[string]string{"read": "3", "write": "2", "ddl": "2", "copy": "1"}
	consoleBoth(t, p, adm, "show fanouts", "FANOUTS", func(t *testing.T, r consoleResult) {
		var kinds []string
		for _, row := range r.rows {
			kinds = append(kinds, row["kind"])
			if row["count"] != want[row["kind"]] {
				t.Errorf("%s fan-outs: %s, want %s", row["kind"], row["count"], want[row["kind"]])
			}
		}
		if !slices.Equal(kinds, []string{"read", "write", "ddl", "copy"}) {
			t.Errorf("kinds %v", kinds)
		}
	})
}

// TestConsoleReload checks that RELOAD calls Options.Reload and reports
// what it changed as NOTICEs, and its failure as F0000.
func TestConsoleReload(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var changed, restart []string
	var fail error
	set := func(c, r []string, err error) {
		mu.Lock()
		changed, restart, fail = c, r, err
		mu.Unlock()
	}
	p := startProxy(t, proxy.TransactionMode, consoleAdmin, func(cfg *proxyConfig) {
		cfg.opts.Reload = func() ([]string, []string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return changed, restart, fail
		}
	})
	ncalls := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
	ctx := ctxT(t)
	applied := "RELOAD: applied pool.size, log.level"
	needRestart := "RELOAD: these keys changed but need a restart to take effect: listen.addr"

	set([]string{"pool.size", "log.level"}, []string{"listen.addr"}, nil)
	t.Run("psql", func(t *testing.T) {
		out, errOut, err := consolePsql(t, consoleDSN(p, "postgres", ""), "reload")
		if err != nil || !strings.Contains(out, "RELOAD") {
			t.Fatalf("reload: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		for _, n := range []string{"NOTICE:  00000: " + applied, "NOTICE:  00000: " + needRestart} {
			if !strings.Contains(errOut, n) {
				t.Errorf("psql stderr lacks %q:\n%s", n, errOut)
			}
		}
	})
	adm, notices := consoleConnect(t, p, "postgres")
	t.Run("pgx", func(t *testing.T) {
		tag, err := consoleExec(ctx, adm, "reload")
		if err != nil || tag != "RELOAD" {
			t.Fatalf("reload: %q, %v", tag, err)
		}
		if got := notices(); !slices.Equal(got, []string{applied, needRestart}) {
			t.Errorf("notices %q", got)
		}
		set(nil, nil, nil)
		// The simple protocol, through pgx.
		if _, err := adm.Exec(ctx, "RELOAD;"); err != nil {
			t.Fatal(err)
		}
		if got := notices(); len(got) != 3 || got[2] != "RELOAD: nothing to apply" {
			t.Errorf("notices %q", got)
		}
	})
	if n := ncalls(); n != 3 {
		t.Fatalf("Options.Reload called %d times, want 3", n)
	}

	set(nil, nil, errors.New("pool.size: must be at least 1"))
	t.Run("error", func(t *testing.T) {
		consolePsqlErr(t, p, "postgres", "reload", "F0000", "pool.size: must be at least 1")
		_, err := consoleExec(ctx, adm, "reload")
		consoleCode(t, err, "F0000", "the running one stays in force:\npool.size: must be at least 1")
		// The session goes on after the error.
		if r := consolePgx(t, adm, "show version"); len(r.rows) != 1 {
			t.Fatalf("show version after a failed reload: %v", r.rows)
		}
	})
	t.Run("stats user", func(t *testing.T) {
		before := ncalls()
		consolePsqlErr(t, p, "consolestats", "reload", "42501", "may only run SHOW")
		st, _ := consoleConnect(t, p, "consolestats")
		_, err := consoleExec(ctx, st, "reload")
		consoleCode(t, err, "42501", "may only run SHOW")
		if n := ncalls(); n != before {
			t.Fatalf("a stats user's RELOAD called Options.Reload")
		}
	})
}

// TestConsolePause checks that PAUSE holds new transactions until RESUME,
// waits for running ones, and can name a database or a shard.
func TestConsolePause(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	ctx := ctxT(t)
	app := p.connect(t)
	host, port, _ := net.SplitHostPort(p.addr)
	other := connectDSN(t, fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", host, port))
	adm, _ := consoleConnect(t, p, "postgres")
	appID := strconv.FormatUint(uint64(app.PgConn().PID()), 10)
	query := func(c *pgx.Conn) <-chan error {
		return consoleAsync(func() error {
			var n int
			if err := c.QueryRow(ctx, "select 41 + 1").Scan(&n); err != nil {
				return err
			}
			if n != 42 {
				return fmt.Errorf("select 41 + 1 = %d", n)
			}
			return nil
		})
	}
	const hold = 300 * time.Millisecond

	// Unpaused, a transaction completes well within the hold time: the
	// checks below that it waits can fail.
	consoleDone(t, query(app), hold, "a query with nothing paused")

	t.Run("all", func(t *testing.T) {
		if out := consolePsqlOK(t, p, "pause"); !strings.Contains(out, "PAUSE") {
			t.Fatalf("pause printed %q", out)
		}
		r := consolePgx(t, adm, "show shards")
		consoleWant(t, r.rows[0], "paused", "t")
		done := query(app)
		consoleBlocked(t, done, hold, "a new transaction while paused")
		if !eventually(t, 2*time.Second, func() bool {
			rows := consoleRows(consolePgx(t, adm, "show clients"), "id", appID)
			return len(rows) == 1 && rows[0]["state"] == "waiting"
		}) {
			t.Errorf("SHOW CLIENTS does not show the held client as waiting")
		}
		if out := consolePsqlOK(t, p, "resume"); !strings.Contains(out, "RESUME") {
			t.Fatalf("resume printed %q", out)
		}
		consoleDone(t, done, 5*time.Second, "the held transaction after RESUME")
		consoleWant(t, consolePgx(t, adm, "show shards").rows[0], "paused", "f")
	})

	t.Run("waits for running transaction", func(t *testing.T) {
		tx, err := app.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "select 1"); err != nil { // now it holds a server
			t.Fatal(err)
		}
		var pausedAt time.Time
		paused := consoleAsync(func() error {
			_, err := consoleExec(ctx, adm, "pause")
			pausedAt = time.Now()
			return err
		})
		consoleBlocked(t, paused, hold, "PAUSE while a transaction is open")
		// The open transaction goes on while PAUSE waits.
		if _, err := tx.Exec(ctx, "select 2"); err != nil {
			t.Fatalf("a statement of the running transaction during PAUSE: %v", err)
		}
		committedAt := time.Now()
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		consoleDone(t, paused, 5*time.Second, "PAUSE after the COMMIT")
		if pausedAt.Before(committedAt) {
			t.Fatalf("PAUSE returned at %v, before the COMMIT was sent at %v", pausedAt, committedAt)
		}
		done := query(app)
		consoleBlocked(t, done, hold, "a new transaction after PAUSE completed")
		if _, err := consoleExec(ctx, adm, "resume"); err != nil {
			t.Fatal(err)
		}
		consoleDone(t, done, 5*time.Second, "the held transaction after RESUME")
	})

	t.Run("database", func(t *testing.T) {
		if _, err := consoleExec(ctx, adm, "pause app"); err != nil {
			t.Fatal(err)
		}
		done := query(app)
		// Another database's clients go on.
		consoleDone(t, query(other), 5*time.Second, "a query on database postgres while app is paused")
		consoleBlocked(t, done, hold, "a transaction on database app while it is paused")
		r := consolePgx(t, adm, "show pools")
		consoleWant(t, consoleRow(t, r, "database", "app", "user", "app"), "paused", "t")
		consoleWant(t, consoleRow(t, r, "database", "postgres", "user", "postgres"), "paused", "f")
		consoleWant(t, consolePgx(t, adm, "show shards").rows[0], "paused", "f")
		if _, err := consoleExec(ctx, adm, "resume app"); err != nil {
			t.Fatal(err)
		}
		consoleDone(t, done, 5*time.Second, "the held transaction after RESUME app")
	})

	t.Run("shard", func(t *testing.T) {
		consolePsqlOK(t, p, "pause s0")
		done1, done2 := query(app), query(other)
		consoleBlocked(t, done1, hold, "a transaction on paused shard s0 (app)")
		consoleBlocked(t, done2, 10*time.Millisecond, "a transaction on paused shard s0 (postgres)")
		consoleWant(t, consolePgx(t, adm, "show shards").rows[0], "paused", "t")
		consolePsqlOK(t, p, "resume 's0'")
		consoleDone(t, done1, 5*time.Second, "app after RESUME s0")
		consoleDone(t, done2, 5*time.Second, "postgres after RESUME s0")
	})

	t.Run("unknown", func(t *testing.T) {
		consolePsqlErr(t, p, "postgres", "pause nosuch", "42704", `"nosuch"`)
		_, err := consoleExec(ctx, adm, "pause nosuch")
		consoleCode(t, err, "42704", `"nosuch"`)
		// Nothing was paused, and the session goes on.
		consoleWant(t, consolePgx(t, adm, "show shards").rows[0], "paused", "f")
		consoleDone(t, query(app), hold, "a query after a failed PAUSE")
	})
}

// TestConsoleBan checks that BAN takes a replica out of the read rotation
// and UNBAN puts it back, and what BAN refuses.
func TestConsoleBan(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, withTopology(pg, lsnRouting()), consoleAdmin)
	ctx := ctxT(t)
	app := p.connect(t)
	adm, _ := consoleConnect(t, p, "postgres")
	rep, prim := replica().Addr(), primary().Addr()
	hostRow := func() map[string]string {
		return consoleRow(t, consolePgx(t, adm, "show hosts"), "host", rep)
	}

	// Without a ban reads go to the replica: the checks below can fail.
	for range 3 {
		if !inRecovery(t, app, "") {
			t.Fatal("a read ran on the primary with the replica up")
		}
	}
	reads := consoleInt(t, hostRow(), "reads")
	noReplica := consoleInt(t, consoleRow(t, consolePgx(t, adm, "show hosts"), "host", prim), "primary_reads_no_replica")

	if out := consolePsqlOK(t, p, "ban '"+rep+"'"); !strings.Contains(out, "BAN") {
		t.Fatalf("ban printed %q", out)
	}
	row := hostRow()
	consoleWant(t, row, "state", "banned")
	if !strings.Contains(row["ban_reason"], "operator") {
		t.Errorf("ban_reason %q", row["ban_reason"])
	}
	if f, err := strconv.ParseFloat(row["banned_for"], 64); err != nil || f < 0 || f > 10 {
		t.Errorf("banned_for %q: %v", row["banned_for"], err)
	}
	for i := range 10 {
		if inRecovery(t, app, "") {
			t.Fatalf("read %d ran on the banned replica", i)
		}
	}
	if n := consoleInt(t, hostRow(), "reads"); n != reads {
		t.Errorf("the banned replica's reads went from %d to %d", reads, n)
	}
	pr := consoleRow(t, consolePgx(t, adm, "show hosts"), "host", prim)
	if n := consoleInt(t, pr, "primary_reads_no_replica"); n < noReplica+10 {
		t.Errorf("primary_reads_no_replica went from %d to %d over 10 reads", noReplica, n)
	}

	if tag, err := consoleExec(ctx, adm, "unban "+rep); err != nil || tag != "UNBAN" {
		t.Fatalf("unban: %q, %v", tag, err)
	}
	if !eventually(t, 5*time.Second, func() bool { return inRecovery(t, app, "") }) {
		t.Fatalf("reads do not go back to the unbanned replica; it is %v", hostRow())
	}
	consoleWant(t, hostRow(), "state", "up", "ban_reason", "")

	t.Run("primary", func(t *testing.T) {
		consolePsqlErr(t, p, "postgres", "ban "+prim, "55000", "primary")
		_, err := consoleExec(ctx, adm, "ban "+prim)
		consoleCode(t, err, "55000", "primary")
		consoleWant(t, consoleRow(t, consolePgx(t, adm, "show hosts"), "host", prim), "state", "up")
	})
	t.Run("unknown host", func(t *testing.T) {
		consolePsqlErr(t, p, "postgres", "ban 127.0.0.1:1", "42704", "127.0.0.1:1")
		_, err := consoleExec(ctx, adm, "ban 127.0.0.1:1")
		consoleCode(t, err, "42704", "127.0.0.1:1")
		_, err = consoleExec(ctx, adm, "unban 127.0.0.1:1")
		consoleCode(t, err, "42704", "127.0.0.1:1")
		// A bug once: banCmd picked the SQLSTATE by looking for "primary"
		// in the message, so an unknown host whose name has it read as
		// "cannot ban a primary".
		_, err = consoleExec(ctx, adm, "ban db-primary.invalid:5432")
		consoleCode(t, err, "42704", "db-primary.invalid:5432")
	})
	t.Run("no topology", func(t *testing.T) {
		p := startProxy(t, proxy.TransactionMode, consoleAdmin)
		consolePsqlErr(t, p, "postgres", "ban "+rep, "55000", "host monitoring")
	})
}

// TestConsoleKill checks that KILL ends a client with 57P01 and only it.
func TestConsoleKill(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)
	adm, _ := consoleConnect(t, p, "postgres")
	for _, c := range []*pgx.Conn{a, b} {
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	aID, bID := strconv.FormatUint(uint64(a.PgConn().PID()), 10), strconv.FormatUint(uint64(b.PgConn().PID()), 10)

	if out := consolePsqlOK(t, p, "kill "+aID); !strings.Contains(out, "KILL") {
		t.Fatalf("kill printed %q", out)
	}
	_, err := a.Exec(ctx, "select 1")
	consoleCode(t, err, "57P01", "terminating connection due to administrator command")
	if _, err := b.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("KILL %s also broke client %s: %v", aID, bID, err)
	}
	if !eventually(t, 2*time.Second, func() bool {
		return len(consoleRows(consolePgx(t, adm, "show clients"), "id", aID)) == 0
	}) {
		t.Errorf("SHOW CLIENTS still lists killed client %s", aID)
	}

	// A client killed inside a transaction: its server's transaction
	// ends too.
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bpid int
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&bpid); err != nil {
		t.Fatal(err)
	}
	if tag, err := consoleExec(ctx, adm, "kill "+bID); err != nil || tag != "KILL" {
		t.Fatalf("kill: %q, %v", tag, err)
	}
	_, err = tx.Exec(ctx, "select 1")
	consoleCode(t, err, "57P01", "administrator command")
	db := direct(t)
	if !eventually(t, 5*time.Second, func() bool {
		var n int
		err := db.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1 and state like 'idle in transaction%'", bpid).Scan(&n)
		return err == nil && n == 0
	}) {
		t.Errorf("the killed client's server %d is still in its transaction", bpid)
	}

	consolePsqlErr(t, p, "postgres", "kill 4000000000", "42704", "4000000000")
	_, err = consoleExec(ctx, adm, "kill 4000000000")
	consoleCode(t, err, "42704", "4000000000")
	consolePsqlErr(t, p, "postgres", "kill abc", "22P02", `"abc"`)
	_, err = consoleExec(ctx, adm, "kill abc")
	consoleCode(t, err, "22P02", `"abc"`)
}

// TestConsoleKillWhilePaused kills a client whose statement waits at a
// PAUSE: the statement must never run, even after RESUME.
func TestConsoleKillWhilePaused(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	ctx := ctxT(t)
	setup := p.connect(t)
	for _, sql := range []string{"create table if not exists console_kill_paused (id int)", "truncate console_kill_paused"} {
		if _, err := setup.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	adm, _ := consoleConnect(t, p, "postgres")
	count := func(id int) int {
		var n int
		if err := setup.QueryRow(ctx, "select count(*) from console_kill_paused where id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insertWhilePaused := func(id int) (c *pgx.Conn, done <-chan error) {
		c = p.connect(t)
		if _, err := consoleExec(ctx, adm, "pause"); err != nil {
			t.Fatal(err)
		}
		done = consoleAsync(func() error {
			// One simple-protocol message: the whole insert waits at the gate.
			_, err := c.Exec(ctx, fmt.Sprintf("insert into console_kill_paused values (%d)", id))
			return err
		})
		cid := strconv.FormatUint(uint64(c.PgConn().PID()), 10)
		if !eventually(t, 2*time.Second, func() bool {
			rows := consoleRows(consolePgx(t, adm, "show clients"), "id", cid)
			return len(rows) == 1 && rows[0]["state"] == "waiting"
		}) {
			t.Fatal("the insert does not wait at the pause")
		}
		return c, done
	}

	// Not killed, the held insert runs after RESUME: the count can fail.
	_, done := insertWhilePaused(1)
	if _, err := consoleExec(ctx, adm, "resume"); err != nil {
		t.Fatal(err)
	}
	consoleDone(t, done, 5*time.Second, "the held insert after RESUME")
	if n := count(1); n != 1 {
		t.Fatalf("%d rows of the insert held and resumed", n)
	}

	c, done := insertWhilePaused(2)
	cid := strconv.FormatUint(uint64(c.PgConn().PID()), 10)
	if _, err := consoleExec(ctx, adm, "kill "+cid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		consoleCode(t, err, "57P01", "administrator command")
	case <-time.After(5 * time.Second):
		t.Fatal("the killed client got no answer")
	}
	// A bug once: the killed session stayed blocked in pauseGate.wait
	// (drain.go, session.gate), which only srv.done aborted.
	if !eventually(t, 2*time.Second, func() bool {
		return len(consoleRows(consolePgx(t, adm, "show clients"), "id", cid)) == 0
	}) {
		t.Errorf("SHOW CLIENTS still lists client %s after KILL", cid)
	}
	if _, err := consoleExec(ctx, adm, "resume"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	p.waitIdle(t)
	// A bug once: after RESUME the killed session went on and ran the
	// insert on a server.
	if n := count(2); n != 0 {
		t.Errorf("the insert of a client killed while it waited at PAUSE ran after RESUME (%d rows)", n)
	}
}

// TestConsoleShutdown checks that SHUTDOWN calls Options.Shutdown, and only
// for a user allowed to.
func TestConsoleShutdown(t *testing.T) {
	called := make(chan struct{}, 4)
	p := startProxy(t, proxy.TransactionMode, consoleAdmin, func(cfg *proxyConfig) {
		cfg.opts.Shutdown = func() { called <- struct{}{} }
	})
	wait := func(what string) {
		t.Helper()
		select {
		case <-called:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Options.Shutdown not called", what)
		}
	}
	consolePsqlErr(t, p, "consolestats", "shutdown", "42501", "may only run SHOW")
	if out := consolePsqlOK(t, p, "shutdown"); !strings.Contains(out, "SHUTDOWN") {
		t.Fatalf("shutdown printed %q", out)
	}
	wait("psql")
	adm, _ := consoleConnect(t, p, "postgres")
	if tag, err := consoleExec(ctxT(t), adm, "shutdown"); err != nil || tag != "SHUTDOWN" {
		t.Fatalf("shutdown: %q, %v", tag, err)
	}
	wait("pgx")
	select {
	case <-called:
		t.Fatal("Options.Shutdown called more often than SHUTDOWN was run (the stats user's?)")
	case <-time.After(100 * time.Millisecond):
	}

	t.Run("unavailable", func(t *testing.T) {
		p := startProxy(t, proxy.TransactionMode, consoleAdmin)
		consolePsqlErr(t, p, "postgres", "shutdown", "55000", "SHUTDOWN")
	})
}

// TestConsolePermissions checks who may log in to the console and run
// what, and that errors leave the session usable in both protocols.
func TestConsolePermissions(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	ctx := ctxT(t)

	t.Run("user not listed", func(t *testing.T) {
		_, err := connectDSNErr(consoleDSN(p, "app", "app"))
		consoleCode(t, err, "42501", "admin console")
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Severity != "FATAL" {
			t.Errorf("severity %s, want FATAL", pe.Severity)
		}
		out, errOut, perr := consolePsql(t, consoleDSN(p, "app", "app"), "show version")
		var ee *exec.ExitError
		if !errors.As(perr, &ee) || ee.ExitCode() != 2 || !strings.Contains(errOut, "FATAL:") ||
			!strings.Contains(errOut, "may not use the admin console") {
			t.Fatalf("psql as app: %v\nstdout: %s\nstderr: %s", perr, out, errOut)
		}
		// The same user and password log in once listed.
		p2 := startProxy(t, proxy.TransactionMode, consoleAdmin, func(cfg *proxyConfig) {
			cfg.opts.Admin.StatsUsers = append(cfg.opts.Admin.StatsUsers, "app")
		})
		c, err := connectDSNErr(consoleDSN(p2, "app", "app"))
		if err != nil {
			t.Fatalf("app listed in stats users: %v", err)
		}
		c.Close(ctx)
		// A listed user still needs the right password.
		_, err = connectDSNErr(consoleDSN(p2, "app", "wrong"))
		consoleCode(t, err, "28P01", "")
	})

	t.Run("stats user", func(t *testing.T) {
		st, _ := consoleConnect(t, p, "consolestats")
		if r := consolePgx(t, st, "show pools"); r.cols == nil {
			t.Fatal("no columns")
		}
		out, errOut, _ := consolePsql(t, consoleDSN(p, "consolestats", ""), "show version", "pause", "show shards")
		if !strings.Contains(out, "shardgate "+consoleVersion) || !strings.Contains(out, "index,shard,primary") ||
			!strings.Contains(errOut, "ERROR:  42501:") {
			t.Fatalf("psql as consolestats:\nstdout: %s\nstderr: %s", out, errOut)
		}
		for _, cmd := range []string{"pause", "resume", "reload", "ban 127.0.0.1:1", "unban 127.0.0.1:1", "kill 1", "shutdown"} {
			_, err := consoleExec(ctx, st, cmd)
			consoleCode(t, err, "42501", "may only run SHOW")
			// The session goes on after the error.
			if r := consolePgx(t, st, "show shards"); len(r.rows) != 1 || r.rows[0]["paused"] != "f" {
				t.Fatalf("after %s: show shards %v", cmd, r.rows)
			}
		}
	})

	t.Run("syntax", func(t *testing.T) {
		adm, _ := consoleConnect(t, p, "postgres")
		for _, c := range []struct{ sql, code, text string }{
			{"frobnicate now", "42601", `"frobnicate"`},
			{"show nonsense", "42601", `"nonsense"`},
			{"show", "42601", "SHOW"},
			{"pause a b", "42601", "PAUSE"},
			{"kill abc", "22P02", `"abc"`},
			{"show version; show shards", "42601", "multiple commands"},
		} {
			_, err := consoleExec(ctx, adm, c.sql)
			consoleCode(t, err, c.code, c.text)
			if r := consolePgx(t, adm, "show version"); len(r.rows) != 1 {
				t.Fatalf("show version after %q: %v", c.sql, r.rows)
			}
			if c.text != "multiple commands" {
				consolePsqlErr(t, p, "postgres", c.sql, c.code, c.text)
			}
		}
		// psql goes on to the next command on the same connection.
		out, errOut, _ := consolePsql(t, consoleDSN(p, "postgres", ""), "frobnicate", "show version")
		if !strings.Contains(errOut, `ERROR:  42601: unknown command "frobnicate"`) || !strings.Contains(out, "shardgate "+consoleVersion) {
			t.Fatalf("psql:\nstdout: %s\nstderr: %s", out, errOut)
		}
	})
}

// TestConsoleMultipleCommands checks a simple query string of several
// commands: each runs in turn, and an error stops the rest.
func TestConsoleMultipleCommands(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	out := consolePsqlOK(t, p, "show version; show shards")
	want := regexp.MustCompile(`(?s)^version\nshardgate ` + regexp.QuoteMeta(consoleVersion) +
		` \(go[^\n]*\)\nindex,shard,primary,hosts,replicas_up,default,paused\n0,s0,` + regexp.QuoteMeta(primary().Addr()) + `,1,0,t,f\n$`)
	if !want.MatchString(out) {
		t.Fatalf("psql -c 'show version; show shards' printed:\n%s", out)
	}

	out, errOut, _ := consolePsql(t, consoleDSN(p, "postgres", ""), "show version; pause nosuch; show shards")
	if !strings.Contains(out, "shardgate "+consoleVersion) || strings.Contains(out, "index,shard") ||
		!strings.Contains(errOut, "ERROR:  42704:") {
		t.Fatalf("an error must stop the commands after it:\nstdout: %s\nstderr: %s", out, errOut)
	}

	// The same through pgconn's simple protocol.
	adm, _ := consoleConnect(t, p, "postgres")
	res, err := adm.PgConn().Exec(ctxT(t), "show version; show shards;;").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[0].Rows) != 1 || len(res[1].Rows) != 1 || string(res[1].Rows[0][1]) != "s0" ||
		res[0].CommandTag.String() != "SHOW" {
		t.Fatalf("got %d results: %+v", len(res), res)
	}
	// An empty query string is one empty result, as PostgreSQL answers.
	for _, c := range []*pgx.Conn{adm, direct(t)} {
		res, err = c.PgConn().Exec(ctxT(t), " ; ").ReadAll()
		if err != nil || len(res) != 1 || res[0].CommandTag.String() != "" || res[0].FieldDescriptions != nil {
			t.Fatalf("an empty query string: %d results, %v", len(res), err)
		}
	}
}

// consoleWire logs in to addr as postgres (trusted) without a driver.
func consoleWire(t *testing.T, addr, db string) *pgproto3.Frontend {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "postgres", "database": db}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	consoleWireUntilReady(t, fe)
	return fe
}

// consoleWireUntilReady reads up to ReadyForQuery and returns the message
// types read, as "Type" names.
func consoleWireUntilReady(t *testing.T, fe *pgproto3.Frontend) []string {
	t.Helper()
	var got []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3."))
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			t.Fatalf("%s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return got
		}
	}
}

// TestConsoleWireMatchesPostgres runs the extended-protocol exchanges a
// driver uses against PostgreSQL and against the console, and compares
// the messages each answers with. In particular an Execute of a portal
// that was not described sends rows only: pgx, with its statement cache,
// binds and executes a cached statement without Describe.
func TestConsoleWireMatchesPostgres(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, consoleAdmin)
	scripts := []struct {
		name string
		msgs []pgproto3.FrontendMessage
	}{
		{"prepare", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "v", Query: "$Q"}, &pgproto3.Describe{ObjectType: 'S', Name: "v"}, &pgproto3.Sync{}}},
		{"bind, describe portal, execute", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "v"}, &pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{}, &pgproto3.Sync{}}},
		// pgx runs a cached statement so. Guards against a RowDescription
		// before the rows (the console sent one until it learnt better).
		{"bind, execute", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "v", ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"parse, bind, execute unnamed", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "$Q"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"close", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'S', Name: "v"}, &pgproto3.Sync{}}},
	}
	run := func(t *testing.T, fe *pgproto3.Frontend, query string) [][]string {
		var out [][]string
		for _, s := range scripts {
			for _, m := range s.msgs {
				switch m := m.(type) {
				case *pgproto3.Parse:
					m2 := *m
					m2.Query = strings.ReplaceAll(m.Query, "$Q", query)
					fe.Send(&m2)
					continue
				}
				fe.Send(m)
			}
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			out = append(out, consoleWireUntilReady(t, fe))
		}
		return out
	}
	pgMsgs := run(t, consoleWire(t, primary().Addr(), "app"), "select 'x'::text as version")
	sgMsgs := run(t, consoleWire(t, p.addr, "shardgate"), "show version")
	for i, s := range scripts {
		if !slices.Equal(sgMsgs[i], pgMsgs[i]) {
			t.Errorf("%s: console answers\n  %v\nPostgreSQL answers\n  %v", s.name, sgMsgs[i], pgMsgs[i])
		}
	}

	// Binary results, decoded here without a driver: every column of
	// SHOW SHARDS in binary.
	fe := consoleWire(t, p.addr, "shardgate")
	fe.Send(&pgproto3.Parse{Query: "show shards"})
	fe.Send(&pgproto3.Bind{ResultFormatCodes: []int16{1}})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var row *pgproto3.DataRow
	var desc *pgproto3.RowDescription
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := msg.(*pgproto3.DataRow); ok {
			row = &pgproto3.DataRow{Values: slices.Clone(m.Values)}
			for i := range row.Values {
				row.Values[i] = slices.Clone(m.Values[i])
			}
		}
		if m, ok := msg.(*pgproto3.RowDescription); ok {
			desc = &pgproto3.RowDescription{Fields: slices.Clone(m.Fields)}
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if row == nil || desc == nil || len(row.Values) != 7 {
		t.Fatalf("no row or description: %v %v", row, desc)
	}
	for i, f := range desc.Fields {
		if f.Format != 1 {
			t.Errorf("column %d described in format %d, want binary", i, f.Format)
		}
	}
	v := row.Values
	if len(v[0]) != 8 || binary.BigEndian.Uint64(v[0]) != 0 || string(v[1]) != "s0" || string(v[2]) != primary().Addr() ||
		len(v[3]) != 8 || binary.BigEndian.Uint64(v[3]) != 1 || !bytes.Equal(v[5], []byte{1}) || !bytes.Equal(v[6], []byte{0}) {
		t.Errorf("binary row %q", v)
	}
}
