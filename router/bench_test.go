package router

import (
	"strconv"
	"testing"
)

// The prefilter decides a point select alone: no cache, no parser.
func BenchmarkAnalyzeCachedPointSelect(b *testing.B) {
	r := New(Options{})
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	b.ReportAllocs()
	for b.Loop() {
		if a := r.Analyze(q); a.Write || !a.Plain() {
			b.Fatal(a)
		}
	}
}

// lo_get is suspicious (every lo_ function goes to the parser) but reads:
// only the parser knows, and the answer comes from the cache.
func BenchmarkAnalyzeCachedParsed(b *testing.B) {
	r := New(Options{})
	q := "SELECT id, lo_get(body) FROM documents WHERE id = $1"
	b.ReportAllocs()
	for b.Loop() {
		if a := r.Analyze(q); a.Write {
			b.Fatal(a)
		}
	}
}

// The same, from many goroutines at once: cache hits share locks.
func BenchmarkAnalyzeCachedParsedParallel(b *testing.B) {
	r := New(Options{})
	q := "SELECT id, lo_get(body) FROM documents WHERE id = $1"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if a := r.Analyze(q); a.Write {
				b.Error(a)
				return
			}
		}
	})
}

func BenchmarkAnalyzePlainWrite(b *testing.B) {
	r := New(Options{})
	q := "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
	b.ReportAllocs()
	for b.Loop() {
		if a := r.Analyze(q); !a.Write || !a.Plain() {
			b.Fatal(a)
		}
	}
}

func BenchmarkAnalyzeBeginCommit(b *testing.B) {
	r := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		r.Analyze("BEGIN")
		r.Analyze("COMMIT")
	}
}

// A ~150-character join that needs the parser (FOR UPDATE), with a
// literal that changes every time so the cache never hits.
func BenchmarkParseUncached(b *testing.B) {
	r := New(Options{})
	const head = "SELECT a.aid, a.abalance, b.bbalance FROM pgbench_accounts a " +
		"JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid = "
	const tail = " AND b.bbalance > 0 FOR UPDATE OF a"
	buf := []byte(head)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		buf = strconv.AppendInt(append(buf[:len(head)], ""...), int64(i), 10)
		buf = append(buf, tail...)
		if a := r.Analyze(string(buf)); !a.Write {
			b.Fatal(a)
		}
	}
}
