package copysplit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file compares the splitter with the server on the same inputs:
// the hand-written cases of splitter_test.go and random ones built from
// the bytes that matter to COPY. Both must accept the same data with the
// same keys, or refuse it with the same message, but for the errors
// about fields after the key and about encodings, which the splitter
// leaves to the shards.

// diffTable has the three text columns the cases use; ord keeps the
// rows in the order COPY read them.
const diffTable = `CREATE TEMP TABLE abc (a text, b text, c text, ord serial)`

// serverOnly are server errors the splitter does not look for.
func serverOnly(msg string, key Key) bool {
	if strings.HasPrefix(msg, "invalid byte sequence") || msg == "extra data after last expected column" {
		return true
	}
	if key.Columns == nil && strings.HasPrefix(msg, "row field count") {
		return true
	}
	for _, c := range abc[key.Index+1:] {
		if msg == fmt.Sprintf(`missing data for column "%s"`, c) {
			return true
		}
	}
	return false
}

// checkCasesOnServer runs the hand-written cases on the server.
func checkCasesOnServer(t *testing.T, conn *pgx.Conn, version int) {
	cases := append(append(textCases(), csvCases()...), binaryCases()...)
	for _, tc := range cases {
		if tc.opts.HasDefault && version < 160000 {
			continue
		}
		key := tc.key
		if key.Name == "" {
			key = keyB
		}
		compareWithServer(t, conn, tc.name, tc.opts, key, []byte(tc.input))
	}
}

// checkRandomOnServer runs random inputs on the server.
func checkRandomOnServer(t *testing.T, conn *pgx.Conn, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	esc := DefaultOptions(CSV)
	esc.Escape = '\\'
	header := DefaultOptions(Text)
	header.Header = true
	all := []Options{DefaultOptions(Text), DefaultOptions(CSV), esc, header}
	var stats [3]int
	defer func() {
		t.Logf("rows agree %d times, errors %d times, server-only errors %d times", stats[0], stats[1], stats[2])
	}()
	for i := range 3000 {
		opts := all[i%len(all)]
		key := Key{Name: abc[i%2], Index: i % 2, Columns: abc}
		input := randInput(r, opts)
		stats[compareWithServer(t, conn, fmt.Sprintf("random %d", i), opts, key, input)]++
		if t.Failed() {
			return
		}
	}
}

// randInput builds a few lines of three fields from pieces that are
// special somewhere in COPY, mostly with one line ending, sometimes not.
func randInput(r *rand.Rand, opts Options) []byte {
	pieces := []string{"a", "é", "N", `\N`, "0", "x4", ".", `\`, `\.`, `"`, `""`, "\r", "\n", "\r\n", string(opts.Delimiter)}
	endings := []string{"\n", "\r\n", "\r"}
	eol := endings[r.IntN(3)]
	var b bytes.Buffer
	lines := r.IntN(5)
	for l := range lines {
		if r.IntN(12) == 0 {
			b.WriteString(`\.`)
		} else {
			for f := range 3 {
				if f > 0 {
					b.WriteByte(opts.Delimiter)
				}
				quoted := opts.Format == CSV && r.IntN(3) == 0
				if quoted {
					b.WriteByte('"')
				}
				for range r.IntN(4) {
					b.WriteString(pieces[r.IntN(len(pieces))])
				}
				if quoted && r.IntN(8) != 0 {
					b.WriteByte('"')
				}
			}
		}
		switch {
		case l == lines-1 && r.IntN(3) == 0:
			// No line ending at the end.
		case r.IntN(15) == 0:
			b.WriteString(endings[r.IntN(3)])
		default:
			b.WriteString(eol)
		}
	}
	return b.Bytes()
}

// compareWithServer splits input and has the server read it, and fails t
// if they disagree. It returns 0 when both read rows, 1 when both fail,
// 2 when only the server checks what fails.
func compareWithServer(t *testing.T, conn *pgx.Conn, name string, opts Options, key Key, input []byte) int {
	t.Helper()
	ours := runAll(t, opts, key, input) // also in pieces
	keys, serr := serverRead(conn, opts, key, input)
	var pgErr *pgconn.PgError
	if serr != nil && !errors.As(serr, &pgErr) {
		t.Fatalf("%s: %v", name, serr)
	}
	switch {
	case serr == nil && ours.Err != nil:
		if sqlState(ours.Err) == codeUnsupported {
			return 2 // a DEFAULT key, which only the proxy refuses
		}
		t.Errorf("%s: %q: server reads %d rows, we fail: %v", name, input, len(keys), ours.Err)
	case serr != nil && serverOnly(pgErr.Message, key):
		return 2 // the server checks more than we do
	case serr != nil && ours.Err == nil:
		t.Errorf("%s: %q: server fails (%s), we read %v", name, input, pgErr.Message, ours.Rows)
	case serr != nil:
		if pgErr.Message != ours.Err.Error() || pgErr.Code != sqlState(ours.Err) {
			t.Errorf("%s: %q: server fails with %s %q, we with %s %q",
				name, input, pgErr.Code, pgErr.Message, sqlState(ours.Err), ours.Err)
		}
	case len(keys) != len(ours.Rows):
		t.Errorf("%s: %q: server reads %d rows, we %d: %v", name, input, len(keys), len(ours.Rows), ours.Rows)
	default:
		for i, k := range keys {
			r := ours.Rows[i]
			if (k == nil) != r.Null || k != nil && *k != r.Key {
				t.Errorf("%s: %q: row %d: server key %v, ours %v", name, input, i, deref(k), r)
			}
		}
	}
	if serr != nil {
		return 1
	}
	return 0
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// serverRead copies input into the abc table in a transaction it rolls
// back, and returns the key column of the rows the server read.
func serverRead(conn *pgx.Conn, opts Options, key Key, input []byte) ([]*string, error) {
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	sql := fmt.Sprintf("COPY abc (a, b, c) FROM STDIN (%s)", optionsSQL(opts))
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(input), sql); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM abc ORDER BY ord", key.Name))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[*string])
}

// optionsSQL writes opts as COPY options.
func optionsSQL(o Options) string {
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	parts := []string{"FORMAT " + o.Format.String()}
	if o.Format == Binary {
		return parts[0]
	}
	parts = append(parts, "DELIMITER "+lit(string(o.Delimiter)), "NULL "+lit(o.Null))
	if o.Header {
		parts = append(parts, "HEADER")
	}
	if o.HasDefault {
		parts = append(parts, "DEFAULT "+lit(o.Default))
	}
	if o.Format == CSV {
		parts = append(parts, "QUOTE "+lit(string(o.Quote)), "ESCAPE "+lit(string(o.Escape)))
		if len(o.ForceNotNull) > 0 {
			parts = append(parts, "FORCE_NOT_NULL ("+strings.Join(o.ForceNotNull, ", ")+")")
		}
		if len(o.ForceNull) > 0 {
			parts = append(parts, "FORCE_NULL ("+strings.Join(o.ForceNull, ", ")+")")
		}
	}
	return strings.Join(parts, ", ")
}
