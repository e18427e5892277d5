package rebalance_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	hash, rng, dir := shardmap.MethodHash, shardmap.MethodRange, shardmap.MethodDirectory
	for _, c := range []struct {
		name string
		r    rebalance.Range
		want string
	}{
		{"hash upper half", rebalance.Range{Method: hash, KeyType: "bigint", Lo: "0"},
			`(hashint8extended(("id")::bigint, 0) >= '0'::bigint)`},
		{"hash int4 both ends", rebalance.Range{Method: hash, KeyType: "integer", Lo: "-5", Hi: "7"},
			`(hashint8extended(("id")::bigint, 0) >= '-5'::bigint AND hashint8extended(("id")::bigint, 0) < '7'::bigint)`},
		{"hash min is open", rebalance.Range{Method: hash, KeyType: "text", Lo: "-9223372036854775808", Hi: "0"},
			`(hashtextextended(("id")::text, 0) < '0'::bigint)`},
		{"hash everything", rebalance.Range{Method: hash, KeyType: "uuid"}, `true`},
		{"hash uuid", rebalance.Range{Method: hash, KeyType: "uuid", Hi: "1"}, `(uuid_hash_extended("id", 0) < '1'::bigint)`},
		{"range text in C", rebalance.Range{Method: rng, KeyType: "varchar", Lo: "m"},
			`(("id")::text COLLATE "C" >= 'm'::text)`},
		{"range int", rebalance.Range{Method: rng, KeyType: "smallint", Lo: "1", Hi: "100000"},
			`("id" >= '1'::bigint AND "id" < '100000'::bigint)`},
		{"range timestamptz in UTC", rebalance.Range{Method: rng, KeyType: "timestamptz", Lo: "2024-03-01 12:00:00+05:30"},
			`("id" >= '2024-03-01 06:30:00+00'::timestamptz)`},
		{"range timestamp without zone", rebalance.Range{Method: rng, KeyType: "timestamp", Hi: "2024-03-01T12:00:00.5"},
			`("id" < '2024-03-01 12:00:00.5'::timestamp)`},
		{"range date rounds up", rebalance.Range{Method: rng, KeyType: "date", Lo: "2024-01-10 12:00", Hi: "2024-02-01"},
			`("id" >= '2024-01-11'::date AND "id" < '2024-02-01'::date)`},
		{"directory quotes", rebalance.Range{Method: dir, KeyType: "text", Keys: []string{"o'brien", `a\b`, "'); DROP TABLE t; --"}},
			`("id" IN ('o''brien'::text, E'a\\b'::text, '''); DROP TABLE t; --'::text))`},
		{"unchecked bound stays quoted", rebalance.Range{Method: hash, KeyType: "bigint", Lo: "0; DROP TABLE t"},
			`(hashint8extended(("id")::bigint, 0) >= '0; DROP TABLE t'::bigint AND hashint8extended(("id")::bigint, 0) < ''::bigint)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := rebalance.Filter(c.r, `"id"`); got != c.want {
				t.Errorf("Filter:\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestRangeCheck(t *testing.T) {
	t.Parallel()
	hash, rng, dir := shardmap.MethodHash, shardmap.MethodRange, shardmap.MethodDirectory
	for _, c := range []struct {
		r    rebalance.Range
		want string // "" for valid
	}{
		{rebalance.Range{Method: hash, KeyType: "bigint", Lo: "0"}, ""},
		{rebalance.Range{Method: hash, KeyType: "bigint", Lo: "5", Hi: "5"}, "empty"},
		{rebalance.Range{Method: hash, KeyType: "bigint", Lo: "x"}, "not an int64"},
		{rebalance.Range{Method: hash, KeyType: "date"}, "cannot be hashed"},
		{rebalance.Range{Method: hash, KeyType: "bigint", Keys: []string{"1"}}, "not keys"},
		{rebalance.Range{Method: rng, KeyType: "text", Lo: "b", Hi: "a"}, "empty"},
		{rebalance.Range{Method: rng, KeyType: "integer", Lo: "1.5"}, "invalid input"},
		{rebalance.Range{Method: rng, KeyType: "uuid", Lo: "nope"}, "invalid input"},
		{rebalance.Range{Method: dir, KeyType: "text"}, "at least one key"},
		{rebalance.Range{Method: dir, KeyType: "text", Keys: []string{"a\x00"}}, "NUL"},
		{rebalance.Range{Method: dir, KeyType: "text", Keys: []string{"a"}, Lo: "a"}, "not bounds"},
		{rebalance.Range{Method: "modulo", KeyType: "text"}, "unknown method"},
		{rebalance.Range{Method: hash, KeyType: "numeric"}, "unknown key type"},
	} {
		err := c.r.Check()
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Check() = %v, want %q", c.r, err, c.want)
		}
	}
}

func TestMoverRefusesBadJobNames(t *testing.T) {
	t.Parallel()
	for _, job := range []string{"", "M1", "1m", "m-1", "m1; DROP", strings.Repeat("m", 41)} {
		m := &rebalance.Mover{Job: job, Tables: []rebalance.Table{{Name: "t", Key: "id"}}, Range: upperHalf}
		if err := m.StartCopy(context.Background()); err == nil || !strings.Contains(err.Error(), "job name") {
			t.Errorf("job %q: %v", job, err)
		}
	}
}
