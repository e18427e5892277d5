package router

import "testing"

// A cached point select: a hash, a lock and a map lookup, no allocation.
func BenchmarkPlanCachedPointSelect(b *testing.B) {
	r := New(Options{})
	q := "SELECT abalance FROM users WHERE id = $1"
	r.Plan(q, testSchema)
	b.ReportAllocs()
	for b.Loop() {
		if p := r.Plan(q, testSchema); p.Spread != SpreadKeys {
			b.Fatal(p)
		}
	}
}

func BenchmarkPlanCachedParallel(b *testing.B) {
	r := New(Options{})
	q := "SELECT abalance FROM users WHERE id = $1"
	r.Plan(q, testSchema)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p := r.Plan(q, testSchema); p.Spread != SpreadKeys {
				b.Error(p)
				return
			}
		}
	})
}

// Planning a scatter query with a merge and a rewrite, cache off: the
// parse, the analysis and the deparse.
func BenchmarkPlanUncachedMerge(b *testing.B) {
	r := New(Options{CacheSize: -1})
	q := "SELECT status, count(*), avg(total) FROM orders o JOIN users u ON u.id = o.user_id " +
		"WHERE o.total > $1 GROUP BY status HAVING sum(total) > 10 ORDER BY 2 DESC LIMIT 5"
	b.ReportAllocs()
	for b.Loop() {
		if p := r.Plan(q, testSchema); p.Merge == nil {
			b.Fatal(p)
		}
	}
}
