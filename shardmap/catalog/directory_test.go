package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shardgate/shardgate/shardmap"
)

// race has every goroutine of every directory place the same keys at
// once, each proposing a shard of its own, and returns the keys on which
// the answers disagreed with each other or with the catalog's row.
func race(t *testing.T, dsn string, dirs []shardmap.Directory, keys, perDir int) []string {
	t.Helper()
	ctx := ctxT(t)
	answers := make([][]string, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for d, dir := range dirs {
		for g := range perDir {
			wg.Go(func() {
				<-start
				for k := range keys {
					got, err := dir.Put(ctx, "tenants", fmt.Sprintf("k%d", k), twoShards[(d+g)%2])
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					answers[k] = append(answers[k], got)
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var split []string
	for k, got := range answers {
		var row string
		if err := conn.QueryRow(ctx, "SELECT shard FROM shardgate.directory WHERE distribution = 'tenants' AND key = $1", fmt.Sprintf("k%d", k)).Scan(&row); err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g != row {
				split = append(split, fmt.Sprintf("k%d: answered %v, recorded %s", k, got, row))
				break
			}
		}
	}
	return split
}

// TestDirectoryPutRace places keys from many goroutines of two Stores,
// two proxies, at once, proposing different shards: every caller must get
// the shard recorded.
func TestDirectoryPutRace(t *testing.T) {
	dsn := sharedDB(t)
	a := open(t, dsn, Options{})
	b := open(t, dsn, Options{})
	split := race(t, dsn, []shardmap.Directory{a.Directory(), b.Directory()}, 300, 8)
	if len(split) > 0 {
		t.Fatalf("%d keys got two answers, first: %s", len(split), split[0])
	}
}

// TestDirectoryPutRaceCatchesNaive runs the same race with a
// check-then-insert directory, to show that the race test can fail.
func TestDirectoryPutRaceCatchesNaive(t *testing.T) {
	dsn := sharedDB(t)
	a := open(t, dsn, Options{}) // creates the schema
	_ = a
	naive := func() shardmap.Directory {
		pool, err := pgxpool.New(ctxT(t), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return naiveDirectory{pool}
	}
	split := race(t, dsn, []shardmap.Directory{naive(), naive()}, 100, 4)
	t.Logf("check-then-insert: %d of 100 keys got two answers", len(split))
	if len(split) == 0 {
		t.Fatal("the race test did not catch a check-then-insert directory")
	}
}

// naiveDirectory is the bug TestDirectoryPutRace guards against: it
// checks, then inserts, and trusts its own choice.
type naiveDirectory struct{ pool *pgxpool.Pool }

func (d naiveDirectory) Get(ctx context.Context, dist, key string) (string, bool, error) {
	var s string
	err := d.pool.QueryRow(ctx, "SELECT shard FROM shardgate.directory WHERE distribution = $1 AND key = $2", dist, key).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return s, err == nil, err
}

func (d naiveDirectory) Put(ctx context.Context, dist, key, shard string) (string, error) {
	if s, ok, err := d.Get(ctx, dist, key); ok || err != nil {
		return s, err
	}
	// The window between check and insert, widened a little so that the
	// demonstration does not depend on luck.
	time.Sleep(time.Millisecond)
	_, err := d.pool.Exec(ctx, "INSERT INTO shardgate.directory VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", dist, key, shard)
	return shard, err
}

func TestDirectoryCacheHitDoesNoIO(t *testing.T) {
	s := open(t, sharedDB(t), Options{})
	d := s.Directory()
	if _, err := d.Put(ctxT(t), "tenants", "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	// A cancelled context fails any I/O: a hit must not need any.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, ok, err := d.Get(ctx, "tenants", "acme"); err != nil || !ok || got != "s1" {
		t.Fatalf("cached Get = %q, %v, %v; want s1", got, ok, err)
	}
	if _, _, err := d.Get(ctx, "tenants", "other"); err == nil {
		t.Fatal("an uncached Get with a cancelled context did not fail: is it reading at all?")
	}
}

// TestDirectoryCacheInvalidation changes and deletes cached entries in
// the catalog: a watching proxy must drop them within a second.
func TestDirectoryCacheInvalidation(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed, PollInterval: never})
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	watched(t, s, m)
	time.Sleep(200 * time.Millisecond) // let the listener connect
	d := s.Directory()
	ctx := ctxT(t)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := d.Put(ctx, "tenants", k, "s0"); err != nil {
			t.Fatal(err)
		}
	}
	get := func(k string) string {
		got, ok, err := d.Get(ctx, "tenants", k)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "(none)"
		}
		return got
	}
	follows := func(what, k, want string) {
		t.Helper()
		start := time.Now()
		if !eventually(followLimit, func() bool { return get(k) == want }) {
			t.Fatalf("%s: key %s is still %s, want %s", what, k, get(k), want)
		}
		took := time.Since(start)
		t.Logf("%s: followed in %v", what, took)
		if took > time.Second {
			t.Errorf("%s took %v, want < 1s", what, took)
		}
	}

	// Written silently, the change shows the cache is in use: the old
	// answer stays.
	exec(t, dsn, "SET session_replication_role = replica; UPDATE shardgate.directory SET shard = 's1' WHERE key = 'a'")
	time.Sleep(200 * time.Millisecond)
	if got := get("a"); got != "s0" {
		t.Fatalf("key a = %s, want the cached s0", got)
	}
	exec(t, dsn, "UPDATE shardgate.directory SET shard = 's1' WHERE key = 'b'")
	follows("update", "b", "s1")
	if got := get("a"); got != "s0" {
		t.Errorf("key a = %s: a change to one key flushed the others", got)
	}
	exec(t, dsn, "DELETE FROM shardgate.directory WHERE key = 'c'")
	follows("delete", "c", "(none)")
	exec(t, dsn, "TRUNCATE shardgate.directory")
	follows("truncate", "a", "(none)")
}

// TestDirectoryPollFlushesWithoutListener shows the version poll covers
// directory changes while no LISTEN connection is up.
func TestDirectoryPollFlushesWithoutListener(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed})
	d := s.Directory()
	ctx := ctxT(t)
	if _, err := d.Put(ctx, "tenants", "a", "s0"); err != nil {
		t.Fatal(err)
	}
	w := &watcher{s: s, version: 1}
	w.check(ctx, false) // learns the generation
	exec(t, dsn, "UPDATE shardgate.directory SET shard = 's1' WHERE key = 'a'")
	if got, _, _ := d.Get(ctx, "tenants", "a"); got != "s0" {
		t.Fatalf("key a = %s before the poll, want the cached s0", got)
	}
	w.check(ctx, false)
	if got, _, _ := d.Get(ctx, "tenants", "a"); got != "s1" {
		t.Fatalf("key a = %s after the poll, want s1", got)
	}
}
