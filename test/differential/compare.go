package differential

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Compare reports how got (the proxy's answer) differs from want (the
// reference server's) for step st, or nil when they agree: the same
// SQLSTATE, or the same command tag, column descriptions and rows, in the
// order st.Order fixes.
func Compare(st *Step, got, want Result) error {
	if got.Code != want.Code {
		return fmt.Errorf("error: got %s, want %s", describeErr(got), describeErr(want))
	}
	if got.Code != "" && len(got.Parts) == 0 {
		return nil
	}
	if st.Kind == KindScript {
		if len(got.Parts) != len(want.Parts) {
			return fmt.Errorf("script: got %d results, want %d", len(got.Parts), len(want.Parts))
		}
		for i := range got.Parts {
			if err := compareOne(Order{}, got.Parts[i], want.Parts[i]); err != nil {
				return fmt.Errorf("script result %d: %w", i+1, err)
			}
		}
		return nil
	}
	return compareOne(st.Order, got, want)
}

func compareOne(o Order, got, want Result) error {
	if got.Code != want.Code {
		return fmt.Errorf("error: got %s, want %s", describeErr(got), describeErr(want))
	}
	if got.Code != "" {
		return nil
	}
	if got.Tag != want.Tag {
		return fmt.Errorf("command tag: got %q, want %q", got.Tag, want.Tag)
	}
	if !slices.Equal(got.Cols, want.Cols) {
		return fmt.Errorf("columns: got %v, want %v", got.Cols, want.Cols)
	}
	if len(got.Rows) != len(want.Rows) {
		if !o.Total && len(o.Keys) == 0 {
			return fmt.Errorf("got %d rows, want %d\n%s", len(got.Rows), len(want.Rows), multisetDiff(got, want))
		}
		return fmt.Errorf("got %d rows, want %d\n%s", len(got.Rows), len(want.Rows), sideBySide(got, want))
	}
	switch {
	case o.Total:
		for i := range got.Rows {
			if !slices.Equal(got.Rows[i], want.Rows[i]) {
				return fmt.Errorf("row %d differs\n%s", i+1, sideBySide(got, want))
			}
		}
	case len(o.Keys) > 0:
		return compareGroups(o, got, want)
	default:
		g, w := sortedRows(got.Rows), sortedRows(want.Rows)
		for i := range g {
			if !slices.Equal(g[i], w[i]) {
				return fmt.Errorf("rows differ (compared as multisets)\n%s", multisetDiff(got, want))
			}
		}
	}
	return nil
}

// compareGroups compares rows sorted by o.Keys: the sequence of keys must
// agree row by row, and within each run of equal keys the rows as
// multisets, except in the first and last run when LIMIT or OFFSET may
// have cut them.
func compareGroups(o Order, got, want Result) error {
	key := func(row []string) string {
		parts := make([]string, len(o.Keys))
		for i, k := range o.Keys {
			parts[i] = row[k]
		}
		return strings.Join(parts, "\x01")
	}
	for i := range got.Rows {
		if key(got.Rows[i]) != key(want.Rows[i]) {
			return fmt.Errorf("row %d: sort keys (columns %v) differ\n%s", i+1, o.Keys, sideBySide(got, want))
		}
	}
	for start := 0; start < len(got.Rows); {
		end := start + 1
		for end < len(got.Rows) && key(got.Rows[end]) == key(got.Rows[start]) {
			end++
		}
		cut := o.Cut && (start == 0 || end == len(got.Rows))
		if !cut {
			g, w := sortedRows(got.Rows[start:end]), sortedRows(want.Rows[start:end])
			for i := range g {
				if !slices.Equal(g[i], w[i]) {
					return fmt.Errorf("rows %d to %d (equal sort keys) differ\n%s", start+1, end, sideBySide(got, want))
				}
			}
		}
		start = end
	}
	return nil
}

func sortedRows(rows [][]string) [][]string {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []string) int { return slices.Compare(a, b) })
	return out
}

func describeErr(r Result) string {
	if r.Code == "" {
		if r.Tag != "" {
			return fmt.Sprintf("success (%s)", r.Tag)
		}
		return "success"
	}
	return fmt.Sprintf("%s %q", r.Code, r.Msg)
}

// multisetDiff prints the rows only one side has, counting duplicates.
func multisetDiff(got, want Result) string {
	g, w := sortedRows(got.Rows), sortedRows(want.Rows)
	var b strings.Builder
	shown := 0
	line := func(what string, cols []Column, row []string) {
		if shown < maxShown {
			fmt.Fprintf(&b, "  %s %s\n", what, showRow(cols, row))
		}
		shown++
	}
	i, j := 0, 0
	for i < len(g) || j < len(w) {
		c := 0
		switch {
		case i == len(g):
			c = 1
		case j == len(w):
			c = -1
		default:
			c = slices.Compare(g[i], w[j])
		}
		switch {
		case c == 0:
			i, j = i+1, j+1
		case c < 0:
			line("only the proxy has", got.Cols, g[i])
			i++
		default:
			line("only the reference has", want.Cols, w[j])
			j++
		}
	}
	if shown > maxShown {
		fmt.Fprintf(&b, "  (%d differing rows in all)\n", shown)
	}
	return b.String()
}

// maxShown bounds the rows a report prints of each side.
const maxShown = 12

// sideBySide prints both sides' rows, marking those that differ.
func sideBySide(got, want Result) string {
	var b strings.Builder
	n := max(len(got.Rows), len(want.Rows))
	shown := 0
	for i := 0; i < n && shown < maxShown; i++ {
		var g, w []string
		if i < len(got.Rows) {
			g = got.Rows[i]
		}
		if i < len(want.Rows) {
			w = want.Rows[i]
		}
		mark := " "
		if !slices.Equal(g, w) {
			mark = "≠"
		} else if n > maxShown {
			continue
		}
		fmt.Fprintf(&b, "  %s %3d got %-40s want %s\n", mark, i+1, showRow(got.Cols, g), showRow(want.Cols, w))
		shown++
	}
	if n > shown {
		fmt.Fprintf(&b, "  (%d rows in all)\n", n)
	}
	return b.String()
}

// showRow prints a row's values: text as is, binary in hex.
func showRow(cols []Column, row []string) string {
	if row == nil {
		return "-"
	}
	parts := make([]string, len(row))
	for i, v := range row {
		switch {
		case v == Null:
			parts[i] = "NULL"
		case i < len(cols) && cols[i].Format == 1, !utf8.ValidString(v):
			parts[i] = fmt.Sprintf("\\x%x", v)
		default:
			parts[i] = strings.TrimSuffix(v, "\n")
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
