package router

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

func TestCacheBound(t *testing.T) {
	for _, size := range []int{1, 2, 5, 64, 129, 1000} {
		r := New(Options{CacheSize: size})
		for i := 0; i < 4*size+50; i++ {
			q := fmt.Sprintf("select nextval('s%d')", i)
			if a := r.Analyze(q); !a.Write {
				t.Fatalf("%q: read", q)
			}
			if n := r.cache.len(); n > size {
				t.Fatalf("size %d: %d entries", size, n)
			}
		}
		if n := r.cache.len(); n != size {
			t.Errorf("size %d: %d entries once full", size, n)
		}
	}
	for size, shards := range map[int]int{1: 1, 100: 1, 128: 2, 1000: 15, DefaultCacheSize: maxShards} {
		if n := len(newCache[Analysis](size).shards); n != shards {
			t.Errorf("size %d: %d shards, want %d", size, n, shards)
		}
	}
}

func TestCacheOnlyParsed(t *testing.T) {
	r := New(Options{CacheSize: 100})
	for _, q := range []string{"select 1", "insert into t values (1)", "begin", "commit", "listen x", ""} {
		r.Analyze(q)
	}
	if n := r.cache.len(); n != 0 {
		t.Fatalf("%d entries for statements the lexer settles", n)
	}
	r.Analyze("select 1 for update")
	r.Analyze("set a = 1")
	r.Analyze("select 1; show b")
	if n := r.cache.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	long := "select nextval('s')" + fmt.Sprintf("%*s", maxCachedQuery, "")
	if !r.Analyze(long).Write || r.cache.len() != 3 {
		t.Fatalf("a %d-byte text was cached", len(long))
	}
}

func TestCacheLRU(t *testing.T) {
	c := newShardedCache[Analysis](3, 1)
	val := func(i int) Analysis { return Analysis{Hint: Hint(i)} }
	c.put("a", val(1))
	c.put("b", val(2))
	c.put("c", val(3))
	if v, ok := c.get("a"); !ok || v.Hint != 1 {
		t.Fatal("a missing")
	}
	c.put("d", val(4)) // evicts b, the least recently used
	if _, ok := c.get("b"); ok {
		t.Fatal("b kept")
	}
	for i, k := range []string{"a", "c", "d"} {
		if v, ok := c.get(k); !ok || v.Hint != Hint([]int{1, 3, 4}[i]) {
			t.Fatalf("%s: %v %v", k, v, ok)
		}
	}
	c.put("c", val(9)) // replaces in place
	if v, _ := c.get("c"); v.Hint != 9 || c.len() != 3 {
		t.Fatalf("c = %v, %d entries", v, c.len())
	}
	c.put("e", val(5)) // a is now the least recently used
	if _, ok := c.get("a"); ok {
		t.Fatal("a kept")
	}
}

// The proxy looks texts up straight from its read buffer: the cache must
// copy the key it keeps.
func TestCacheKeyIsCopied(t *testing.T) {
	r := New(Options{CacheSize: 10})
	buf := []byte("select nextval('s')")
	view := unsafe.String(unsafe.SliceData(buf), len(buf))
	if !r.Analyze(view).Write {
		t.Fatal("read")
	}
	copy(buf, "select lo_get(1)   ")
	if r.Analyze(view).Write {
		t.Fatal("the reused buffer was analysed as its old text")
	}
	if !r.Analyze("select nextval('s')").Write {
		t.Fatal("the first text's entry changed with the buffer")
	}
	if n := r.cache.len(); n != 2 {
		t.Fatalf("%d entries", n)
	}
}

func TestCacheOff(t *testing.T) {
	r := New(Options{CacheSize: -1})
	if r.cache != nil {
		t.Fatal("cache on")
	}
	for i := 0; i < 2; i++ {
		a := r.Analyze("set x = 1; select nextval('s')")
		if !a.Write || len(a.Statements) != 2 || a.Statements[0].Set.Name != "x" {
			t.Fatalf("got %+v", a)
		}
	}
}

// TestConcurrent runs many sessions against a small cache, so that hits,
// misses and evictions interleave; run it with -race.
func TestConcurrent(t *testing.T) {
	queries := []string{
		"select 1", "select nextval('s')", "select lo_get(1)", "select * from t for update",
		"begin read only", "set search_path = a, b", "show x", "select 1; set y = 2",
		"update t set a = 1", "/* shardgate: role=replica */ select \"nextval\" from t",
		"commit and chain", "explain analyze select 1", "copy t to stdout", "with x as (delete from t returning 1) select 1",
	}
	for i := 0; i < 20; i++ {
		queries = append(queries, fmt.Sprintf("select %d for share", i))
	}
	ref := New(Options{CacheSize: -1})
	want := make([]Analysis, len(queries))
	for i, q := range queries {
		want[i] = ref.Analyze(q)
	}
	// One shard of 7, and 4 shards of 2: both evict all the time.
	for _, c := range []*cache[Analysis]{newCache[Analysis](7), newShardedCache[Analysis](8, 4)} {
		r := &Router{fns: defaultFuncs, cache: c}
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 300; n++ {
					i := (n*7 + g*13) % len(queries)
					if got := r.Analyze(queries[i]); !sameAnalysis(got, want[i]) {
						errs <- fmt.Sprintf("%q: got %+v, want %+v", queries[i], got, want[i])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		bound := 0
		for i := range c.shards {
			bound += c.shards[i].cap
		}
		if n := c.len(); n > bound {
			t.Fatalf("%d entries, bound %d", n, bound)
		}
	}
}

func sameAnalysis(a, b Analysis) bool {
	if a.Write != b.Write || a.Hint != b.Hint || len(a.Statements) != len(b.Statements) {
		return false
	}
	for i := range a.Statements {
		x, y := a.Statements[i], b.Statements[i]
		if (x.Set == nil) != (y.Set == nil) || (x.Set != nil && *x.Set != *y.Set) {
			return false
		}
		x.Set, y.Set = nil, nil
		if x != y {
			return false
		}
	}
	return true
}

func TestAllocations(t *testing.T) {
	tests := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 42; select 'a;b'",
		"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())",
		"create table t (a int)",
		"declare c cursor for select 1",
		"select 1; delete from t",
		"BEGIN", "COMMIT", "ROLLBACK", "commit and chain", "", "-- nothing",
		// Parsed once, then cached.
		"SELECT id, lo_get(body) FROM documents WHERE id = $1",
		"select nextval('s')",
		"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
		"SET application_name = 'x'",
		"SHOW shardgate.causal_lsn",
		"/* shardgate: role=replica */ select 1 for share",
		"select 1; set x = 1; select 2",
	}
	r := New(Options{})
	for _, q := range tests {
		want := r.Analyze(q)
		if n := testing.AllocsPerRun(50, func() {
			if got := r.Analyze(q); !sameAnalysis(got, want) {
				t.Fatalf("%q: %+v then %+v", q, want, got)
			}
		}); n != 0 {
			t.Errorf("%q: %v allocations", q, n)
		}
	}
}
