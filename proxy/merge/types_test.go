package merge

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// orderTiers lists, per type, values in ascending PostgreSQL order; the
// values within one tier are equal to each other as the server compares.
var orderTiers = []struct {
	name  string
	oid   uint32
	tiers [][]string
}{
	{"int2", pgtype.Int2OID, [][]string{{"-32768"}, {"-1"}, {"0"}, {"1"}, {"32767"}}},
	{"int4", pgtype.Int4OID, [][]string{{"-2147483648"}, {"-5"}, {"0"}, {"7"}, {"2147483647"}}},
	{"int8", pgtype.Int8OID, [][]string{{"-9223372036854775808"}, {"-1"}, {"0"}, {"42"}, {"9223372036854775807"}}},
	{"float4", pgtype.Float4OID, [][]string{{"-Infinity"}, {"-3.4028235e+38"}, {"-1"}, {"-1e-45"}, {"0", "-0"},
		{"1e-45"}, {"0.1"}, {"1"}, {"3.4028235e+38"}, {"Infinity"}, {"NaN"}}},
	{"float8", pgtype.Float8OID, [][]string{{"-Infinity"}, {"-1.7976931348623157e+308"}, {"-0.5"}, {"-0", "0"},
		{"5e-324"}, {"0.1"}, {"0.30000000000000004"}, {"1e+300"}, {"Infinity"}, {"NaN"}}},
	{"numeric", pgtype.NumericOID, [][]string{{"-Infinity"}, {"-123456789012345678901234567890.5"}, {"-1"},
		{"-0.5", "-0.50"}, {"0", "0.000"}, {"0.0001"}, {"0.001"}, {"1.5", "1.50", "1.500000"}, {"2"}, {"10000"},
		{"99999999999999999999.99999"}, {"Infinity"}, {"NaN"}}},
	{"bool", pgtype.BoolOID, [][]string{{"f"}, {"t"}}},
	{"char", pgtype.QCharOID, [][]string{{""}, {"A"}, {"a"}, {"\x7f"}, {`\200`}, {`\377`}}},
	{"oid", pgtype.OIDOID, [][]string{{"0"}, {"1"}, {"2147483648"}, {"4294967295"}}},
	{"text", pgtype.TextOID, [][]string{{""}, {"A"}, {"Z"}, {"a"}, {"a "}, {"ab"}, {"b"}, {"é"}, {"日本"}}},
	{"varchar", pgtype.VarcharOID, [][]string{{""}, {" "}, {"0"}, {"a"}, {"aa"}}},
	{"name", pgtype.NameOID, [][]string{{"A"}, {"_x"}, {"a"}, {"ab"}}},
	{"bpchar", pgtype.BPCharOID, [][]string{{"", "  "}, {"a", "a  "}, {"ab"}, {"b"}}},
	{"bytea", pgtype.ByteaOID, [][]string{{`\x`, ``}, {`\x00`, `\000`}, {`\x0001`}, {`\x01`}, {`\x616263`, `abc`},
		{`\x7f`}, {`\x80`, `\200`}, {`\xff`}, {`\xff00`}}},
	{"uuid", pgtype.UUIDOID, [][]string{{"00000000-0000-0000-0000-000000000000"}, {"00000000-0000-0000-0000-000000000001"},
		{"7fffffff-ffff-ffff-ffff-ffffffffffff"}, {"80000000-0000-0000-0000-000000000000"}, {"ffffffff-ffff-ffff-ffff-ffffffffffff"}}},
	{"date", pgtype.DateOID, [][]string{{"-infinity"}, {"4713-01-01 BC"}, {"0044-03-15 BC"}, {"0001-12-31 BC"},
		{"0001-01-01"}, {"1999-12-31"}, {"2000-01-01"}, {"2024-02-29"}, {"5874897-12-31"}, {"infinity"}}},
	{"time", pgtype.TimeOID, [][]string{{"00:00:00"}, {"00:00:00.000001"}, {"12:34:56.5"}, {"23:59:59.999999"}, {"24:00:00"}}},
	{"timestamp", pgtype.TimestampOID, [][]string{{"-infinity"}, {"4713-01-01 00:00:00 BC"}, {"0001-12-31 23:59:59 BC"},
		{"1999-12-31 23:59:59.999999"}, {"2000-01-01 00:00:00"}, {"2000-01-01 00:00:00.000001"},
		{"294276-12-31 23:59:59.999999"}, {"infinity"}}},
	{"timestamptz", pgtype.TimestamptzOID, [][]string{{"-infinity"}, {"0044-03-15 12:00:00+00 BC"},
		{"1900-01-01 00:00:00+05:53:28"}, {"2000-01-01 05:30:00+05:30", "2000-01-01 00:00:00+00", "1999-12-31 19:00:00-05"},
		{"2000-01-01 00:00:01+00"}, {"infinity"}}},
	{"interval", pgtype.IntervalOID, [][]string{{"-1 years"}, {"-1 days +02:00:00", "-22:00:00"}, {"-00:00:01"},
		{"00:00:00"}, {"00:00:00.000001"}, {"1 day", "24:00:00"}, {"1 mon", "30 days"}, {"1 mon 1 day"},
		{"1 year", "360 days"}, {"178000000 years"}}},
}

// TestTypeOrder checks every pair of values of every type, in both
// formats: compare must agree with the tiers, and grouping keys must be
// equal exactly within a tier.
func TestTypeOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range orderTiers {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				c := newColumn(tc.oid, f.code)
				type val struct {
					tier int
					text string
					d    datum
					key  []byte
				}
				var vals []*val
				for ti, tier := range tc.tiers {
					for _, s := range tier {
						if f.code == binaryFormat && tc.oid == pgtype.TimestamptzOID && s == "1900-01-01 00:00:00+05:53:28" {
							continue // pgtype cannot read a seconds offset; the text case covers it
						}
						v := &val{tier: ti, text: s}
						w := wire(t, tc.oid, f.code, s)
						if err := c.read(&v.d, w); err != nil {
							t.Fatalf("read %q: %v", s, err)
						}
						var tmp datum
						k, err := c.appendKey(nil, w, &tmp)
						if err != nil {
							t.Fatalf("key %q: %v", s, err)
						}
						v.key = k
						vals = append(vals, v)
					}
				}
				for _, a := range vals {
					for _, b := range vals {
						got := compareDatum(c.t.cls, &a.d, &b.d)
						want := a.tier - b.tier
						if sign(got) != sign(want) {
							t.Errorf("compare(%q, %q) = %d, want sign %d", a.text, b.text, got, sign(want))
						}
						if eq := bytes.Equal(a.key, b.key); eq != (a.tier == b.tier) {
							t.Errorf("key(%q) == key(%q) is %v", a.text, b.text, eq)
						}
					}
				}
			})
		}
	}
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// TestFloatNaNPayloads: every NaN bit pattern is the one NaN of the
// server, in order and in grouping.
func TestFloatNaNPayloads(t *testing.T) {
	t.Parallel()
	c := newColumn(pgtype.Float8OID, binaryFormat)
	a := binary.BigEndian.AppendUint64(nil, math.Float64bits(math.NaN()))
	b := binary.BigEndian.AppendUint64(nil, 0xFFF0000000000001)
	var da, db, tmp datum
	if c.read(&da, a) != nil || c.read(&db, b) != nil || compareDatum(clsFloat, &da, &db) != 0 {
		t.Fatal("NaNs differ in order")
	}
	ka, _ := c.appendKey(nil, a, &tmp)
	kb, _ := c.appendKey(nil, b, &tmp)
	if !bytes.Equal(ka, kb) {
		t.Fatal("NaNs differ in grouping")
	}
}

// TestMalformedValues: values no server sends are errors, not guesses.
func TestMalformedValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		oid    uint32
		format int16
		v      string
	}{
		{pgtype.Int8OID, textFormat, "12x"},
		{pgtype.Int8OID, textFormat, "9223372036854775808"},
		{pgtype.Int8OID, textFormat, "18446744073709551616"},
		{pgtype.ByteaOID, textFormat, `\9xy`},
		{pgtype.Int4OID, binaryFormat, "\x00\x01"},
		{pgtype.NumericOID, textFormat, "1.2.3"},
		{pgtype.NumericOID, binaryFormat, "\x00\x01\x00\x00\x00\x00\x00\x00"},
		{pgtype.DateOID, textFormat, "01/02/2003"},
		{pgtype.TimestamptzOID, textFormat, "2000-01-01 00:00:00"},
		{pgtype.BoolOID, textFormat, "true"},
		{pgtype.Float8OID, textFormat, "abc"},
		{pgtype.IntervalOID, textFormat, "@ 1 day"},
		{pgtype.UUIDOID, binaryFormat, "short"},
	}
	for _, tc := range cases {
		c := newColumn(tc.oid, tc.format)
		var d datum
		err := c.read(&d, []byte(tc.v))
		var me *Error
		if err == nil || !asError(err, &me) || me.Code != codeInternal {
			t.Errorf("%d/%d %q: got %v, want an XX000 error", tc.oid, tc.format, tc.v, err)
		}
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

// FuzzDecoders: no input makes a decoder panic, and whatever decodes
// compares equal to itself.
func FuzzDecoders(f *testing.F) {
	f.Add(uint32(pgtype.NumericOID), true, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(uint32(pgtype.TimestamptzOID), false, []byte("2000-01-01 00:00:00+05:53:28 BC"))
	f.Add(uint32(pgtype.IntervalOID), false, []byte("-1 days +02:00:00"))
	f.Add(uint32(pgtype.ByteaOID), false, []byte(`a\\b\001`))
	f.Fuzz(func(t *testing.T, oid uint32, bin bool, v []byte) {
		format := textFormat
		if bin {
			format = binaryFormat
		}
		c := newColumn(oid, format)
		if c.t == nil {
			return
		}
		var a, b datum
		if c.read(&a, v) != nil {
			return
		}
		if c.read(&b, v) != nil || compareDatum(c.t.cls, &a, &b) != 0 {
			t.Fatalf("%s %q: not equal to itself", c.t.name, v)
		}
		var tmp datum
		if _, err := c.appendKey(nil, v, &tmp); err != nil {
			t.Fatalf("%s %q: key: %v", c.t.name, v, err)
		}
	})
}
