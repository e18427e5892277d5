package router

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// planSeeds start FuzzPlan at the planner's edges.
var planSeeds = []string{
	"SELECT * FROM users WHERE id = $1",
	"SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id IN (1, 2) ORDER BY o.total DESC LIMIT 3 OFFSET 1",
	"SELECT status, count(*), avg(total) FROM orders GROUP BY status HAVING sum(total) > 1 ORDER BY 2",
	"SELECT *, x FROM users ORDER BY y, 1",
	"WITH RECURSIVE t AS (SELECT * FROM users UNION ALL SELECT u.* FROM users u JOIN t ON t.id = u.id) SELECT * FROM t",
	"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.user_id = 1)",
	"SELECT * FROM (SELECT * FROM (SELECT user_id FROM orders) a) b(k) JOIN users u ON u.id = b.k",
	"INSERT INTO users (id, name) VALUES (1, 'a'), ($1, 'b') ON CONFLICT DO NOTHING",
	"UPDATE users SET (id, name) = (SELECT 1, 2) WHERE id = 3",
	"DELETE FROM orders USING users WHERE orders.user_id = users.id",
	"COPY orders (user_id) FROM STDIN (FORMAT csv, HEADER match)",
	"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM users",
	"SELECT 1; SELECT * FROM users /* shardgate: key='x' */",
	"SELECT * FROM users WHERE id = ANY($1::int8[]) OR id IN (SELECT user_id FROM orders)",
	"SELECT (SELECT u.id) FROM users u, LATERAL (SELECT * FROM orders WHERE user_id = u.id) x",
	"SELECT * FROM users u JOIN orders USING (id)",
}

// FuzzPlan checks that planning any text neither panics nor makes an
// inconsistent plan, and that a cached plan is the one made.
func FuzzPlan(f *testing.F) {
	for _, s := range append(append([]string{}, planSeeds...), fuzzSeeds...) {
		f.Add(s)
	}
	r := New(Options{CacheSize: 64})
	f.Fuzz(func(t *testing.T, sql string) {
		p := r.Plan(sql, testSchema)
		if q := New(Options{CacheSize: -1}).Plan(sql, testSchema); !reflect.DeepEqual(p, q) {
			t.Fatalf("%q: cached %+v, fresh %+v", sql, p, q)
		}
		checkPlan(t, sql, p)
	})
}

// checkPlan holds a plan to the invariants the proxy relies on.
func checkPlan(t *testing.T, sql string, p *Plan) {
	t.Helper()
	if p.Refused != nil {
		if p.Refused.Message == "" || p.Refused.Hint == "" {
			t.Fatalf("%q: refusal without message or hint", sql)
		}
		return
	}
	switch p.Spread {
	case SpreadKeys:
		if len(p.Keys) == 0 {
			t.Fatalf("%q: SpreadKeys without keys", sql)
		}
	case SpreadShard:
		if p.Shard == "" {
			t.Fatalf("%q: SpreadShard without a shard", sql)
		}
	}
	if (p.DDL || p.Reference) && p.Spread != SpreadAll && p.Spread != SpreadShard && p.Spread != SpreadKeys {
		t.Fatalf("%q: DDL or reference write on spread %d", sql, p.Spread)
	}
	if p.Rewritten != "" && p.Merge == nil {
		t.Fatalf("%q: rewritten without a merge", sql)
	}
	if p.Rewritten != "" {
		// The shards get the client's Bind: the rewritten statement
		// must use the same parameters.
		if got, want := paramsOf(t, p.Rewritten), paramsOf(t, sql); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: rewritten %q uses parameters %v, not %v", sql, p.Rewritten, got, want)
		}
	}
	if m := p.Merge; m != nil {
		if m.Aggregate && len(m.Columns) == 0 {
			t.Fatalf("%q: aggregate without columns", sql)
		}
		if m.Hidden > 0 && p.Rewritten == "" {
			t.Fatalf("%q: hidden columns without a rewrite", sql)
		}
	}
	if p.Insert != nil && len(p.Insert.Keys) < 2 {
		t.Fatalf("%q: an INSERT split of %d rows", sql, len(p.Insert.Keys))
	}
}

// TestPlanSeeds runs the fuzz checks on the seeds and on the statements
// of the other tests' tables.
func TestPlanSeeds(t *testing.T) {
	t.Parallel()
	for _, s := range append(append([]string{}, planSeeds...), fuzzSeeds...) {
		checkPlan(t, s, planOf(t, s))
	}
}

// TestGeneratedPlans plans statements combined from fragments over the
// test schema (random bytes rarely parse), checking the plan invariants.
func TestGeneratedPlans(t *testing.T) {
	t.Parallel()
	r := New(Options{CacheSize: 128})
	parsed := 0
	for _, sql := range generatedPlanTexts(3000) {
		if _, err := pg_query.Parse(sql); err == nil {
			parsed++
		}
		p := r.Plan(sql, testSchema)
		checkPlan(t, sql, p)
		if q := New(Options{CacheSize: -1}).Plan(sql, testSchema); !reflect.DeepEqual(p, q) {
			t.Fatalf("%q: planned twice: %+v then %+v", sql, p, q)
		}
		if p.Rewritten != "" {
			if _, err := pg_query.Parse(p.Rewritten); err != nil {
				t.Fatalf("%q: rewritten %q does not parse: %v", sql, p.Rewritten, err)
			}
		}
	}
	if parsed < 1000 {
		t.Fatalf("only %d generated statements parse", parsed)
	}
}

// generatedPlanTexts combines n statements from fragments over the test
// schema, always the same ones.
func generatedPlanTexts(n int) []string {
	heads := []string{"SELECT ", "SELECT ", "SELECT ", "SELECT DISTINCT ", "WITH w AS (SELECT * FROM orders) SELECT ",
		"WITH w AS (UPDATE orders SET x = 1 RETURNING user_id) SELECT ", "EXPLAIN SELECT ",
		"COPY (SELECT ", "DECLARE c CURSOR FOR SELECT ", "PREPARE p AS SELECT "}
	items := []string{"*", "u.*", "id", "u.id", "count(*)", "avg(total)", "sum(x) + 1", "status",
		"row_number() OVER ()", "(SELECT count(*) FROM orders o2 WHERE o2.user_id = u.id)",
		"(SELECT max(total) FROM orders)", "lower(name) AS n", "1", "$1", "string_agg(a, ',')",
		"min(total)", "bool_or(paid)", "count(DISTINCT x)", "name", "created", "u.name AS nm"}
	froms := []string{" FROM users u", " FROM users u JOIN orders o ON o.user_id = u.id",
		" FROM users u JOIN orders o ON o.note = u.name", " FROM users u, countries c",
		" FROM users u LEFT JOIN logs l ON l.id = u.id", " FROM countries u", " FROM logs u",
		" FROM users u JOIN w ON w.user_id = u.id", " FROM (SELECT * FROM users LIMIT 3) u",
		" FROM users u JOIN accounts a ON a.id = u.id", ""}
	wheres := []string{"", " WHERE u.id = 1", " WHERE u.id IN (1, $2)", " WHERE u.id = ANY($1)",
		" WHERE u.id = 1 OR u.id = 2", " WHERE u.id = 1 OR u.x", " WHERE EXISTS (SELECT 1 FROM orders o3 WHERE o3.user_id = u.id)",
		" WHERE u.id IN (SELECT user_id FROM orders WHERE user_id = 5)", " WHERE u.name IN (SELECT note FROM orders)"}
	tails := []string{"", " GROUP BY status", " GROUP BY u.id", " GROUP BY 1 HAVING count(*) > 1",
		" GROUP BY status HAVING sum(total) > $4 LIMIT $5", " OFFSET $6", " ORDER BY $7::int",
		" ORDER BY 1", " ORDER BY created DESC LIMIT 5 OFFSET $3", " LIMIT 10", " FOR UPDATE",
		" UNION SELECT 1", " ORDER BY n NULLS FIRST", ") TO STDOUT", " /* shardgate: key=7 */"}
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]string, 0, n)
	for range n {
		var b strings.Builder
		b.WriteString(heads[rng.IntN(len(heads))])
		for k := rng.IntN(3) + 1; k > 0; k-- {
			b.WriteString(items[rng.IntN(len(items))])
			if k > 1 {
				b.WriteString(", ")
			}
		}
		b.WriteString(froms[rng.IntN(len(froms))])
		b.WriteString(wheres[rng.IntN(len(wheres))])
		b.WriteString(tails[rng.IntN(len(tails))])
		out = append(out, b.String())
	}
	return out
}

// paramsOf returns the parameter numbers sql uses.
func paramsOf(t *testing.T, sql string) map[int32]bool {
	t.Helper()
	res, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("%q does not parse: %v", sql, err)
	}
	out := map[int32]bool{}
	inspect(res, func(n *pg_query.Node) bool {
		if p := n.GetParamRef(); p != nil {
			out[p.Number] = true
		}
		return true
	})
	return out
}
