package router

import (
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		sql   string
		write bool
	}{
		// Plain reads, decided by the lexer.
		{"select 1", false},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = $1", false},
		{"select 'for update' from t", false},
		{"select * from t -- for update", false},
		// A -- comment ends at a bare CR too, as in PostgreSQL's scanner.
		{"select 1 --x\r; delete from t", true},
		{"select 1 --x\r\n; delete from t", true},
		{"select * from t /* for update /* nested into */ */", false},
		{"select $$ for update $$, $x$ nextval('s') $x$", false},
		{"SELECT * FROM t WHERE note = E'it\\'s for update'", false},
		{`select "update", "for" from t`, false},
		{"select fornext, intox, nextvalue from t", false},
		{"with x as (select 1) select * from x", false},
		{"WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT * FROM r", false},
		{"values (1), (2)", false},
		{"table t", false},
		{"(select 1) union (select 2)", false},
		{"((select 1))", false},
		{"select * from t where x in (select y from u)", false},
		{"select t.* from t join u using (id) where t.a > 0 order by 1 limit 10", false},
		// Suspicious, read once parsed.
		{"select update from t", false},
		{"select x.update, x.delete from t x", false},
		{`select "nextval" from t`, false},
		{"select nextval from counters", false},
		{"select lo_get(42)", false},
		{"select substring(x from 1 for 2) from t", false},
		{"select 1 as into_", false},
		// Locking clauses, SELECT INTO, data-modifying CTEs.
		{"select * from t for update", true},
		{"select * from t for no key update", true},
		{"SELECT * FROM t FOR SHARE", true},
		{"select * from t for key share", true},
		{"SELECT * FROM t FOR UPDATE OF t SKIP LOCKED", true},
		{"select * from (select * from t for update) s", true},
		{"table t for update", true},
		{"select * into t2 from t", true},
		{"select 1 into temp x", true},
		{"with x as (insert into t values (1) returning *) select * from x", true},
		{"with x as (update t set a = 1 returning *) select * from x", true},
		{"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", true},
		{"with a as (select 1), b as (with c as (delete from t returning 1) select * from c) select * from b", true},
		{"with x as (select 1) insert into t select * from x", true},
		{"(with x as (merge into t using s on t.id = s.id when matched then delete returning *) select 1)", true},
		// Functions that write, wherever they are called.
		{"select nextval('s')", true},
		{"SELECT NEXTVAL('s')", true},
		{"select pg_catalog.nextval('s')", true},
		{`select pg_catalog."nextval"('s')`, true},
		{"select nextval ('s')", true},
		{"select nextval\n(\n's')", true},
		{`select "nextval"('s')`, true},
		{`select U&"nextv\0061l"('s')`, true},
		{"select * from t where id = (select currval('s'))", true},
		{"select lastval()", true},
		{"select * from t, lateral (select setval('s', t.id)) x", true},
		{"select * from nextval('s')", true},
		{"select * from rows from (nextval('s'), generate_series(1, 2))", true},
		{"select f(x) over w from t window w as (order by nextval('s'))", true},
		{"select case when a then nextval('s') end from t", true},
		{"select array[nextval('s')], row(1, txid_current())", true},
		{"select coalesce(null, pg_current_xact_id())", true},
		{"values (nextval('s'))", true},
		{"select pg_advisory_xact_lock(1)", true},
		{"select pg_try_advisory_lock_shared(1)", true},
		{"select pg_advisory_unlock_all()", true},
		{"select set_config('a.b', 'c', false)", true},
		{"select pg_notify('c', 'x')", true},
		{"select pg_terminate_backend(42)", true},
		{"select dblink_exec('x', 'delete from t')", true},
		{"select lo_create(0)", true},
		{"select lo_import('/tmp/x')", true},
		{"select lowrite(lo_open(1, 131072), 'x')", true},
		{"select loread(0, 10)", true},
		{"select lo_lseek64(0, 0, 0)", true},
		{"select lo_from_bytea(0, 'x')", true},
		{"select * from t where id = 1 and pg_reload_conf()", true},
		// SHOW, EXPLAIN, COPY.
		{"show search_path", false},
		{"SHOW ALL", false},
		{"explain select * from t", false},
		{"explain insert into t values (1)", false},
		{"explain (analyze false) select 1", false},
		{"EXPLAIN (ANALYZE off, COSTS off) select 1", false},
		{"explain (analyze 0) select 1", false},
		{"explain analyze select 1", true},
		{"explain analyse select 1", true},
		{"explain (analyze) select 1", true},
		{"EXPLAIN (ANALYZE true) select 1", true},
		{"explain (analyze on, buffers) select 1", true},
		{"explain (format json, analyze 1) select 1", true},
		{"copy t to stdout", false},
		{"COPY t (a, b) TO STDOUT WITH (FORMAT csv)", false},
		{"copy (select * from t) to stdout", false},
		{"copy t from stdin", true},
		{"copy t to '/tmp/x'", true},
		{"copy t to program 'gzip > /tmp/x'", true},
		{"copy (insert into t values (1) returning *) to stdout", true},
		{"copy (select nextval('s')) to stdout", true},
		{"copy (select * from t for update) to stdout", true},
		// Transaction control and session statements are not writes.
		{"begin", false},
		{"start transaction read only", false},
		{"commit", false},
		{"end", false},
		{"rollback", false},
		{"abort", false},
		{"savepoint s", false},
		{"release savepoint s", false},
		{"rollback to savepoint s", false},
		{"set work_mem = '64MB'", false},
		{"set transaction read write", false},
		{"set constraints all deferred", false},
		{"reset all", false},
		{"discard all", false},
		{"deallocate p", false},
		{"close c", false},
		{"fetch 10 from c", false},
		{"move last in c", false},
		{"", false},
		{"  -- only a comment", false},
		// Everything else writes.
		{"insert into t values (1)", true},
		{"update t set a = 1", true},
		{"delete from t", true},
		{"merge into t using s on t.id = s.id when matched then delete", true},
		{"create table t (a int)", true},
		{"create temp table t (a int)", true},
		{"alter table t add b int", true},
		{"drop table t", true},
		{"truncate t", true},
		{"call p()", true},
		{"do $$ begin perform 1; end $$", true},
		{"lock table t", true},
		{"prepare p as select 1", true},
		{"execute p", true},
		{"listen c", true},
		{"unlisten *", true},
		{"notify c", true},
		{"vacuum t", true},
		{"analyze t", true},
		{"declare c cursor for select 1", true},
		{"commit prepared 'x'", true},
		{"rollback prepared 'x'", true},
		{"prepare transaction 'x'", true},
		{"grant select on t to u", true},
		// Unparsable text goes to the primary once the parser has seen it.
		{"frobnicate the database", true},
		{"select * from t for", true},
		{"select * from t where a = 1for update", true}, // FOR UPDATE before PostgreSQL 15
		{"(insert into t values (1))", true},
		{"'select' 1", true},
		{"set garbage garbage", true},
		{"show", true},
		// Multi-statement strings.
		{"select 1; select 2", false},
		{"select 1; insert into t values (1)", true},
		{"begin; select 1; commit", false},
		{"begin; update t set a = 1; commit", true},
		{"select 1; select nextval('s')", true},
		{"select 'a;b'; select \"c;d\"; select $$;$$", false},
		// A lone E starts an escape string; fooE'...' is a word and a string.
		{"select namE'x\\'; delete from t; --'", true},
		{"select E'a'\n'\\'; delete from t; --'", false}, // one string, continued
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			a := Analyze(tc.sql)
			if a.Write != tc.write {
				t.Fatalf("Write = %v, want %v (%+v)", a.Write, tc.write, a)
			}
			if a.Statements != nil {
				any := false
				for _, st := range a.Statements {
					any = any || st.Write
				}
				if any != a.Write {
					t.Fatalf("statements disagree with Write: %+v", a)
				}
			}
			// Without the cache the answer is the same.
			if b := New(Options{CacheSize: -1}).Analyze(tc.sql); b.Write != a.Write {
				t.Fatalf("uncached Write = %v", b.Write)
			}
			checkClassification(t, tc.sql, a)
		})
	}
}

// TestPrefilter pins which statements the lexer settles alone: the
// common ones must not pay for the parser, the tricky ones must reach it.
func TestPrefilter(t *testing.T) {
	tests := []struct {
		sql   string
		parse bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = $1", false},
		{"select 'for update', \"into\", $$insert$$ /* delete */ from t", false},
		{"with x as (select 1) select * from x", false},
		{"table t", false},
		{"values (1)", false},
		{"(select 1) union (select 2)", false},
		{"explain select * from t for update", false},
		{"copy t to stdout", false},
		{"insert into t select nextval('s')", false},
		{"update t set a = 1 for", false},
		{"begin", false},
		{"BEGIN TRANSACTION", false},
		{"start transaction", false},
		{"commit and chain", false},
		{"rollback work and no chain", false},
		{"rollback to savepoint x", false},
		{"commit prepared 'x'", false},
		{"savepoint x", false},
		{"discard all", false},
		{"fetch all from c", false},
		{"select * from t for update", true},
		{"select * into x from t", true},
		{"with x as (delete from t returning 1) select 1", true},
		{"select nextval('s')", true},
		{`select "NextVal"('s')`, true},
		{`select U&"x"`, true},
		{"select lo_get(1)", true},
		{"select pg_advisory_whatever()", true},
		{"explain analyze select 1", true},
		{"copy t from stdin", true},
		{"copy t to 'f'", true},
		{"copy (select 1 from t) to stdout", true},
		{"begin read only", true},
		{"start transaction isolation level serializable", true},
		{"commit and", true},
		{"set x = 1", true},
		{"show x", true},
	}
	for _, tc := range tests {
		sps := split(tc.sql)
		if len(sps) != 1 {
			t.Fatalf("%q: %d statements", tc.sql, len(sps))
		}
		if v := prefilter(&sps[0]); v.parse != tc.parse {
			t.Errorf("%q: parse = %v, want %v", tc.sql, v.parse, tc.parse)
		}
	}
}

func TestWriteFunctions(t *testing.T) {
	r := New(Options{WriteFunctions: []string{"audit_log", "Billing.Charge", " "}})
	tests := []struct {
		sql   string
		write bool
	}{
		{"select audit_log('x')", true},
		{"SELECT AUDIT_LOG('x')", true},
		{"select app.audit_log('x')", true},
		{`select "audit_log"('x')`, true},
		{"select * from t where charge(1) > 0", true},
		{"select audit_log from t", false},
		{"select 'audit_log(1)'", false},
		{"select audit_logs('x')", false},
		{"select nextval('s')", true}, // the built-in list still applies
	}
	for _, tc := range tests {
		if a := r.Analyze(tc.sql); a.Write != tc.write {
			t.Errorf("%q: Write = %v, want %v", tc.sql, a.Write, tc.write)
		}
	}
	if Analyze("select audit_log('x')").Write {
		t.Error("the default router knows audit_log")
	}
	// PostgreSQL cuts names at 63 bytes: a longer word calls the function.
	long := strings.Repeat("f", maxIdent)
	r = New(Options{WriteFunctions: []string{long}})
	if !r.Analyze("select " + long + "xyz()").Write {
		t.Error("a name past 63 bytes is not cut")
	}
}

func TestStatementWrite(t *testing.T) {
	a := Analyze("select 1; insert into t values (1); set x = 1; select nextval('s'); select 2")
	want := []Statement{
		{Command: CmdOther},
		{Command: CmdOther, Write: true},
		{Command: CmdSet, Set: &SetEffect{Name: "x", Value: "1"}},
		{Command: CmdOther, Write: true},
		{Command: CmdOther},
	}
	if len(a.Statements) != len(want) || !a.Write {
		t.Fatalf("got %+v", a)
	}
	for i, st := range a.Statements {
		w := want[i]
		if st.Command != w.Command || st.Write != w.Write || (w.Set != nil) != (st.Set != nil) {
			t.Errorf("statement %d: got %+v, want %+v", i, st, w)
		}
	}
	a = Analyze("select pg_advisory_lock(1); select 1")
	if len(a.Statements) != 2 || a.Statements[0].Command != CmdSessionLock || !a.Statements[0].Write ||
		a.Statements[1].Write {
		t.Fatalf("got %+v", a)
	}
}

func TestTransactionControl(t *testing.T) {
	tests := []struct {
		sql   string
		cmd   Command
		acc   TxAccess
		chain bool
		write bool
	}{
		{"BEGIN", CmdBegin, TxDefault, false, false},
		{"begin;", CmdBegin, TxDefault, false, false},
		{"BEGIN TRANSACTION", CmdBegin, TxDefault, false, false},
		{"begin work", CmdBegin, TxDefault, false, false},
		{"START TRANSACTION", CmdBegin, TxDefault, false, false},
		{"BEGIN READ ONLY", CmdBegin, TxReadOnly, false, false},
		{"BEGIN READ WRITE", CmdBegin, TxReadWrite, false, false},
		{"begin isolation level repeatable read", CmdBegin, TxDefault, false, false},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", CmdBegin, TxReadOnly, false, false},
		{"start transaction read only, read write", CmdBegin, TxReadWrite, false, false},
		{"SET TRANSACTION READ ONLY", CmdSetTransaction, TxReadOnly, false, false},
		{"set transaction isolation level read committed, read write", CmdSetTransaction, TxReadWrite, false, false},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", CmdSetTransaction, TxDefault, false, false},
		{"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", CmdSetTransaction, TxDefault, false, false},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", CmdOther, TxDefault, false, false},
		{"COMMIT", CmdCommit, TxDefault, false, false},
		{"END", CmdCommit, TxDefault, false, false},
		{"commit work", CmdCommit, TxDefault, false, false},
		{"COMMIT AND NO CHAIN", CmdCommit, TxDefault, false, false},
		{"COMMIT AND CHAIN", CmdCommit, TxDefault, true, false},
		{"commit /* still */ and -- chained\n chain;", CmdCommit, TxDefault, true, false},
		{"end transaction and chain", CmdCommit, TxDefault, true, false},
		{"ROLLBACK", CmdRollback, TxDefault, false, false},
		{"ABORT", CmdRollback, TxDefault, false, false},
		{"rollback transaction", CmdRollback, TxDefault, false, false},
		{"ROLLBACK AND CHAIN", CmdRollback, TxDefault, true, false},
		{"abort and no chain", CmdRollback, TxDefault, false, false},
		{"ROLLBACK TO SAVEPOINT s", CmdOther, TxDefault, false, false},
		{"rollback to s", CmdOther, TxDefault, false, false},
		{"rollback work to savepoint s", CmdOther, TxDefault, false, false},
		{"SAVEPOINT s", CmdOther, TxDefault, false, false},
		{"RELEASE SAVEPOINT s", CmdOther, TxDefault, false, false},
		{"COMMIT PREPARED 'x'", CmdOther, TxDefault, false, true},
		{"ROLLBACK PREPARED 'x'", CmdOther, TxDefault, false, true},
		{"PREPARE TRANSACTION 'x'", CmdOther, TxDefault, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			a := Analyze(tc.sql)
			if a.Write != tc.write {
				t.Fatalf("Write = %v", a.Write)
			}
			if tc.cmd == CmdOther {
				if !a.Plain() {
					t.Fatalf("not plain: %+v", a.Statements)
				}
				return
			}
			if len(a.Statements) != 1 {
				t.Fatalf("got %+v", a.Statements)
			}
			st := a.Statements[0]
			if st.Command != tc.cmd || st.TxAccess != tc.acc || st.Chain != tc.chain || st.Write != tc.write {
				t.Fatalf("got %v access %d chain %v write %v", st.Command, st.TxAccess, st.Chain, st.Write)
			}
		})
	}
}

func TestShow(t *testing.T) {
	tests := []struct{ sql, name string }{
		{"SHOW shardgate.causal_lsn", "shardgate.causal_lsn"},
		{"SHOW ALL", "all"},
		{`show "Shardgate.Hosts"`, "Shardgate.Hosts"},
		{"show Search_Path;", "search_path"},
		{"SHOW TIME ZONE", "timezone"},
		{"show transaction isolation level", "transaction_isolation"},
		{"show /* c */ shardgate.role", "shardgate.role"},
	}
	for _, tc := range tests {
		a := Analyze(tc.sql)
		if len(a.Statements) != 1 || a.Statements[0].Command != CmdShow || a.Write {
			t.Fatalf("%q: got %+v", tc.sql, a)
		}
		if got := a.Statements[0].Show; got != tc.name {
			t.Errorf("%q: Show = %q, want %q", tc.sql, got, tc.name)
		}
	}
	a := Analyze("show x; select 1")
	if len(a.Statements) != 2 || a.Statements[0].Show != "x" || a.Statements[1].Command != CmdOther {
		t.Fatalf("got %+v", a)
	}
}

func TestShardgateSettings(t *testing.T) {
	tests := []struct{ sql, name, value string }{
		{"SET shardgate.role = replica", "shardgate.role", "replica"},
		{"set shardgate.role to 'primary'", "shardgate.role", "primary"},
		{"SET shardgate.causal_lsn = '0/16B3748'", "shardgate.causal_lsn", "0/16B3748"},
		{"SET SESSION Shardgate.Causal_LSN TO '0/0'", "shardgate.causal_lsn", "0/0"},
	}
	for _, tc := range tests {
		a := Analyze(tc.sql)
		if len(a.Statements) != 1 || a.Write {
			t.Fatalf("%q: got %+v", tc.sql, a)
		}
		st := a.Statements[0]
		if st.Command != CmdSet || st.Set.Name != tc.name || st.Set.Value != tc.value || st.Set.Local {
			t.Errorf("%q: got %v %+v", tc.sql, st.Command, st.Set)
		}
	}
}

func TestHints(t *testing.T) {
	tests := []struct {
		sql  string
		hint Hint
	}{
		{"select 1", HintNone},
		{"/* shardgate: role=primary */ select 1", HintPrimary},
		{"select 1 /* shardgate: role=replica */", HintReplica},
		{"select 1 -- shardgate: role=replica", HintReplica},
		{"-- shardgate: role=replica\nselect 1", HintReplica},
		{"/*shardgate:role=replica*/select 1", HintReplica},
		{"/*  SHARDGATE :\n ROLE = Replica  */ select 1", HintReplica},
		{"select 1 /* shardgate: trace=abc role=replica */", HintReplica},
		{"select 1 /* shardgate: role=replica, trace=abc */", HintReplica},
		{"select 1 /* shardgate: trace=abc */", HintNone},
		{"select 1 /* shardgate: role=elsewhere */", HintNone},
		{"select 1 /* shardgate role=replica */", HintNone},
		{"select 1 /* app=shop,shardgate: role=replica */", HintReplica},
		{"select '/* shardgate: role=replica */'", HintNone},
		{`select "-- shardgate: role=replica"`, HintNone},
		{"select $$ /* shardgate: role=replica */ $$", HintNone},
		{"select 1 /* shardgate: role=replica */; select 2 /* shardgate: role=primary */", HintPrimary},
		{"select 1 /* shardgate: role=primary */ /* shardgate: role=replica */", HintPrimary},
		{"/* shardgate: role=replica */", HintReplica},
		{"select 1; -- shardgate: role=replica", HintReplica},
		{"/* shardgate: role=replica */ select nextval('s')", HintReplica},
		{"/* shardgate: role=primary */ set x = 1", HintPrimary},
	}
	for _, tc := range tests {
		for i := 0; i < 2; i++ { // the second time from the cache, when parsed
			if got := Analyze(tc.sql).Hint; got != tc.hint {
				t.Errorf("%q: Hint = %d, want %d", tc.sql, got, tc.hint)
			}
		}
	}
}

func TestCommandString(t *testing.T) {
	for c := CmdOther; c < numCommands; c++ {
		if s := c.String(); s == "" || (c != CmdOther && strings.HasPrefix(s, "command(")) {
			t.Errorf("%d: %q", c, s)
		}
	}
}

func TestControlSetBareWord(t *testing.T) {
	for _, q := range []string{"SET shardgate.role = primary", "set shardgate.role to primary;", "SET SESSION shardgate.role = Primary"} {
		a := Analyze(q)
		if len(a.Statements) != 1 || a.Statements[0].Command != CmdSet || a.Statements[0].Set.Name != "shardgate.role" || a.Statements[0].Set.Value != "primary" {
			t.Errorf("%q: %+v", q, a.Statements)
		}
	}
	if a := Analyze("SET search_path = primary"); len(a.Statements) == 1 && a.Statements[0].Command == CmdSet {
		t.Errorf("a bare reserved word for a server setting must stay the server's syntax error: %+v", a.Statements[0])
	}
}
