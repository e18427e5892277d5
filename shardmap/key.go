package shardmap

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyKind is the family of a sharding key's SQL type. Types of one family
// compare and hash alike (PostgreSQL hashes int2, int4 and int8 alike, and
// text and varchar alike).
type KeyKind uint8

// Key kinds.
const (
	KindInt KeyKind = iota + 1
	KindText
	KindUUID
	KindTime // date, timestamp, timestamptz: range only
)

// keyTypes maps the SQL type names a spec may use to their kind.
var keyTypes = map[string]KeyKind{
	"smallint": KindInt, "int2": KindInt, "integer": KindInt, "int": KindInt, "int4": KindInt,
	"bigint": KindInt, "int8": KindInt,
	"text": KindText, "varchar": KindText, "character varying": KindText,
	"uuid":      KindUUID,
	"date":      KindTime,
	"timestamp": KindTime, "timestamp without time zone": KindTime,
	"timestamptz": KindTime, "timestamp with time zone": KindTime,
}

// Key is one sharding key value, parsed for its kind.
type Key struct {
	kind KeyKind
	i    int64 // KindInt; KindTime as microseconds since 2000-01-01 UTC
	s    string
	u    [16]byte
}

// String prints the key in its SQL text form.
func (k Key) String() string {
	switch k.kind {
	case KindInt:
		return strconv.FormatInt(k.i, 10)
	case KindUUID:
		var b [36]byte
		hex.Encode(b[0:8], k.u[0:4])
		b[8] = '-'
		hex.Encode(b[9:13], k.u[4:6])
		b[13] = '-'
		hex.Encode(b[14:18], k.u[6:8])
		b[18] = '-'
		hex.Encode(b[19:23], k.u[8:10])
		b[23] = '-'
		hex.Encode(b[24:], k.u[10:])
		return string(b[:])
	case KindTime:
		return time.UnixMicro(k.i + pgEpoch.UnixMicro()).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	}
	return k.s
}

// hash is the key's PostgreSQL extended hash with seed 0.
func (k Key) hash() int64 {
	switch k.kind {
	case KindInt:
		return HashInt(k.i)
	case KindUUID:
		return HashUUID(k.u)
	}
	return HashText(k.s)
}

// compare orders keys of one kind as PostgreSQL does (text in the C
// collation, byte by byte).
func (k Key) compare(o Key) int {
	switch k.kind {
	case KindInt, KindTime:
		return cmp.Compare(k.i, o.i)
	case KindUUID:
		return bytes.Compare(k.u[:], o.u[:])
	}
	return strings.Compare(k.s, o.s)
}

// ParseKey reads a key of the given kind from its SQL text form, as the
// type's input function would.
func ParseKey(kind KeyKind, text string) (Key, error) {
	k := Key{kind: kind}
	switch kind {
	case KindInt:
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return k, fmt.Errorf("invalid input syntax for type bigint: %q", text)
		}
		k.i = v
	case KindText:
		k.s = text
	case KindUUID:
		u, err := parseUUID(text)
		if err != nil {
			return k, err
		}
		k.u = u
	case KindTime:
		t, err := parseTime(text)
		if err != nil {
			return k, err
		}
		k.i = t
	default:
		return k, fmt.Errorf("unknown key kind %d", kind)
	}
	return k, nil
}

// BinaryKey reads a key of the given kind from a bind parameter in binary
// format. Integers may come as int2, int4 or int8, which their lengths
// tell apart.
func BinaryKey(kind KeyKind, b []byte) (Key, error) {
	k := Key{kind: kind}
	switch kind {
	case KindInt:
		switch len(b) {
		case 2:
			k.i = int64(int16(binary.BigEndian.Uint16(b)))
		case 4:
			k.i = int64(int32(binary.BigEndian.Uint32(b)))
		case 8:
			k.i = int64(binary.BigEndian.Uint64(b))
		default:
			return k, fmt.Errorf("a binary integer key has 2, 4 or 8 bytes, not %d", len(b))
		}
	case KindText:
		k.s = string(b)
	case KindUUID:
		if len(b) != 16 {
			return k, fmt.Errorf("a binary uuid has 16 bytes, not %d", len(b))
		}
		copy(k.u[:], b)
	case KindTime:
		switch len(b) {
		case 4: // date: days since 2000-01-01
			k.i = int64(int32(binary.BigEndian.Uint32(b))) * 86400e6
		case 8:
			k.i = int64(binary.BigEndian.Uint64(b))
		default:
			return k, fmt.Errorf("a binary date or timestamp has 4 or 8 bytes, not %d", len(b))
		}
	}
	return k, nil
}

// parseUUID accepts what PostgreSQL's uuid_in does: 32 hex digits, upper
// or lower case, optionally in braces and with a hyphen after any group of
// four digits.
func parseUUID(text string) ([16]byte, error) {
	var u [16]byte
	s := strings.TrimSpace(text)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	digits := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' && len(digits) > 0 && len(digits)%4 == 0 && i+1 < len(s) && s[i+1] != '-' {
			continue
		}
		digits = append(digits, c)
	}
	if len(digits) != 32 {
		return u, fmt.Errorf("invalid input syntax for type uuid: %q", text)
	}
	if _, err := hex.Decode(u[:], digits); err != nil {
		return u, fmt.Errorf("invalid input syntax for type uuid: %q", text)
	}
	return u, nil
}

// pgEpoch is where PostgreSQL's date and timestamp values count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTime reads the ISO forms of date, timestamp and timestamptz; a value
// without a zone is taken as UTC, which is what ordering timestamp
// (without time zone) values needs.
func parseTime(text string) (int64, error) {
	s := strings.TrimSpace(text)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMicro() - pgEpoch.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("invalid input syntax for a date or timestamp key: %q (use ISO 8601, such as 2024-01-31 12:00:00+00)", text)
}

// CompareText orders two keys of a kind given in SQL text form, as
// PostgreSQL orders the values; text that does not parse sorts as text.
func CompareText(kind KeyKind, a, b string) int {
	ka, errA := ParseKey(kind, a)
	kb, errB := ParseKey(kind, b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return ka.compare(kb)
}

// KindOf returns the key kind of a spec's key type name.
func KindOf(keyType string) (KeyKind, bool) {
	k, ok := keyTypes[strings.ToLower(keyType)]
	return k, ok
}
