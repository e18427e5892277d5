package proxy

import "testing"

func TestSavepointOf(t *testing.T) {
	for sql, want := range map[string]string{
		"SAVEPOINT a":                 "a",
		"  release savepoint b":       "b",
		"rollback to savepoint \"C\"": "C",
		"ROLLBACK TO x":               "x",
	} {
		op, ok := savepointOf(sql)
		if !ok || op.name != want {
			t.Errorf("savepointOf(%q) = %+v, %v; want %q", sql, op, ok, want)
		}
	}
	for _, sql := range []string{"select 1", "rollback", "savepoints_table", "releases", "set x = 1", ""} {
		if op, ok := savepointOf(sql); ok {
			t.Errorf("savepointOf(%q) = %+v", sql, op)
		}
	}
	if n := testing.AllocsPerRun(100, func() { savepointOf("SELECT abalance FROM pgbench_accounts WHERE aid = 1") }); n != 0 {
		t.Errorf("savepointOf of a SELECT allocates %v times", n)
	}
}
