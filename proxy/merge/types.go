package merge

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// Wire format codes of a RowDescription field.
const (
	textFormat   int16 = 0
	binaryFormat int16 = 1
)

// class says where a decoded value lives in a datum and how it compares.
type class uint8

const (
	clsInt      class = iota + 1 // d.i: integers, oid, bool, "char", dates and times
	clsFloat                     // d.f: NaN above all numbers, -0 = 0
	clsNumeric                   // d.n
	clsBytes                     // d.b: byte order, i.e. the "C" collation
	clsInterval                  // d.i, d.u: a 128-bit span
)

// datum is one decoded value, held so that comparing two of a class costs
// no allocation. Fields a class does not use are stale.
type datum struct {
	null bool
	i    int64
	u    uint64
	f    float64
	b    []byte   // may view the wire value
	n    *decimal // allocated by the first numeric decoded into the datum
	buf  []byte   // owned storage for b when decoding changes the bytes
}

// decodeFunc decodes a non-NULL wire value into d; false means malformed.
type decodeFunc func(d *datum, v []byte) bool

// typeInfo is what the engine knows about one type.
type typeInfo struct {
	name   string
	cls    class
	text   decodeFunc
	binary decodeFunc
}

// types lists the types whose order and equality the engine reproduces.
// Text, varchar, bpchar and name compare bytewise: the clusters are
// created with the "C" collation, so the server orders them the same way.
var types = map[uint32]*typeInfo{
	pgtype.Int2OID:        {"smallint", clsInt, decIntText, decIntBinary(2)},
	pgtype.Int4OID:        {"integer", clsInt, decIntText, decIntBinary(4)},
	pgtype.Int8OID:        {"bigint", clsInt, decIntText, decIntBinary(8)},
	pgtype.OIDOID:         {"oid", clsInt, decOIDText, decOIDBinary},
	pgtype.BoolOID:        {"boolean", clsInt, decBoolText, decBoolBinary},
	pgtype.QCharOID:       {`"char"`, clsInt, decCharText, decCharBinary},
	pgtype.Float4OID:      {"real", clsFloat, decFloatText(32), decFloat4Binary},
	pgtype.Float8OID:      {"double precision", clsFloat, decFloatText(64), decFloat8Binary},
	pgtype.NumericOID:     {"numeric", clsNumeric, decNumericText, decNumericBinary},
	pgtype.TextOID:        {"text", clsBytes, decBytes, decBytes},
	pgtype.VarcharOID:     {"character varying", clsBytes, decBytes, decBytes},
	pgtype.NameOID:        {"name", clsBytes, decBytes, decBytes},
	pgtype.BPCharOID:      {"character", clsBytes, decBPChar, decBPChar},
	pgtype.ByteaOID:       {"bytea", clsBytes, decByteaText, decBytes},
	pgtype.UUIDOID:        {"uuid", clsBytes, decUUIDText, decUUIDBinary},
	pgtype.DateOID:        {"date", clsInt, decDateText, decIntBinary(4)},
	pgtype.TimeOID:        {"time", clsInt, decTimeText, decIntBinary(8)},
	pgtype.TimestampOID:   {"timestamp", clsInt, decTimestampText(false), decIntBinary(8)},
	pgtype.TimestamptzOID: {"timestamptz", clsInt, decTimestampText(true), decIntBinary(8)},
	pgtype.IntervalOID:    {"interval", clsInterval, decodeIntervalText, decodeIntervalBinary},
}

// parseInt reads a decimal int64 without allocating.
func parseInt(v []byte) (int64, bool) {
	i, neg := 0, false
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		neg, i = v[0] == '-', 1
	}
	if i == len(v) {
		return 0, false
	}
	var n uint64
	for ; i < len(v); i++ {
		c := v[i] - '0'
		// Below 2^63/10, n*10+9 cannot wrap; the check after catches
		// what passes 2^63.
		if c > 9 || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c)
		if n > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(n), true // n == 1<<63 wraps to MinInt64, as wanted
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

func decIntText(d *datum, v []byte) (ok bool) {
	d.i, ok = parseInt(v)
	return ok
}

func decIntBinary(size int) decodeFunc {
	return func(d *datum, v []byte) bool {
		if len(v) != size {
			return false
		}
		switch size {
		case 2:
			d.i = int64(int16(binary.BigEndian.Uint16(v)))
		case 4:
			d.i = int64(int32(binary.BigEndian.Uint32(v)))
		default:
			d.i = int64(binary.BigEndian.Uint64(v))
		}
		return true
	}
}

func decOIDText(d *datum, v []byte) bool {
	n, ok := parseInt(v)
	d.i = n
	return ok && n >= 0 && n <= math.MaxUint32
}

func decOIDBinary(d *datum, v []byte) bool {
	if len(v) != 4 {
		return false
	}
	d.i = int64(binary.BigEndian.Uint32(v))
	return true
}

func decBoolText(d *datum, v []byte) bool {
	if len(v) != 1 || (v[0] != 't' && v[0] != 'f') {
		return false
	}
	d.i = 0
	if v[0] == 't' {
		d.i = 1
	}
	return true
}

func decBoolBinary(d *datum, v []byte) bool {
	if len(v) != 1 || v[0] > 1 {
		return false
	}
	d.i = int64(v[0])
	return true
}

// decCharText reads charout: "" for NUL, \ooo for bytes with the high bit
// set, the byte itself otherwise. "char" compares as unsigned.
func decCharText(d *datum, v []byte) bool {
	switch {
	case len(v) == 0:
		d.i = 0
	case len(v) == 1:
		d.i = int64(v[0])
	case len(v) == 4 && v[0] == '\\':
		var x int64
		for _, c := range v[1:] {
			if c < '0' || c > '7' {
				return false
			}
			x = x*8 + int64(c-'0')
		}
		d.i = x
		return x <= math.MaxUint8
	default:
		return false
	}
	return true
}

func decCharBinary(d *datum, v []byte) bool {
	if len(v) != 1 {
		return false
	}
	d.i = int64(v[0])
	return true
}

func decFloatText(bits int) decodeFunc {
	return func(d *datum, v []byte) (ok bool) {
		d.f, ok = parseFloat(v, bits)
		return ok
	}
}

func decFloat4Binary(d *datum, v []byte) bool {
	if len(v) != 4 {
		return false
	}
	d.f = float64(math.Float32frombits(binary.BigEndian.Uint32(v)))
	return true
}

func decFloat8Binary(d *datum, v []byte) bool {
	if len(v) != 8 {
		return false
	}
	d.f = math.Float64frombits(binary.BigEndian.Uint64(v))
	return true
}

func decNumericText(d *datum, v []byte) bool   { return d.num().parseText(v) }
func decNumericBinary(d *datum, v []byte) bool { return d.num().parseBinary(v) }

// num returns d's decimal, allocating it on first use so that datums of
// other types stay small.
func (d *datum) num() *decimal {
	if d.n == nil {
		d.n = new(decimal)
	}
	return d.n
}

func decBytes(d *datum, v []byte) bool {
	d.b = v
	return true
}

// decBPChar drops trailing blanks, which bpchar comparison ignores.
func decBPChar(d *datum, v []byte) bool {
	d.b = bytes.TrimRight(v, " ")
	return true
}

// decByteaText reads byteaout's hex form (\x...) or its escape form.
func decByteaText(d *datum, v []byte) bool {
	if bytes.HasPrefix(v, []byte(`\x`)) {
		h := v[2:]
		if len(h)%2 != 0 {
			return false
		}
		if n := len(h) / 2; cap(d.buf) >= n {
			d.buf = d.buf[:n]
		} else {
			d.buf = make([]byte, n)
		}
		if _, err := hex.Decode(d.buf, h); err != nil {
			return false
		}
		d.b = d.buf
		return true
	}
	d.buf = d.buf[:0]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' {
			switch {
			case i+1 < len(v) && v[i+1] == '\\':
				i++
			case i+3 < len(v) && isOctal(v[i+1]) && isOctal(v[i+2]) && isOctal(v[i+3]):
				c = (v[i+1]-'0')<<6 | (v[i+2]-'0')<<3 | (v[i+3] - '0')
				i += 3
			default:
				return false
			}
		}
		d.buf = append(d.buf, c)
	}
	d.b = d.buf
	return true
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// decUUIDText keeps the text: uuid_out prints lowercase hex at fixed
// positions, which sorts as the 16 bytes do.
func decUUIDText(d *datum, v []byte) bool {
	d.b = v
	return len(v) == 36
}

func decUUIDBinary(d *datum, v []byte) bool {
	d.b = v
	return len(v) == 16
}

func decDateText(d *datum, v []byte) (ok bool) {
	d.i, ok = parseDateText(v)
	return ok
}

func decTimeText(d *datum, v []byte) (ok bool) {
	d.i, ok = parseTimeText(v)
	return ok
}

func decTimestampText(withZone bool) decodeFunc {
	return func(d *datum, v []byte) (ok bool) {
		d.i, ok = parseTimestampText(v, withZone)
		return ok
	}
}

// compareFloat is float8_cmp_internal: NaNs are equal to each other and
// above every number.
func compareFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an || bn:
		if an && bn {
			return 0
		}
		if an {
			return 1
		}
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareDatum orders two non-NULL values of one class.
func compareDatum(c class, a, b *datum) int {
	switch c {
	case clsInt:
		return cmp.Compare(a.i, b.i)
	case clsFloat:
		return compareFloat(a.f, b.f)
	case clsNumeric:
		return a.n.cmp(b.n)
	case clsBytes:
		return bytes.Compare(a.b, b.b)
	case clsInterval:
		if a.i != b.i {
			return cmp.Compare(a.i, b.i)
		}
		return cmp.Compare(a.u, b.u)
	}
	return 0
}

// column is one shard column: its type and how to read its format.
type column struct {
	oid    uint32
	format int16
	t      *typeInfo // nil: a type without known ordering
	decode decodeFunc
}

func newColumn(oid uint32, format int16) column {
	c := column{oid: oid, format: format, t: types[oid]}
	if c.t != nil {
		c.decode = c.t.text
		if format == binaryFormat {
			c.decode = c.t.binary
		}
	}
	return c
}

// typeName names the column's type in messages.
func (c *column) typeName() string {
	if c.t != nil {
		return c.t.name
	}
	return "type with OID " + strconv.FormatUint(uint64(c.oid), 10)
}

// read decodes v (nil: NULL) into d.
func (c *column) read(d *datum, v []byte) error {
	d.null = v == nil
	if d.null {
		return nil
	}
	if c.decode == nil {
		return unsupported("cannot compare values of %s across shards", c.typeName())
	}
	if !c.decode(d, v) {
		return malformed(c.t.name, c.format, v)
	}
	return nil
}

// appendKey appends v to a grouping or DISTINCT key so that two values
// get the same key exactly when the server deems them equal: numeric
// ignores trailing zeros, float -0 equals 0, bpchar ignores trailing
// blanks, intervals compare by span, and bytea (hex or escape) and
// timestamptz (any offset) text are decoded first. Other known types are
// equal exactly when their wire bytes are; so are unknown ones, which is
// right for values of one format produced by identical servers.
func (c *column) appendKey(dst, v []byte, tmp *datum) ([]byte, error) {
	if v == nil {
		return append(dst, 0), nil
	}
	// A marker, a length and the normalised value: keys of several
	// columns concatenate without ambiguity.
	dst = append(dst, 1, 0, 0, 0, 0)
	mark := len(dst)
	if c.t != nil && (c.t.cls == clsFloat || c.t.cls == clsNumeric || c.t.cls == clsInterval || c.oid == pgtype.BPCharOID ||
		c.format == textFormat && (c.oid == pgtype.ByteaOID || c.oid == pgtype.TimestamptzOID)) {
		if err := c.read(tmp, v); err != nil {
			return nil, err
		}
		dst = canonical(c.t.cls, tmp, dst)
	} else {
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint32(dst[mark-4:], uint32(len(dst)-mark))
	return dst, nil
}

// canonical encodes a decoded value so that equal values encode alike.
func canonical(c class, d *datum, dst []byte) []byte {
	switch c {
	case clsFloat:
		f := d.f
		if f == 0 {
			f = 0 // -0 → 0
		} else if math.IsNaN(f) {
			f = math.NaN()
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case clsNumeric:
		if d.n.form != decFinite {
			return append(dst, byte(d.n.form))
		}
		digits, sign := d.n.absDigits()
		scale := int(d.n.dscale)
		for len(digits) > 1 && scale > 0 && digits[len(digits)-1] == '0' {
			digits, scale = digits[:len(digits)-1], scale-1
		}
		if sign == 0 {
			scale = 0
		}
		dst = append(dst, byte(sign+1))
		dst = binary.AppendUvarint(dst, uint64(scale))
		return append(dst, digits...)
	case clsInterval:
		dst = binary.BigEndian.AppendUint64(dst, uint64(d.i))
		return binary.BigEndian.AppendUint64(dst, d.u)
	}
	if c == clsInt {
		return binary.BigEndian.AppendUint64(dst, uint64(d.i))
	}
	return append(dst, d.b...)
}
