package shardmap

import (
	"context"
	"sync"
)

// Directory stores the shards of directory distributions' keys. Keys are
// in their canonical text form (Key.String).
type Directory interface {
	// Get returns the shard recorded for a key.
	Get(ctx context.Context, dist, key string) (shard string, ok bool, err error)
	// Put records shard for key unless a shard is already recorded, and
	// returns the one recorded: two callers placing one key at once get
	// the same answer.
	Put(ctx context.Context, dist, key, shard string) (string, error)
}

// MemDirectory is a Directory in memory, for a map from a config file: one
// proxy, no catalog. Its placements last as long as the process.
type MemDirectory struct {
	mu sync.Mutex
	m  map[[2]string]string
}

// NewMemDirectory returns an empty MemDirectory.
func NewMemDirectory() *MemDirectory { return &MemDirectory{m: map[[2]string]string{}} }

// Get implements Directory.
func (d *MemDirectory) Get(_ context.Context, dist, key string) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.m[[2]string{dist, key}]
	return s, ok, nil
}

// Put implements Directory.
func (d *MemDirectory) Put(_ context.Context, dist, key, shard string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := [2]string{dist, key}
	if s, ok := d.m[k]; ok {
		return s, nil
	}
	d.m[k] = shard
	return shard, nil
}
