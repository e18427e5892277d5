package router

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		sql      string
		keywords []string
	}{
		{"select 1", []string{"other"}},
		{"select 1; select 2", []string{"other", "other"}},
		{"select ';'; set x = 1", []string{"other", "set"}},
		{`select "a;b" from t; RESET all`, []string{"other", "reset"}},
		{"select $$ ; $$; Begin", []string{"other", "begin"}},
		{"select $tag$ ; $x$ ; $tag$; commit", []string{"other", "other"}},
		{"select $1; listen x", []string{"other", "listen"}},
		{"-- set x\nselect 1", []string{"other"}},
		{"/* a /* nested ; */ ; */ discard all", []string{"discard"}},
		{"select E'\\';'; prepare p as select 1", []string{"other", "prepare"}},
		{"", []string{""}},
		{";;", []string{"", ""}},
		{"select 1;", []string{"other"}},
		{"select 1; -- bye", []string{"other"}},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			spans := split(tc.sql)
			var got []string
			for _, s := range spans {
				got = append(got, s.keyword)
			}
			if len(got) != len(tc.keywords) {
				t.Fatalf("got %q, want %q", got, tc.keywords)
			}
			for i := range got {
				if got[i] != tc.keywords[i] {
					t.Fatalf("got %q, want %q", got, tc.keywords)
				}
			}
		})
	}
}

func TestAnalyzeSet(t *testing.T) {
	tests := []struct {
		sql  string
		want *SetEffect // nil: not a tracked SET
	}{
		{"SET search_path = a, 'b c'", &SetEffect{Name: "search_path", Value: `a, "b c"`}},
		{"set search_path to 'My Schema'", &SetEffect{Name: "search_path", Value: `"My Schema"`}},
		{"SET application_name = 'my app'", &SetEffect{Name: "application_name", Value: "my app"}},
		{"SET TIME ZONE 'UTC'", &SetEffect{Name: "timezone", Value: "UTC"}},
		{"set statement_timeout = 5000", &SetEffect{Name: "statement_timeout", Value: "5000"}},
		{"set extra_float_digits = 2.5", &SetEffect{Name: "extra_float_digits", Value: "2.5"}},
		{"SET LOCAL work_mem = '64MB'", &SetEffect{Name: "work_mem", Value: "64MB", Local: true}},
		{"SET SESSION my.tenant = 42", &SetEffect{Name: "my.tenant", Value: "42"}},
		{"RESET work_mem", &SetEffect{Name: "work_mem", Reset: true}},
		{"SET work_mem TO DEFAULT", &SetEffect{Name: "work_mem", Reset: true}},
		{"RESET ALL", &SetEffect{All: true, Reset: true}},
		// SET TRANSACTION is CmdSetTransaction now (see TestTransactionControl);
		// the session-wide form is still not tracked.
		{"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", nil},
		{"set constraints all deferred", nil},
		{"set garbage garbage", nil},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			a := Analyze(tc.sql)
			if tc.want == nil {
				if !a.Plain() {
					t.Fatalf("tracked: %+v", a.Statements)
				}
				return
			}
			if len(a.Statements) != 1 {
				t.Fatalf("statements: %+v", a.Statements)
			}
			st := a.Statements[0]
			if st.Command != CmdSet || *st.Set != *tc.want {
				t.Fatalf("got %v %+v, want %+v", st.Command, st.Set, tc.want)
			}
		})
	}
}

func TestAnalyzeCommands(t *testing.T) {
	tests := []struct {
		sql  string
		want []Command
	}{
		{"select 1; begin; select 1; commit", []Command{CmdOther, CmdBegin, CmdOther, CmdCommit}},
		{"START TRANSACTION READ ONLY", []Command{CmdBegin}},
		{"listen x; unlisten *", []Command{CmdListen, CmdListen}},
		{"prepare p(int) as select $1", []Command{CmdPrepare}},
		{"prepare transaction 'x'", []Command{CmdOther}},
		{"execute p(1)", []Command{CmdExecute}},
		{"deallocate all", []Command{CmdDeallocate}},
		{"discard all", []Command{CmdDiscardAll}},
		{"discard plans", []Command{CmdOther}},
		{"declare c cursor with hold for select 1", []Command{CmdDeclareHold}},
		{"declare c cursor for select 1", []Command{CmdOther}},
		{"create temp table t (a int)", []Command{CmdCreateTemp}},
		{"CREATE GLOBAL TEMPORARY TABLE t (a int)", []Command{CmdCreateTemp}},
		{"create or replace temp view v as select 1", []Command{CmdCreateTemp}},
		{"create table temp (a int)", []Command{CmdOther}},
		{"create unlogged table t (a int)", []Command{CmdOther}},
		{"create type pg_temp.r as range (subtype = text)", []Command{CmdCreateTemp}},
		{"select pg_advisory_lock(42)", []Command{CmdSessionLock}},
		{"SELECT 1; select PG_TRY_ADVISORY_LOCK_SHARED(1, 2)", []Command{CmdOther, CmdSessionLock}},
		{"select pg_advisory_xact_lock(42)", []Command{CmdOther}},
		{"select 'pg_advisory_lock(1)'", []Command{CmdOther}},
		{"select 1;; select 2", nil},
		{"select 1;; set x = 1", []Command{CmdOther, CmdSet}},
		{"  ", []Command{CmdEmpty}},
		{"-- only a comment", []Command{CmdEmpty}},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			a := Analyze(tc.sql)
			if !slices.ContainsFunc(tc.want, func(c Command) bool { return c != CmdOther }) {
				tc.want = nil // nothing special: Plain, no list
			}
			if len(a.Statements) != len(tc.want) {
				t.Fatalf("got %+v, want %v", a.Statements, tc.want)
			}
			for i, st := range a.Statements {
				if st.Command != tc.want[i] {
					t.Fatalf("statement %d: got %v, want %v", i, st.Command, tc.want[i])
				}
			}
		})
	}
}

// FuzzAnalyze: any text is analysed without panicking, and the statement
// count never exceeds the number of semicolons plus one. The prefilter
// never calls a read what the parser calls a write, and the parser-based
// classification agrees with an independent one (refWrite).
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"select 1; set x = 1", "select $a$;$a$", "/* /* */", "E'\\''", `"a""b"`, "set time zone local"} {
		f.Add(s)
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		a := Analyze(sql)
		semis := 0
		for i := 0; i < len(sql); i++ {
			if sql[i] == ';' {
				semis++
			}
		}
		if len(a.Statements) > semis+1 {
			t.Fatalf("%d statements for %d semicolons", len(a.Statements), semis)
		}
		checkClassification(t, sql, a)
	})
}

func TestAnalyzePlainAllocatesNothing(t *testing.T) {
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = 42; select 'a;b'"
	if n := testing.AllocsPerRun(100, func() { Analyze(q) }); n != 0 {
		t.Fatalf("%v allocations for a plain query", n)
	}
	if a := Analyze(q); !a.Plain() {
		t.Fatalf("not plain: %+v", a)
	}
}
