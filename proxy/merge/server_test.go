package merge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/test/cluster"
)

// partitions is the number of emulated shards: disjoint slices of one
// table (id % partitions = i), each queried on its own connection.
const partitions = 4

// TestMatchesServer runs each case's query on a whole table of random
// data and, in its shard-side form, on disjoint partitions of it; Run's
// merge of the partitions must equal the whole-table result byte for
// byte, RowDescription included, in text, binary and mixed formats.
func TestMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	c := cluster.ForTest(t, cluster.Options{Shards: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A zone with half-hour and historic seconds offsets exercises the
	// timestamptz text reader.
	dsn := c.Shards[0].Primary.DSN("postgres", "", "postgres") + " timezone=Asia/Kolkata"
	conns := make([]*pgconn.PgConn, partitions+1)
	for i := range conns {
		conn, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		conns[i] = conn
	}
	if err := conns[0].Exec(ctx, testTableSQL(20240613, 4000)).Close(); err != nil {
		t.Fatalf("create test data: %v", err)
	}
	for _, sc := range serverCases() {
		for _, fm := range []string{"text", "binary", "mixed"} {
			t.Run(sc.name+"/"+fm, func(t *testing.T) {
				if err := checkCase(ctx, conns, sc, fm, sc.spec); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	// The comparison must be able to fail: merging sorted partitions by
	// concatenation, dropping a group's merge, or cutting at the wrong
	// offset gives a different answer, and the check has to notice.
	t.Run("wrong merges are detected", func(t *testing.T) {
		checked := 0
		for _, sc := range serverCases() {
			wrong, ok := sc.wrong()
			if !ok {
				continue
			}
			for _, fm := range []string{"text", "binary"} {
				checked++
				if err := checkCase(ctx, conns, sc, fm, wrong); err == nil {
					t.Errorf("%s/%s: a wrong merge matched the server", sc.name, fm)
				}
			}
		}
		if checked < 50 {
			t.Fatalf("only %d wrong merges tried", checked)
		}
	})
}

// serverCase is a query on table t in two forms, the client's and the
// shard-side one, with {W} where the partition predicate goes.
type serverCase struct {
	name      string
	whole     string
	shard     string // "" means the same as whole
	spec      Spec
	unordered bool // no ORDER BY: compare as multisets
}

// wrong returns a deliberately broken spec for the case, if one is sure
// to give a different answer on the test data.
func (sc serverCase) wrong() (Spec, bool) {
	s := sc.spec
	switch {
	case s.Aggregate && len(s.Order) > 0 && len(s.HiddenOutputs) == 0 && s.Having == nil:
		s.Aggregate, s.Outputs = false, nil // concatenate the partial groups
		return s, true
	case !s.Aggregate && len(s.Order) > 0 && s.Limit < 0 && !s.Distinct:
		s.Order = nil // concatenate instead of a k-way merge
		return s, true
	case !s.Aggregate && s.Offset > 0:
		s.Offset-- // off by one
		return s, true
	}
	return s, false
}

// checkCase runs one case in one format mode and reports any difference.
func checkCase(ctx context.Context, conns []*pgconn.PgConn, sc serverCase, fm string, spec Spec) error {
	shardSQL := sc.shard
	if shardSQL == "" {
		shardSQL = sc.whole
	}
	wholeFormats, shardFormats, err := formatCodes(fm, &spec, sc, conns[0])
	if err != nil {
		return err
	}
	wholeSQL := strings.ReplaceAll(sc.whole, "{W}", "true")
	rr := conns[0].ExecParams(ctx, wholeSQL, nil, nil, nil, wholeFormats)
	wantFields := protoFields(rr.FieldDescriptions())
	want, err := readAll(&readerSource{rr})
	if err != nil {
		return fmt.Errorf("whole query %s: %w", wholeSQL, err)
	}
	srcs := make([]Source, partitions)
	readers := make([]*pgconn.ResultReader, partitions)
	for i := range srcs {
		q := strings.ReplaceAll(shardSQL, "{W}", fmt.Sprintf("id %% %d = %d", partitions, i))
		readers[i] = conns[i+1].ExecParams(ctx, q, nil, nil, nil, shardFormats)
		srcs[i] = &readerSource{readers[i]}
	}
	defer func() {
		for _, r := range readers {
			r.Close() // drain what an early stop left unread
		}
	}()
	shardFields := protoFields(readers[0].FieldDescriptions())
	gotFields, err := Fields(&spec, shardFields)
	if err != nil {
		return err
	}
	var got [][][]byte
	err = Run(&spec, shardFields, srcs, func(row [][]byte) error {
		got = append(got, copyValues(row))
		return nil
	})
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if !slices.EqualFunc(gotFields, wantFields, fieldEqual) {
		return fmt.Errorf("fields differ:\n got  %s\n want %s", describeFields(gotFields), describeFields(wantFields))
	}
	if sc.unordered {
		sortRowsBytes(got)
		sortRowsBytes(want)
	}
	return diffRows(got, want)
}

// formatCodes picks the result formats of the whole and shard queries:
// all text, all binary, or alternating per client column; a shard column
// then takes the format of the client column it feeds.
func formatCodes(fm string, spec *Spec, sc serverCase, conn *pgconn.PgConn) (whole, shard []int16, err error) {
	switch fm {
	case "text":
		return []int16{textFormat}, []int16{textFormat}, nil
	case "binary":
		return []int16{binaryFormat}, []int16{binaryFormat}, nil
	}
	// Count the shard columns with a described statement.
	shardSQL := sc.shard
	if shardSQL == "" {
		shardSQL = sc.whole
	}
	sd, err := conn.Prepare(context.Background(), "", strings.ReplaceAll(shardSQL, "{W}", "true"), nil)
	if err != nil {
		return nil, nil, err
	}
	n := len(sd.Fields)
	visible := n - spec.Hidden
	if spec.Aggregate {
		visible = len(spec.Outputs)
	}
	whole = make([]int16, visible)
	shard = make([]int16, n)
	for i := range whole {
		whole[i] = int16(i % 2)
	}
	if !spec.Aggregate {
		copy(shard, whole)
		return whole, shard, nil
	}
	for i, o := range spec.Outputs {
		col, _ := resolve(o.Column, n, "")
		shard[col] = whole[i]
		if o.Kind == Avg {
			cnt, _ := resolve(o.Count, n, "")
			shard[cnt] = whole[i]
		}
	}
	return whole, shard, nil
}

// readerSource adapts a pgconn result to Source: the row values are
// pgconn's own views, valid until the next row, as Source allows.
type readerSource struct{ rr *pgconn.ResultReader }

func (s *readerSource) Next() ([][]byte, error) {
	if s.rr.NextRow() {
		return s.rr.Values(), nil
	}
	if _, err := s.rr.Close(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

func readAll(src Source) ([][][]byte, error) {
	var rows [][][]byte
	for {
		row, err := src.Next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, copyValues(row))
	}
}

func copyValues(row [][]byte) [][]byte {
	c := make([][]byte, len(row))
	for i, v := range row {
		if v != nil {
			c[i] = append([]byte{}, v...)
		}
	}
	return c
}

func protoFields(fs []pgconn.FieldDescription) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(fs))
	for i, f := range fs {
		out[i] = pgproto3.FieldDescription{Name: []byte(f.Name), TableOID: f.TableOID,
			TableAttributeNumber: f.TableAttributeNumber, DataTypeOID: f.DataTypeOID,
			DataTypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format}
	}
	return out
}

func fieldEqual(a, b pgproto3.FieldDescription) bool {
	return bytes.Equal(a.Name, b.Name) && a.TableOID == b.TableOID && a.TableAttributeNumber == b.TableAttributeNumber &&
		a.DataTypeOID == b.DataTypeOID && a.DataTypeSize == b.DataTypeSize && a.TypeModifier == b.TypeModifier && a.Format == b.Format
}

func describeFields(fs []pgproto3.FieldDescription) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "[%s oid=%d size=%d mod=%d fmt=%d table=%d/%d] ", f.Name, f.DataTypeOID, f.DataTypeSize, f.TypeModifier, f.Format, f.TableOID, f.TableAttributeNumber)
	}
	return b.String()
}

// sortRowsBytes orders rows by their encoded bytes, for multiset checks.
func sortRowsBytes(rows [][][]byte) {
	slices.SortFunc(rows, func(a, b [][]byte) int {
		for i := range a {
			if c := compareValue(a[i], b[i]); c != 0 {
				return c
			}
		}
		return 0
	})
}

func compareValue(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return bytes.Compare(a, b)
}

func diffRows(got, want [][][]byte) error {
	for i := 0; i < len(got) && i < len(want); i++ {
		if !slices.EqualFunc(got[i], want[i], func(a, b []byte) bool { return compareValue(a, b) == 0 && (a == nil) == (b == nil) }) {
			return fmt.Errorf("row %d differs:\n got  %q\n want %q", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	return nil
}
