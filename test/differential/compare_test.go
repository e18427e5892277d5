package differential

import (
	"strings"
	"testing"
)

func rowsOf(vals ...string) [][]string {
	var rows [][]string
	for _, v := range vals {
		rows = append(rows, strings.Split(v, "|"))
	}
	return rows
}

// TestCompare shows the comparer tells apart what must differ and lets
// through only the differences a Step's Order allows.
func TestCompare(t *testing.T) {
	cols := []Column{{Name: "k", OID: 25}, {Name: "v", OID: 23}}
	res := func(tag string, rows ...string) Result { return Result{Cols: cols, Rows: rowsOf(rows...), Tag: tag} }
	unordered := &Step{}
	totalOrder := &Step{Order: Order{Total: true}}
	ties := &Step{Order: Order{Keys: []int{0}}}
	tiesCut := &Step{Order: Order{Keys: []int{0}, Cut: true}}
	for _, tc := range []struct {
		name      string
		st        *Step
		got, want Result
		diff      string // "" when they must agree
	}{
		{"same rows, other order, no ORDER BY", unordered, res("SELECT 2", "a|1", "b|2"), res("SELECT 2", "b|2", "a|1"), ""},
		{"other row", unordered, res("SELECT 2", "a|1", "b|3"), res("SELECT 2", "b|2", "a|1"), "rows differ"},
		{"duplicate instead of another row", unordered, res("SELECT 2", "a|1", "a|1"), res("SELECT 2", "a|1", "b|2"), "rows differ"},
		{"missing row", unordered, res("SELECT 1", "a|1"), res("SELECT 2", "a|1", "b|2"), "command tag"},
		{"missing row, same tag", unordered, res("SELECT 2", "a|1"), res("SELECT 2", "a|1", "b|2"), "got 1 rows, want 2"},
		{"other order under a total ORDER BY", totalOrder, res("SELECT 2", "b|2", "a|1"), res("SELECT 2", "a|1", "b|2"), "row 1 differs"},
		{"NULL is not the empty string", unordered, res("SELECT 1", "a|"+Null), res("SELECT 1", "a|"), "rows differ"},
		{"ties in any order", ties, res("SELECT 3", "a|2", "a|1", "b|0"), res("SELECT 3", "a|1", "a|2", "b|0"), ""},
		{"ties: keys out of order", ties, res("SELECT 3", "b|0", "a|1", "a|2"), res("SELECT 3", "a|1", "a|2", "b|0"), "sort keys"},
		{"ties: other row in a group", ties, res("SELECT 3", "a|1", "a|3", "b|0"), res("SELECT 3", "a|1", "a|2", "b|0"), "equal sort keys"},
		{"ties cut by LIMIT at the edge", tiesCut, res("SELECT 3", "a|1", "b|9", "c|5"), res("SELECT 3", "a|7", "b|9", "c|6"), ""},
		{"ties cut by LIMIT, inner group differs", tiesCut, res("SELECT 3", "a|1", "b|8", "c|5"), res("SELECT 3", "a|7", "b|9", "c|6"), "equal sort keys"},
		{"tag", unordered, Result{Tag: "UPDATE 2"}, Result{Tag: "UPDATE 3"}, "command tag"},
		{"insert tag", unordered, Result{Tag: "INSERT 0 2"}, Result{Tag: "INSERT 0 2"}, ""},
		{"SQLSTATE", unordered, Result{Code: "23505"}, Result{Code: "23514"}, "error"},
		{"error on one side only", unordered, Result{Tag: "INSERT 0 1"}, Result{Code: "23505"}, "error"},
		{"same SQLSTATE, other message", unordered, Result{Code: "23505", Msg: "x"}, Result{Code: "23505", Msg: "y"}, ""},
		{"column name", unordered, Result{Cols: []Column{{Name: "sum", OID: 1700}}, Tag: "SELECT 0"}, Result{Cols: []Column{{Name: "avg", OID: 1700}}, Tag: "SELECT 0"}, "columns"},
		{"column type", unordered, Result{Cols: []Column{{Name: "avg", OID: 701}}, Tag: "SELECT 0"}, Result{Cols: []Column{{Name: "avg", OID: 1700}}, Tag: "SELECT 0"}, "columns"},
		{"numeric scale", totalOrder, Result{Cols: cols, Rows: [][]string{{"1.5", "1"}}, Tag: "SELECT 1"}, Result{Cols: cols, Rows: [][]string{{"1.50", "1"}}, Tag: "SELECT 1"}, "row 1 differs"},
		{"script part", &Step{Kind: KindScript}, Result{Parts: []Result{res("SELECT 1", "a|1"), res("SELECT 1", "x|1")}}, Result{Parts: []Result{res("SELECT 1", "a|1"), res("SELECT 1", "y|1")}}, "script result 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Compare(tc.st, tc.got, tc.want)
			switch {
			case tc.diff == "" && err != nil:
				t.Fatalf("want agreement, got %v", err)
			case tc.diff != "" && err == nil:
				t.Fatalf("want a difference (%s), got none", tc.diff)
			case tc.diff != "" && !strings.Contains(err.Error(), tc.diff):
				t.Fatalf("want a difference mentioning %q, got %v", tc.diff, err)
			}
		})
	}
}

// TestWorkloadDeterministic: a seed always gives the same statements.
func TestWorkloadDeterministic(t *testing.T) {
	a, b := NewWorkload(42), NewWorkload(42)
	sa, sb := a.Seed(), b.Seed()
	if len(sa) != len(sb) || len(sa) < 500 {
		t.Fatalf("seeds of %d and %d steps", len(sa), len(sb))
	}
	cats := map[string]int{}
	for i := range 3000 {
		x, y := a.Next(), b.Next()
		if x.String() != y.String() {
			t.Fatalf("step %d differs:\n%s\n%s", i, x.String(), y.String())
		}
		cats[x.Category]++
	}
	for _, c := range []string{"select.point", "select.order-limit", "select.group-by", "insert.multi-row", "update.scatter",
		"reference.write", "copy.from.sharded.binary", "copy.from.sharded.csv", "copy.to", "txn"} {
		if cats[c] == 0 {
			t.Errorf("no %s in 3000 steps: %v", c, cats)
		}
	}
	first := func(seed uint64) string {
		w := NewWorkload(seed)
		var b []string
		for range 5 {
			st := w.Next()
			b = append(b, st.String())
		}
		return strings.Join(b, "\n")
	}
	if first(42) == first(43) {
		t.Errorf("seeds 42 and 43 start alike")
	}
}
