package catalog

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cacheShards bounds the locks the directory cache is split into, so that
// sessions on different cores rarely wait for one another on a hit.
const cacheShards = 16

// dirKey is a directory entry's key. A struct rather than a joined string
// so that a lookup builds nothing.
type dirKey struct{ dist, key string }

// dirCache is a bounded, sharded LRU of directory entries in memory. A
// full shard evicts its own least recently used entry, so the entries
// never exceed the size given; recency is exact only per shard.
//
// Entries are filled after a read of the catalog, and the catalog may
// have changed between that read and the fill. epoch closes that gap:
// every invalidation bumps it, and a fill whose read started in an older
// epoch is dropped (see fill).
type dirCache struct {
	seed   maphash.Seed
	epoch  atomic.Uint64
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	cap   int
	items map[dirKey]*list.Element // of *cacheEntry
	order list.List                // most recently used first
}

type cacheEntry struct {
	k     dirKey
	shard string
}

// newDirCache returns a cache of at most size entries; size < 1 caches
// nothing.
func newDirCache(size int) *dirCache {
	c := &dirCache{seed: maphash.MakeSeed()}
	if size < 1 {
		return c
	}
	n := max(1, min(cacheShards, size/64))
	c.shards = make([]cacheShard, n)
	for i := range c.shards {
		c.shards[i].cap = size / n
		if i < size%n {
			c.shards[i].cap++
		}
		c.shards[i].items = map[dirKey]*list.Element{}
	}
	return c
}

func (c *dirCache) shard(k dirKey) *cacheShard {
	if len(c.shards) == 0 {
		return nil
	}
	return &c.shards[maphash.String(c.seed, k.key)%uint64(len(c.shards))]
}

// get returns the cached shard of k. It does no I/O and allocates
// nothing.
func (c *dirCache) get(k dirKey) (string, bool) {
	sh := c.shard(k)
	if sh == nil {
		return "", false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.items[k]
	if !ok {
		return "", false
	}
	sh.order.MoveToFront(e)
	return e.Value.(*cacheEntry).shard, true
}

// fill caches shard for k, read from the catalog in epoch since (taken
// before the read), unless an invalidation happened since: the value read
// may then be the one invalidated.
func (c *dirCache) fill(k dirKey, shard string, since uint64) {
	sh := c.shard(k)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Checked under the lock: an invalidation bumps the epoch before it
	// takes the lock, so it either sees this entry and removes it, or
	// this check sees its bump.
	if c.epoch.Load() != since {
		return
	}
	if e, ok := sh.items[k]; ok {
		e.Value.(*cacheEntry).shard = shard
		sh.order.MoveToFront(e)
		return
	}
	if sh.order.Len() >= sh.cap {
		last := sh.order.Back()
		sh.order.Remove(last)
		delete(sh.items, last.Value.(*cacheEntry).k)
	}
	sh.items[k] = sh.order.PushFront(&cacheEntry{k: k, shard: shard})
}

// forget drops k.
func (c *dirCache) forget(k dirKey) {
	c.epoch.Add(1)
	sh := c.shard(k)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.items[k]; ok {
		sh.order.Remove(e)
		delete(sh.items, k)
	}
}

// flush drops every entry.
func (c *dirCache) flush() {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.items)
		sh.order.Init()
		sh.mu.Unlock()
	}
}

// len counts the entries.
func (c *dirCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.items)
		sh.mu.Unlock()
	}
	return n
}
