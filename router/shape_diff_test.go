package router

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// shapeTricky are texts at the edges of shape.read's rules; the
// differential test also varies their literals.
var shapeTricky = []string{
	"SELECT id, name FROM users WHERE id = 4711",
	"SELECT * FROM users WHERE id = -5",
	"SELECT * FROM users WHERE id=-5",
	"SELECT * FROM users WHERE -5 = id",
	"DELETE FROM users WHERE id = -5",
	"DELETE FROM users WHERE id = - 5",
	"DELETE FROM users WHERE id = -(5)",
	"DELETE FROM users WHERE id = - -5",
	"DELETE FROM users WHERE id = -5::int8",
	"DELETE FROM users WHERE id = (-5)",
	"DELETE FROM users WHERE id IN (1, -2, '3')",
	"DELETE FROM users WHERE id IN (1, 1)",
	"DELETE FROM users WHERE id IN (1, '1', 1.0, 01)",
	"SELECT * FROM users WHERE id = 'it''s' OR id = ''''",
	"SELECT * FROM users WHERE id = 5 ORDER BY 1",
	"SELECT name, count(*) FROM users WHERE id = 5 GROUP BY 1 ORDER BY 2 DESC",
	"SELECT * FROM users WHERE id = 5 LIMIT 10 OFFSET 5",
	"SELECT * FROM users LIMIT 10 OFFSET 5",
	"SELECT DISTINCT ON (1) id FROM users WHERE id = 3 ORDER BY 1, 2",
	"SELECT * FROM users WHERE d = DATE '2020-01-01' AND id = 3",
	"SELECT * FROM users WHERE d > now() - INTERVAL '1 day' AND id = 3",
	"SELECT * FROM users WHERE id = int4 '5'",
	"SELECT * FROM users WHERE id = int4 '5' OR id = '5'::int4",
	"SELECT * FROM users WHERE id = '5'::int4 OR id = 5::int4",
	"SELECT * FROM users WHERE id = E'5'",
	"SELECT * FROM users WHERE id = $$5$$",
	"SELECT * FROM users WHERE id = U&'5'",
	"SELECT * FROM users /* shardgate: key=5 */ WHERE id = 6",
	"SELECT * FROM users WHERE id = 6 -- shardgate: shard=s2",
	"SELECT * FROM logs /* shardgate: key='5' */ WHERE id = 5",
	"SELECT * FROM users /* just a comment 5 */ WHERE id = 5",
	"SELECT * FROM users WHERE id = 5; SELECT * FROM users WHERE id = 5",
	"SELECT * FROM users WHERE id = 5;",
	"SELECT * FROM users WHERE id = NULL",
	"SELECT * FROM users WHERE id = 5 OR id = NULL",
	"SELECT * FROM users WHERE id = true OR id = 'true'",
	"SELECT * FROM users WHERE id = 5::int8",
	"SELECT * FROM users WHERE id = CAST(5 AS int8)",
	"SELECT * FROM users WHERE id = '5'::text::int8",
	"SELECT * FROM users WHERE id BETWEEN 1 AND 5",
	"SELECT * FROM users WHERE id BETWEEN -1 AND 5",
	"SELECT * FROM users WHERE id = 5 AND x BETWEEN 'a' AND 'b'",
	"SELECT * FROM users WHERE id = (SELECT 5)",
	"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = 5)",
	"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.user_id = 5)",
	"SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 5 AND o.total > 10",
	"SELECT * FROM users u JOIN orders o ON o.total > 1 WHERE u.id = 5 AND o.user_id = 5",
	"SELECT * FROM users u JOIN orders o ON o.total > 1 WHERE u.id = 5 AND o.user_id = '5'",
	"SELECT * FROM users u JOIN orders o ON o.total > 1 WHERE u.id = 5 AND o.user_id = 6",
	"SELECT * FROM users u, LATERAL (SELECT * FROM orders WHERE user_id = u.id LIMIT 3) x WHERE u.id = 7",
	"SELECT * FROM users u JOIN accounts a ON a.id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' WHERE u.id = 1",
	"SELECT * FROM accounts WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
	"SELECT * FROM countries WHERE code = 'FR'",
	"SELECT * FROM logs WHERE id = 5",
	"SELECT * FROM users u JOIN logs l ON l.id = u.id WHERE u.id = 5",
	"INSERT INTO users (id, name) VALUES (42, 'bob')",
	"INSERT INTO users (id, name) VALUES (-42, 'bob') RETURNING id",
	"INSERT INTO users (id, name) VALUES (42, 'bob'), (43, 'eve')",
	"INSERT INTO users (id, name) SELECT 42, 'bob'",
	"INSERT INTO users (id, name) VALUES (42, 'bob') ON CONFLICT (id) DO UPDATE SET name = 'x'",
	"INSERT INTO users (name) VALUES ('bob')",
	"INSERT INTO countries (code) VALUES ('FR')",
	"UPDATE users SET x = 5 WHERE id = 7",
	"UPDATE users SET id = 5 WHERE id = 7",
	"UPDATE users SET id = 5 WHERE id = 5",
	"UPDATE users SET id = -5 WHERE id = '7'",
	"UPDATE users SET balance = balance - 100 WHERE id = 7",
	"UPDATE users SET (id, name) = (5, 'x') WHERE id = 7",
	"DELETE FROM users WHERE id = 9",
	"DELETE FROM users WHERE id = 9 RETURNING *",
	"DELETE FROM orders USING users WHERE orders.user_id = users.id AND users.id = 3",
	"SELECT * FROM users WHERE id = ANY('{1,2}')",
	"SELECT * FROM users WHERE id = ANY(CAST('{1,2}' AS int[]))",
	"SELECT * FROM users WHERE id = ANY(('{1,2}')::int[])",
	"SELECT * FROM users WHERE id = ANY(-5)",
	"SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])",
	"SELECT * FROM users WHERE id = ANY(ARRAY[1, -2, 1])",
	"SELECT * FROM users WHERE id = 5 FOR UPDATE",
	"SELECT *, nextval('s') FROM users WHERE id = 5",
	"WITH x AS (SELECT * FROM users WHERE id = 5) SELECT * FROM x",
	"WITH x AS (DELETE FROM users WHERE id = 5 RETURNING *) SELECT * FROM x",
	"SELECT 1",
	"SELECT 'a' 'b'",
	"SELECT 'a'\n'b' FROM users WHERE id = 5",
	"SELECT * FROM users WHERE id = 5 AND name LIKE 'a%' ESCAPE '!'",
	"SELECT * FROM users WHERE id = 5 AND t AT TIME ZONE 'UTC' > TIMESTAMP WITH TIME ZONE '2020-01-01'",
	"SELECT extract('epoch' FROM t) FROM users WHERE id = 5",
	"SELECT x::int - 1 FROM users WHERE id = 5",
	"SELECT * FROM users WHERE id = 2147483648 OR id = 2147483647",
	"SELECT * FROM users WHERE id = -2147483648",
	"SELECT * FROM users WHERE id = 99999999999999999999",
	"SELECT * FROM users WHERE id = 1.5e3",
	"SELECT * FROM users WHERE id = .5",
	"SELECT * FROM users WHERE id = 0x10",
	"SELECT * FROM users WHERE id = 5.foo",
	"SELECT * FROM users WHERE id = 'x'[1]",
	"SELECT * FROM users WHERE id = 5 OR id = 6",
	"SELECT * FROM users WHERE (id = 5)",
	"SELECT * FROM users WHERE id = 5 ORDER BY 1 + x",
	"SELECT * FROM users WHERE id = 5 GROUP BY ROLLUP (1, 2)",
	"SELECT string_agg(name, ',' ORDER BY 1) FROM users WHERE id = 5",
	"SELECT * FROM users WHERE id = 5 AND name = 'shardgate: key=6'",
}

// shapeCorpus returns the texts the differential test starts from: every
// string constant in the router's tests (their tables of statements),
// the generated statements of TestGeneratedPlans, the seeds, and
// shapeTricky.
func shapeCorpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(s) >= 6 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range shapeTricky {
		add(s)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok {
				if s, ok := constString(e); ok && strings.Contains(s, " ") {
					add(s)
				}
			}
			return true
		})
	}
	for _, s := range append(append(generatedPlanTexts(3000), planSeeds...), fuzzSeeds...) {
		add(s)
	}
	return out
}

// constString evaluates a string literal or a sum of them.
func constString(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		l, ok1 := constString(e.X)
		r, ok2 := constString(e.Y)
		return l + r, ok1 && ok2
	case *ast.ParenExpr:
		return constString(e.X)
	}
	return "", false
}

// literalPool is what variants put where a text has a literal or a
// parameter: values of every kind, signs, casts, and literals the
// normaliser leaves to the parser.
var literalPool = []string{
	"5", "5", "-5", "- 5", "0", "-0", "007", "42", "-42", "2147483647", "2147483648", "-2147483648",
	"-2147483649", "99999999999999999999", "1.5", "-1.5", "1e3", ".5", "5.", "-0.0", "10",
	"'5'", "'-5'", "'42'", "'a''b'", "''", "'true'", "'h\u00e9llo'", "'x y'", "'$1'", "'/* c */'",
	"'{1,2}'", "'--'", "'shardgate: key=1'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
	"NULL", "true", "false", "'5'::int8", "5::int8", "CAST(5 AS int8)", "(5)", "-(5)", "- -5", "+5",
	"E'5'", "$$5$$", "int4 '5'", "DATE '2020-01-01'", "-5::int8", "$1", "$2",
}

// literalVariants returns n texts made from sql by putting pool values
// where its literals and parameters are (as PostgreSQL's own scanner
// finds them), often reusing a value within a text so that equal values
// meet.
func literalVariants(sql string, rng *rand.Rand, n int) []string {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return nil
	}
	var spots [][2]int
	for _, tk := range res.Tokens {
		switch tk.Token {
		case pg_query.Token_ICONST, pg_query.Token_FCONST, pg_query.Token_SCONST, pg_query.Token_PARAM:
			spots = append(spots, [2]int{int(tk.Start), int(tk.End)})
		}
	}
	if len(spots) == 0 {
		return nil
	}
	var out []string
	for range n {
		var b strings.Builder
		var used []string
		last := 0
		for _, sp := range spots {
			if sp[0] < last || sp[1] > len(sql) {
				continue
			}
			v := literalPool[rng.IntN(len(literalPool))]
			switch {
			case len(used) > 0 && rng.IntN(3) == 0:
				v = used[rng.IntN(len(used))]
			case rng.IntN(4) == 0:
				v = sql[sp[0]:sp[1]] // keep this one
			}
			used = append(used, v)
			b.WriteString(sql[last:sp[0]])
			b.WriteString(v)
			last = sp[1]
		}
		b.WriteString(sql[last:])
		out = append(out, b.String())
	}
	return out
}

// shapeChecker plans texts through their shapes without the check
// planShape makes when it first meets a shape, so that a wrong rule in
// shape.read shows as a wrong plan.
type shapeChecker struct {
	off       *Router
	templates map[string]*Plan
}

func newShapeChecker() *shapeChecker {
	return &shapeChecker{off: New(Options{CacheSize: -1}), templates: map[string]*Plan{}}
}

// plan returns the plan of sh's text made from the plan of its key, or
// ok=false when the shape's plan does not serve texts.
func (c *shapeChecker) plan(sh *shape) (*Plan, bool) {
	key := string(sh.key)
	tmpl, seen := c.templates[key]
	if !seen {
		tmpl = c.off.shapePlan(key, testSchema)
		c.templates[key] = tmpl
	}
	if tmpl == nil {
		return nil, false
	}
	return sh.fill(tmpl)
}

// shapeTexts is the corpus and, for each text, variants of its literals.
func shapeTexts(t testing.TB) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	var texts []string
	for _, sql := range shapeCorpus(t) {
		texts = append(texts, sql)
		texts = append(texts, literalVariants(sql, rng, 6)...)
	}
	return texts
}

// TestShapeDifferential plans the corpus and variants of it both ways:
// the plan made from a text's shape is the plan of the text, field for
// field, and so is what Router.Plan answers with its caches on.
func TestShapeDifferential(t *testing.T) {
	t.Parallel()
	texts := shapeTexts(t)
	c := newShapeChecker()
	r := New(Options{})
	var shaped, served, cached int
	for _, sql := range texts {
		full := c.off.Plan(sql, testSchema)
		if p := r.Plan(sql, testSchema); !reflect.DeepEqual(p, full) {
			t.Errorf("%q: Router.Plan %s, parsed %s", sql, planString(p), planString(full))
		}
		var sh shape
		if !sh.read(sql) {
			continue
		}
		shaped++
		p, ok := c.plan(&sh)
		if !ok {
			continue
		}
		served++
		if !reflect.DeepEqual(p, full) {
			t.Errorf("%q (shape %q): from the shape %s, parsed %s", sql, sh.key, planString(p), planString(full))
		}
	}
	for i := range r.shapes.shards {
		for _, e := range r.shapes.shards[i].entries {
			if e.val.plan != nil {
				cached++
			}
		}
	}
	t.Logf("%d texts, %d shaped, %d served from %d shapes (%d serving); Router.Plan kept %d shapes that serve",
		len(texts), shaped, served, len(c.templates), countServing(c.templates), cached)
	if served < 2000 {
		t.Fatalf("only %d of %d texts served from a shape: the test says little", served, len(texts))
	}
}

func countServing(m map[string]*Plan) int {
	n := 0
	for _, p := range m {
		if p != nil {
			n++
		}
	}
	return n
}

// planString shows a plan's routing fields for messages.
func planString(p *Plan) string {
	if p == nil {
		return "<nil>"
	}
	s := "{spread " + strconv.Itoa(int(p.Spread)) + " dist " + p.Distribution + " keys ["
	for _, k := range p.Keys {
		s += strconv.Quote(k.Text) + "/" + strconv.Itoa(k.Param) + "/" + k.Type + " "
	}
	s += "] shard " + p.Shard + " write " + strconv.FormatBool(p.Write)
	if p.NewKey != nil {
		s += " newkey " + strconv.Quote(p.NewKey.Text)
	}
	if p.Refused != nil {
		s += " refused " + p.Refused.Message
	}
	return s + "}"
}

// A brokenShape is a deliberately wrong normaliser: it changes the
// literals the right one replaces (sql[start:end] with value val).
type brokenShape struct {
	name string
	// caught: the differential test must find it; false for a change
	// that cannot alter a plan the shape serves.
	caught bool
	edit   func(sql string, occ []brokenOcc) []brokenOcc
	// share: equal values share a parameter.
	share bool
}

type brokenOcc struct {
	start, end int
	val        string
}

var (
	ordinalRE = regexp.MustCompile(`(?i)\b(?:order|group)\s+by\s+(\d+)\b`)
	anyArgRE  = regexp.MustCompile(`(?i)\bany\s*\(\s*('(?:[^']|'')*')\s*\)`)
	castRE    = regexp.MustCompile(`-\s*(\d+)::`)
)

var brokenShapes = []brokenShape{
	{name: "sign left out of the value", caught: true, share: true, edit: func(sql string, occ []brokenOcc) []brokenOcc {
		for i, o := range occ {
			if sql[o.start] == '-' {
				j := o.start + 1
				for isSpace(sql[j]) {
					j++
				}
				occ[i] = brokenOcc{j, o.end, string(appendNumber(nil, sql[j:o.end], false))}
			}
		}
		return occ
	}},
	{name: "equal values not sharing a parameter", caught: true, edit: func(_ string, occ []brokenOcc) []brokenOcc { return occ }},
	// Harmless thanks to a second guard: fill refuses array parameters.
	{name: "ANY's argument replaced", share: true, edit: func(sql string, occ []brokenOcc) []brokenOcc {
		for _, m := range anyArgRE.FindAllStringSubmatchIndex(sql, -1) {
			occ = append(occ, brokenOcc{m[2], m[3], string(appendString(nil, sql[m[2]:m[3]]))})
		}
		return occ
	}},
	{name: "sign folded before ::", caught: true, share: true, edit: func(sql string, occ []brokenOcc) []brokenOcc {
		for _, m := range castRE.FindAllStringSubmatchIndex(sql, -1) {
			for i, o := range occ {
				if o.start == m[2] {
					occ[i] = brokenOcc{m[0], m[3], string(appendNumber(nil, sql[m[2]:m[3]], true))}
				}
			}
		}
		return occ
	}},
	{name: "ordinals replaced", share: true, edit: func(sql string, occ []brokenOcc) []brokenOcc {
		for _, m := range ordinalRE.FindAllStringSubmatchIndex(sql, -1) {
			occ = append(occ, brokenOcc{m[2], m[3], string(appendNumber(nil, sql[m[2]:m[3]], false))})
		}
		return occ
	}},
}

// brokenShapeOf shapes sql as b does: the right shape, edited.
func brokenShapeOf(sql string, b brokenShape) (*shape, bool) {
	var right shape
	if !right.read(sql) {
		return nil, false
	}
	var occ []brokenOcc
	for _, o := range right.occ {
		occ = append(occ, brokenOcc{o.start, o.end, string(right.value(o.param))})
	}
	occ = b.edit(sql, occ)
	slices.SortFunc(occ, func(x, y brokenOcc) int { return x.start - y.start })
	sh := &shape{sql: sql}
	for i, o := range occ {
		if i > 0 && o.start < occ[i-1].end {
			return nil, false
		}
		off := len(sh.canon)
		sh.canon = append(sh.canon, o.val...)
		n := len(sh.vals) + 1
		if b.share {
			n = sh.param(off)
		} else {
			sh.vals = append(sh.vals, valSpan{off, len(sh.canon)})
		}
		sh.replace(o.start, o.end, n)
	}
	sh.key = append(sh.key, sql[sh.last:]...)
	return sh, true
}

// TestShapeDifferentialCatchesBrokenShapes shows the differential test
// can fail: each deliberately broken normaliser makes plans that differ
// from the parsed ones on the same texts. Replacing ordinals is the
// exception: ORDER BY and GROUP BY constants only matter to merges,
// whose plans shapes do not serve, so it cannot change a served plan.
func TestShapeDifferentialCatchesBrokenShapes(t *testing.T) {
	t.Parallel()
	texts := shapeTexts(t)
	off := New(Options{CacheSize: -1})
	full := make([]*Plan, len(texts))
	for i, sql := range texts {
		full[i] = off.Plan(sql, testSchema)
	}
	for _, b := range brokenShapes {
		c := newShapeChecker()
		wrong, served := 0, 0
		example := ""
		for i, sql := range texts {
			sh, ok := brokenShapeOf(sql, b)
			if !ok {
				continue
			}
			p, ok := c.plan(sh)
			if !ok {
				continue
			}
			served++
			if !reflect.DeepEqual(p, full[i]) {
				if wrong++; example == "" {
					example = sql + " -> " + string(sh.key) + ": " + planString(p) + " vs " + planString(full[i])
				}
			}
		}
		t.Logf("%s: %d of %d served texts planned wrong; e.g. %s", b.name, wrong, served, example)
		if b.caught && wrong == 0 {
			t.Errorf("%s: the differential test does not catch it", b.name)
		}
		if !b.caught && wrong != 0 {
			t.Errorf("%s: thought harmless, but changes plans: %s", b.name, example)
		}
	}
}

// FuzzFastPlan checks, for any text, that the plan made from its shape
// (without planShape's first-time check) and Router.Plan's answer are
// the plan of the text itself.
func FuzzFastPlan(f *testing.F) {
	for _, s := range shapeCorpus(f) {
		f.Add(s)
	}
	r := New(Options{CacheSize: 256})
	off := New(Options{CacheSize: -1})
	f.Fuzz(func(t *testing.T, sql string) {
		full := off.Plan(sql, testSchema)
		if p := r.Plan(sql, testSchema); !reflect.DeepEqual(p, full) {
			t.Fatalf("%q: Router.Plan %s, parsed %s", sql, planString(p), planString(full))
		}
		var sh shape
		if !sh.read(sql) {
			return
		}
		tmpl := off.shapePlan(string(sh.key), testSchema)
		if tmpl == nil {
			return
		}
		if p, ok := sh.fill(tmpl); ok && !reflect.DeepEqual(p, full) {
			t.Fatalf("%q (shape %q): from the shape %s, parsed %s", sql, sh.key, planString(p), planString(full))
		}
	})
}

// TestParamWhereOnlyStringsGo guards numberFits's reason: pg_query's
// grammar takes a parameter where PostgreSQL's takes only a string (so
// that normalised texts parse), so replacing a number there would turn a
// syntax error into a plan.
func TestParamWhereOnlyStringsGo(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"SELECT DATE %s", "SELECT int4 %s", "SELECT varchar(3) %s",
		"SELECT INTERVAL %s DAY", "SELECT extract(%s FROM t)"} {
		if _, err := pg_query.Parse(strings.Replace(q, "%s", "$1", 1)); err != nil {
			t.Errorf("%q with $1: %v", q, err)
		}
		if _, err := pg_query.Parse(strings.Replace(q, "%s", "5", 1)); err == nil {
			t.Errorf("%q with 5 parses", q)
		}
		var sh shape
		if sh.read(strings.Replace(q, "%s", "5", 1)) {
			t.Errorf("%q with 5 is shaped", q)
		}
	}
}

// TestShapeConcurrent plans texts of a few shapes from several
// goroutines through one Router (go test -race): shared shape plans,
// pooled shapes and filled plans must not mix.
func TestShapeConcurrent(t *testing.T) {
	t.Parallel()
	r := New(Options{CacheSize: 64})
	off := New(Options{CacheSize: -1})
	heads := []string{"SELECT * FROM users WHERE id = ", "DELETE FROM orders WHERE user_id = -",
		"UPDATE users SET id = 7 WHERE id = ", "SELECT * FROM accounts WHERE id = 'x"}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range 300 {
				sql := heads[(g+i)%len(heads)] + strconv.Itoa(i*7+g)
				if strings.HasSuffix(heads[(g+i)%len(heads)], "'x") {
					sql += "'"
				}
				if p, want := r.Plan(sql, testSchema), off.Plan(sql, testSchema); !reflect.DeepEqual(p, want) {
					done <- fmt.Errorf("%q: %s, want %s", sql, planString(p), planString(want))
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
