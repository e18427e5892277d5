package router

import (
	"hash/maphash"
	"strings"
	"sync"
)

// planCache maps query texts to their plan and the schema version the
// plan was made for. It is a sharded LRU like the parse cache: a text
// hashes to one shard, and a full shard evicts its own least recently
// used entry. A text keeps one entry: a plan made for another version is
// a miss, and the new plan replaces it, so a map change costs one plan
// per text and leaves no stale entries behind.
//
// It mirrors cache, with a version beside each value; the two could
// share a generic LRU, a refactoring of cache.go left for when that file
// next changes.
type planCache struct {
	seed   maphash.Seed
	shards []planShard
}

type planShard struct {
	mu    sync.Mutex
	cap   int
	index map[string]int32
	// entries form a doubly linked list, most recently used first; slots
	// are reused after eviction.
	entries    []planEntry
	head, tail int32
	_          [40]byte // keeps neighbouring shards' locks off one cache line
}

type planEntry struct {
	key        string
	version    uint64
	plan       *Plan
	prev, next int32
}

func newPlanCache(size int) *planCache {
	n := max(1, min(size/minShardSize, maxShards))
	c := &planCache{seed: maphash.MakeSeed(), shards: make([]planShard, n)}
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

func (c *planCache) shard(key string) *planShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get looks key up for version. It neither allocates nor keeps key.
func (c *planCache) get(key string, version uint64) *Plan {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.index[key]
	if !ok || sh.entries[i].version != version {
		return nil
	}
	sh.toFront(i)
	return sh.entries[i].plan
}

// put stores a copy of key with its plan for version.
func (c *planCache) put(key string, version uint64, p *Plan) {
	if len(key) > maxCachedQuery {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.index[key]; ok {
		sh.entries[i].version, sh.entries[i].plan = version, p
		sh.toFront(i)
		return
	}
	var i int32
	if len(sh.entries) < sh.cap {
		i = int32(len(sh.entries))
		sh.entries = append(sh.entries, planEntry{prev: -1, next: -1})
	} else {
		i = sh.tail
		sh.unlink(i)
		delete(sh.index, sh.entries[i].key)
	}
	sh.entries[i] = planEntry{key: strings.Clone(key), version: version, plan: p, prev: -1, next: -1}
	sh.index[sh.entries[i].key] = i
	sh.pushFront(i)
}

// len counts the entries.
func (c *planCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.index)
		sh.mu.Unlock()
	}
	return n
}

func (sh *planShard) toFront(i int32) {
	if sh.head != i {
		sh.unlink(i)
		sh.pushFront(i)
	}
}

func (sh *planShard) unlink(i int32) {
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

func (sh *planShard) pushFront(i int32) {
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
