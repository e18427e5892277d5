package differential

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Null stands for SQL NULL among a Result's values.
const Null = "\x00NULL"

// Result is what one endpoint answered to a Step (a transaction's parts
// are run and compared one by one, never as one Result).
type Result struct {
	// Cols describe the result columns; nil for a statement without rows.
	Cols []Column
	// Rows hold each value as the bytes the server sent (text or binary
	// per its column's format), or Null.
	Rows [][]string
	// Tag is the command tag ("SELECT 3", "INSERT 0 1", "COPY 5").
	Tag string
	// Code is the SQLSTATE of an error; "" when the statement succeeded.
	// An error that did not come from the server has Code "client".
	Code string
	// Msg is the error's message (and hint), for reports.
	Msg string
	// Parts are the results of a KindScript, one per statement that ran.
	Parts []Result
}

// Column is a result column's description, as far as it must agree
// between servers (table OIDs and attribute numbers need not).
type Column struct {
	Name   string
	OID    uint32
	Format int16
}

// Failed reports an error.
func (r *Result) Failed() bool { return r.Code != "" }

// binaryOIDs are the result types the workload produces; a Step's
// Formats applies to all of them.
var binaryOIDs = []uint32{16, 20, 21, 23, 25, 700, 701, 1043, 1082, 1114, 1184, 1700}

// Run executes st (any kind but KindTxn) on conn.
func Run(ctx context.Context, conn *pgx.Conn, st *Step) Result {
	switch st.Kind {
	case KindQuery:
		return runQuery(ctx, conn, st)
	case KindExec:
		args := append([]any{st.Mode}, st.Args...)
		tag, err := conn.Exec(ctx, st.SQL, args...)
		return finish(Result{Tag: tag.String()}, err)
	case KindScript:
		return runScript(ctx, conn, st)
	case KindCopyFrom:
		tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(st.Data), st.SQL)
		return finish(Result{Tag: tag.String()}, err)
	case KindCopyFromBinary:
		n, err := conn.CopyFrom(ctx, pgx.Identifier{st.Table}, st.Columns, pgx.CopyFromRows(st.Rows))
		return finish(Result{Tag: fmt.Sprintf("COPY %d", n)}, err)
	case KindCopyTo:
		var out bytes.Buffer
		tag, err := conn.PgConn().CopyTo(ctx, &out, st.SQL)
		r := Result{Tag: tag.String()}
		for _, line := range strings.SplitAfter(out.String(), "\n") {
			if line != "" {
				r.Rows = append(r.Rows, []string{line})
			}
		}
		return finish(r, err)
	}
	return Result{Code: "client", Msg: fmt.Sprintf("step kind %d cannot run alone", st.Kind)}
}

func runQuery(ctx context.Context, conn *pgx.Conn, st *Step) Result {
	args := []any{st.Mode}
	if st.Formats != nil {
		byOID := pgx.QueryResultFormatsByOID{}
		for _, oid := range binaryOIDs {
			byOID[oid] = *st.Formats
		}
		args = append(args, byOID)
	}
	rows, err := conn.Query(ctx, st.SQL, append(args, st.Args...)...)
	if err != nil {
		return finish(Result{}, err)
	}
	defer rows.Close()
	var r Result
	for rows.Next() {
		if r.Cols == nil {
			r.Cols = columns(rows.FieldDescriptions())
		}
		r.Rows = append(r.Rows, values(rows.RawValues()))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		// Rows sent before an error are not part of the answer.
		return finish(Result{}, err)
	}
	if r.Cols == nil {
		r.Cols = columns(rows.FieldDescriptions())
	}
	r.Tag = rows.CommandTag().String()
	return r
}

func runScript(ctx context.Context, conn *pgx.Conn, st *Step) Result {
	results, err := conn.PgConn().Exec(ctx, st.SQL).ReadAll()
	var r Result
	for _, res := range results {
		part := Result{Tag: res.CommandTag.String(), Cols: columns(res.FieldDescriptions)}
		for _, row := range res.Rows {
			part.Rows = append(part.Rows, values(row))
		}
		if res.Err != nil {
			part = finish(Result{}, res.Err)
		}
		r.Parts = append(r.Parts, part)
	}
	return finish(r, err)
}

func columns(fds []pgconn.FieldDescription) []Column {
	if len(fds) == 0 {
		return nil
	}
	cols := make([]Column, len(fds))
	for i, fd := range fds {
		cols[i] = Column{Name: fd.Name, OID: fd.DataTypeOID, Format: fd.Format}
	}
	return cols
}

func values(raw [][]byte) []string {
	row := make([]string, len(raw))
	for i, v := range raw {
		if v == nil {
			row[i] = Null
		} else {
			row[i] = string(v)
		}
	}
	return row
}

// finish records err, if any, in r.
func finish(r Result, err error) Result {
	if err == nil {
		return r
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r.Code, r.Msg = pe.Code, pe.Message
		if pe.Hint != "" {
			r.Msg += " (hint: " + pe.Hint + ")"
		}
	} else {
		r.Code, r.Msg = "client", err.Error()
	}
	r.Cols, r.Rows, r.Tag = nil, nil, ""
	return r
}
