package router

import (
	"strings"
	"testing"
)

// TestShapeKeys shows which literals shape.read replaces, which it
// keeps, and which texts it leaves to the parser (key "").
func TestShapeKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql, key string
		vals     []string
	}{
		{"SELECT id, name FROM users WHERE id = 4711", "SELECT id, name FROM users WHERE id = $1", []string{"4711"}},
		// Signs are folded where the parser folds them.
		{"SELECT * FROM users WHERE id = -5", "SELECT * FROM users WHERE id = $1", []string{"-5"}},
		{"DELETE FROM users WHERE id=-5", "DELETE FROM users WHERE id=$1", []string{"-5"}},
		{"SELECT * FROM users WHERE id IN (1, -2, '3')", "SELECT * FROM users WHERE id IN ($1, $2, $3)", []string{"1", "-2", "3"}},
		{"SELECT * FROM users WHERE -5 = id", "SELECT * FROM users WHERE $1 = id", []string{"-5"}},
		{"UPDATE users SET balance = balance - 100 WHERE id = 7", "UPDATE users SET balance = balance - $1 WHERE id = $2", []string{"100", "7"}},
		{"SELECT x::int - 1 FROM users WHERE id = 5", "SELECT x::int - $1 FROM users WHERE id = $2", []string{"1", "5"}},
		{"SELECT * FROM users WHERE id = -5::int8", "SELECT * FROM users WHERE id = -$1::int8", []string{"5"}},
		{"SELECT * FROM users WHERE id = 5 ||-5", "SELECT * FROM users WHERE id = $1 ||-$1", []string{"5"}},
		{"SELECT * FROM users WHERE id = - 5", "SELECT * FROM users WHERE id = $1", []string{"-5"}},
		{"SELECT * FROM users WHERE id = -(5)", "", nil},
		{"SELECT * FROM users WHERE id = - -5", "", nil},
		{"SELECT * FROM users WHERE id BETWEEN -5 AND 5", "", nil}, // BETWEEN may be a column name
		{"SELECT * FROM users WHERE id = - /* c */ 5", "", nil},
		// Values as the planner spells them; equal values share a parameter.
		{"SELECT * FROM users WHERE id = 007 OR id = '7' OR id = 7.0", "SELECT * FROM users WHERE id = $1 OR id = $1 OR id = $2", []string{"7", "7.0"}},
		{"SELECT * FROM users WHERE id = 2147483648 OR id = -2147483648", "SELECT * FROM users WHERE id = $1 OR id = $2", []string{"2147483648", "-2147483648"}},
		{"SELECT * FROM users WHERE name = 'it''s' AND id = 1e3", "SELECT * FROM users WHERE name = $1 AND id = $2", []string{"it's", "1e3"}},
		{"INSERT INTO users (id, name) VALUES (42, 'bob')", "INSERT INTO users (id, name) VALUES ($1, $2)", []string{"42", "bob"}},
		{"UPDATE users SET x = 5 WHERE id = 7", "UPDATE users SET x = $1 WHERE id = $2", []string{"5", "7"}},
		{"SELECT * FROM users WHERE id = '5'::int8 AND name LIKE 'a%'", "SELECT * FROM users WHERE id = $1::int8 AND name LIKE $2", []string{"5", "a%"}},
		{"SELECT 'a'abc, x FROM users WHERE id=5", "SELECT $1 abc, x FROM users WHERE id=$2", []string{"a", "5"}},
		{"SELECT * FROM users WHERE id = 5 AND t AT TIME ZONE 'UTC' > now()", "SELECT * FROM users WHERE id = $1 AND t AT TIME ZONE $2 > now()", []string{"5", "UTC"}},
		// Ordinals, typed literals and ANY's argument stay.
		{"SELECT * FROM users WHERE id = 1 ORDER BY 1 LIMIT 10 OFFSET 5", "SELECT * FROM users WHERE id = $1 ORDER BY 1 LIMIT $2 OFFSET $3", []string{"1", "10", "5"}},
		{"SELECT a, count(*) FROM users WHERE id = 5 GROUP BY 1, 2 HAVING count(*) > 3", "SELECT a, count(*) FROM users WHERE id = $1 GROUP BY 1, 2 HAVING count(*) > $2", []string{"5", "3"}},
		{"SELECT DISTINCT ON (2) a FROM users WHERE id = 5 ORDER BY 2, -1 DESC", "SELECT DISTINCT ON (2) a FROM users WHERE id = $1 ORDER BY 2, -1 DESC", []string{"5"}},
		{"SELECT * FROM users WHERE id = 5 ORDER BY 1 + x", "SELECT * FROM users WHERE id = $1 ORDER BY $2 + x", []string{"5", "1"}},
		// Typed literals: pg_query reads DATE $1 as it reads DATE '...'.
		// A type modifier is an expression.
		{"SELECT * FROM users WHERE d > DATE '2020-01-01' AND id = 5", "SELECT * FROM users WHERE d > DATE $1 AND id = $2", []string{"2020-01-01", "5"}},
		{"SELECT * FROM users WHERE d > now() - INTERVAL '1' DAY AND id = 5", "SELECT * FROM users WHERE d > now() - INTERVAL $1 DAY AND id = $2", []string{"1", "5"}},
		{"SELECT * FROM users WHERE id = int4 '5' AND x = varchar(3) 'abc'", "SELECT * FROM users WHERE id = int4 $1 AND x = varchar($2) $3", []string{"5", "3", "abc"}},
		{"SELECT * FROM users WHERE id = int4 '5' AND x = 5", "SELECT * FROM users WHERE id = int4 $1 AND x = $1", []string{"5"}},
		{"SELECT extract('epoch' FROM t) FROM users WHERE id = 5", "SELECT extract($1 FROM t) FROM users WHERE id = $2", []string{"epoch", "5"}},
		// DATE $1 parses, DATE 5 not.
		{"SELECT * FROM users WHERE d > DATE 5", "", nil},
		{"SELECT extract(5 FROM t) FROM users", "", nil},
		{"SELECT * FROM users WHERE id = f(x) 5", "", nil},
		{"SELECT * FROM users WHERE id = 5 FETCH FIRST 3 ROWS ONLY", "SELECT * FROM users WHERE id = $1 FETCH FIRST $2 ROWS ONLY", []string{"5", "3"}},
		{"SELECT * FROM users WHERE id = 5 AND x BETWEEN 1 AND 3", "SELECT * FROM users WHERE id = $1 AND x BETWEEN $2 AND $3", []string{"5", "1", "3"}},
		{"SELECT * FROM users WHERE id = 5 AND x NOT BETWEEN 1 AND 3", "", nil},
		// After '.', a keyword is a name: t.limit - 5 subtracts.
		{"SELECT u.limit - 5 FROM users u WHERE id = 1", "SELECT u.limit - $1 FROM users u WHERE id = $2", []string{"5", "1"}},
		{"SELECT (SELEC. LIMIT 0)A0", "", nil}, // found by FuzzFastPlan
		{"SELECT * FROM users WHERE id = ANY('{1,2}') AND x = 1", "SELECT * FROM users WHERE id = ANY('{1,2}') AND x = $1", []string{"1"}},
		{"SELECT * FROM users WHERE id = ANY(CAST('{1}' AS int[])) AND x = 2", "SELECT * FROM users WHERE id = ANY(CAST('{1}' AS int[])) AND x = $1", []string{"2"}},
		{"SELECT * FROM users WHERE id = ANY(-5)", "SELECT * FROM users WHERE id = ANY(-5)", nil},
		{"SELECT * FROM users WHERE id = ANY(int4 '5') AND x = 6", "SELECT * FROM users WHERE id = ANY(int4 '5') AND x = $1", []string{"6"}},
		{"SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])", "SELECT * FROM users WHERE id = ANY(ARRAY[$1, $2])", []string{"1", "2"}},
		{"SELECT * FROM users WHERE id = NULL OR id = true", "SELECT * FROM users WHERE id = NULL OR id = true", nil},
		{"SELECT 'true' FROM users WHERE flag = TRUE", "", nil},
		// Comments: hints stay, others are blanked.
		{"SELECT * FROM users /* shardgate: key=5 */ WHERE id = 5 -- trailing", "SELECT * FROM users /* shardgate: key=5 */ WHERE id = $1  ", []string{"5"}},
		{"SELECT /* a /* nested */ one */ 1", "SELECT   $1", []string{"1"}},
		{"SELECT 1;  ", "SELECT $1;  ", []string{"1"}},
		{"SELECT 1 -- c\r\n, 2", "SELECT $1  \r\n, $2", []string{"1", "2"}},
		{"SELECT--\r!", "", nil}, // PostgreSQL ends the comment at the CR; found by FuzzFastPlan
		// Not shaped.
		{"SELECT 1; SELECT 2", "", nil},
		{"SELECT * FROM users WHERE id = $1", "", nil},
		{"SELECT * FROM users WHERE id = E'x'", "", nil},
		{"SELECT * FROM users WHERE id = U&'x'", "", nil},
		{"SELECT * FROM users WHERE id = B'101'", "", nil},
		{"SELECT * FROM users WHERE id = n'x'", "", nil},
		{"SELECT * FROM users WHERE id = $$x$$", "", nil},
		{"SELECT * FROM users WHERE id = 'a'\n'b'", "", nil},
		{"SELECT * FROM users WHERE id = 0x10", "", nil},
		{"SELECT * FROM users WHERE id = 1_000", "", nil},
		{"SELECT * FROM users WHERE id = 5.foo", "", nil},
		{"SELECT * FROM users WHERE id = 1e", "", nil},
		{"SELECT * FROM users WHERE id = 'a\xffb'", "", nil},
		{"SELECT * FROM users WHERE id = 'x'[1]", "", nil},
		{"SELECT * FROM users WHERE id = 5 /* open", "", nil},
		{"SELECT * FROM users WHERE id = 'open", "", nil},
		{"SELECT * FROM users WHERE id = 5\x00", "", nil},
		{"SHOW x", "", nil},
		{"EXPLAIN SELECT 1", "", nil},
		{"(SELECT 1)", "", nil},
	}
	for _, tt := range tests {
		var sh shape
		ok := sh.read(tt.sql)
		key := ""
		if ok {
			key = string(sh.key)
		}
		var vals []string
		for i := range sh.vals {
			vals = append(vals, string(sh.value(i+1)))
		}
		if key != tt.key || (ok && strings.Join(vals, "|") != strings.Join(tt.vals, "|")) {
			t.Errorf("%q: key %q values %q, want %q %q", tt.sql, key, vals, tt.key, tt.vals)
		}
	}
}

// TestKeywordList guards the keyword table against a lost line: 471
// keywords in PostgreSQL 16.
func TestKeywordList(t *testing.T) {
	t.Parallel()
	n := map[kwClass]int{}
	for _, c := range keywords {
		n[c]++
	}
	if len(keywords) != 471 || n[kwStart]+n[kwEnd] != 78 {
		t.Fatalf("%d keywords, %d reserved", len(keywords), n[kwStart]+n[kwEnd])
	}
	for w, want := range map[string]kwClass{"SELECT": kwStart, "Null": kwEnd, "by": kwOther, "balance": kwNone,
		"current_timestamp": kwEnd, "xmlserialize": kwOther, "current_timestampx": kwNone} {
		if got := keywordClass(w); got != want {
			t.Errorf("%s: class %d, want %d", w, got, want)
		}
	}
}

// TestOpEnd checks operators are cut as PostgreSQL's lexer cuts them.
func TestOpEnd(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"=-5": "=", "<=-5": "<=", "||-5": "||-", "@-5": "@-",
		"+-5": "+", "-5": "-", "*-5": "*", "<>": "<>", "=--c": "=", "+/*c*/": "+", "!=-5": "!=-"} {
		if got := in[:opEnd(in, 0)]; got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
