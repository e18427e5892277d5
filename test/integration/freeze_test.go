package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/shardmap"
)

// ackLog records the map versions a proxy acknowledged, as the catalog
// would.
type ackLog struct {
	mu   sync.Mutex
	acks []uint64
}

func (a *ackLog) AckMap(_ context.Context, v uint64) error {
	a.mu.Lock()
	a.acks = append(a.acks, v)
	a.mu.Unlock()
	return nil
}

func (a *ackLog) has(v uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.acks {
		if x == v {
			return true
		}
	}
	return false
}

// freezeSpec is a hash map over s0 and s1 split at hash 0, with the upper
// half owned by owner and maybe frozen.
func freezeSpec(owner string, frozen bool) shardmap.Spec {
	return shardmap.Spec{Distributions: []shardmap.DistributionSpec{{
		Name: "users", Method: shardmap.MethodHash, KeyType: "bigint",
		Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}},
		Ranges: []shardmap.RangeSpec{{Hi: "0", Shard: "s0"}, {Lo: "0", Shard: owner, Frozen: frozen}},
	}}}
}

// TestFrozenRangeHoldsWrites is the proxy's side of an online move's
// cutover: with a range frozen in the map, writes to it wait (reads and
// writes elsewhere do not), the map is acknowledged only once the
// transactions open on the range's shard have ended, and the held writes
// go to the owner of the next map.
func TestFrozenRangeHoldsWrites(t *testing.T) {
	c := shardedCluster(t, 2)
	acks := &ackLog{}
	names := []string{"s0", "s1"}
	build := func(spec shardmap.Spec, version uint64) *shardmap.Map {
		m, err := shardmap.Build(spec, names, version, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	p := startProxy(t, proxy.TransactionMode, withShards(t, c, freezeSpec("s1", false)), func(cfg *proxyConfig) {
		cfg.opts.ShardMap = build(freezeSpec("s1", false), 1)
		cfg.opts.Acker = acks
	})
	ctx := ctxT(t)
	admin := p.connect(t)
	if _, err := admin.Exec(ctx, "CREATE TABLE users (id bigint PRIMARY KEY, v int)"); err != nil {
		t.Fatal(err)
	}
	upper := func(from int64) int64 { // a key in the upper half (s1)
		for k := from; ; k++ {
			if shardmap.HashInt(k) >= 0 {
				return k
			}
		}
	}
	lowerKey := int64(1)
	for shardmap.HashInt(lowerKey) >= 0 {
		lowerKey++
	}
	frozenKey, openKey := upper(1), upper(upper(1)+1)

	if !eventually(t, time.Second, func() bool { return acks.has(1) }) {
		t.Fatal("the first map was never acknowledged")
	}
	// Control: unfrozen, a write to the upper half completes at once.
	quick := p.connect(t)
	start := time.Now()
	if _, err := quick.Exec(ctx, "INSERT INTO users (id, v) VALUES ($1, 0)", frozenKey); err != nil {
		t.Fatal(err)
	}
	t.Logf("unfrozen insert took %v", time.Since(start))

	// A transaction open on s1 when the freeze arrives holds the ack back.
	inTx := p.connect(t)
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO users (id, v) VALUES ($1, 1)", openKey); err != nil {
		t.Fatal(err)
	}
	p.srv.SetShardMap(build(freezeSpec("s1", true), 2))
	time.Sleep(100 * time.Millisecond)
	if acks.has(2) {
		t.Fatal("the frozen map was acknowledged while a transaction was open on the frozen range's shard")
	}

	// Writes to the frozen range wait; reads of it and writes elsewhere do not.
	held := p.connect(t)
	done := make(chan error, 1)
	go func() {
		_, err := held.Exec(context.Background(), "UPDATE users SET v = 2 WHERE id = $1", frozenKey)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write to the frozen range completed during the freeze (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	var v int
	start = time.Now()
	if err := quick.QueryRow(ctx, "SELECT v FROM users WHERE id = $1", frozenKey).Scan(&v); err != nil {
		t.Fatalf("read of the frozen range: %v", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("a read of the frozen range took %v", took)
	}
	start = time.Now()
	if _, err := quick.Exec(ctx, "INSERT INTO users (id, v) VALUES ($1, 3)", pgx.QueryExecModeSimpleProtocol, lowerKey); err != nil {
		t.Fatalf("write outside the frozen range: %v", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("a write outside the frozen range took %v", took)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, time.Second, func() bool { return acks.has(2) }) {
		t.Fatal("the frozen map was not acknowledged after the open transaction ended")
	}

	// The next map moves the range to s0 (the data is not moved here: the
	// held UPDATE finds no row there, which shows where it went).
	p.srv.SetShardMap(build(freezeSpec("s0", false), 3))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held write failed: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the held write did not go on after the map changed")
	}
	if n := countOn(t, c, 1, "SELECT count(*) FROM users WHERE v = 2"); n != 0 {
		t.Fatalf("the held write ran on the old owner s1: %d rows updated there", n)
	}
	if !eventually(t, time.Second, func() bool { return acks.has(3) }) {
		t.Fatal("map 3 not acknowledged")
	}
}
