package proxy

import (
	"testing"

	"github.com/shardgate/shardgate/router"
)

func TestReplaySQL(t *testing.T) {
	tests := []struct {
		name       string
		want, have map[string]string
		sql        string
	}{
		{"in sync", map[string]string{"a": "1"}, map[string]string{"a": "1"}, ""},
		{"set missing", map[string]string{"timezone": "UTC", "application_name": "it's"}, map[string]string{},
			"SELECT pg_catalog.set_config('application_name', 'it''s', false), pg_catalog.set_config('timezone', 'UTC', false)"},
		{"reset extra", map[string]string{}, map[string]string{"my.tenant": "7"}, `RESET "my"."tenant";`},
		{"change", map[string]string{"a": "2"}, map[string]string{"a": "1", "b": "x"},
			`RESET "b";SELECT pg_catalog.set_config('a', '2', false)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := replaySQL(tc.want, tc.have); got != tc.sql {
				t.Fatalf("got  %s\nwant %s", got, tc.sql)
			}
			if len(tc.have) != len(tc.want) {
				t.Fatalf("server record not updated: %v", tc.have)
			}
			if again := replaySQL(tc.want, tc.have); again != "" {
				t.Fatalf("second replay not empty: %s", again)
			}
		})
	}
}

func TestSettingsTransactions(t *testing.T) {
	set := func(sql string) *router.Statement {
		a := router.Analyze(sql)
		return &a.Statements[0]
	}
	server := map[string]string{}
	c := newSettings(map[string]string{"application_name": "psql"})

	c.note(set("set work_mem = '64MB'"), "SET")
	c.endTransaction(server)
	if c.values["work_mem"] != "64MB" || server["work_mem"] != "64MB" {
		t.Fatalf("committed SET lost: %v %v", c.values, server)
	}

	c.note(set("set work_mem = '1MB'"), "SET")
	c.failed = true // rolled back
	c.endTransaction(server)
	if c.values["work_mem"] != "64MB" {
		t.Fatalf("rolled back SET kept: %v", c.values)
	}

	c.note(set("set local work_mem = '1MB'"), "SET")
	c.note(set("reset application_name"), "RESET")
	c.endTransaction(server)
	if c.values["work_mem"] != "64MB" || c.values["application_name"] != "psql" {
		t.Fatalf("SET LOCAL tracked or RESET not back to startup value: %v", c.values)
	}

	c.note(set("reset all"), "RESET")
	c.endTransaction(server)
	if len(c.values) != 1 || c.values["application_name"] != "psql" || len(server) != 0 {
		t.Fatalf("RESET ALL: %v %v", c.values, server)
	}
}

// TestStmtForReusesLastParse: a Parse of the text just parsed reuses its
// server name and analysis in a statement of its own; other parameter
// types or a new router make a fresh one.
func TestStmtForReusesLastParse(t *testing.T) {
	srv := NewServer(Options{})
	s := &session{srv: srv}
	// A text the lexer alone cannot settle, so that an analysis shows in
	// the router's cache figures.
	const q = "with d as (delete from t where id = $1 returning id) select id from d"
	lookups := func() uint64 { st := srv.CacheStats(); return st.Hits + st.Misses }
	a := s.stmtFor(q, []uint32{23})
	if lookups() == 0 {
		t.Fatal("the first Parse was not analysed")
	}
	before := lookups()
	a.epoch = 7
	b := s.stmtFor(q, []uint32{23})
	if a == b || b.epoch != 0 || b.server != a.server || b.query != q {
		t.Fatalf("reuse: a=%+v b=%+v", a, b)
	}
	if lookups() != before {
		t.Fatal("the same text was analysed again")
	}
	if c := s.stmtFor(q, []uint32{20}); c.server == a.server {
		t.Fatal("other parameter types share a server statement name")
	}
	if d := s.stmtFor("select 2", nil); d.server == a.server || d.query != "select 2" {
		t.Fatalf("other text: %+v", d)
	}
	s.stmtFor(q, []uint32{23})
	srv.Reconfigure(Options{Router: router.New(router.Options{WriteFunctions: []string{"f"}})})
	if e := s.stmtFor(q, []uint32{23}); s.lastRouter != srv.o().Router || e.server != a.server {
		t.Fatal("a new router must analyse the text again")
	}
}
