package router

import (
	"encoding/json"
	"reflect"
	"testing"
)

func vp(v Value) *Value { return &v }

func col(kind ColumnKind, i int) Column { return Column{Kind: kind, Column: i} }

func cmp(op string, c Column, v Value) *Expr {
	return &Expr{Op: op, Args: []*Expr{{Column: &c}, {Value: &v}}}
}

// TestMerge checks the merge and the shard statement of SELECTs that may
// run on several shards, exactly.
func TestMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql       string
		merge     *Merge
		rewritten string
	}{
		// Plain concatenation.
		{"SELECT * FROM users", nil, ""},
		{"SELECT * FROM users WHERE id IN (1, 2)", nil, ""},
		{"SELECT id FROM users LIMIT ALL", nil, ""},
		{"SELECT DISTINCT id, name FROM users", nil, ""}, // rows of different shards differ by key
		{"SELECT DISTINCT * FROM users", nil, ""},
		// ORDER BY: by position, output name, same expression, or hidden.
		{"SELECT id, name FROM users ORDER BY 2, id DESC",
			&Merge{Order: []SortKey{{Column: 1}, {Column: 0, Desc: true, NullsFirst: true}}}, ""},
		{"SELECT id, name AS n FROM users ORDER BY n DESC NULLS LAST",
			&Merge{Order: []SortKey{{Column: 1, Desc: true}}}, ""},
		{"SELECT id, lower(name) FROM users ORDER BY lower(name) NULLS FIRST",
			&Merge{Order: []SortKey{{Column: 1, NullsFirst: true}}}, ""},
		{"SELECT u.id, u.name FROM users u ORDER BY u.name",
			&Merge{Order: []SortKey{{Column: 1}}}, ""},
		{"SELECT id FROM users ORDER BY created",
			&Merge{Order: []SortKey{{Column: 1}}, Hidden: 1},
			"SELECT id, created AS _sg1 FROM users ORDER BY created"},
		{"SELECT * FROM users ORDER BY 2",
			&Merge{Order: []SortKey{{Column: 1}}}, ""},
		// A lone * over one table: the sort column is found by name in
		// the row description, so no hidden copy of it is selected.
		{"SELECT * FROM users ORDER BY name LIMIT 10 OFFSET 20",
			&Merge{Order: []SortKey{{Name: "name"}}, Limit: vp(lit("10")), Offset: vp(lit("20"))},
			"SELECT * FROM users ORDER BY name LIMIT 30"},
		{"SELECT u.* FROM users u ORDER BY u.name",
			&Merge{Order: []SortKey{{Name: "name"}}},
			""},
		{"SELECT *, total * 2 AS t2 FROM orders ORDER BY created, t2 DESC NULLS LAST",
			&Merge{Order: []SortKey{{Column: -1}, {Column: -2, Desc: true}}, Hidden: 1},
			"SELECT *, total * 2 AS t2, created AS _sg1 FROM orders ORDER BY created, t2 DESC NULLS LAST"},
		{"SELECT u.*, o.total, o.* FROM users u JOIN orders o ON o.user_id = u.id ORDER BY total",
			&Merge{Order: []SortKey{{Column: -1}}, Hidden: 1},
			"SELECT u.*, o.total, o.*, total AS _sg1 FROM users u JOIN orders o ON o.user_id = u.id ORDER BY total"},
		{"SELECT name, id FROM users WHERE id IN (1, 2) ORDER BY id",
			&Merge{Order: []SortKey{{Column: 1}}}, ""},
		// LIMIT and OFFSET: pushed down as limit + offset.
		{"SELECT id FROM users LIMIT 5", &Merge{Limit: vp(lit("5"))}, ""},
		{"SELECT id FROM users FETCH FIRST 5 ROWS ONLY", &Merge{Limit: vp(lit("5"))}, ""},
		{"SELECT id FROM users LIMIT $1", &Merge{Limit: vp(par(1))}, ""},
		{"SELECT id FROM users OFFSET 5", &Merge{Offset: vp(lit("5"))}, "SELECT id FROM users"},
		{"SELECT id FROM users LIMIT NULL OFFSET $1", &Merge{Offset: vp(par(1)), Hidden: 1}, "SELECT id, $1::bigint AS _sg1 FROM users"},
		{"SELECT * FROM users ORDER BY id DESC LIMIT $1 OFFSET $2",
			&Merge{Order: []SortKey{{Name: "id", Desc: true, NullsFirst: true}}, Limit: vp(par(1)), Offset: vp(par(2))},
			"SELECT * FROM users ORDER BY id DESC LIMIT $1::bigint + $2::bigint"},
		// Not a plain column of the one table: still a hidden column.
		{"SELECT * FROM users ORDER BY lower(name)",
			&Merge{Order: []SortKey{{Column: -1}}, Hidden: 1},
			"SELECT *, lower(name) AS _sg1 FROM users ORDER BY lower(name)"},
		{"SELECT id FROM users ORDER BY id LIMIT 2147483647 OFFSET 10",
			&Merge{Order: []SortKey{{Column: 0}}, Limit: vp(lit("2147483647")), Offset: vp(lit("10"))},
			"SELECT id FROM users ORDER BY id LIMIT 2147483657"},
		// Quoted numbers, as drivers that interpolate arguments send them:
		// folded, or cast (the server finds '2' + $1 ambiguous).
		{"SELECT id FROM users ORDER BY id LIMIT '2' OFFSET '1'",
			&Merge{Order: []SortKey{{Column: 0}}, Limit: vp(lit("2")), Offset: vp(lit("1"))},
			"SELECT id FROM users ORDER BY id LIMIT 3"},
		{"SELECT id FROM users ORDER BY id LIMIT '2' OFFSET $1",
			&Merge{Order: []SortKey{{Column: 0}}, Limit: vp(lit("2")), Offset: vp(par(1))},
			"SELECT id FROM users ORDER BY id LIMIT '2'::bigint + $1::bigint"},
		{"SELECT id FROM users LIMIT $1::int8 OFFSET 3",
			&Merge{Limit: vp(parT(1, "int8")), Offset: vp(lit("3"))},
			"SELECT id FROM users LIMIT $1::int8 + 3"},
		// DISTINCT.
		{"SELECT DISTINCT name FROM users", &Merge{Distinct: true}, ""},
		{"SELECT DISTINCT name FROM users ORDER BY name LIMIT 3",
			&Merge{Distinct: true, Order: []SortKey{{Column: 0}}, Limit: vp(lit("3"))}, ""},
		{"SELECT DISTINCT o.user_id FROM users u LEFT JOIN orders o ON o.user_id = u.id", &Merge{Distinct: true}, ""},
		// Aggregates.
		{"SELECT count(*) FROM orders",
			&Merge{Aggregate: true, Columns: []Column{col(ColCount, 0)}}, ""},
		{"SELECT count(*) FROM orders WHERE user_id IN (1, 2)",
			&Merge{Aggregate: true, Columns: []Column{col(ColCount, 0)}}, ""},
		{"SELECT count(x), sum(total), min(total), max(total), bool_and(paid), bool_or(paid), every(paid) FROM orders",
			&Merge{Aggregate: true, Columns: []Column{col(ColCount, 0), col(ColSum, 1), col(ColMin, 2),
				col(ColMax, 3), col(ColBoolAnd, 4), col(ColBoolOr, 5), col(ColBoolAnd, 6)}}, ""},
		{"SELECT avg(total) AS a FROM orders",
			&Merge{Aggregate: true, Columns: []Column{{Kind: ColAvg, Column: 0, Count: 1}, col(ColCount, 1)}, Hidden: 1},
			"SELECT sum(total) AS a, count(total) AS _sg1 FROM orders"},
		{"SELECT status, count(*), avg(total) FROM orders GROUP BY status ORDER BY count(*) DESC LIMIT 3",
			&Merge{Aggregate: true, Order: []SortKey{{Column: 1, Desc: true, NullsFirst: true}}, Limit: vp(lit("3")),
				Columns: []Column{col(ColGroup, 0), col(ColCount, 1), {Kind: ColAvg, Column: 2, Count: 3}, col(ColCount, 3)}, Hidden: 1},
			"SELECT status, count(*), sum(total) AS avg, count(total) AS _sg1 FROM orders GROUP BY status"},
		{"SELECT count(*) FROM orders GROUP BY status",
			&Merge{Aggregate: true, Columns: []Column{col(ColCount, 0), col(ColGroup, 1)}, Hidden: 1},
			"SELECT count(*), status AS _sg1 FROM orders GROUP BY status"},
		{"SELECT status, count(*) FROM orders GROUP BY 1",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColCount, 1)}}, ""},
		{"SELECT upper(status) AS s, count(*) FROM orders GROUP BY s",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColCount, 1)}}, ""},
		{"SELECT lower(o.status), count(*) FROM orders o GROUP BY lower(o.status)",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColCount, 1)}}, ""},
		{"SELECT 'x', count(*) FROM orders",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColCount, 1)}}, ""},
		{"SELECT DISTINCT count(*) FROM orders GROUP BY status",
			&Merge{Aggregate: true, Distinct: true, Columns: []Column{col(ColCount, 0), col(ColGroup, 1)}, Hidden: 1},
			"SELECT count(*), status AS _sg1 FROM orders GROUP BY status"},
		{"SELECT status FROM orders GROUP BY status ORDER BY sum(total) DESC",
			&Merge{Aggregate: true, Order: []SortKey{{Column: 1, Desc: true, NullsFirst: true}},
				Columns: []Column{col(ColGroup, 0), col(ColSum, 1)}, Hidden: 1},
			"SELECT status, sum(total) AS _sg1 FROM orders GROUP BY status"},
		{"SELECT status FROM orders GROUP BY status ORDER BY avg(total), note LIMIT 1 OFFSET 1",
			&Merge{Aggregate: true, Order: []SortKey{{Column: 1}, {Column: 3}}, Limit: vp(lit("1")), Offset: vp(lit("1")),
				Columns: []Column{col(ColGroup, 0), {Kind: ColAvg, Column: 1, Count: 2}, col(ColCount, 2), col(ColGroup, 3)}, Hidden: 3},
			"SELECT status, sum(total) AS _sg1, count(total) AS _sg2, note AS _sg3 FROM orders GROUP BY status"},
		// Grouped by the key: every group is whole on one shard.
		{"SELECT user_id, count(*) FROM orders GROUP BY user_id ORDER BY 2 DESC LIMIT 3",
			&Merge{Order: []SortKey{{Column: 1, Desc: true, NullsFirst: true}}, Limit: vp(lit("3"))}, ""},
		{"SELECT user_id, string_agg(note, ',') FROM orders GROUP BY user_id HAVING count(*) > 1", nil, ""},
		// HAVING.
		{"SELECT status, sum(total) FROM orders GROUP BY status HAVING sum(total) > 100 AND count(*) >= 2",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColSum, 1), col(ColCount, 2)}, Hidden: 1,
				Having: &Expr{Op: "and", Args: []*Expr{cmp(">", col(ColSum, 1), lit("100")), cmp(">=", col(ColCount, 2), lit("2"))}}},
			"SELECT status, sum(total), count(*) AS _sg1 FROM orders GROUP BY status"},
		// A parameter of the HAVING the shards lose stays in a hidden
		// column: every parameter of a Bind must be used, with its type.
		{"SELECT status, count(*) FROM orders GROUP BY status HAVING 5 < count(*) OR NOT status <> $1",
			&Merge{Aggregate: true, Columns: []Column{col(ColGroup, 0), col(ColCount, 1), col(ColBoolOr, 2)}, Hidden: 1,
				Having: &Expr{Op: "or", Args: []*Expr{cmp(">", col(ColCount, 1), lit("5")),
					{Op: "not", Args: []*Expr{cmp("<>", col(ColGroup, 0), par(1))}}}}},
			"SELECT status, count(*), 5 < count(*) OR NOT status <> $1 AS _sg1 FROM orders GROUP BY status"},
		{"SELECT status, count(*) FROM orders GROUP BY status ORDER BY 2 LIMIT $1 OFFSET $2::int4",
			&Merge{Aggregate: true, Order: []SortKey{{Column: 1}}, Limit: vp(par(1)), Offset: vp(parT(2, "int4")),
				Columns: []Column{col(ColGroup, 0), col(ColCount, 1), col(ColMax, 2), col(ColMax, 3)}, Hidden: 2},
			"SELECT status, count(*), $1::bigint AS _sg1, $2::int4 AS _sg2 FROM orders GROUP BY status"},
		{"SELECT avg(total) FROM orders HAVING avg(total) > 3.5",
			&Merge{Aggregate: true, Columns: []Column{{Kind: ColAvg, Column: 0, Count: 1}, col(ColCount, 1)}, Hidden: 1,
				Having: cmp(">", Column{Kind: ColAvg, Column: 0, Count: 1}, lit("3.5"))},
			"SELECT sum(total) AS avg, count(total) AS _sg1 FROM orders"},
		{"SELECT count(*) FROM orders GROUP BY status HAVING max(total) != 0",
			&Merge{Aggregate: true, Columns: []Column{col(ColCount, 0), col(ColGroup, 1), col(ColMax, 2)}, Hidden: 2,
				Having: cmp("<>", col(ColMax, 2), lit("0"))},
			"SELECT count(*), status AS _sg1, max(total) AS _sg2 FROM orders GROUP BY status"},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			p := planOf(t, tc.sql)
			if p.Refused != nil {
				t.Fatalf("refused: %s", p.Refused.Message)
			}
			if !reflect.DeepEqual(p.Merge, tc.merge) {
				got, _ := json.Marshal(p.Merge)
				want, _ := json.Marshal(tc.merge)
				t.Fatalf("merge\n got %s\nwant %s", got, want)
			}
			if p.Rewritten != tc.rewritten {
				t.Fatalf("rewritten\n got %q\nwant %q", p.Rewritten, tc.rewritten)
			}
		})
	}
}

// TestMergeRefused covers what no merge can combine across shards: each
// is refused with a message naming the construct, and runs with a key.
func TestMergeRefused(t *testing.T) {
	t.Parallel()
	tests := []struct{ sql, msg string }{
		{"SELECT id, row_number() OVER () FROM users", "a window function"},
		{"SELECT id, sum(total) OVER w FROM orders WINDOW w AS (PARTITION BY note)", "a window function"},
		{"SELECT id FROM users ORDER BY rank() OVER (ORDER BY id)", "a window function"},
		{"SELECT count(DISTINCT status) FROM orders", "count(DISTINCT ...)"},
		{"SELECT array_agg(total ORDER BY total) FROM orders", "array_agg(... ORDER BY ...)"},
		{"SELECT count(*) FILTER (WHERE total > 1) FROM orders", "count(...) FILTER (...)"},
		{"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders", "percentile_cont(...) WITHIN GROUP (...)"},
		{"SELECT string_agg(name, ',') FROM users", "string_agg()"},
		{"SELECT stddev(total) FROM orders", "stddev()"},
		{"SELECT sum(total) + 1 FROM orders", "an aggregate inside an expression (sum(total) + 1)"},
		{"SELECT count(*)::int FROM orders", "an aggregate inside an expression (count(*)::int)"},
		{"SELECT status FROM orders GROUP BY status ORDER BY sum(total) / 2", "an aggregate inside an expression"},
		{"SELECT status, count(*) FROM orders GROUP BY ROLLUP (status)", "GROUPING SETS, ROLLUP or CUBE"},
		{"SELECT count(*) FROM orders GROUP BY GROUPING SETS ((status), ())", "GROUPING SETS, ROLLUP or CUBE"},
		{"SELECT DISTINCT ON (status) * FROM orders", "DISTINCT ON"},
		{"SELECT *, count(*) FROM orders GROUP BY status", "SELECT * with aggregates"},
		{"SELECT id FROM users ORDER BY id FETCH FIRST 3 ROWS WITH TIES", "FETCH ... WITH TIES"},
		{"SELECT id FROM users ORDER BY id USING >", "ORDER BY ... USING"},
		{"SELECT id FROM users LIMIT (SELECT 1)", "LIMIT with an expression"},
		{"SELECT id FROM users OFFSET 1 + 1", "OFFSET with an expression"},
		{"SELECT DISTINCT name FROM users ORDER BY created", "ORDER BY expressions must appear in the select list"},
		{"SELECT status FROM orders GROUP BY status HAVING count(*) > sum(total)", "HAVING count(*) > sum(total) cannot be evaluated"},
		{"SELECT status FROM orders GROUP BY status HAVING count(*) BETWEEN 1 AND 2", "cannot be evaluated after merging"},
		{"SELECT status FROM orders GROUP BY status HAVING count(DISTINCT note) > 1", "count(DISTINCT ...)"},
		{"SELECT id FROM users UNION SELECT user_id FROM orders", "UNION, INTERSECT or EXCEPT"},
		{"SELECT * FROM users FOR UPDATE", "FOR UPDATE/FOR SHARE over every shard"},
		{"SELECT * INTO t2 FROM users", "cannot fill it from sharded table users"},
		{"CREATE TABLE t2 AS SELECT * FROM orders", "cannot fill it from sharded table orders"},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			checkRoute(t, tc.sql, planOf(t, tc.sql), refusedWith(tc.msg))
		})
	}
	// The same constructs run on one shard when a key says which.
	for _, sql := range []string{
		"SELECT id, row_number() OVER () FROM users WHERE id = 1",
		"SELECT count(DISTINCT status) FROM orders WHERE user_id = $1",
		"SELECT * FROM users WHERE id = 1 FOR UPDATE",
		"SELECT id FROM users WHERE id = 1 UNION SELECT user_id FROM orders WHERE user_id = 1",
	} {
		if p := planOf(t, sql); p.Refused != nil || p.Spread != SpreadKeys || p.Merge != nil {
			t.Errorf("%s: %+v", sql, p)
		}
	}
}

// TestParamZero guards a fuzz find: $0 in a statement to rewrite came
// out of the deparser as ?, which does not parse; the server reports its
// own error instead.
func TestParamZero(t *testing.T) {
	t.Parallel()
	p := planOf(t, "SELECT * FROM users WHERE a IN (0, $0) ORDER BY b LIMIT 1 OFFSET 1")
	if p.Spread != SpreadDefault || p.Rewritten != "" {
		t.Fatalf("%+v", p)
	}
}

// TestRewriteMustParse guards a fuzz find: the deparser spells (0).f as
// 0.f, which does not parse; such a rewrite is refused, not sent.
func TestRewriteMustParse(t *testing.T) {
	t.Parallel()
	p := planOf(t, "SELECT 0, 0, b(0) FROM orders GROUP BY #0 # (0).a0000 ! (0) ! 0")
	if p.Refused == nil || p.Rewritten != "" {
		t.Fatalf("%+v", p)
	}
}

// TestGroupedByNullableKey guards groupedByKey: grouping by the key of a
// table on the nullable side of an outer join gathers the NULL group
// from every shard, so the groups must still merge.
func TestGroupedByNullableKey(t *testing.T) {
	t.Parallel()
	p := planOf(t, "SELECT o.user_id, count(*) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY o.user_id")
	if p.Merge == nil || !p.Merge.Aggregate {
		t.Fatalf("groups not merged: %+v", p.Merge)
	}
	p = planOf(t, "SELECT o.user_id, count(*) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY o.user_id")
	if p.Merge != nil {
		t.Fatalf("groups whole on each shard merged: %+v", p.Merge)
	}
}
