package admin

import (
	"errors"
	"strings"
	"testing"
)

// testGrammar has two SHOW objects, as the proxy's table would give them.
var testGrammar = NewGrammar([]Object{{"POOLS", "pools"}, {"STATS", "stats"}})

func TestParse(t *testing.T) {
	cases := []struct {
		sql  string
		want []Command
	}{
		{"show pools", []Command{{Verb: Show, Object: "POOLS"}}},
		{"  SHOW   Stats ; ", []Command{{Verb: Show, Object: "STATS"}}},
		{"pause; resume app", []Command{{Verb: Pause}, {Verb: Resume, Arg: "app"}}},
		{"BAN '127.0.0.1:5433'", []Command{{Verb: Ban, Arg: "127.0.0.1:5433"}}},
		{`unban "h;1:5"`, []Command{{Verb: Unban, Arg: "h;1:5"}}},
		{"kill 12", []Command{{Verb: Kill, Arg: "12"}}},
		{"RELOAD;SHUTDOWN", []Command{{Verb: Reload}, {Verb: Shutdown}}},
		{"set client_encoding = 'UTF8'", []Command{{Verb: Set}}},
		{"", nil},
		{" ; ;", nil},
	}
	for _, c := range cases {
		got, err := testGrammar.Parse(c.sql)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.sql, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("Parse(%q) = %d commands, want %d", c.sql, len(got), len(c.want))
			continue
		}
		for i := range got {
			g, w := got[i], c.want[i]
			if g.Verb != w.Verb || g.Object != w.Object || g.Arg != w.Arg {
				t.Errorf("Parse(%q)[%d] = %+v, want %+v", c.sql, i, g, w)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, sql := range []string{"select 1", "show", "show tables", "kill", "ban", "reload now", "pause a b", "ban 'open"} {
		_, err := testGrammar.Parse(sql)
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != "42601" {
			t.Errorf("Parse(%q) = %v, want a 42601 error", sql, err)
		}
	}
	_, err := testGrammar.Parse("frobnicate now")
	if err == nil || err.Error() != `unknown command "frobnicate"` {
		t.Errorf("unknown command error = %v", err)
	}
}

// TestGrammarLists checks that the syntax hint and SHOW HELP list the
// objects the grammar was given, in its order, and accept SHOW HELP.
func TestGrammarLists(t *testing.T) {
	_, err := testGrammar.Parse("show tables")
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("show tables: %v, want an *Error", err)
	}
	if !strings.HasPrefix(ae.Hint, "commands: SHOW POOLS|STATS|HELP; RELOAD; PAUSE [pool];") ||
		!strings.HasSuffix(ae.Hint, "; KILL client_id; SHUTDOWN") {
		t.Errorf("hint = %q", ae.Hint)
	}
	help := testGrammar.HelpRows()
	if len(help) != 2+len(verbs) || help[0][0] != "SHOW POOLS" || help[1][0] != "SHOW STATS" || help[2][0] != "RELOAD" {
		t.Errorf("help = %v", help)
	}
	if got, err := testGrammar.Parse("show help"); err != nil || got[0].Object != "HELP" {
		t.Errorf("show help = %v, %v", got, err)
	}
}

func TestEncode(t *testing.T) {
	cols := Cols("n", Int8, "s", Text, "f", Float8, "b", Bool)
	row := []any{int64(-2), "x", 1.5, true}
	text := DataRow(cols, row, nil)
	if string(text.Values[0]) != "-2" || string(text.Values[2]) != "1.5" || string(text.Values[3]) != "t" {
		t.Errorf("text row = %q", text.Values)
	}
	bin := DataRow(cols, row, []int16{1})
	if len(bin.Values[0]) != 8 || bin.Values[0][7] != 0xfe || len(bin.Values[2]) != 8 || bin.Values[3][0] != 1 {
		t.Errorf("binary row = %v", bin.Values)
	}
	if DataRow(cols, []any{nil}, nil).Values[0] != nil {
		t.Error("nil is not NULL")
	}
	if err := CheckFormats([]int16{0, 1}, 4); err == nil {
		t.Error("2 formats for 4 columns accepted")
	}
	if err := CheckFormats([]int16{2}, 4); err == nil {
		t.Error("format 2 accepted")
	}
}
