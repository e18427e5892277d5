package router

import (
	"hash/maphash"
	"strings"
	"sync"
)

// maxCachedQuery is the longest query text the cache keeps: the bound on
// entries would not bound memory if a few huge statements could fill it.
// Longer texts are parsed every time, which is small next to their size.
const maxCachedQuery = 16 << 10

// maxShards bounds the locks the cache is split into: enough that
// sessions on different cores rarely wait for each other.
const maxShards = 16

// minShardSize keeps shards large enough for their LRU to mean
// something: a small cache is one shard, exactly LRU.
const minShardSize = 64

// cache maps query texts to what was learnt from them (their Analysis,
// their Plan). It is a sharded LRU: a text
// hashes to one shard, and a full shard evicts its own least recently
// used entry. The shards' capacities add up to the cache's size, so the
// number of entries never exceeds it; recency is only exact per shard.
type cache[V any] struct {
	seed   maphash.Seed
	shards []cacheShard[V]
}

type cacheShard[V any] struct {
	mu    sync.Mutex
	cap   int
	index map[string]int32
	// entries form a doubly linked list, most recently used first; slots
	// are reused after eviction, so a full shard allocates nothing.
	entries    []cacheEntry[V]
	head, tail int32
	_          [40]byte // keeps neighbouring shards' locks off one cache line
}

type cacheEntry[V any] struct {
	key        string
	val        V
	prev, next int32
}

func newCache[V any](size int) *cache[V] {
	return newShardedCache[V](size, max(1, min(size/minShardSize, maxShards)))
}

// newShardedCache splits size entries over n shards, 0 < n <= size.
func newShardedCache[V any](size, n int) *cache[V] {
	c := &cache[V]{seed: maphash.MakeSeed(), shards: make([]cacheShard[V], n)}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.cap = size / n
		if i < size%n {
			sh.cap++
		}
		sh.index = map[string]int32{}
		sh.head, sh.tail = -1, -1
	}
	return c
}

func (c *cache[V]) shard(key string) *cacheShard[V] {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get looks key up. It neither allocates nor keeps key, which may be a
// view of a buffer that is about to be reused.
func (c *cache[V]) get(key string) (V, bool) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.index[key]
	if !ok {
		var zero V
		return zero, false
	}
	sh.toFront(i)
	return sh.entries[i].val, true
}

// put stores a copy of key with val.
func (c *cache[V]) put(key string, val V) {
	if len(key) > maxCachedQuery {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.index[key]; ok {
		// Another session parsed the same text meanwhile, or a plan
		// for an older map is replaced.
		sh.entries[i].val = val
		sh.toFront(i)
		return
	}
	var i int32
	if len(sh.entries) < sh.cap {
		i = int32(len(sh.entries))
		sh.entries = append(sh.entries, cacheEntry[V]{prev: -1, next: -1})
	} else {
		i = sh.tail
		sh.unlink(i)
		delete(sh.index, sh.entries[i].key)
	}
	sh.entries[i] = cacheEntry[V]{key: strings.Clone(key), val: val, prev: -1, next: -1}
	sh.index[sh.entries[i].key] = i
	sh.pushFront(i)
}

// len counts the entries.
func (c *cache[V]) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.index)
		sh.mu.Unlock()
	}
	return n
}

func (sh *cacheShard[V]) toFront(i int32) {
	if sh.head != i {
		sh.unlink(i)
		sh.pushFront(i)
	}
}

func (sh *cacheShard[V]) unlink(i int32) {
	e := &sh.entries[i]
	if e.prev >= 0 {
		sh.entries[e.prev].next = e.next
	} else {
		sh.head = e.next
	}
	if e.next >= 0 {
		sh.entries[e.next].prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (sh *cacheShard[V]) pushFront(i int32) {
	e := &sh.entries[i]
	e.prev, e.next = -1, sh.head
	if sh.head >= 0 {
		sh.entries[sh.head].prev = i
	}
	sh.head = i
	if sh.tail < 0 {
		sh.tail = i
	}
}
