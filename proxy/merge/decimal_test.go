package merge

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func dec(t testing.TB, s string) *decimal {
	t.Helper()
	d := new(decimal)
	if !d.parseText([]byte(s)) {
		t.Fatalf("parse %q", s)
	}
	return d
}

// TestAvgScale checks avg = numeric_div(sum, count) against outputs of a
// PostgreSQL 15 server for the same inputs.
func TestAvgScale(t *testing.T) {
	t.Parallel()
	cases := []struct {
		inputs []string
		want   string
	}{
		{[]string{"1", "2"}, "1.5000000000000000"},
		{[]string{"1", "2", "2"}, "1.6666666666666667"},
		{[]string{"9223372036854775807", "9223372036854775807"}, "9223372036854775807"},
		{[]string{"-7", "-8"}, "-7.5000000000000000"},
		{[]string{"1.25", "2.5"}, "1.8750000000000000"},
		{[]string{"0.001", "0.002", "0.0005"}, "0.00116666666666666667"},
		{[]string{"123456789012345678901234567890", "1"}, "61728394506172839450617283946"},
		{[]string{"0", "0.00"}, "0.00000000000000000000"},
		{[]string{"-2", "1"}, "-0.50000000000000000000"},
		{[]string{"0.00000000000000000001", "0.00000000000000000003"}, "0.000000000000000000020000000000000000"},
		{[]string{"NaN", "1"}, "NaN"},
		{[]string{"Infinity", "1"}, "Infinity"},
		{[]string{"2.0", "2"}, "2.0000000000000000"},
		{[]string{"99999999", "1"}, "50000000.000000000000"},
		{[]string{"5", "-5"}, "0.00000000000000000000"},
	}
	for _, tc := range cases {
		var sum decimal
		for i, s := range tc.inputs {
			if i == 0 {
				sum.set(dec(t, s))
			} else {
				sum.add(dec(t, s))
			}
		}
		var q decimal
		q.divInt(&sum, int64(len(tc.inputs)))
		if got := string(q.appendText(nil)); got != tc.want {
			t.Errorf("avg%v = %s, want %s", tc.inputs, got, tc.want)
		}
	}
	// avg over 1..10000 from its sum, as the shards' partial sums add up.
	var sum decimal
	sum.setInt64(50005000)
	var q decimal
	q.divInt(&sum, 10000)
	if got := string(q.appendText(nil)); got != "5000.5000000000000000" {
		t.Errorf("avg(1..10000) = %s", got)
	}
}

// TestNumericBinary checks numeric_send's layout for values whose bytes
// a PostgreSQL server sends.
func TestNumericBinary(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, hex string }{
		{"0", "0000000000000000"},
		{"0.00", "0000000000000002"},
		{"1.5000000000000000", "0002000000000010" + "00011388"},
		{"-123.45", "0002000040000002" + "007b1194"},
		{"10000", "0001000100000000" + "0001"},
		{"0.0001", "0001ffff00000004" + "0001"},
		{"12345678.9", "0003000100000001" + "04d2162e2328"},
		{"NaN", "00000000c0000000"},
		{"Infinity", "00000000d0000000"},
		{"-Infinity", "00000000f0000000"},
	}
	for _, tc := range cases {
		got := hex.EncodeToString(dec(t, tc.text).appendBinary(nil))
		if got != tc.hex {
			t.Errorf("%s: binary %s, want %s", tc.text, got, tc.hex)
		}
		raw, _ := hex.DecodeString(tc.hex)
		var d decimal
		if !d.parseBinary(raw) {
			t.Fatalf("%s: parse binary failed", tc.text)
		}
		if back := string(d.appendText(nil)); back != tc.text {
			t.Errorf("%s: binary reads back as %s", tc.text, back)
		}
	}
}

// TestNumericSum: sums are exact and keep the largest display scale.
func TestNumericSum(t *testing.T) {
	t.Parallel()
	sum := dec(t, "0.1")
	for _, s := range []string{"0.20", "-0.005", "100000000000000000000000000000", "Infinity"} {
		if s == "Infinity" {
			if got := string(sum.appendText(nil)); got != "100000000000000000000000000000.295" {
				t.Fatalf("sum = %s", got)
			}
		}
		sum.add(dec(t, s))
	}
	if got := string(sum.appendText(nil)); got != "Infinity" {
		t.Fatalf("sum with Infinity = %s", got)
	}
	sum.add(dec(t, "-Infinity"))
	if got := string(sum.appendText(nil)); got != "NaN" {
		t.Fatalf("Infinity + -Infinity = %s", got)
	}
}

func TestNumericConstants(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1e5": "100000", "1.5e-3": "0.0015", " -2.50 ": "-2.50", ".5": "0.5", "inf": "Infinity", "+007": "7"} {
		if got := string(dec(t, in).appendText(nil)); got != want {
			t.Errorf("%q reads as %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "-", "1e", "1e99999999", "1..2", "0x10"} {
		var d decimal
		if d.parseText([]byte(bad)) {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestFloatText checks float8out/float4out against a PostgreSQL 15
// server's output for the same values.
func TestFloatText(t *testing.T) {
	t.Parallel()
	f8 := map[float64]string{
		0.1: "0.1", 1e15: "1e+15", 1e14: "100000000000000", 123456789012345.6: "123456789012345.6",
		1234567890123456: "1.234567890123456e+15", 1.5e-5: "1.5e-05", 0.0001: "0.0001", 0.00012345: "0.00012345",
		1e300: "1e+300", 5e-324: "5e-324", 2.2250738585072014e-308: "2.2250738585072014e-308",
		1.7976931348623157e308: "1.7976931348623157e+308", -3.14: "-3.14", 100: "100", 1e16: "1e+16",
		9007199254740993: "9.007199254740992e+15", 0.8999999999999999: "0.8999999999999999", 2.5e-7: "2.5e-07",
	}
	for f, want := range f8 {
		if got := string(appendFloat8(nil, f)); got != want {
			t.Errorf("float8 %v: %s, want %s", f, got, want)
		}
	}
	f4 := map[float32]string{
		0.1: "0.1", 1e6: "1e+06", 123456: "123456", 999999: "999999", 1234567: "1.234567e+06", 1.5e-5: "1.5e-05",
		0.0001: "0.0001", 3.4028235e38: "3.4028235e+38", 1e-45: "1e-45", 1.17549435e-38: "1.1754944e-38",
		-2.5: "-2.5", 16777216: "1.6777216e+07", 0.3333333: "0.3333333",
	}
	for f, want := range f4 {
		if got := string(appendFloat4(nil, f)); got != want {
			t.Errorf("float4 %v: %s, want %s", f, got, want)
		}
	}
	var nz float64
	nz = -nz
	for f, want := range map[float64]string{nz: "-0", 0: "0"} {
		if got := string(appendFloat8(nil, f)); got != want {
			t.Errorf("float8 %v: %s, want %s", f, got, want)
		}
	}
}

// FuzzNumeric: any numeric text that reads prints back to an equal value
// with the same scale, and survives the binary format unchanged.
func FuzzNumeric(f *testing.F) {
	for _, s := range []string{"0", "1.50", "-0.0001", "123456789012345678901234567890.12345", "NaN", "1e5", "-Infinity"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d decimal
		if !d.parseText([]byte(s)) || d.dscale > numericMaxDisplayScale {
			return
		}
		text := d.appendText(nil)
		var back decimal
		if !back.parseText(text) || back.cmp(&d) != 0 || back.dscale != d.dscale {
			t.Fatalf("%q → %q does not read back", s, text)
		}
		var fromBin decimal
		if !fromBin.parseBinary(d.appendBinary(nil)) {
			t.Fatalf("%q: binary does not read back", s)
		}
		if got := fromBin.appendText(nil); !bytes.Equal(got, text) {
			t.Fatalf("%q: binary round trip gives %q, want %q", s, got, text)
		}
	})
}
