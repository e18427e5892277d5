package differential

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Kind is what a Step does on a connection.
type Kind uint8

// Kinds.
const (
	// KindQuery runs SQL with pgx's Query: rows, tag and error.
	KindQuery Kind = iota
	// KindExec runs SQL with pgx's Exec: tag and error.
	KindExec
	// KindScript sends SQL, several statements, as one simple-protocol
	// Query message and reads every result.
	KindScript
	// KindCopyFrom runs COPY ... FROM STDIN (SQL) with Data (text or csv).
	KindCopyFrom
	// KindCopyFromBinary runs pgx's CopyFrom (binary COPY) of Rows into
	// Table's Columns.
	KindCopyFromBinary
	// KindCopyTo runs COPY ... TO STDOUT (SQL); the result's rows are the
	// output's lines.
	KindCopyTo
	// KindTxn runs Begin, each of Body, then COMMIT or ROLLBACK.
	KindTxn
)

// Step is one unit of the workload.
type Step struct {
	// Category names the construct, such as "select.point" or
	// "insert.multi-row"; a Runner tallies by it.
	Category string
	Kind     Kind
	SQL      string
	Args     []any
	// Mode is how pgx sends SQL (KindQuery, KindExec).
	Mode pgx.QueryExecMode
	// Formats, when set, asks for every result column in this format
	// (0 text, 1 binary) in the extended protocol; nil leaves the choice
	// to pgx (binary for the types it knows).
	Formats *int16
	// Order says which differences of row order are allowed.
	Order Order
	// Data is the input of KindCopyFrom.
	Data string
	// Table, Columns and Rows are the input of KindCopyFromBinary.
	Table   string
	Columns []string
	Rows    [][]any
	// Begin, Body and Commit make up a KindTxn.
	Begin  string
	Body   []Step
	Commit bool
	// Keys are the sharding keys the statement reads or writes by; with
	// AllShards false and no Keys the statement names none (reference
	// and unsharded tables, or no table).
	Keys []Key
	// AllShards: the statement has no usable key and runs everywhere.
	AllShards bool
}

// Key is a sharding key value of a distribution, in text form.
type Key struct {
	Dist  string
	Value string
}

// OnDefault stands for the rows of unsharded tables, on the default shard.
var OnDefault = Key{Dist: "(default shard)"}

// Order is how a result's rows may be ordered.
type Order struct {
	// Total: ORDER BY fixes the order of every row; rows compare in order.
	Total bool
	// Keys, when not Total, are the result columns (0-based) the rows are
	// sorted by; rows with equal keys may come in any order. Neither Total
	// nor Keys: no order at all, rows compare as multisets.
	Keys []int
	// Cut: LIMIT or OFFSET may cut the first or last group of equal keys
	// anywhere, so only those groups' keys compare.
	Cut bool
}

// Statements counts the SQL statements a step sends (a transaction's
// BEGIN and COMMIT included).
func (st *Step) Statements() int {
	switch st.Kind {
	case KindTxn:
		n := 2
		for i := range st.Body {
			n += st.Body[i].Statements()
		}
		return n
	case KindScript:
		return strings.Count(st.SQL, ";") + 1
	}
	return 1
}

// String describes the step for a report: how it is sent and what.
func (st *Step) String() string {
	var b strings.Builder
	switch st.Kind {
	case KindTxn:
		fmt.Fprintf(&b, "%s;\n", st.Begin)
		for i := range st.Body {
			fmt.Fprintf(&b, "  %s\n", st.Body[i].String())
		}
		if st.Commit {
			b.WriteString("COMMIT")
		} else {
			b.WriteString("ROLLBACK")
		}
		return b.String()
	case KindCopyFrom:
		fmt.Fprintf(&b, "%s  <<%q", st.SQL, st.Data)
		return b.String()
	case KindCopyFromBinary:
		fmt.Fprintf(&b, "pgx CopyFrom %s (%s) rows %v", st.Table, strings.Join(st.Columns, ", "), st.Rows)
		return b.String()
	case KindCopyTo, KindScript:
		return st.SQL
	}
	b.WriteString(st.SQL)
	if len(st.Args) > 0 {
		fmt.Fprintf(&b, "  args %s", formatArgs(st.Args))
	}
	verb := "Query"
	if st.Kind == KindExec {
		verb = "Exec"
	}
	fmt.Fprintf(&b, "  [%s %s", verb, modeName(st.Mode))
	if st.Formats != nil {
		fmt.Fprintf(&b, ", results in format %d", *st.Formats)
	}
	b.WriteString("]")
	return b.String()
}

func formatArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			parts[i] = fmt.Sprintf("$%d=%q", i+1, v)
		case nil:
			parts[i] = fmt.Sprintf("$%d=NULL", i+1)
		default:
			parts[i] = fmt.Sprintf("$%d=%v (%T)", i+1, v, v)
		}
	}
	return strings.Join(parts, " ")
}

func modeName(m pgx.QueryExecMode) string {
	switch m {
	case pgx.QueryExecModeSimpleProtocol:
		return "simple protocol"
	case pgx.QueryExecModeExec:
		return "extended, exec"
	case pgx.QueryExecModeCacheStatement:
		return "extended, cached statement"
	case pgx.QueryExecModeCacheDescribe:
		return "extended, cached describe"
	case pgx.QueryExecModeDescribeExec:
		return "extended, describe+exec"
	}
	return fmt.Sprintf("mode %d", m)
}
