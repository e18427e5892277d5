package shardmap

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/test/cluster"
)

var hashSeedFlag = flag.Uint64("hashseed", 0, "seed for the random values of TestHashMatchesServer; 0 picks one from the clock")

const (
	// randomPerType is how many random values each type gets, on top of
	// its edge cases.
	randomPerType = 100_000
	// serverBatch values go to the server per query: large enough that
	// round trips do not dominate, small enough to keep messages modest.
	serverBatch = 10_000
	// maxReport bounds the mismatches a failure lists.
	maxReport = 5
)

// TestHashMatchesServer compares the Go hashes with a live server's on edge
// cases and on random values of every supported type. It needs PostgreSQL
// binaries and skips without them, as the integration tests do.
func TestHashMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	seed := *hashSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// Logged up front so that any failure, in any subtest, shows it.
	t.Logf("random values from -hashseed=%d", seed)
	host := cluster.ForTest(t, cluster.Options{Shards: 1}).Shards[0].Primary

	t.Run("catalog", func(t *testing.T) {
		t.Parallel()
		checkHashCatalog(t, host)
	})
	t.Run("int2", func(t *testing.T) {
		t.Parallel()
		r := newRand(seed, 2)
		// Every int2 value fits in a few batches, so take them all.
		vals := make([]int16, 0, 1<<16+randomPerType)
		for v := math.MinInt16; v <= math.MaxInt16; v++ {
			vals = append(vals, int16(v))
		}
		for range randomPerType {
			vals = append(vals, int16(r.Uint32()))
		}
		checkServer(t, seed, host, "hashint2extended", "int2", vals, func(v int16) int64 { return HashInt(int64(v)) }, inArray)
	})
	t.Run("int4", func(t *testing.T) {
		t.Parallel()
		r := newRand(seed, 4)
		vals := []int32{0, 1, -1, math.MinInt32, math.MaxInt32, math.MinInt16 - 1, math.MaxInt16 + 1}
		for range randomPerType {
			vals = append(vals, int32(randInt(r)))
		}
		checkServer(t, seed, host, "hashint4extended", "int4", vals, func(v int32) int64 { return HashInt(int64(v)) }, inArray)
	})
	t.Run("int8", func(t *testing.T) {
		t.Parallel()
		r := newRand(seed, 8)
		vals := int8Edges()
		for range randomPerType {
			vals = append(vals, randInt(r))
		}
		checkServer(t, seed, host, "hashint8extended", "int8", vals, HashInt, inArray)
	})
	for _, typ := range []string{"text", "varchar"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			r := newRand(seed, 16)
			vals := textEdges()
			for range randomPerType {
				vals = append(vals, randText(r, r.IntN(201)))
			}
			// varchar has no hash function of its own: its values hash
			// through the text opclass, which checkHashCatalog confirms.
			checkServer(t, seed, host, "hashtextextended", typ, vals, HashText, inArray, copied, shifted)
		})
	}
	t.Run("uuid", func(t *testing.T) {
		t.Parallel()
		r := newRand(seed, 36)
		vals := [][16]byte{{}, {15: 1}, {0: 0x80}}
		ff := [16]byte{}
		for i := range ff {
			ff[i] = 0xff
		}
		vals = append(vals, ff)
		for range randomPerType {
			var u [16]byte
			for i := range u {
				u[i] = byte(r.Uint32())
			}
			vals = append(vals, u)
		}
		checkServer(t, seed, host, "uuid_hash_extended", "uuid", vals, HashUUID, inArray, copied, shifted)
	})
	// The comparison above is only worth something if it can fail: feed it
	// functions that are wrong in small ways and expect every value caught.
	t.Run("detects wrong function", func(t *testing.T) {
		t.Parallel()
		r := newRand(seed, 99)
		ints := int8Edges()
		for range serverBatch {
			ints = append(ints, randInt(r))
		}
		texts := textEdges()
		for range serverBatch {
			texts = append(texts, randText(r, r.IntN(201)))
		}
		conn := connect(t, host)
		check := func(name string, bad, total int) {
			if bad != total {
				t.Errorf("%s: comparison flagged %d of %d values, want all", name, bad, total)
			}
		}
		got, err := serverHashes(conn, inArray, "hashint8extended", "int8", ints)
		if err != nil {
			t.Fatal(err)
		}
		bad, _ := compareHashes(ints, got, func(v int64) int64 { return hashInt(v, 1) })
		check("HashInt with seed 1", bad, len(ints))
		bad, _ = compareHashes(ints, got, func(v int64) int64 { return HashInt(v) ^ 1<<40 })
		check("HashInt with bit 40 flipped", bad, len(ints))
		got, err = serverHashes(conn, inArray, "hashtextextended", "text", texts)
		if err != nil {
			t.Fatal(err)
		}
		bad, _ = compareHashes(texts, got, func(s string) int64 { return HashText(s) ^ 1 })
		check("HashText with bit 0 flipped", bad, len(texts))
	})
}

// A layout is a query that has the server hash an array of values, each
// placed so that hash_bytes_extended reads it through a given loop: the
// server has one for word-aligned data and one for the rest. Both must
// agree with Go; only tests like this one would notice if they did not.
// %[1]s is the hash function, %[2]s the value type.
type layout struct{ name, sql string }

var (
	// inArray hashes elements where unnest leaves them: with one-byte
	// varlena headers, so a short text's data starts at any alignment.
	inArray = layout{"array", `SELECT array_agg(%[1]s(x, 0) ORDER BY i)
		FROM unnest($1::%[2]s[]) WITH ORDINALITY AS u(x, i)`}
	// copied hashes a fresh palloc'd copy, which is word-aligned.
	copied = layout{"copied", `SELECT array_agg(%[1]s((x::text || '')::%[2]s, 0) ORDER BY i)
		FROM unnest($1::%[2]s[]) WITH ORDINALITY AS u(x, i)`}
	// shifted hashes values stored in a tuple one byte past an aligned
	// start, behind a "char": unaligned unless long enough to take a
	// four-byte header, which is aligned.
	shifted = layout{"shifted", `WITH u AS MATERIALIZED (
			SELECT 'p'::"char" AS pad, x, i FROM unnest($1::%[2]s[]) WITH ORDINALITY AS a(x, i))
		SELECT array_agg(%[1]s(x, 0) ORDER BY i) FROM u`}
)

// checkServer has the server hash vals with fn(x::typ, 0) in each layout
// and fails t for every value where goHash disagrees.
func checkServer[T any](t *testing.T, seed uint64, host *cluster.Host, fn, typ string, vals []T, goHash func(T) int64, layouts ...layout) {
	t.Helper()
	conn := connect(t, host)
	for _, l := range layouts {
		begin := time.Now()
		got, err := serverHashes(conn, l, fn, typ, vals)
		if err != nil {
			t.Fatal(err)
		}
		bad, report := compareHashes(vals, got, goHash)
		if bad > 0 {
			t.Errorf("%d of %d values hash differently from %s, %s layout (-hashseed=%d to reproduce):\n%s",
				bad, len(vals), fn, l.name, seed, strings.Join(report, "\n"))
			continue
		}
		t.Logf("%d %s values match %s, %s layout (%v)", len(vals), typ, fn, l.name, time.Since(begin).Round(time.Millisecond))
	}
}

// serverHashes returns fn(x, 0) for each of vals sent as a typ[] array and
// laid out by l, in the order of vals. One query per batch keeps the round
// trips few.
func serverHashes[T any](conn *pgx.Conn, l layout, fn, typ string, vals []T) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// array_agg of an empty batch would be NULL, but batches are never
	// empty: the loop only runs while values remain.
	sql := fmt.Sprintf(l.sql, fn, typ)
	out := make([]int64, 0, len(vals))
	for batch := range chunks(vals, serverBatch) {
		var hashes []int64
		if err := conn.QueryRow(ctx, sql, batch).Scan(&hashes); err != nil {
			return nil, fmt.Errorf("%s over %d %s values: %w", fn, len(batch), typ, err)
		}
		if len(hashes) != len(batch) {
			return nil, fmt.Errorf("%s: sent %d values, got %d hashes", fn, len(batch), len(hashes))
		}
		out = append(out, hashes...)
	}
	return out, nil
}

// compareHashes counts the values where goHash differs from the server's
// hash and describes the first few.
func compareHashes[T any](vals []T, server []int64, goHash func(T) int64) (bad int, report []string) {
	for i, v := range vals {
		if got := goHash(v); got != server[i] {
			bad++
			if len(report) < maxReport {
				report = append(report, fmt.Sprintf("  value %d, %#v: Go %d, server %d", i, v, got, server[i]))
			}
		}
	}
	return bad, report
}

// checkHashCatalog confirms that the SQL functions the test calls are the
// ones the server itself uses to hash each type, in hash indexes and hash
// partitioning: support function 2 of the type's default hash opclass.
// varchar has no hash opclass; the server binary-coerces it to text.
func checkHashCatalog(t *testing.T, host *cluster.Host) {
	want := map[string]string{
		"int2": "hashint2extended",
		"int4": "hashint4extended",
		"int8": "hashint8extended",
		"text": "hashtextextended",
		"uuid": "uuid_hash_extended",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, host)
	for typ, fn := range want {
		var got string
		err := conn.QueryRow(ctx, `
			SELECT p.amproc::regproc::text
			FROM pg_opclass c
			JOIN pg_am a ON a.oid = c.opcmethod AND a.amname = 'hash'
			JOIN pg_amproc p ON p.amprocfamily = c.opcfamily AND p.amprocnum = 2
				AND p.amproclefttype = c.opcintype AND p.amprocrighttype = c.opcintype
			WHERE c.opcdefault AND c.opcintype = $1::regtype`, typ).Scan(&got)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
		} else if got != fn {
			t.Errorf("%s hashes with %s, want %s", typ, got, fn)
		}
	}
	var n int
	err := conn.QueryRow(ctx, `
		SELECT count(*) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
		WHERE a.amname = 'hash' AND c.opcintype = 'varchar'::regtype`).Scan(&n)
	if err != nil {
		t.Error(err)
	} else if n != 0 {
		t.Errorf("varchar has %d hash opclasses of its own, want none (it should use text's)", n)
	}
}

func connect(t *testing.T, host *cluster.Host) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := host.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// chunks yields vals in consecutive slices of at most n.
func chunks[T any](vals []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(vals) > 0 {
			k := min(n, len(vals))
			if !yield(vals[:k]) {
				return
			}
			vals = vals[k:]
		}
	}
}

// newRand gives each subtest its own stream from the one printed seed, so
// that subtests stay reproducible while running in parallel.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// randInt favours the values hashint8extended treats specially: small
// numbers, the int32 range where the high half vanishes, and neighbours of
// powers of two, besides uniformly random ones.
func randInt(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return int64(r.Uint64())
	case 1:
		return int64(int32(r.Uint32()))
	case 2:
		return r.Int64N(2001) - 1000
	default:
		v := int64(1)<<r.IntN(63) + r.Int64N(7) - 3
		if r.IntN(2) == 0 {
			v = -v
		}
		return v
	}
}

// randText returns valid UTF-8 without NUL, which a text value cannot hold,
// of exactly n bytes. Half the strings are ASCII; the rest mix in runes of
// every encoded length so that they straddle the 12-byte blocks.
func randText(r *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n)
	ascii := r.IntN(2) == 0
	for b.Len() < n {
		c := rune(1 + r.IntN(0x7f))
		if !ascii {
			switch r.IntN(4) {
			case 1:
				c = 0x80 + r.Int32N(0x800-0x80)
			case 2:
				// Skip the surrogates, which UTF-8 cannot carry.
				c = 0x800 + r.Int32N(0x10000-0x800-0x800)
				if c >= 0xd800 {
					c += 0x800
				}
			case 3:
				c = 0x10000 + r.Int32N(utf8.MaxRune+1-0x10000)
			}
		}
		if b.Len()+utf8.RuneLen(c) > n {
			c = 'x'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func int8Edges() []int64 {
	vals := []int64{math.MinInt64, math.MaxInt64}
	for _, base := range []int64{0, math.MinInt32, math.MaxInt32, math.MinInt16, math.MaxInt16, 1 << 32, -1 << 32} {
		for d := int64(-2); d <= 2; d++ {
			vals = append(vals, base+d)
		}
	}
	return vals
}

func textEdges() []string {
	vals := []string{"", "a", "héllo", "日本語", "🐘", strings.Repeat("ä", 5000)}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
	for n := 1; n <= len(alphabet); n++ {
		vals = append(vals, alphabet[:n])
	}
	return vals
}
