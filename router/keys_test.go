package router

import "testing"

// TestKeys covers the conditions a sharding key is read from, and those
// it is not.
func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		want routeWant
	}{
		// Equality, either way round, bare or qualified, aliased.
		{"SELECT * FROM users WHERE id = $1", keyed(par(1))},
		{"SELECT * FROM users WHERE id = 42", keyed(lit("42"))},
		{"SELECT * FROM users WHERE 42 = id", keyed(lit("42"))},
		{"SELECT * FROM users WHERE users.id = -7", keyed(lit("-7"))},
		{"SELECT * FROM public.users WHERE public.users.id = 1", keyed(lit("1"))},
		{"SELECT * FROM users u WHERE u.id = 'abc'", keyed(lit("abc"))},
		{"SELECT * FROM users AS u WHERE $2 = u.id", keyed(par(2))},
		{"SELECT * FROM users WHERE ID = 1", keyed(lit("1"))}, // folded
		{`SELECT * FROM users WHERE "ID" = 1`, scatter},       // another column
		{"SELECT * FROM users WHERE id = 9223372036854775807", keyed(lit("9223372036854775807"))},
		{"SELECT * FROM users WHERE id = 1.5", keyed(lit("1.5"))},
		{"SELECT * FROM users WHERE id = NULL", keyed(Value{Null: true})},
		{"SELECT * FROM users WHERE id = true", keyed(lit("true"))},
		// Casts: the outermost one is the type compared.
		{"SELECT * FROM users WHERE id = '42'::int8", keyed(litT("42", "int8"))},
		{"SELECT * FROM users WHERE id = CAST($1 AS bigint)", keyed(parT(1, "int8"))},
		{"SELECT * FROM users WHERE id = $1::text::uuid", keyed(parT(1, "uuid"))},
		{"SELECT * FROM users WHERE id = int8 '5'", keyed(litT("5", "int8"))},
		{"SELECT * FROM accounts WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
			routeWant{spread: SpreadKeys, dist: "accounts", keys: keys(litT("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid"))}},
		// IN lists and = ANY.
		{"SELECT * FROM users WHERE id IN (1, $1, 'x')", keyed(lit("1"), par(1), lit("x"))},
		{"SELECT * FROM users WHERE id IN (1, 1, 2)", keyed(lit("1"), lit("2"))},
		{"SELECT * FROM users WHERE id = ANY($1)", keyed(Value{Param: 1, Array: true})},
		{"SELECT * FROM users WHERE id = ANY($3::bigint[])", keyed(Value{Param: 3, Type: "int8", Array: true})},
		{"SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])", keyed(lit("1"), lit("2"))},
		{"SELECT * FROM users WHERE id NOT IN (1, 2)", scatter},
		{"SELECT * FROM users WHERE id IN (1, x)", scatter},
		{"SELECT * FROM users WHERE id <> ALL($1)", scatter},
		{"SELECT * FROM users WHERE id = ANY('{1,2}')", scatter},
		// AND takes the tightest condition; OR needs every branch.
		{"SELECT * FROM users WHERE name = 'x' AND id = 3", keyed(lit("3"))},
		{"SELECT * FROM users WHERE id IN (1, 2) AND id = 2", keyed(lit("2"))},
		{"SELECT * FROM users WHERE id = 1 OR id = 2", keyed(lit("1"), lit("2"))},
		{"SELECT * FROM users WHERE (id = 1 AND a) OR id IN (2, 3)", keyed(lit("1"), lit("2"), lit("3"))},
		{"SELECT * FROM users WHERE id = 1 OR name = 'x'", scatter},
		{"SELECT * FROM users WHERE NOT id = 1", scatter},
		// Anything else is no key.
		{"SELECT * FROM users WHERE id > 1", scatter},
		{"SELECT * FROM users WHERE id = 1 + 1", scatter},
		{"SELECT * FROM users WHERE id = other_id", scatter},
		{"SELECT * FROM users WHERE id IS NULL", scatter},
		{"SELECT * FROM users WHERE id BETWEEN 1 AND 2", scatter},
		{"SELECT * FROM users WHERE (id, name) = (1, 'a')", scatter},
		{"SELECT * FROM users WHERE coalesce(id = 1, false)", scatter},
		{"SELECT * FROM users WHERE id = B'101'", scatter},
		// A key on any table of a co-located join group applies to all.
		{"SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE o.user_id = 8", keyed(lit("8"))},
		{"SELECT * FROM users u, orders o WHERE u.id = o.user_id AND u.id = $1", keyed(par(1))},
		{"SELECT * FROM users JOIN orders USING (id) WHERE id = 1", refusedWith("join of users and orders is not on the sharding key")},
		{"SELECT * FROM orders JOIN items USING (user_id) WHERE user_id = 4", keyed(lit("4"))},
		// An inner join's ON restricts; an outer join's does not.
		{"SELECT * FROM users u JOIN orders o ON o.user_id = u.id AND u.id = 2", keyed(lit("2"))},
		{"SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id AND o.user_id = 2", scatter},
		{"SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE o.user_id = 2", keyed(lit("2"))},
		// Subqueries that restrict the outer rows.
		{"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.user_id = 6)", keyed(lit("6"))},
		{"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = $1)", keyed(par(1))},
		{"SELECT * FROM users u JOIN (SELECT * FROM orders WHERE user_id = 3) o ON o.user_id = u.id", keyed(lit("3"))},
		{"WITH o AS (SELECT * FROM orders WHERE user_id = 5) SELECT * FROM users u JOIN o ON o.user_id = u.id", keyed(lit("5"))},
		{"SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.user_id = 6)", scatter},
		{"SELECT *, (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.user_id = 6) FROM users u", scatter},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			checkRoute(t, tc.sql, planOf(t, tc.sql), tc.want)
		})
	}
}
