package merge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// scribbleSource serves rows the way a wire reader does: each row is a
// view into one buffer that the next call overwrites (after filling it
// with garbage), so a merge that keeps a view instead of a copy fails.
type scribbleSource struct {
	rows  [][][]byte
	i     int
	reads int
	buf   []byte
	view  [][]byte
	err   error // returned after the rows instead of io.EOF, if set
}

func (s *scribbleSource) Next() ([][]byte, error) {
	for i := range s.buf {
		s.buf[i] = 0xA5
	}
	if s.i >= len(s.rows) {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	r := s.rows[s.i]
	s.i++
	s.reads++
	s.view, s.buf = copyRow(s.view, s.buf, r)
	return s.view, nil
}

func sources(rowsets ...[][][]byte) []Source {
	out := make([]Source, len(rowsets))
	for i, r := range rowsets {
		out[i] = &scribbleSource{rows: r}
	}
	return out
}

// fieldsOf builds shard fields of the given types, all in one format.
func fieldsOf(format int16, oids ...uint32) []pgproto3.FieldDescription {
	f := make([]pgproto3.FieldDescription, len(oids))
	for i, oid := range oids {
		f[i] = pgproto3.FieldDescription{Name: []byte(fmt.Sprintf("c%d", i)), DataTypeOID: oid, DataTypeSize: -1, TypeModifier: -1, Format: format}
	}
	return f
}

// wire encodes a value given in PostgreSQL's text form in format: the
// text itself, or pgtype's binary encoding of it (by hand where pgtype
// does not encode, such as infinite dates). "NULL" is SQL NULL.
func wire(t testing.TB, oid uint32, format int16, text string) []byte {
	t.Helper()
	if text == "NULL" {
		return nil
	}
	if format == textFormat {
		return []byte(text)
	}
	switch {
	case (oid == pgtype.DateOID) && (text == "infinity" || text == "-infinity"):
		v := int32(math.MaxInt32)
		if text[0] == '-' {
			v = math.MinInt32
		}
		return binary.BigEndian.AppendUint32(nil, uint32(v))
	case (oid == pgtype.TimestampOID || oid == pgtype.TimestamptzOID) && (text == "infinity" || text == "-infinity"):
		v := int64(math.MaxInt64)
		if text[0] == '-' {
			v = math.MinInt64
		}
		return binary.BigEndian.AppendUint64(nil, uint64(v))
	case oid == pgtype.QCharOID:
		var d datum
		if !decCharText(&d, []byte(text)) {
			t.Fatalf("bad char %q", text)
		}
		return []byte{byte(d.i)}
	case oid == pgtype.ByteaOID && !bytes.HasPrefix([]byte(text), []byte(`\x`)):
		var d datum
		if !decByteaText(&d, []byte(text)) {
			t.Fatalf("bad bytea %q", text)
		}
		return append([]byte{}, d.b...)
	}
	if text == "" {
		return []byte{}
	}
	m := pgtype.NewMap()
	typ, ok := m.TypeForOID(oid)
	if !ok {
		t.Fatalf("pgtype has no type %d", oid)
	}
	v, err := typ.Codec.DecodeValue(m, oid, pgtype.TextFormatCode, []byte(text))
	if err != nil {
		t.Fatalf("pgtype decode %d %q: %v", oid, text, err)
	}
	b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
	if err != nil {
		t.Fatalf("pgtype encode %d %q: %v", oid, text, err)
	}
	if b == nil {
		b = []byte{} // an empty value, not NULL
	}
	return b
}

// rowsOf builds rows of typed text values, encoded in format.
func rowsOf(t testing.TB, oids []uint32, format int16, rows ...[]string) [][][]byte {
	t.Helper()
	out := make([][][]byte, len(rows))
	for i, r := range rows {
		out[i] = make([][]byte, len(r))
		for j, v := range r {
			out[i][j] = wire(t, oids[j], format, v)
		}
	}
	return out
}

// collect runs the merge and returns the emitted rows (copied).
func collect(t testing.TB, spec *Spec, fields []pgproto3.FieldDescription, srcs []Source) ([][][]byte, error) {
	t.Helper()
	var out [][][]byte
	err := Run(spec, fields, srcs, func(row [][]byte) error {
		c := make([][]byte, len(row))
		for i, v := range row {
			if v != nil {
				c[i] = append([]byte{}, v...)
			}
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// textRows renders rows of text-format values for comparison in tests.
func textRows(rows [][][]byte) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			if v == nil {
				out[i][j] = "NULL"
			} else {
				out[i][j] = string(v)
			}
		}
	}
	return out
}

// textOf turns a result value of type oid in format back into the
// server's text form, so binary results can be checked against text.
func textOf(t testing.TB, oid uint32, format int16, v []byte) string {
	t.Helper()
	if v == nil {
		return "NULL"
	}
	if format == textFormat {
		return string(v)
	}
	var d datum
	switch oid {
	case pgtype.NumericOID:
		if !decNumericBinary(&d, v) {
			t.Fatalf("bad binary numeric %x", v)
		}
		return string(d.n.appendText(nil))
	case pgtype.Float8OID:
		return string(appendFloat8(nil, math.Float64frombits(binary.BigEndian.Uint64(v))))
	case pgtype.Float4OID:
		return string(appendFloat4(nil, math.Float32frombits(binary.BigEndian.Uint32(v))))
	case pgtype.Int8OID, pgtype.Int4OID, pgtype.Int2OID:
		if !decIntBinary(len(v))(&d, v) {
			t.Fatalf("bad binary int %x", v)
		}
		return fmt.Sprint(d.i)
	case pgtype.BoolOID:
		return map[byte]string{0: "f", 1: "t"}[v[0]]
	}
	m := pgtype.NewMap()
	typ, _ := m.TypeForOID(oid)
	x, err := typ.Codec.DecodeValue(m, oid, pgtype.BinaryFormatCode, v)
	if err != nil {
		t.Fatalf("decode %d %x: %v", oid, v, err)
	}
	b, err := m.Encode(oid, pgtype.TextFormatCode, x, nil)
	if err != nil {
		t.Fatalf("encode %d: %v", oid, err)
	}
	return string(b)
}

func texts(t testing.TB, fields []pgproto3.FieldDescription, rows [][][]byte) [][]string {
	t.Helper()
	if len(rows) == 0 {
		return nil
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = textOf(t, fields[j].DataTypeOID, fields[j].Format, v)
		}
	}
	return out
}

var formats = []struct {
	name string
	code int16
}{{"text", textFormat}, {"binary", binaryFormat}}
