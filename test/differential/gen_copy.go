package differential

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// COPY FROM STDIN in text, csv and binary, into sharded, unsharded and
// reference tables, and COPY TO STDOUT.
var copyTemplates = []template{
	{30, (*Workload).copyFrom},
	{12, (*Workload).copyTo},
}

// copyRow is one row to COPY: values of type int64, string, or nil.
type copyRow []any

func (w *Workload) copyFrom() Step {
	var table, target string
	var cols []string
	var rows []copyRow
	var keys []Key
	n := 2 + w.r.IntN(8)
	switch w.r.IntN(6) {
	case 0, 1:
		table, target, cols = "users", "sharded", []string{"id", "name", "score", "country", "created"}
		for range n {
			id := w.freshUser()
			if w.r.IntN(25) == 0 {
				id = w.user() // perhaps a unique violation: the whole COPY fails
			}
			rows, keys = append(rows, copyRow{id, w.name(id), w.score(), w.country(), w.date()}), append(keys, userKey(id))
		}
	case 2:
		table, target, cols = "orders", "sharded", []string{"user_id", "id", "amount", "status"}
		for range n {
			id := w.user()
			w.nextCopyOrder++
			rows, keys = append(rows, copyRow{id, 100 + w.nextCopyOrder, w.amount(), pick(w.r, statuses)}), append(keys, userKey(id))
		}
	case 3:
		table, target, cols = "events", "sharded", []string{"id", "kind", "payload"}
		for range n {
			id := w.newEvent()
			if w.r.IntN(2) == 0 {
				w.nextCopyEvent++
				id = 3000 + w.nextCopyEvent
			}
			rows, keys = append(rows, copyRow{id, pick(w.r, kinds), w.payload()}), append(keys, eventKey(id))
		}
	case 4:
		table, target, cols = "tenants", "sharded", []string{"id", "plan", "seats"}
		seen := map[string]bool{}
		for range n {
			t := w.newTenant()
			if !seen[t] {
				seen[t] = true
				rows, keys = append(rows, copyRow{t, pick(w.r, plans), int64(w.r.IntN(60))}), append(keys, tenantKey(t))
			}
		}
	default:
		if w.r.IntN(2) == 0 {
			table, target, cols = "audit", "unsharded", []string{"id", "note"}
			for range n {
				rows, keys = append(rows, copyRow{w.nextAudit, fmt.Sprintf("copied %d", w.r.IntN(100))}), append(keys, OnDefault)
				w.nextAudit++
			}
		} else {
			table, target, cols = "countries", "reference", []string{"code", "name"}
			for range min(n, 3) {
				rows = append(rows, copyRow{fmt.Sprintf("C%d", w.nextCountry), fmt.Sprintf("Copied, %d", w.nextCountry)})
				w.nextCountry++
			}
		}
	}
	var st Step
	switch w.r.IntN(3) {
	case 0:
		st = Step{Kind: KindCopyFrom, SQL: fmt.Sprintf("copy %s (%s) from stdin", table, strings.Join(cols, ", ")), Data: textCopy(rows)}
		st.Category = "copy.from." + target + ".text"
	case 1:
		header := w.r.IntN(2) == 0
		opts := "format csv"
		if header {
			opts += ", header"
		}
		st = Step{Kind: KindCopyFrom, SQL: fmt.Sprintf("copy %s (%s) from stdin with (%s)", table, strings.Join(cols, ", "), opts), Data: csvCopy(cols, rows, header)}
		st.Category = "copy.from." + target + ".csv"
	default:
		st = Step{Kind: KindCopyFromBinary, Table: table, Columns: cols, Rows: binaryRows(table, rows)}
		st.Category = "copy.from." + target + ".binary"
	}
	st.Keys = keys
	return st
}

func textCopy(rows []copyRow) string {
	var b strings.Builder
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			switch x := v.(type) {
			case nil:
				b.WriteString(`\N`)
			case int64:
				b.WriteString(strconv.FormatInt(x, 10))
			case string:
				r := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
				b.WriteString(r.Replace(x))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func csvCopy(cols []string, rows []copyRow, header bool) string {
	var b strings.Builder
	if header {
		b.WriteString(strings.Join(cols, ",") + "\n")
	}
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte(',')
			}
			switch x := v.(type) {
			case nil:
			case int64:
				b.WriteString(strconv.FormatInt(x, 10))
			case string:
				// An empty string must be quoted, or it reads as NULL.
				if x == "" || strings.ContainsAny(x, ",\"\n\r") || strings.TrimSpace(x) != x {
					x = `"` + strings.ReplaceAll(x, `"`, `""`) + `"`
				}
				b.WriteString(x)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// binaryRows converts rows to the Go values pgx's binary COPY encodes for
// the table's column types.
func binaryRows(table string, rows []copyRow) [][]any {
	out := make([][]any, len(rows))
	for i, row := range rows {
		vals := make([]any, len(row))
		copy(vals, row)
		switch table {
		case "users":
			if s, ok := row[2].(int64); ok {
				vals[2] = int32(s)
			}
			d, _ := time.Parse("2006-01-02", row[4].(string))
			vals[4] = d
		case "orders":
			var n pgtype.Numeric
			if err := n.Scan(row[2].(string)); err != nil {
				panic(err)
			}
			vals[2] = n
		case "tenants":
			vals[2] = int32(row[2].(int64))
		}
		out[i] = vals
	}
	return out
}

func (w *Workload) copyTo() Step {
	sql := pick(w.r, []string{
		"copy users to stdout",
		"copy orders (user_id, id, amount) to stdout with (format csv)",
		"copy events to stdout with (format csv, header)",
		"copy tenants to stdout (delimiter '|')",
		"copy countries to stdout",
		"copy audit to stdout",
		"copy users (id, name, country) to stdout with (format text, null 'NULL')",
	})
	st := Step{Category: "copy.to", Kind: KindCopyTo, SQL: sql}
	if !strings.Contains(sql, "countries") && !strings.Contains(sql, "audit") {
		st.AllShards = true
	}
	return st
}
