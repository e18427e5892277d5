package router

import (
	"reflect"
	"strings"
	"testing"
)

// fakeSchema is the test shard map: users(id) and orders(user_id) in
// distribution "users", accounts(id uuid) and events(account_id) in
// "accounts", countries a reference table; everything else (logs) is
// unsharded.
type fakeSchema struct {
	tables  map[string]TableInfo
	version uint64
}

func (f *fakeSchema) Table(schema, name string) (TableInfo, bool) {
	if schema != "" && schema != "public" {
		return TableInfo{}, false
	}
	t, ok := f.tables[name]
	return t, ok
}

func (f *fakeSchema) Version() uint64 { return f.version }

var testSchema = &fakeSchema{version: 1, tables: map[string]TableInfo{
	"users":      {Kind: TableSharded, Distribution: "users", Key: "id"},
	"orders":     {Kind: TableSharded, Distribution: "users", Key: "user_id"},
	"items":      {Kind: TableSharded, Distribution: "users", Key: "user_id"},
	"accounts":   {Kind: TableSharded, Distribution: "accounts", Key: "id"},
	"events":     {Kind: TableSharded, Distribution: "accounts", Key: "account_id"},
	"countries":  {Kind: TableReference},
	"currencies": {Kind: TableReference},
}}

// Helpers for expected key values.
func lit(text string) Value      { return Value{Text: text} }
func litT(text, t string) Value  { return Value{Text: text, Type: t} }
func par(n int) Value            { return Value{Param: n} }
func parT(n int, t string) Value { return Value{Param: n, Type: t} }
func keys(vs ...Value) []Value   { return vs }

// planOf plans sql with a router of its own, so tests do not share a
// cache.
func planOf(t *testing.T, sql string) *Plan {
	t.Helper()
	return New(Options{}).Plan(sql, testSchema)
}

// route is the part of a plan most tests check.
type routeWant struct {
	spread  Spread
	dist    string
	keys    []Value
	refused string // a part of Refused.Message; "" when not refused
}

func checkRoute(t *testing.T, sql string, p *Plan, w routeWant) {
	t.Helper()
	if w.refused != "" {
		if p.Refused == nil {
			t.Fatalf("%s\nnot refused: %+v", sql, p)
		}
		if !strings.Contains(p.Refused.Message, w.refused) {
			t.Fatalf("%s\nrefused with %q, want %q", sql, p.Refused.Message, w.refused)
		}
		if p.Refused.Hint == "" {
			t.Fatalf("%s\nrefusal without a hint", sql)
		}
		return
	}
	if p.Refused != nil {
		t.Fatalf("%s\nrefused: %s", sql, p.Refused.Message)
	}
	if p.Spread != w.spread || p.Distribution != w.dist || !reflect.DeepEqual(p.Keys, w.keys) {
		t.Fatalf("%s\ngot spread %d dist %q keys %+v\nwant spread %d dist %q keys %+v", sql,
			p.Spread, p.Distribution, p.Keys, w.spread, w.dist, w.keys)
	}
}

func keyed(vs ...Value) routeWant { return routeWant{spread: SpreadKeys, dist: "users", keys: vs} }

var (
	scatter    = routeWant{spread: SpreadAll, dist: "users"}
	anyShard   = routeWant{spread: SpreadAny}
	defShard   = routeWant{spread: SpreadDefault}
	everyShard = routeWant{spread: SpreadAll}
)

func refusedWith(msg string) routeWant { return routeWant{refused: msg} }

// TestPlanRoutes covers where statements go: table kinds, joins,
// subqueries and CTEs.
func TestPlanRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		want routeWant
	}{
		// Table kinds.
		{"SELECT * FROM users", scatter},
		{"SELECT 1", anyShard},
		{"SELECT now(), version()", anyShard},
		{"VALUES (1), (2)", anyShard},
		{"SELECT * FROM countries", anyShard},
		{"SELECT * FROM countries c JOIN currencies x ON x.code = c.currency ORDER BY 1 LIMIT 3", anyShard},
		{"SELECT * FROM logs", defShard},
		{"SELECT * FROM other.users", defShard}, // another schema: not the sharded table
		{`SELECT * FROM "Users"`, defShard},
		{"SELECT * FROM pg_catalog.pg_class", defShard},
		{"SELECT * FROM logs JOIN countries ON true", defShard},
		{"SELECT * FROM generate_series(1, 3)", anyShard},
		{"SELECT * FROM users u JOIN logs l ON l.uid = u.id", refusedWith("logs is not sharded, so it lives only on the default shard, while users is sharded")},
		{"SELECT * FROM logs WHERE uid IN (SELECT id FROM users)", refusedWith("logs is not sharded")},
		// Joins.
		{"SELECT * FROM orders o JOIN users u ON o.user_id = u.id", scatter},
		{"SELECT * FROM orders o JOIN users u ON u.id = o.user_id WHERE u.id = 7", keyed(lit("7"))},
		{"SELECT * FROM users u JOIN orders o ON o.user_id = u.id JOIN items i ON i.user_id = o.user_id", scatter},
		{"SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id", scatter},
		{"SELECT * FROM users u JOIN countries c ON c.code = u.country", scatter},
		{"SELECT * FROM users u JOIN countries c ON c.code = u.country WHERE u.id = 3", keyed(lit("3"))},
		{"SELECT * FROM orders o JOIN users u ON o.x = u.x", refusedWith("join of orders and users is not on the sharding key; both are sharded, so the rows to join may be on different shards")},
		{"SELECT * FROM orders o, users u", refusedWith("join of orders and users is not on the sharding key")},
		{"SELECT * FROM orders o JOIN users u ON o.user_id = u.id OR o.x = 1", refusedWith("join of orders and users")},
		{"SELECT * FROM orders o JOIN accounts a ON o.user_id = a.id", refusedWith("they are in different distributions")},
		{"SELECT * FROM orders o JOIN users u ON o.user_id = u.id WHERE o.user_id = 1 AND u.id = 1", keyed(lit("1"))},
		{"SELECT * FROM users a JOIN users b ON a.id = b.id", scatter},
		{"SELECT * FROM users a JOIN users b ON a.id = b.parent", refusedWith("join of users and users")},
		// Two unlinked groups restricted to the same single key are on one shard.
		{"SELECT * FROM users u, orders o WHERE u.id = 1 AND o.user_id = 1", keyed(lit("1"))},
		{"SELECT * FROM users u, orders o WHERE u.id = 1 AND o.user_id = 2", refusedWith("join of users and orders")},
		{"SELECT * FROM users u, orders o WHERE u.id IN (1, 2) AND o.user_id IN (1, 2)", refusedWith("join of users and orders")},
		{"SELECT * FROM users u, orders o WHERE u.id = $1 AND o.user_id = $1", keyed(par(1))},
		// Subqueries.
		{"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)", scatter},
		{"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders WHERE user_id = u.id)", scatter},
		{"SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)", scatter},
		{"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 5)", scatter},
		{"SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders)", scatter},
		{"SELECT * FROM users WHERE id = ANY (SELECT o.user_id FROM orders o)", scatter},
		{"SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users u", scatter},
		{"SELECT u.id, (SELECT max(total) FROM orders o WHERE o.user_id = u.id LIMIT 1) FROM users u", scatter},
		{"SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id ORDER BY total LIMIT 3) x", scatter},
		{"SELECT * FROM users u JOIN (SELECT user_id, count(*) c FROM orders GROUP BY user_id) s ON s.user_id = u.id", scatter},
		{"SELECT * FROM users u JOIN (SELECT user_id AS uid FROM orders) s ON s.uid = u.id", scatter},
		{"SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.user_id = u.id", scatter},
		{"SELECT * FROM users u JOIN (SELECT user_id FROM orders) s(k) ON s.k = u.id", scatter},
		{"SELECT * FROM users u JOIN (SELECT user_id FROM orders UNION ALL SELECT user_id FROM items) s ON s.user_id = u.id", scatter},
		{"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = 9)", keyed(lit("9"))},
		{"SELECT * FROM users u WHERE u.id = 1 AND u.x IN (SELECT x FROM orders WHERE user_id = 1)", keyed(lit("1"))},
		{"SELECT * FROM users u WHERE u.name IN (SELECT note FROM orders)", refusedWith("users and orders are read in different query blocks that are not tied by the sharding key")},
		{"SELECT * FROM users u WHERE u.id = 1 AND u.x IN (SELECT x FROM orders)", refusedWith("not tied by the sharding key")},
		{"SELECT (SELECT count(*) FROM orders) AS n", refusedWith("sharded table orders is read only in a subquery")},
		{"SELECT * FROM countries WHERE code IN (SELECT country FROM users)", refusedWith("sharded table users is read only in a subquery")},
		{"SELECT * FROM countries c LEFT JOIN users u ON u.country = c.code", refusedWith("on the nullable side of an outer join")},
		{"SELECT * FROM countries c LEFT JOIN users u ON u.country = c.code WHERE u.id = 4", keyed(lit("4"))},
		{"SELECT * FROM users u JOIN (SELECT user_id FROM orders ORDER BY total LIMIT 10) s ON s.user_id = u.id", refusedWith("a subquery on orders has LIMIT")},
		{"SELECT * FROM users u WHERE u.id = 2 AND u.id IN (SELECT user_id FROM orders ORDER BY total LIMIT 10)", refusedWith("a subquery on orders has LIMIT")},
		{"SELECT * FROM users u WHERE u.id IN (SELECT user_id FROM orders WHERE user_id = 2 ORDER BY total LIMIT 10)", keyed(lit("2"))},
		{"SELECT * FROM users u JOIN (SELECT user_id, sum(total) FROM orders GROUP BY note, user_id) s ON s.user_id = u.id", scatter},
		{"SELECT * FROM users u JOIN (SELECT o.user_id, count(*) FROM orders o GROUP BY o.id) s ON s.user_id = u.id", refusedWith("has an aggregate or GROUP BY not on the sharding key")},
		{"SELECT * FROM users u JOIN (SELECT max(user_id) AS user_id FROM orders) s ON s.user_id = u.id", refusedWith("not tied by the sharding key")},
		{"SELECT * FROM users u JOIN (SELECT user_id, rank() OVER (ORDER BY total) FROM orders) s ON s.user_id = u.id", refusedWith("has a window function")},
		{"SELECT * FROM users u JOIN (SELECT DISTINCT ON (note) user_id FROM orders) s ON s.user_id = u.id", refusedWith("has DISTINCT ON")},
		{"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM countries c WHERE c.code = u.country)", scatter},
		{"SELECT *, (SELECT name FROM countries c WHERE c.code = u.country LIMIT 1) FROM users u", scatter},
		// WITH.
		{"WITH o AS (SELECT * FROM orders) SELECT * FROM o", scatter},
		{"WITH o AS (SELECT * FROM orders) SELECT * FROM users u JOIN o ON o.user_id = u.id", scatter},
		{"WITH o AS (SELECT * FROM orders LIMIT 5) SELECT * FROM o", refusedWith("a subquery on orders has LIMIT")},
		{"WITH c AS (SELECT * FROM countries) SELECT * FROM users u JOIN c ON c.code = u.country", scatter},
		{"WITH users AS (SELECT 1 AS id) SELECT * FROM users", anyShard}, // a CTE is not a table
		{"WITH a AS (SELECT * FROM orders), b AS (SELECT * FROM a WHERE user_id = 3) SELECT * FROM b", keyed(lit("3"))},
		{"WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT * FROM t", anyShard},
		{"WITH RECURSIVE t AS (SELECT id, parent FROM users UNION ALL SELECT u.id, u.parent FROM users u JOIN t ON t.id = u.parent) SELECT * FROM t",
			refusedWith("not tied by the sharding key")},
		{"WITH d AS (DELETE FROM orders WHERE user_id = 5 RETURNING *) SELECT * FROM d", keyed(lit("5"))},
		{"WITH d AS (UPDATE orders SET total = 0 RETURNING user_id) SELECT * FROM users u JOIN d ON d.user_id = u.id", scatter},
		// Set operations.
		{"SELECT id FROM users WHERE id = 1 UNION SELECT user_id FROM orders WHERE user_id = 1", keyed(lit("1"))},
		{"SELECT id FROM users UNION SELECT user_id FROM orders", refusedWith("UNION, INTERSECT or EXCEPT of sharded tables over several shards")},
		{"SELECT id FROM users UNION ALL SELECT id FROM users", refusedWith("UNION, INTERSECT or EXCEPT")},
		{"SELECT code FROM countries UNION SELECT code FROM currencies", anyShard},
		// Writes on other tables.
		{"WITH x AS (INSERT INTO countries (code) VALUES ('fr') RETURNING *) SELECT * FROM x", everyShard},
		{"WITH x AS (INSERT INTO countries (code) VALUES ('fr') RETURNING *) SELECT * FROM x JOIN users u ON true", refusedWith("the write to reference table countries also involves users")},
		{"UPDATE users SET name = 'x' WHERE CURRENT OF c", refusedWith("WHERE CURRENT OF")},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			checkRoute(t, tc.sql, planOf(t, tc.sql), tc.want)
		})
	}
}
