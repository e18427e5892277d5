package catalog

import (
	"fmt"
	"sync"
	"testing"
)

func TestDirCacheBounded(t *testing.T) {
	for _, size := range []int{1, 10, 100, 1000, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newDirCache(size)
			for i := range 3 * size {
				c.fill(dirKey{"d", fmt.Sprint(i)}, "s0", c.epoch.Load())
			}
			if n := c.len(); n > size || n < size*9/10 {
				t.Fatalf("%d entries after %d fills, want about %d and at most that", n, 3*size, size)
			}
			// The latest entries are the ones kept.
			if _, ok := c.get(dirKey{"d", fmt.Sprint(3*size - 1)}); !ok {
				t.Error("the last entry filled was evicted")
			}
		})
	}
}

func TestDirCacheLRU(t *testing.T) {
	c := newDirCache(2)
	a, b, d := dirKey{"x", "a"}, dirKey{"x", "b"}, dirKey{"x", "d"}
	c.fill(a, "s0", 0)
	c.fill(b, "s1", 0)
	c.get(a) // a is now the most recent
	c.fill(d, "s0", 0)
	if _, ok := c.get(b); ok {
		t.Error("b, least recently used, was kept")
	}
	if got, ok := c.get(a); !ok || got != "s0" {
		t.Errorf("a = %q, %v; want s0 kept", got, ok)
	}
}

func TestDirCacheInvalidation(t *testing.T) {
	c := newDirCache(100)
	a, b := dirKey{"x", "a"}, dirKey{"x", "b"}
	c.fill(a, "s0", c.epoch.Load())
	c.fill(b, "s0", c.epoch.Load())
	c.forget(a)
	if _, ok := c.get(a); ok {
		t.Error("a survived forget")
	}
	if _, ok := c.get(b); !ok {
		t.Error("b went with a")
	}
	c.flush()
	if n := c.len(); n != 0 {
		t.Errorf("%d entries after flush", n)
	}

	// A value read before an invalidation may be the stale one: it must
	// not be cached.
	since := c.epoch.Load()
	c.forget(a)
	c.fill(a, "s0", since)
	if _, ok := c.get(a); ok {
		t.Error("a value read before an invalidation was cached")
	}
}

func TestDirCacheNone(t *testing.T) {
	c := newDirCache(-1)
	c.fill(dirKey{"x", "a"}, "s0", 0)
	if _, ok := c.get(dirKey{"x", "a"}); ok {
		t.Error("a cache of no entries kept one")
	}
	c.forget(dirKey{"x", "a"})
	c.flush()
}

func TestDirCacheConcurrent(t *testing.T) {
	c := newDirCache(1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				k := dirKey{"x", fmt.Sprint((i * (g + 1)) % 3000)}
				if _, ok := c.get(k); !ok {
					c.fill(k, "s0", c.epoch.Load())
				}
				if i%1000 == 0 {
					c.forget(k)
				}
			}
		})
	}
	wg.Wait()
	if n := c.len(); n > 1000 {
		t.Fatalf("%d entries, want at most 1000", n)
	}
}

func BenchmarkDirCacheHit(b *testing.B) {
	c := newDirCache(DefaultDirectoryCache)
	keys := make([]dirKey, 1000)
	for i := range keys {
		keys[i] = dirKey{"tenants", fmt.Sprintf("tenant-%d", i)}
		c.fill(keys[i], "s1", 0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.get(keys[i%len(keys)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
