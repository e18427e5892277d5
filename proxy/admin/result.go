package admin

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type is a column's PostgreSQL type. The console uses only types every
// driver decodes in both formats.
type Type uint32

// Column types, by OID.
const (
	Text   Type = 25
	Int8   Type = 20
	Float8 Type = 701
	Bool   Type = 16
)

// Column is one column of a result.
type Column struct {
	Name string
	Type Type
}

// Result is what a command returns: rows under columns, or just a tag.
type Result struct {
	// Columns is nil for a command that returns no rows.
	Columns []Column
	// Rows hold string, int64, int, float64, bool, time.Duration (as
	// microseconds), time.Time (as text) or nil (NULL) values.
	Rows [][]any
	// Tag overrides the CommandComplete tag ("SHOW" for rows, else the
	// command's verb).
	Tag string
	// Notices are sent before the rows, as NOTICE messages.
	Notices []string
}

// Cols builds a column list: name, type, name, type, ...
func Cols(spec ...any) []Column {
	out := make([]Column, 0, len(spec)/2)
	for i := 0; i+1 < len(spec); i += 2 {
		out = append(out, Column{Name: spec[i].(string), Type: spec[i+1].(Type)})
	}
	return out
}

// RowDescription describes the columns; formats are the result formats a
// Bind asked for (none: all text; one: that format for every column).
func RowDescription(cols []Column, formats []int16) *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(cols))}
	for i, c := range cols {
		size := int16(-1)
		switch c.Type {
		case Int8, Float8:
			size = 8
		case Bool:
			size = 1
		}
		rd.Fields[i] = pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: uint32(c.Type), DataTypeSize: size,
			TypeModifier: -1, Format: formatOf(formats, i)}
	}
	return rd
}

// CheckFormats refuses result formats the console cannot send.
func CheckFormats(formats []int16, ncols int) error {
	if len(formats) > 1 && len(formats) != ncols {
		return &Error{Code: "08P01", Message: fmt.Sprintf("bind message has %d result formats but the result has %d columns", len(formats), ncols)}
	}
	for _, f := range formats {
		if f != 0 && f != 1 {
			return &Error{Code: "22023", Message: fmt.Sprintf("unsupported format code: %d", f)}
		}
	}
	return nil
}

func formatOf(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	return formats[i]
}

// DataRow encodes one row in the formats asked for.
func DataRow(cols []Column, row []any, formats []int16) *pgproto3.DataRow {
	dr := &pgproto3.DataRow{Values: make([][]byte, len(cols))}
	for i, c := range cols {
		var v any
		if i < len(row) {
			v = row[i]
		}
		dr.Values[i] = encode(c.Type, v, formatOf(formats, i) == 1)
	}
	return dr
}

func encode(t Type, v any, binaryFormat bool) []byte {
	if v == nil {
		return nil
	}
	switch t {
	case Int8:
		n := toInt(v)
		if binaryFormat {
			return binary.BigEndian.AppendUint64(nil, uint64(n))
		}
		return strconv.AppendInt(nil, n, 10)
	case Float8:
		f := toFloat(v)
		if binaryFormat {
			return binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64)
	case Bool:
		b, _ := v.(bool)
		switch {
		case binaryFormat && b:
			return []byte{1}
		case binaryFormat:
			return []byte{0}
		case b:
			return []byte("t")
		}
		return []byte("f")
	}
	// Text's binary format is its bytes.
	return []byte(toText(v))
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case time.Duration:
		return x.Microseconds()
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case time.Duration:
		return x.Seconds()
	}
	return float64(toInt(v))
}

func toText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format("2006-01-02 15:04:05.000 UTC")
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}
