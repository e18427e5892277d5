package router

import (
	"strconv"
	"testing"
	"unsafe"
)

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

// BenchmarkPlanPointSelectLiteral plans a simple-protocol point select
// whose literal changes every time, as a client without prepared
// statements sends it, in a reused buffer as the proxy does. shape: the
// plan of the text's shape, filled with its value; parse: the text
// parsed and planned, which is what every such text cost before shapes.
func BenchmarkPlanPointSelectLiteral(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"shape", 0}, {"parse", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(Options{CacheSize: bc.size})
			const head = "SELECT id, name FROM users WHERE id = "
			buf := []byte(head)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				buf = strconv.AppendInt(buf[:len(head)], int64(i), 10)
				p := r.Plan(unsafe.String(unsafe.SliceData(buf), len(buf)), testSchema)
				if p.Spread != SpreadKeys || p.Keys[0].Text != string(buf[len(head):]) {
					b.Fatal(p)
				}
			}
		})
	}
}

// The same for the most common write: a one-row INSERT with a string.
func BenchmarkPlanInsertLiteral(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"shape", 0}, {"parse", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(Options{CacheSize: bc.size})
			const head = "INSERT INTO orders (user_id, total, note) VALUES ("
			buf := []byte(head)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				buf = strconv.AppendInt(buf[:len(head)], int64(i), 10)
				buf = append(buf, ", 12.50, 'it''s order "...)
				buf = strconv.AppendInt(buf, int64(i), 10)
				buf = append(buf, "')"...)
				p := r.Plan(unsafe.String(unsafe.SliceData(buf), len(buf)), testSchema)
				if p.Spread != SpreadKeys || len(p.Keys) != 1 {
					b.Fatal(p)
				}
			}
		})
	}
}
