package router

import (
	"reflect"
	"testing"
)

// TestPlanStatements covers statements other than queries and DML:
// schema changes, session and maintenance statements, EXPLAIN, hints and
// texts of several statements.
func TestPlanStatements(t *testing.T) {
	t.Parallel()
	type flags struct{ write, ddl, ref bool }
	tests := []struct {
		sql   string
		want  routeWant
		flags flags
		shard string
	}{
		// Schema changes run on every shard.
		{sql: "CREATE TABLE foo (id int)", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "CREATE INDEX ON users (name)", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "ALTER TABLE orders ADD COLUMN x int", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "DROP TABLE logs", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "COMMENT ON TABLE users IS 'x'", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "GRANT SELECT ON users TO bob", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "CREATE SEQUENCE s", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "CREATE VIEW v AS SELECT * FROM users", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "TRUNCATE users, logs", want: everyShard, flags: flags{write: true, ddl: true}},
		{sql: "TRUNCATE logs", want: defShard, flags: flags{write: true}},
		{sql: "CREATE TABLE t2 AS SELECT * FROM logs", want: defShard, flags: flags{write: true}},
		{sql: "SELECT * INTO t2 FROM countries", want: defShard, flags: flags{write: true}},
		// Maintenance.
		{sql: "VACUUM users", want: everyShard, flags: flags{write: true}},
		{sql: "ANALYZE", want: everyShard, flags: flags{write: true}},
		{sql: "REINDEX TABLE users", want: everyShard, flags: flags{write: true}},
		{sql: "LOCK TABLE users IN SHARE MODE", want: everyShard, flags: flags{write: true}},
		{sql: "LOCK TABLE logs", want: defShard, flags: flags{write: true}},
		// Session statements.
		{sql: "SET search_path = x", want: anyShard},
		{sql: "SHOW work_mem", want: anyShard},
		{sql: "BEGIN", want: anyShard},
		{sql: "BEGIN READ ONLY", want: anyShard},
		{sql: "COMMIT", want: anyShard},
		{sql: "SAVEPOINT a", want: anyShard},
		{sql: "DISCARD ALL", want: anyShard},
		{sql: "FETCH 10 FROM c", want: anyShard},
		{sql: "", want: anyShard},
		{sql: "-- nothing", want: anyShard},
		{sql: "LISTEN chan", want: defShard, flags: flags{write: true}},
		{sql: "NOTIFY chan", want: defShard, flags: flags{write: true}},
		{sql: "DO $$ BEGIN END $$", want: defShard, flags: flags{write: true}},
		{sql: "CALL p()", want: defShard, flags: flags{write: true}},
		{sql: "PREPARE p AS SELECT * FROM logs", want: defShard, flags: flags{write: true}},
		{sql: "PREPARE p AS SELECT * FROM users WHERE id = $1", want: refusedWith("SQL-level PREPARE of a statement on sharded or reference tables")},
		{sql: "EXECUTE p(1)", want: defShard, flags: flags{write: true}},
		{sql: "DEALLOCATE p", want: defShard},
		{sql: "DECLARE c CURSOR FOR SELECT * FROM users WHERE id = 1", want: keyed(lit("1")), flags: flags{write: true}},
		{sql: "DECLARE c CURSOR FOR SELECT * FROM users", want: refusedWith("a cursor over several shards")},
		// Functions without tables: anywhere, unless they write.
		{sql: "SELECT f()", want: anyShard},
		{sql: "SELECT nextval('s')", want: defShard, flags: flags{write: true}},
		{sql: "SELECT pg_advisory_lock(1)", want: defShard, flags: flags{write: true}},
		{sql: "SELECT * FROM countries FOR UPDATE", want: defShard, flags: flags{write: true}},
		// EXPLAIN plans the statement it explains.
		{sql: "EXPLAIN SELECT * FROM users WHERE id = 1", want: keyed(lit("1"))},
		{sql: "EXPLAIN SELECT * FROM users ORDER BY id LIMIT 1", want: scatter},
		{sql: "EXPLAIN UPDATE users SET id = 2 WHERE id = 1", want: keyed(lit("1"))},
		{sql: "EXPLAIN ANALYZE UPDATE users SET name = 'x'", want: scatter, flags: flags{write: true}},
		{sql: "EXPLAIN (ANALYZE false) DELETE FROM logs", want: defShard},
		{sql: "EXPLAIN SELECT * FROM orders o JOIN users u ON o.note = u.name", want: refusedWith("join of orders and users")},
		{sql: "EXPLAIN ANALYZE INSERT INTO users (id) VALUES (1), (2)", want: refusedWith("EXPLAIN ANALYZE of a multi-row INSERT")},
		{sql: "EXPLAIN INSERT INTO users (id) VALUES (1), (2)", want: keyed(lit("1"), lit("2"))},
		// Text the parser rejects goes where its error is reported.
		{sql: "SELEC 1", want: defShard, flags: flags{write: true}},
		// Hints win, and lift refusals.
		{sql: "SELECT * FROM users /* shardgate: shard=s2 */", want: routeWant{spread: SpreadShard}, shard: "s2"},
		{sql: "-- shardgate: shard=s-1\nSELECT * FROM users u JOIN logs l ON true", want: routeWant{spread: SpreadShard}, shard: "s-1"},
		{sql: "/* shardgate: role=replica, shard=b */ DROP TABLE x", want: routeWant{spread: SpreadShard}, shard: "b", flags: flags{write: true, ddl: true}},
		{sql: "SELECT * FROM users u JOIN logs l ON true /* shardgate: key=42 */", want: keyed(lit("42"))},
		{sql: "SELECT count(DISTINCT x) FROM orders /* shardgate: key='a0ee''b' */", want: keyed(lit("a0ee'b"))},
		{sql: "SELECT * FROM logs /* shardgate: key=7 */", want: routeWant{spread: SpreadKeys, keys: keys(lit("7"))}},
		{sql: "SELECT '/* shardgate: shard=s2 */' FROM users", want: scatter},
		{sql: `SELECT "/* shardgate: key=1 */" FROM users`, want: scatter},
		{sql: "SELECT $$ -- shardgate: key=1 $$ FROM users", want: scatter},
		{sql: "SELECT * FROM users /* shardgate: key= */", want: scatter},
		{sql: "SELECT * FROM users /* shardgate: shard=a */ /* shardgate: key=1 shard=b */", want: routeWant{spread: SpreadShard}, shard: "a"},
		// Several statements must agree on the place.
		{sql: "SELECT 1; SELECT 2", want: anyShard},
		{sql: "BEGIN; INSERT INTO users (id) VALUES (1); INSERT INTO orders (user_id) VALUES (1); COMMIT", want: keyed(lit("1")), flags: flags{write: true}},
		{sql: "INSERT INTO users (id) VALUES (1); INSERT INTO orders (user_id) VALUES (2)", want: refusedWith("statements that go to different shards")},
		{sql: "SELECT * FROM logs; SELECT * FROM countries", want: defShard},
		{sql: "SELECT * FROM logs; SELECT * FROM users WHERE id = 1", want: refusedWith("statements that go to different shards")},
		{sql: "CREATE TABLE a (id int); CREATE INDEX ON a (id); INSERT INTO countries (code) VALUES ('x')", want: everyShard, flags: flags{write: true, ddl: true, ref: true}},
		{sql: "SELECT * FROM users; SELECT 1", want: refusedWith("a statement over several shards")},
		{sql: "SELECT * FROM users WHERE id IN (1, 2); SELECT 1", want: refusedWith("a statement over several keys")},
		{sql: "INSERT INTO users (id) VALUES (1), (2); SELECT 1", want: refusedWith("a multi-row INSERT")},
		{sql: "SELECT * FROM users u JOIN logs l ON true; SELECT 1", want: refusedWith("logs is not sharded")},
		{sql: "SELECT * FROM users; SELECT * FROM logs /* shardgate: shard=x */", want: routeWant{spread: SpreadShard}, shard: "x"},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			p := planOf(t, tc.sql)
			checkRoute(t, tc.sql, p, tc.want)
			if tc.want.refused != "" {
				return
			}
			if got := (flags{p.Write, p.DDL, p.Reference}); got != tc.flags {
				t.Errorf("flags %+v, want %+v", got, tc.flags)
			}
			if p.Shard != tc.shard {
				t.Errorf("Shard %q, want %q", p.Shard, tc.shard)
			}
			if tc.want.spread == SpreadShard && (p.Merge != nil || p.Rewritten != "" || p.Insert != nil) {
				t.Errorf("a hinted plan merges: %+v", p)
			}
		})
	}
}

// TestPlanWriteMatchesAnalyze guards Plan.Write's definition: the same
// as Analyze's for the text.
func TestPlanWriteMatchesAnalyze(t *testing.T) {
	t.Parallel()
	for _, sql := range append(fuzzSeeds, planSeeds...) {
		if p, a := planOf(t, sql), Analyze(sql); p.Write != a.Write {
			t.Errorf("%q: Plan.Write %v, Analyze %v", sql, p.Write, a.Write)
		}
	}
}

// TestPlanCache checks that plans are shared per text and schema
// version, and made again when the version changes.
func TestPlanCache(t *testing.T) {
	t.Parallel()
	r := New(Options{CacheSize: 100})
	s := &fakeSchema{version: 1, tables: map[string]TableInfo{"t": {Kind: TableSharded, Distribution: "d", Key: "k"}}}
	const q = "SELECT * FROM t WHERE k = $1"
	p1 := r.Plan(q, s)
	if p2 := r.Plan(q, s); p2 != p1 {
		t.Fatal("a second Plan of the same text made a new plan")
	}
	buf := []byte(q)
	p3 := r.Plan(string(buf), s)
	buf[0] = 'X' // the cache must have copied the text
	if p3 != p1 || r.Plan(q, s) != p1 {
		t.Fatal("the cache does not find a text by value")
	}
	s2 := &fakeSchema{version: 2, tables: map[string]TableInfo{"t": {Kind: TableReference}}}
	p4 := r.Plan(q, s2)
	if p4 == p1 || p4.Spread != SpreadAny {
		t.Fatalf("a new schema version reused the old plan: %+v", p4)
	}
	if r.plans.len() != 1 {
		t.Fatalf("%d entries for one text", r.plans.len())
	}
	for i := 0; i < 300; i++ {
		r.Plan("SELECT "+string(rune('a'+i%26))+" FROM t WHERE k = "+itoa(i), s)
	}
	if n := r.plans.len(); n > 100 {
		t.Fatalf("%d entries in a cache of 100", n)
	}
	off := New(Options{CacheSize: -1})
	if a, b := off.Plan(q, s), off.Plan(q, s); a == b || !reflect.DeepEqual(a, b) {
		t.Fatal("without a cache, plans should be equal but not shared")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestPlanNilSchema(t *testing.T) {
	t.Parallel()
	p := New(Options{}).Plan("SELECT * FROM users WHERE id = 1", nil)
	if p.Spread != SpreadDefault || p.Refused != nil {
		t.Fatalf("%+v", p)
	}
}

func TestRefusal(t *testing.T) {
	t.Parallel()
	var err error = &Refusal{Message: "m", Hint: "h"}
	if err.Error() != "m" {
		t.Errorf("Error() = %q", err.Error())
	}
	if s, ok := err.(interface{ SQLState() string }); !ok || s.SQLState() != "0A000" {
		t.Error("SQLState is not 0A000")
	}
}
