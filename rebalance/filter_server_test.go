package rebalance_test

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
)

// testFilterMatchesShardmap checks that the server, evaluating Filter,
// selects exactly the rows shardmap places in the range: the hash of
// every supported key type, key ranges of every type (text bytewise,
// times as instants) and directory keys that need quoting.
func (e *testEnv) testFilterMatchesShardmap(t *testing.T) {
	p := e.newPair(t)
	conn := p.src
	// The filter must not depend on the session's time zone.
	mustExec(t, conn, "SET TimeZone = 'Asia/Kolkata'")
	mustExec(t, conn, `CREATE TABLE k (i8 bigint, i4 integer, i2 smallint, t text, v varchar(40), u uuid,
		ts timestamptz, tsn timestamp, d date)`)
	r := rand.New(rand.NewPCG(1, 2))
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02 15:04:05.999999", s); return t }
	rows := [][]any{
		{int64(0), int32(0), int16(0), "", "", [16]byte{}, day("2024-01-01 00:00:00"), day("2024-01-01 00:00:00"), day("2024-01-01 00:00:00")},
		{int64(math.MinInt64), int32(math.MinInt32), int16(math.MinInt16), "o'brien", `back\slash`, [16]byte{0: 0xff, 15: 0xff},
			day("2024-03-01 06:30:00"), day("2024-03-01 12:00:00"), day("2024-01-10 00:00:00")},
		{int64(math.MaxInt64), int32(math.MaxInt32), int16(math.MaxInt16), "Ünïcödé ✓", "$sg$", [16]byte([]byte("0123456789abcdef")),
			day("2024-03-01 06:29:59.999999"), day("2024-03-01 11:59:59"), day("2024-01-11 00:00:00")},
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 3000 {
		var u [16]byte
		for i := range u {
			u[i] = byte(r.UintN(256))
		}
		ts := base.Add(time.Duration(r.Int64N(int64(120*24*time.Hour))) / time.Microsecond * time.Microsecond)
		rows = append(rows, []any{r.Int64(), int32(r.Uint32()), int16(r.Uint32()), randText(r), randText(r), u, ts, ts, ts.Truncate(24 * time.Hour)})
	}
	if _, err := conn.CopyFrom(ctxFor(t, time.Minute), pgx.Identifier{"k"}, []string{"i8", "i4", "i2", "t", "v", "u", "ts", "tsn", "d"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	hashes := map[string]func(string) int64{
		"int":  func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return shardmap.HashInt(v) },
		"text": shardmap.HashText,
		"uuid": func(s string) int64 {
			b, _ := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
			return shardmap.HashUUID([16]byte(b))
		},
	}
	hashCols := []struct{ col, keyType, hash string }{
		{"i8", "bigint", "int"}, {"i4", "integer", "int"}, {"i2", "smallint", "int"},
		{"t", "text", "text"}, {"v", "varchar", "text"}, {"u", "uuid", "uuid"},
	}
	bounds := [][2]string{{"", "0"}, {"0", ""}, {strconv.FormatInt(math.MinInt64, 10), "-4611686018427387904"}, {"-4611686018427387904", "4611686018427387904"}}
	for range 4 {
		a, b := r.Int64(), r.Int64()
		bounds = append(bounds, [2]string{strconv.FormatInt(min(a, b), 10), strconv.FormatInt(max(a, b), 10)})
	}
	for _, c := range hashCols {
		for _, bd := range bounds {
			rg := rebalance.Range{Method: shardmap.MethodHash, KeyType: c.keyType, Lo: bd[0], Hi: bd[1]}
			checkFilter(t, conn, c.col, rg, func(s string) bool {
				h := hashes[c.hash](s)
				lo, hi := int64(math.MinInt64), int64(0)
				if bd[0] != "" {
					lo, _ = strconv.ParseInt(bd[0], 10, 64)
				}
				if bd[1] != "" {
					hi, _ = strconv.ParseInt(bd[1], 10, 64)
				}
				return h >= lo && (bd[1] == "" || h < hi)
			})
		}
	}
	rangeCases := []struct {
		col, keyType string
		kind         shardmap.KeyKind
		lo, hi       string
	}{
		{"i8", "bigint", shardmap.KindInt, "-100", "4611686018427387904"},
		{"i4", "integer", shardmap.KindInt, "", "0"},
		{"i2", "smallint", shardmap.KindInt, "-5", "99999999999"}, // a bound beyond the column's type
		{"t", "text", shardmap.KindText, "M", "m"},
		{"v", "varchar", shardmap.KindText, "", "a"},
		{"u", "uuid", shardmap.KindUUID, "40000000-0000-0000-0000-000000000000", "C0000000-0000-0000-0000-000000000000"},
		{"ts", "timestamptz", shardmap.KindTime, "2024-03-01 12:00:00+05:30", "2024-04-01"},
		{"tsn", "timestamp", shardmap.KindTime, "2024-03-01 12:00:00", ""},
		{"d", "date", shardmap.KindTime, "2024-01-10 12:00", "2024-02-15"},
	}
	for _, c := range rangeCases {
		rg := rebalance.Range{Method: shardmap.MethodRange, KeyType: c.keyType, Lo: c.lo, Hi: c.hi}
		checkFilter(t, conn, c.col, rg, func(s string) bool {
			return (c.lo == "" || shardmap.CompareText(c.kind, s, c.lo) >= 0) && (c.hi == "" || shardmap.CompareText(c.kind, s, c.hi) < 0)
		})
	}
	keys := []string{"o'brien", `back\slash`, "$sg$", "Ünïcödé ✓", "'); DROP TABLE k; --"}
	checkFilter(t, conn, "v", rebalance.Range{Method: shardmap.MethodDirectory, KeyType: "varchar", Keys: keys},
		func(s string) bool { return slices.Contains(keys, s) })
	ids := []string{"0", "-9223372036854775808"}
	checkFilter(t, conn, "i8", rebalance.Range{Method: shardmap.MethodDirectory, KeyType: "bigint", Keys: ids},
		func(s string) bool { return slices.Contains(ids, s) })
	if n := queryInt(t, conn, "SELECT count(*) FROM k"); n != int64(len(rows)) {
		t.Fatalf("k has %d rows, want %d", n, len(rows))
	}
}

// checkFilter compares the rows of column col the server selects with
// Filter to those want accepts, given the column's text as the server
// prints it.
func checkFilter(t *testing.T, conn *pgx.Conn, col string, r rebalance.Range, want func(string) bool) {
	t.Helper()
	if err := r.Check(); err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	ctx := ctxFor(t, time.Minute)
	var wantN int64
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %[1]s::text, coalesce(%[2]s, false) FROM k WHERE %[1]s IS NOT NULL`, col, rebalance.Filter(r, col)))
	if err != nil {
		t.Fatalf("%s over %+v: %v", rebalance.Filter(r, col), r, err)
	}
	var bad []string
	var text string
	var in bool
	_, err = pgx.ForEachRow(rows, []any{&text, &in}, func() error {
		w := want(text)
		if w {
			wantN++
		}
		if w != in && len(bad) < 3 {
			bad = append(bad, fmt.Sprintf("%q: server %v, shardmap %v", text, in, w))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("%s over %+v: %s", col, r, strings.Join(bad, "; "))
	}
	if wantN == 0 {
		t.Logf("%s over %+v selects nothing: a weak case", col, r)
	}
}

// randText mixes ASCII of both cases, multi-byte characters and lengths
// around lookup3's 12-byte blocks.
func randText(r *rand.Rand) string {
	const alphabet = "aZm09 'é✓Ω_-"
	runes := []rune(alphabet)
	n := r.IntN(30)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}
