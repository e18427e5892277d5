package merge

import (
	"math"
	"strconv"
	"unsafe"
)

// Display exponent limits of float8out and float4out (shortest-exact
// output, extra_float_digits >= 1, the default since PostgreSQL 12):
// fixed notation for exponents in [-4, limit), scientific otherwise, the
// thresholds printf's %g would use with DBL_DIG and FLT_DIG.
const (
	float8FixedLimit = 15
	float4FixedLimit = 6
)

// appendFloat8 appends float8out's text for f.
func appendFloat8(dst []byte, f float64) []byte {
	return appendPGFloat(dst, f, 64, float8FixedLimit)
}

// appendFloat4 appends float4out's text for f.
func appendFloat4(dst []byte, f float32) []byte {
	return appendPGFloat(dst, float64(f), 32, float4FixedLimit)
}

// appendPGFloat formats like PostgreSQL's Ryu-based output: the shortest
// digits that read back exactly (Go's shortest formatting finds the same
// digits), laid out as d2s.c/f2s.c's to_chars does.
func appendPGFloat(dst []byte, f float64, bits, fixedLimit int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, bits) // [-]d[.ddd]e±XX
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	var digits [24]byte
	nd := 0
	i := 0
	for ; s[i] != 'e'; i++ {
		if s[i] != '.' {
			digits[nd] = s[i]
			nd++
		}
	}
	exp, _ := strconv.Atoi(string(s[i+1:]))
	d := digits[:nd]
	if exp < -4 || exp >= fixedLimit {
		dst = append(dst, d[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	point := exp + 1 // digits before the decimal point
	switch {
	case point <= 0:
		dst = append(dst, '0', '.')
		for ; point < 0; point++ {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	case point >= nd:
		dst = append(dst, d...)
		for ; point > nd; point-- {
			dst = append(dst, '0')
		}
		return dst
	}
	dst = append(dst, d[:point]...)
	dst = append(dst, '.')
	return append(dst, d[point:]...)
}

// parseFloat reads float4in/float8in text ("NaN", "Infinity" included).
// bits 32 rounds to float4 first, so a float4 value compares as the
// server's float4 does.
func parseFloat(v []byte, bits int) (float64, bool) {
	f, err := strconv.ParseFloat(bytesString(v), bits)
	if err != nil {
		// Out of range: the server would not have sent it, and the
		// NumError holds the unsafe view, so drop it here.
		return 0, false
	}
	return f, true
}

// bytesString views b as a string without copying, for parsers that do
// not keep their input. Parsing each sort key of each row must not
// allocate; callers never let the string escape.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
