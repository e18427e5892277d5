package shardmap

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
)

var shards3 = []string{"s0", "s1", "s2"}

func testSpec() Spec {
	return Spec{
		DefaultShard: "s1",
		Distributions: []DistributionSpec{
			{Name: "users", Method: MethodHash, KeyType: "bigint", Shards: shards3,
				Tables: []TableSpec{{Name: "users", Key: "id"}, {Name: "public.orders", Key: "user_id"}}},
			{Name: "events", Method: MethodRange, KeyType: "timestamptz",
				Tables: []TableSpec{{Name: "events", Key: "at"}},
				Ranges: []RangeSpec{{Hi: "2024-01-01", Shard: "s0"}, {Lo: "2024-01-01", Hi: "2025-01-01", Shard: "s1"}}},
			{Name: "tenants", Method: MethodDirectory, KeyType: "text", Place: "hash", Shards: []string{"s0", "s2"},
				Tables: []TableSpec{{Name: "tenants", Key: "name"}}},
		},
		ReferenceTables: []string{"countries"},
	}
}

func TestBuildAndLocate(t *testing.T) {
	m, err := Build(testSpec(), shards3, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.DefaultShard() != 1 || m.Version() != 7 {
		t.Fatalf("default %d version %d", m.DefaultShard(), m.Version())
	}
	if p, tb := m.Table("", "orders"); p != Sharded || tb.Key != "user_id" || tb.Dist.Name != "users" {
		t.Fatalf("orders: %v %+v", p, tb)
	}
	if p, _ := m.Table("public", "users"); p != Sharded {
		t.Fatal("public.users should match the unqualified users")
	}
	if p, _ := m.Table("other", "orders"); p != Unsharded {
		t.Fatal("other.orders is not public.orders")
	}
	if p, _ := m.Table("", "countries"); p != Reference {
		t.Fatal("countries is a reference table")
	}
	if p, _ := m.Table("", "logs"); p != Unsharded {
		t.Fatal("logs is unsharded")
	}

	users := m.Distribution("users")
	counts := make([]int, 3)
	for i := range int64(3000) {
		k, _ := ParseKey(KindInt, itoa(i))
		s, err := m.Locate(context.Background(), users, k)
		if err != nil {
			t.Fatal(err)
		}
		counts[s]++
	}
	for s, n := range counts {
		if n < 800 {
			t.Errorf("shard %d got %d of 3000 keys: the split is not even", s, n)
		}
	}
	// The owner follows from the hash alone.
	k, _ := ParseKey(KindInt, "42")
	s, _ := m.Locate(context.Background(), users, k)
	if want, _ := users.ShardOfHash(HashInt(42)); s != want {
		t.Fatalf("key 42 on %d, its hash on %d", s, want)
	}

	events := m.Distribution("events")
	for _, c := range []struct {
		at    string
		shard int
	}{{"2023-12-31 23:59:59+00", 0}, {"2024-01-01 00:00:00+00", 1}, {"2024-06-01", 1}} {
		k, err := ParseKey(KindTime, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := m.Locate(context.Background(), events, k); err != nil || s != c.shard {
			t.Errorf("%s: shard %d, %v; want %d", c.at, s, err, c.shard)
		}
	}
	k, _ = ParseKey(KindTime, "2025-01-01")
	if _, err := m.Locate(context.Background(), events, k); err == nil || !strings.Contains(err.Error(), "in no range") {
		t.Errorf("a key past the last range: %v", err)
	}
}

func TestDirectoryPlacesOnce(t *testing.T) {
	m, err := Build(testSpec(), shards3, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Distribution("tenants")
	k, _ := ParseKey(KindText, "acme")
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			got[i], _ = m.Locate(context.Background(), d, k)
		})
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] || s == 1 {
			t.Fatalf("placements %v: one key, one shard among s0 and s2", got)
		}
	}
}

func TestBuildRefusesBadMaps(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"unknown shard", func(s *Spec) { s.Distributions[0].Shards[2] = "s9" }, `distributions[0].shards[2]: unknown shard "s9"`},
		{"hash gap", func(s *Spec) {
			s.Distributions[0].Shards = nil
			s.Distributions[0].Ranges = []RangeSpec{{Hi: "0", Shard: "s0"}, {Lo: "10", Shard: "s1"}}
		}, "distributions[0].ranges: the hash space [0, 10) is in no range"},
		{"hash open start", func(s *Spec) {
			s.Distributions[0].Shards = nil
			s.Distributions[0].Ranges = []RangeSpec{{Lo: "0", Shard: "s1"}}
		}, "is in no range; the first range needs an empty lo"},
		{"overlap", func(s *Spec) {
			s.Distributions[1].Ranges[1].Lo = "2023-06-01"
		}, "distributions[1].ranges[1]: overlaps distributions[1].ranges[0]"},
		{"bad bound", func(s *Spec) { s.Distributions[1].Ranges[0].Hi = "yesterday" }, "distributions[1].ranges[0].hi: invalid input syntax"},
		{"table twice", func(s *Spec) { s.ReferenceTables = append(s.ReferenceTables, "users") }, "reference_tables[1]: table users is already declared at distributions[0].tables[0].name"},
		{"method", func(s *Spec) { s.Distributions[0].Method = "modulo" }, `distributions[0].method: expected hash, range or directory, got "modulo"`},
		{"hash on time", func(s *Spec) { s.Distributions[0].KeyType = "date" }, "use method: range for dates"},
		{"key type", func(s *Spec) { s.Distributions[0].KeyType = "float8" }, `distributions[0].key_type: expected one of`},
		{"default", func(s *Spec) { s.DefaultShard = "nope" }, `default_shard: unknown shard "nope"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testSpec()
			s.Distributions[0].Shards = append([]string(nil), shards3...)
			c.edit(&s)
			_, err := Build(s, shards3, 0, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestEvenSplitCoversTheSpace(t *testing.T) {
	for n := 1; n <= 7; n++ {
		b := evenSplit(n)
		if len(b) != n-1 {
			t.Fatalf("%d shards: %d bounds", n, len(b))
		}
		prev := int64(math.MinInt64)
		for _, x := range b {
			if x <= prev {
				t.Fatalf("%d shards: bounds %v not increasing", n, b)
			}
			prev = x
		}
	}
	if b := evenSplit(2); b[0] != 0 {
		t.Fatalf("two shards split at %d, want about 0", b[0])
	}
}

func TestParseKeyForms(t *testing.T) {
	a, err := ParseKey(KindUUID, "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseKey(KindUUID, "a0eebc999c0b4ef8bb6d6bb9bd380a11")
	if err != nil || a != b || a.String() != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Fatalf("%v %v %v", a, b, err)
	}
	if _, err := ParseKey(KindInt, "12x"); err == nil {
		t.Fatal("12x is not an integer")
	}
	bin, _ := BinaryKey(KindInt, []byte{0xff, 0xfe})
	if bin.i != -2 {
		t.Fatalf("int2 -2 read as %d", bin.i)
	}
}

func itoa(i int64) string {
	k := Key{kind: KindInt, i: i}
	return k.String()
}

// TestRangeSpecsKeepTextBounds: a text range bound spelled like an open end
// is still a bound, and an even hash split comes back as explicit ranges.
func TestRangeSpecsKeepTextBounds(t *testing.T) {
	spec := Spec{DefaultShard: "s0", Distributions: []DistributionSpec{
		{Name: "names", Method: MethodRange, KeyType: "text", Tables: []TableSpec{{Name: "names", Key: "n"}},
			Ranges: []RangeSpec{{Hi: "+inf", Shard: "s0"}, {Lo: "+inf", Hi: "-inf", Shard: "s1"}, {Lo: "-inf", Shard: "s2"}}},
		{Name: "users", Method: MethodHash, KeyType: "bigint", Shards: []string{"s0", "s1"}, Tables: []TableSpec{{Name: "users", Key: "id"}}},
	}}
	m, err := Build(spec, shards3, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := m.RangeSpecs(m.Distribution("names"))
	if len(got) != 3 || got[0] != spec.Distributions[0].Ranges[0] || got[1] != spec.Distributions[0].Ranges[1] || got[2] != spec.Distributions[0].Ranges[2] {
		t.Fatalf("text ranges: %+v", got)
	}
	hash := m.RangeSpecs(m.Distribution("users"))
	if len(hash) != 2 || hash[0].Lo != "" || hash[1].Hi != "" || hash[0].Hi != hash[1].Lo || hash[0].Shard != "s0" || hash[1].Shard != "s1" {
		t.Fatalf("hash split: %+v", hash)
	}
}
