package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shardgate/shardgate/shardmap"
)

// Directory is a shardmap.Directory kept in the catalog's directory table
// and shared by every proxy, with a bounded cache in front. Watch keeps
// the cache true: it drops entries that are changed or deleted in the
// catalog. Entries only come into being through Put, so a key no proxy
// has cached cannot go stale.
type Directory struct {
	pool  *pgxpool.Pool
	cache *dirCache
}

var _ shardmap.Directory = (*Directory)(nil)

// putAttempts bounds Put's retries when the entry it collided with is
// deleted before it can read it: only a concurrent move could do that.
const putAttempts = 3

// Get implements shardmap.Directory. A cached key costs no I/O.
func (d *Directory) Get(ctx context.Context, dist, key string) (string, bool, error) {
	k := dirKey{dist, key}
	if shard, ok := d.cache.get(k); ok {
		return shard, true, nil
	}
	since := d.cache.epoch.Load()
	shard, ok, err := d.read(ctx, dist, key)
	if ok {
		d.cache.fill(k, shard, since)
	}
	return shard, ok, err
}

func (d *Directory) read(ctx context.Context, dist, key string) (string, bool, error) {
	var shard string
	err := d.pool.QueryRow(ctx, "SELECT shard FROM shardgate.directory WHERE distribution = $1 AND key = $2", dist, key).Scan(&shard)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("catalog: looking up key %s of distribution %s: %w", key, dist, err)
	}
	return shard, true, nil
}

// Put implements shardmap.Directory. It is atomic across proxies: the
// insert does nothing when another proxy recorded the key first, and the
// key's shard is then read back, in a statement of its own so that its
// snapshot sees that proxy's commit. Every caller gets the shard
// recorded first.
func (d *Directory) Put(ctx context.Context, dist, key, shard string) (string, error) {
	k := dirKey{dist, key}
	since := d.cache.epoch.Load()
	for range putAttempts {
		var got string
		err := d.pool.QueryRow(ctx, `INSERT INTO shardgate.directory (distribution, key, shard) VALUES ($1, $2, $3)
			ON CONFLICT (distribution, key) DO NOTHING RETURNING shard`, dist, key, shard).Scan(&got)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("catalog: recording key %s of distribution %s: %w", key, dist, err)
		}
		if err != nil {
			var ok bool
			if got, ok, err = d.read(ctx, dist, key); err != nil {
				return "", err
			} else if !ok {
				continue // deleted since the insert collided with it
			}
		}
		d.cache.fill(k, got, since)
		return got, nil
	}
	return "", fmt.Errorf("catalog: key %s of distribution %s kept changing while being recorded; try again", key, dist)
}

// Cached returns the number of entries in the cache.
func (d *Directory) Cached() int { return d.cache.len() }

// handle applies a NOTIFY payload about the directory; it reports whether
// the payload was one.
func (d *Directory) handle(payload string) bool {
	if payload == "directory" {
		d.cache.flush()
		return true
	}
	named, ok := strings.CutPrefix(payload, "key ")
	if !ok {
		return false
	}
	var k [2]string
	if err := json.Unmarshal([]byte(named), &k); err != nil {
		d.cache.flush() // unreadable: forgetting everything is safe
		return true
	}
	d.cache.forget(dirKey{k[0], k[1]})
	return true
}
