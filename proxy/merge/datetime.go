package merge

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/jackc/pgx/v5/pgtype"
)

// Date and time values are compared as the integers the server keeps:
// days (date) or microseconds (time, timestamp, timestamptz) since
// 2000-01-01, with infinities at the ends of the range as in the binary
// format. Text is read in the ISO DateStyle (the default); another
// DateStyle fails to parse and the merge errors out rather than guess.
const (
	usecPerSec       = int64(1_000_000)
	usecPerDay       = 86_400 * usecPerSec
	postgresEpochJD  = 2451545 // date2j(2000, 1, 1)
	dateNoBegin      = math.MinInt32
	dateNoEnd        = math.MaxInt32
	timestampNoBegin = math.MinInt64
	timestampNoEnd   = math.MaxInt64
)

// date2j is PostgreSQL's Julian day number of a proleptic Gregorian date
// (year 0 is 1 BC).
func date2j(y, m, d int64) int64 {
	if m > 2 {
		m++
		y += 4800
	} else {
		m += 13
		y += 4799
	}
	century := y / 100
	j := y*365 - 32167
	j += y/4 - century + century/4
	j += 7834*m/256 + d
	return j
}

// digitsN reads exactly n decimal digits.
func digitsN(v []byte, n int) (int64, bool) {
	if len(v) < n {
		return 0, false
	}
	var x int64
	for _, c := range v[:n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + int64(c-'0')
	}
	return x, true
}

// infinity reads the spellings the server prints for the ends of time.
func infinity(v []byte) (pos, neg bool) {
	return bytes.Equal(v, []byte("infinity")), bytes.Equal(v, []byte("-infinity"))
}

// parseISODate reads "YYYY-MM-DD" (four or more year digits) and returns
// its Julian day and the rest of v; the caller handles " BC".
func parseISODate(v []byte) (y, m, d int64, rest []byte, ok bool) {
	n := 0
	for n < len(v) && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	if n < 4 || n > 9 || len(v) < n+6 || v[n] != '-' || v[n+3] != '-' {
		return 0, 0, 0, nil, false
	}
	y, _ = digitsN(v, n)
	m, ok1 := digitsN(v[n+1:], 2)
	d, ok2 := digitsN(v[n+4:], 2)
	return y, m, d, v[n+6:], ok1 && ok2
}

// bcYear turns a year and a trailing " BC" into the astronomical year.
func bcYear(y int64, rest []byte) (int64, []byte) {
	if bytes.HasSuffix(rest, []byte(" BC")) {
		return 1 - y, rest[:len(rest)-3]
	}
	return y, rest
}

// parseDateText returns days since 2000-01-01.
func parseDateText(v []byte) (int64, bool) {
	if pos, neg := infinity(v); pos || neg {
		if pos {
			return dateNoEnd, true
		}
		return dateNoBegin, true
	}
	y, m, d, rest, ok := parseISODate(v)
	if !ok {
		return 0, false
	}
	y, rest = bcYear(y, rest)
	return date2j(y, m, d) - postgresEpochJD, len(rest) == 0
}

// parseClock reads "HH:MM:SS[.ffffff]" as microseconds and returns the
// rest of v.
func parseClock(v []byte) (int64, []byte, bool) {
	h, ok1 := digitsN(v, 2)
	if !ok1 || len(v) < 8 || v[2] != ':' || v[5] != ':' {
		return 0, nil, false
	}
	mi, ok2 := digitsN(v[3:], 2)
	s, ok3 := digitsN(v[6:], 2)
	usec := ((h*60+mi)*60 + s) * usecPerSec
	v = v[8:]
	if len(v) > 0 && v[0] == '.' {
		v = v[1:]
		scale := usecPerSec / 10
		n := 0
		for n < len(v) && v[n] >= '0' && v[n] <= '9' {
			usec += int64(v[n]-'0') * scale
			scale /= 10
			n++
		}
		if n == 0 || n > 6 {
			return 0, nil, false
		}
		v = v[n:]
	}
	return usec, v, ok2 && ok3
}

// parseOffset reads a UTC offset "+HH[:MM[:SS]]" as seconds east of UTC.
func parseOffset(v []byte) (int64, []byte, bool) {
	if len(v) < 3 || (v[0] != '+' && v[0] != '-') {
		return 0, nil, false
	}
	sign := int64(1)
	if v[0] == '-' {
		sign = -1
	}
	h, ok := digitsN(v[1:], 2)
	off, v := h*3600, v[3:]
	for unit := int64(60); ok && unit >= 1 && len(v) >= 3 && v[0] == ':'; unit /= 60 {
		var x int64
		x, ok = digitsN(v[1:], 2)
		off, v = off+x*unit, v[3:]
	}
	return sign * off, v, ok
}

// parseTimestampText returns microseconds since 2000-01-01 (UTC for
// timestamptz, whose text carries the session time zone's offset).
func parseTimestampText(v []byte, withZone bool) (int64, bool) {
	if pos, neg := infinity(v); pos || neg {
		if pos {
			return timestampNoEnd, true
		}
		return timestampNoBegin, true
	}
	y, m, d, rest, ok := parseISODate(v)
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return 0, false
	}
	if y, rest = bcYear(y, rest); len(rest) == 0 {
		return 0, false
	}
	clock, rest, ok := parseClock(rest[1:])
	if !ok {
		return 0, false
	}
	var off int64
	if withZone {
		if off, rest, ok = parseOffset(rest); !ok {
			return 0, false
		}
	}
	days := date2j(y, m, d) - postgresEpochJD
	return days*usecPerDay + clock - off*usecPerSec, len(rest) == 0
}

// parseTimeText returns time of day in microseconds.
func parseTimeText(v []byte) (int64, bool) {
	usec, rest, ok := parseClock(v)
	return usec, ok && len(rest) == 0
}

// intervalSpan is interval_cmp_value: months count 30 days, days 24
// hours, so '1 mon' = '30 days' as the server compares and groups them.
// The span needs 128 bits; it is returned as a signed high word and an
// unsigned low word, which compare in that order.
func intervalSpan(usec int64, days, months int32) (hi int64, lo uint64) {
	dayfrac := usec % usecPerDay
	totalDays := usec/usecPerDay + int64(months)*30 + int64(days)
	// 128-bit totalDays × usecPerDay + dayfrac.
	neg := totalDays < 0
	ad := uint64(totalDays)
	if neg {
		ad = uint64(-totalDays)
	}
	phi, plo := bits.Mul64(ad, uint64(usecPerDay))
	if neg {
		plo = ^plo + 1
		phi = ^phi
		if plo == 0 {
			phi++
		}
	}
	flo := uint64(dayfrac)
	fhi := uint64(0)
	if dayfrac < 0 {
		fhi = math.MaxUint64
	}
	lo, carry := bits.Add64(plo, flo, 0)
	h, _ := bits.Add64(phi, fhi, carry)
	return int64(h), lo
}

// decodeIntervalText reads the default "postgres" IntervalStyle with
// pgtype's parser.
func decodeIntervalText(d *datum, v []byte) bool {
	var iv pgtype.Interval
	if err := iv.Scan(string(v)); err != nil {
		return false
	}
	d.i, d.u = intervalSpan(iv.Microseconds, iv.Days, iv.Months)
	return true
}

// decodeIntervalBinary reads interval_send: microseconds, days, months.
func decodeIntervalBinary(d *datum, v []byte) bool {
	if len(v) != 16 {
		return false
	}
	d.i, d.u = intervalSpan(int64(binary.BigEndian.Uint64(v)),
		int32(binary.BigEndian.Uint32(v[8:])), int32(binary.BigEndian.Uint32(v[12:])))
	return true
}
