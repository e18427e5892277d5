package bench

import (
	"os"
	"testing"
)

func TestParsePgBouncerVersion(t *testing.T) {
	b, err := os.ReadFile("testdata/pgbouncer-1.18-version.txt")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := ParsePgBouncerVersion(string(b))
	if !ok || v != [3]int{1, 18, 0} {
		t.Fatalf("ParsePgBouncerVersion = %v, %v; want [1 18 0], true", v, ok)
	}
	if SupportsPreparedStatements(v) {
		t.Fatal("1.18 cannot track prepared statements")
	}
	for in, want := range map[string][3]int{
		"PgBouncer 1.21.0":     {1, 21, 0},
		"pgbouncer 1.24":       {1, 24, 0},
		"PgBouncer 2.0.1\nx\n": {2, 0, 1},
	} {
		v, ok := ParsePgBouncerVersion(in)
		if !ok || v != want {
			t.Errorf("ParsePgBouncerVersion(%q) = %v, %v", in, v, ok)
		}
		if !SupportsPreparedStatements(v) {
			t.Errorf("%v should support max_prepared_statements", v)
		}
	}
	if _, ok := ParsePgBouncerVersion("command not found"); ok {
		t.Fatal("parsed a version out of nothing")
	}
}
