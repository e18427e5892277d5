package pool

import (
	"fmt"
	"strconv"
)

// LSN is a PostgreSQL WAL position (pg_lsn).
type LSN uint64

// ParseLSN parses an LSN in PostgreSQL's text form, two hexadecimal
// numbers of at most 8 digits separated by a slash: "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	l, ok := parseLSN([]byte(s))
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q: want PostgreSQL's form, two hexadecimal numbers separated by a slash such as \"16/B374D848\"", s)
	}
	return l, nil
}

// parseLSN works on the bytes of a query result, so that the monitor does
// not turn every polled value into a string.
func parseLSN(b []byte) (LSN, bool) {
	hi, rest, ok := parseHex32(b)
	if !ok || len(rest) == 0 || rest[0] != '/' {
		return 0, false
	}
	lo, rest, ok := parseHex32(rest[1:])
	if !ok || len(rest) != 0 {
		return 0, false
	}
	return LSN(uint64(hi)<<32 | uint64(lo)), true
}

// parseHex32 reads 1 to 8 hexadecimal digits from the start of b.
func parseHex32(b []byte) (uint32, []byte, bool) {
	var v uint32
	n := 0
	for n < len(b) && n < 9 {
		c := b[n]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return v, b[n:], n > 0
		}
		if n == 8 {
			return 0, nil, false // a ninth digit: out of range
		}
		v = v<<4 | uint32(d)
		n++
	}
	return v, b[n:], n > 0
}

// String formats l the way PostgreSQL prints a pg_lsn: upper-case
// hexadecimal without leading zeros, "16/B374D848".
func (l LSN) String() string {
	var buf [17]byte
	return string(l.appendTo(buf[:0]))
}

// appendTo appends l in the form String returns.
func (l LSN) appendTo(dst []byte) []byte {
	dst = appendUpperHex(dst, uint32(l>>32))
	dst = append(dst, '/')
	return appendUpperHex(dst, uint32(l))
}

func appendUpperHex(dst []byte, v uint32) []byte {
	start := len(dst)
	dst = strconv.AppendUint(dst, uint64(v), 16)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; 'a' <= c && c <= 'f' {
			dst[i] = c - 'a' + 'A'
		}
	}
	return dst
}
