package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
)

// shardedCluster starts a cluster of n shards (primaries only) for a
// sharding test.
func shardedCluster(t *testing.T, n int) *cluster.Cluster {
	t.Helper()
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	return cluster.ForTest(t, cluster.Options{
		Shards:    n,
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
	})
}

// testMapSpec shards users and orders by hash of the user id, events by
// range of their id, and keeps countries on every shard.
func testMapSpec(shards []string) shardmap.Spec {
	return shardmap.Spec{
		Distributions: []shardmap.DistributionSpec{
			{Name: "users", Method: shardmap.MethodHash, KeyType: "bigint", Shards: shards,
				Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}, {Name: "orders", Key: "user_id"}}},
			{Name: "events", Method: shardmap.MethodRange, KeyType: "bigint",
				Tables: []shardmap.TableSpec{{Name: "events", Key: "id"}},
				Ranges: []shardmap.RangeSpec{{Hi: "1000", Shard: shards[0]}, {Lo: "1000", Hi: "2000", Shard: shards[len(shards)-1]}}},
		},
		ReferenceTables: []string{"countries"},
	}
}

// withShards points a test proxy at every shard of c, with the map spec.
func withShards(t *testing.T, c *cluster.Cluster, spec shardmap.Spec) func(*proxyConfig) {
	return func(cfg *proxyConfig) {
		cfg.opts.Shards = nil
		var names []string
		for i, sh := range c.Shards {
			name := fmt.Sprintf("s%d", i)
			names = append(names, name)
			cfg.opts.Shards = append(cfg.opts.Shards, proxy.Shard{Name: name, Primary: sh.Primary.Addr()})
		}
		m, err := shardmap.Build(spec, names, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.opts.ShardMap = m
	}
}

// onShard runs sql directly on shard i's primary as app.
func onShard(t *testing.T, c *cluster.Cluster, i int, sql string, args ...any) pgx.Rows {
	t.Helper()
	h := c.Shards[i].Primary
	conn := connectDSN(t, h.DSN("app", "app", "app"))
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("shard %d: %s: %v", i, sql, err)
	}
	return rows
}

func countOn(t *testing.T, c *cluster.Cluster, i int, sql string) int64 {
	t.Helper()
	rows := onShard(t, c, i, sql)
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("shard %d: %s: %v", i, sql, err)
	}
	return n
}

func TestShardedRouting(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec))
	ctx := ctxT(t)
	conn := p.connect(t)

	// DDL goes to every shard.
	for _, ddl := range []string{
		"create table users (id bigint primary key, name text)",
		"create table orders (id bigserial, user_id bigint, total numeric, primary key (user_id, id))",
		"create table events (id bigint primary key, what text)",
		"create table countries (code text primary key, name text)",
		"create table notes (id int primary key, body text)",
	} {
		if _, err := conn.Exec(ctx, ddl, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	for i := range c.Shards {
		if n := countOn(t, c, i, "select count(*) from pg_tables where tablename in ('users','orders','events','countries','notes')"); n != 5 {
			t.Fatalf("shard %d has %d of the 5 tables", i, n)
		}
	}

	// Rows go where the map says, by the server's own hash, in both
	// protocols.
	const users = 200
	for id := range int64(users) {
		mode := pgx.QueryExecModeCacheStatement
		if id%2 == 1 {
			mode = pgx.QueryExecModeSimpleProtocol
		}
		if _, err := conn.Exec(ctx, "insert into users (id, name) values ($1, $2)", mode, id, fmt.Sprintf("user %d", id)); err != nil {
			t.Fatalf("insert user %d: %v", id, err)
		}
		if _, err := conn.Exec(ctx, "insert into orders (user_id, total) values ($1, $2)", mode, id, id*10); err != nil {
			t.Fatalf("insert order %d: %v", id, err)
		}
	}
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	d := m.Distribution("users")
	var total int64
	// Two shards split the hash space at 0.
	owns := []string{"< 0", ">= 0"}
	for i := range c.Shards {
		n := countOn(t, c, i, "select count(*) from users")
		if n == 0 || n == users {
			t.Errorf("shard %d holds %d of %d users: not spread", i, n, users)
		}
		total += n
		misplaced := countOn(t, c, i, fmt.Sprintf(
			"select count(*) from users u full join orders o on o.user_id = u.id where not hashint8extended(coalesce(u.id, o.user_id), 0) %s", owns[i]))
		if misplaced != 0 {
			t.Errorf("shard %d holds %d rows that hash outside its range", i, misplaced)
		}
	}
	if total != users {
		t.Fatalf("%d users stored, want %d", total, users)
	}

	// Point reads find each row, with the key as a literal, a parameter
	// in either format, and through a join of co-located tables.
	for _, id := range []int64{0, 7, 99, 199} {
		var name string
		if err := conn.QueryRow(ctx, "select name from users where id = $1", id).Scan(&name); err != nil || name != fmt.Sprintf("user %d", id) {
			t.Fatalf("user %d: %q %v", id, name, err)
		}
		if err := conn.QueryRow(ctx, fmt.Sprintf("select name from users where id = %d", id), pgx.QueryExecModeSimpleProtocol).Scan(&name); err != nil {
			t.Fatalf("user %d by literal: %v", id, err)
		}
		var sum string
		if err := conn.QueryRow(ctx, "select o.total::text from users u join orders o on o.user_id = u.id where u.id = $1", id).Scan(&sum); err != nil || sum != fmt.Sprint(id*10) {
			t.Fatalf("join for user %d: %q %v", id, sum, err)
		}
	}

	// A read without a key fans out and concatenates.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		rows, err := conn.Query(ctx, "select id from users", mode)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if len(ids) != users {
			t.Fatalf("%v: scatter select returned %d rows, want %d", mode, len(ids), users)
		}
		if tag := rows.CommandTag().String(); tag != fmt.Sprintf("SELECT %d", users) {
			t.Fatalf("%v: tag %q", mode, tag)
		}
	}
	// key IN (...) and = ANY($1) reach every shard their keys are on.
	rows, _ := conn.Query(ctx, "select id from users where id = any($1)", []int64{1, 2, 3, 4, 5, 6})
	if ids, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(ids) != 6 {
		t.Fatalf("= any: %v %v", ids, err)
	}
	rows, _ = conn.Query(ctx, "select id from users where id in (10, 11, 12, 13)", pgx.QueryExecModeSimpleProtocol)
	if ids, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(ids) != 4 {
		t.Fatalf("in: %v %v", ids, err)
	}

	// Range distribution: keys go by value; a key in no range is refused.
	// Two rows on two shards: allowed only with two-phase commit.
	_, err := conn.Exec(ctx, "insert into events (id, what) values (5, 'early'), (1500, 'late')", pgx.QueryExecModeSimpleProtocol)
	expectCode(t, err, "0A000", "two-phase commit")
	if _, err := conn.Exec(ctx, "insert into events (id, what) values ($1, 'early')", int64(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into events (id, what) values ($1, 'late')", int64(1500)); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, c, 0, "select count(*) from events where id = 5"); n != 1 {
		t.Fatalf("event 5 not on s0")
	}
	if n := countOn(t, c, 1, "select count(*) from events where id = 1500"); n != 1 {
		t.Fatalf("event 1500 not on s1")
	}
	_, err = conn.Exec(ctx, "insert into events (id, what) values ($1, 'future')", int64(5000))
	expectCode(t, err, "22023", "in no range")

	// Unsharded tables live on the default shard.
	if _, err := conn.Exec(ctx, "insert into notes (id, body) values (1, 'hello')"); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, c, 0, "select count(*) from notes"); n != 1 {
		t.Fatalf("notes row not on the default shard")
	}

	// A hint names the shard.
	var onS1 int64
	if err := conn.QueryRow(ctx, "/* shardgate: shard=s1 */ select count(*) from users").Scan(&onS1); err != nil || onS1 != countOn(t, c, 1, "select count(*) from users") {
		t.Fatalf("shard hint: %d, %v", onS1, err)
	}
	// COPY TO STDOUT reads every shard; COPY FROM into a sharded table
	// is refused until it is split by shard.
	var out strings.Builder
	tag, err := conn.PgConn().CopyTo(ctx, &out, "copy users to stdout")
	if err != nil || tag.RowsAffected() != users || strings.Count(out.String(), "\n") != users {
		t.Fatalf("copy to stdout: %v %v, %d lines", tag, err, strings.Count(out.String(), "\n"))
	}
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("1000\tnew\n"), "copy users (id, name) from stdin")
	expectCode(t, err, "0A000", "")

	// What cannot be done correctly is refused, and nothing runs.
	_, err = conn.Exec(ctx, "update users set id = $1 where id = $2", findKeyOnOtherShard(t, d, 3), int64(3))
	expectCode(t, err, "0A000", "changes the sharding key")
	_, err = conn.Exec(ctx, "update users set name = 'x'")
	expectCode(t, err, "0A000", "two-phase commit")
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := twoKeysOnTwoShards(t, d)
	if _, err := tx.Exec(ctx, "update users set name = 'a' where id = $1", a); err != nil {
		t.Fatal(err)
	}
	// Without two-phase commit, a transaction writes on one shard only.
	_, err = tx.Exec(ctx, "update users set name = 'b' where id = $1", b)
	expectCode(t, err, "0A000", "two-phase commit")
	tx.Rollback(ctx)
	var name string
	if err := conn.QueryRow(ctx, "select name from users where id = $1", a).Scan(&name); err != nil || name != fmt.Sprintf("user %d", a) {
		t.Fatalf("the refused transaction left %q, %v", name, err)
	}
}

func findKeyOnOtherShard(t *testing.T, d *shardmap.Distribution, key int64) int64 {
	t.Helper()
	home, _ := d.ShardOfHash(shardmap.HashInt(key))
	for k := key + 1; ; k++ {
		if s, _ := d.ShardOfHash(shardmap.HashInt(k)); s != home {
			return k
		}
	}
}

func twoKeysOnTwoShards(t *testing.T, d *shardmap.Distribution) (int64, int64) {
	t.Helper()
	return 1, findKeyOnOtherShard(t, d, 1)
}

func expectCode(t *testing.T, err error, code, text string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(pe.Message+" "+pe.Hint, text) {
		t.Fatalf("got %v, want SQLSTATE %s mentioning %q", err, code, text)
	}
}

// TestShardedMerge runs queries that span shards through the proxy over
// two shards and directly on one unsharded server holding the same rows:
// the answers must be identical.
func TestShardedMerge(t *testing.T) {
	c := shardedCluster(t, 2)
	single := shardedCluster(t, 1)
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, testMapSpec([]string{"s0", "s1"})))
	ctx := ctxT(t)
	viaProxy := p.connect(t)
	direct := connectDSN(t, single.Shards[0].Primary.DSN("app", "app", "app"))

	setup := []string{
		"create table users (id bigint primary key, name text, city text, score int, balance numeric, ratio float8, active bool)",
		"create table orders (id bigint, user_id bigint, total numeric, primary key (user_id, id))",
	}
	for _, conn := range []*pgx.Conn{viaProxy, direct} {
		for _, sql := range setup {
			if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		for id := range int64(300) {
			var city any = fmt.Sprintf("city%d", id%7)
			if id%11 == 0 {
				city = nil
			}
			_, err := conn.Exec(ctx, "insert into users (id, name, city, score, balance, ratio, active) values ($1, $2, $3, $4, $5, $6, $7)",
				id, fmt.Sprintf("u%03d", (id*37)%300), city, int32(id%13)-6, fmt.Sprintf("%d.%02d", id*3, id%100), float64(id)/8, id%3 == 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "insert into orders (id, user_id, total) values ($1, $2, $3)", id*2, id, id%17); err != nil {
				t.Fatal(err)
			}
		}
	}
	queries := []string{
		"select id, name from users order by name",
		"select id, name from users order by name desc limit 10",
		"select id from users order by id limit 5 offset 100",
		"select name, city from users order by city nulls first, id desc",
		"select name from users order by score, id limit 20",
		"select count(*) from users",
		"select count(*), sum(score), min(name), max(balance), avg(score) from users",
		"select city, count(*), sum(balance), avg(balance) from users group by city order by city",
		"select city, count(*) from users group by city having count(*) > 40 order by 1",
		"select distinct city from users order by city",
		"select active, bool_and(score > 0), bool_or(score > 5), min(id), max(id) from users group by active order by active",
		"select avg(ratio), sum(id) from users where score > 0",
		"select u.id, sum(o.total) from users u join orders o on o.user_id = u.id group by u.id order by u.id limit 7",
		"select count(*) from users where id in (1, 2, 3, 250, 299)",
		"select name from users where id = any('{5,6,7,8}') order by name",
		"select sum(total) from orders where user_id > 100",
		"select city, avg(score) from users group by city order by avg(score) desc, city limit 3",
	}
	for _, q := range queries {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			want := queryStrings(t, direct, q, mode)
			got := queryStrings(t, viaProxy, q, mode)
			if !strings.Contains(strings.ToLower(q), "order by") && !strings.HasPrefix(q, "select count(*)") {
				sortRows(want)
				sortRows(got)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s (%v):\n got %v\nwant %v", q, mode, trim(got), trim(want))
			}
		}
	}

	// Constructs the merge cannot make right are refused, never answered
	// wrongly.
	for _, q := range []string{
		"select count(distinct city) from users",
		"select id, rank() over (order by score) from users",
		"select string_agg(name, ',') from users",
	} {
		_, err := viaProxy.Exec(ctx, q)
		expectCode(t, err, "0A000", "")
	}
}

func queryStrings(t *testing.T, conn *pgx.Conn, q string, mode pgx.QueryExecMode) [][]string {
	t.Helper()
	rows, err := conn.Query(ctxT(t), q, mode)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s (%v): %v", q, mode, err)
	}
	return out
}

func sortRows(rows [][]string) {
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
}

func trim(rows [][]string) [][]string {
	if len(rows) > 8 {
		return rows[:8]
	}
	return rows
}

// TestSetShard routes a client's statements to one shard with SET
// shardgate.shard, until RESET.
func TestSetShard(t *testing.T) {
	c := shardedCluster(t, 2)
	spec := testMapSpec([]string{"s0", "s1"})
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, spec))
	ctx := ctxT(t)
	conn := p.connect(t)
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := conn.Exec(ctx, "create table users (id bigint primary key, name text)", simple); err != nil {
		t.Fatal(err)
	}
	port := func() string {
		var p string
		if err := conn.QueryRow(ctx, "select current_setting('port')", simple).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i, name := range []string{"s0", "s1"} {
		if _, err := conn.Exec(ctx, "set shardgate.shard = "+name, simple); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(c.Shards[i].Primary.Port)
		if got := port(); got != want {
			t.Fatalf("with shardgate.shard = %s the statement ran on port %s, want %s", name, got, want)
		}
		// Even a statement the map would send elsewhere (a key of the
		// other shard, or every shard) stays there.
		if _, err := conn.Exec(ctx, "insert into users values (1, $1)", name); err != nil {
			t.Fatal(err)
		}
		var shown string
		conn.QueryRow(ctx, "show shardgate.shard", simple).Scan(&shown)
		if shown != name {
			t.Fatalf("SHOW shardgate.shard = %q", shown)
		}
	}
	for i := range c.Shards {
		if n := countOn(t, c, i, "select count(*) from users where id = 1"); n != 1 {
			t.Fatalf("shard %d holds %d rows with id 1, want 1 (one per SET)", i, n)
		}
	}
	_, err := conn.Exec(ctx, "set shardgate.shard = nowhere", simple)
	expectCode(t, err, "22023", "known shards")
	if _, err := conn.Exec(ctx, "reset shardgate.shard", simple); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from users").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after RESET, a scatter count = %d %v, want 2", n, err)
	}
}
