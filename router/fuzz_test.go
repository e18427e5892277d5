package router

import (
	"math/rand/v2"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// fuzzSeeds start FuzzAnalyze near the classification's edges.
var fuzzSeeds = []string{
	"select * from t for update", "select 'for update'", `select "update" from t`,
	"with x as (insert into t values (1) returning *) select * from x",
	"select pg_catalog.nextval('s')", "select nextval ('s')", `select U&"nextv\0061l"('s')`,
	"select * into t2 from t", "values (1)", "table t", "(select 1) union (select 2)",
	"explain analyze select 1", "explain (analyze false) select 1", "copy t to stdout",
	"copy t from stdin", "copy (select 1) to program 'x'", "begin read only", "commit and chain",
	"rollback to savepoint s", "commit prepared 'x'", "show all", "set transaction read only",
	"select 1 /* shardgate: role=replica */", "select lo_get(1)", "select namE'x\\'; delete from t",
	"select E'a'\n'\\'; delete from t; --'", "select 1for update", "fetch 1 from c",
}

// checkClassification holds a's classification of sql against the
// parser's, statement by statement.
func checkClassification(t *testing.T, sql string, a Analysis) {
	t.Helper()
	if b := Analyze(sql); !sameAnalysis(a, b) {
		t.Fatalf("analysed twice: %+v then %+v", a, b)
	}
	if a.Statements != nil {
		w := false
		for _, st := range a.Statements {
			w = w || st.Write
		}
		if w != a.Write {
			t.Fatalf("Write %v, statements %+v", a.Write, a.Statements)
		}
	}
	any := false
	for _, sp := range split(sql) {
		v := prefilter(&sp)
		tr := walkTree(sp.text, defaultFuncs)
		if !tr.fail {
			if v.st.Command == CmdEmpty {
				if tr.stmts != 0 {
					t.Fatalf("%q: empty to the lexer, %d statements to the parser", sp.text, tr.stmts)
				}
				continue
			}
			if !v.parse && !v.st.Write && tr.write() {
				t.Fatalf("%q: the prefilter says read, the parser write (%s)", sp.text, tr.kind)
			}
			// Protobuf cannot tell COPY TO '' (a file, so a write) from
			// COPY TO STDOUT: refWrite is blind there.
			emptyFile := strings.Contains(tr.s, `"filename":""`)
			if res, err := pg_query.Parse(sp.text); err == nil && !emptyFile {
				if ref := refWrite(res, defaultFuncs); ref != tr.write() {
					t.Fatalf("%q: walkTree says write=%v, refWrite %v", sp.text, tr.write(), ref)
				}
			}
			// parseTyped may say write where walkTree says read: the
			// protobuf form rejects text that is not UTF-8 (a LATIN1
			// client's), the JSON form does not.
			if v.typed && !parseTyped(sp.text).Write && tr.write() {
				t.Fatalf("%q: parseTyped says read, walkTree write", sp.text)
			}
		}
		if v.parse {
			any = any || parseSpan(&sp, v.typed, defaultFuncs).Write
		} else {
			any = any || v.st.Write
		}
	}
	if any != a.Write {
		t.Fatalf("Write %v, statements say %v", a.Write, any)
	}
}

// TestClassificationSeeds runs the fuzz checks on the seeds (TestWrite
// runs them on its table).
func TestClassificationSeeds(t *testing.T) {
	for _, s := range fuzzSeeds {
		checkClassification(t, s, Analyze(s))
	}
}

// TestGeneratedStatements combines fragments into statements that mostly
// parse (random bytes rarely do) and runs the fuzz checks on them.
func TestGeneratedStatements(t *testing.T) {
	heads := []string{"select ", "SELECT DISTINCT ", "with w as (select 1) select ",
		"with w as (insert into t values (1) returning 1) select ", "(select ", "values (",
		"table t", "explain select ", "explain analyze select ", "explain (analyze false) select ",
		"copy (select ", "copy t", "with recursive w(n) as (values (1)) select ", "/* c */ select "}
	parts := []string{"1", "a", "t.a", "nextval('s')", "pg_catalog.nextval('s')", `"nextval"('s')`,
		`"NextVal"`, "nextval", "lo_get(1)", "lo_open(1, 2)", "'for update'", "$$into$$", "E'\\'for'",
		"/* for update */ 2", "-- into\n3", "(select 1 for update)", "(select x from t for share)",
		"coalesce(a, setval('s', 1))", "case when a then 1 else currval('s') end", "array[1]",
		"update", "x.delete", "row(1, 2)", `U&"a"`, "f(x)", "(select 1 from nextval('s'))",
		"substring(a from 1 for 2)", "pg_advisory_lock(1)", "pg_advisory_unlock(1)", `"lo_get"(1)`,
		"(with d as (delete from t returning 1) select 1)", "count(*) over (order by txid_current())"}
	tails := []string{"", " from t", " from t for update", " from t for no key update", " into x from t",
		" where a in (select 1)", " from t, lateral (select pg_advisory_lock(1)) l", ")", " to stdout",
		" from stdin", " to '/f'", " to program 'x'", " order by 1", " limit 1", "; select 1",
		";insert into t values(1)", " union select 2", ") to stdout", ")) x", " for"}
	rng := rand.New(rand.NewPCG(1, 2))
	parsed := 0
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		b.WriteString(heads[rng.IntN(len(heads))])
		for k := rng.IntN(3) + 1; k > 0; k-- {
			b.WriteString(parts[rng.IntN(len(parts))])
			if k > 1 {
				b.WriteString(", ")
			}
		}
		b.WriteString(tails[rng.IntN(len(tails))])
		sql := b.String()
		if _, err := pg_query.Parse(sql); err == nil {
			parsed++
		}
		checkClassification(t, sql, Analyze(sql))
	}
	t.Logf("%d of 3000 generated statements parse", parsed)
	if parsed < 500 {
		t.Fatalf("only %d generated statements parse", parsed)
	}
}
