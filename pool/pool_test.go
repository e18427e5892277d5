package pool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestPool exercises one pool against a real server: checkout and reuse,
// the checkout timeout, min idle, idle timeout and max lifetime.
func TestPool(t *testing.T) {
	c := appCluster(t, 0)
	key := pool.Key{Addr: c.Shards[0].Primary.Addr(), User: "app", Database: "app"}
	ctx := context.Background()

	t.Run("reuse and checkout timeout", func(t *testing.T) {
		p := pool.New(key, pool.Options{Size: 1, CheckoutTimeout: 200 * time.Millisecond, Password: "app"})
		defer p.Close()
		a, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = p.Get(ctx)
		var pe *pool.Error
		if !errors.As(err, &pe) || pe.SQLState() != "53300" || time.Since(start) > 2*time.Second {
			t.Fatalf("second checkout of a full pool: %v after %v", err, time.Since(start))
		}
		p.Put(a)
		b, err := p.Get(ctx)
		if err != nil || b != a {
			t.Fatalf("connection not reused: %v", err)
		}
		p.Put(b)
		if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.Timeouts != 1 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("a waiter gets the returned connection", func(t *testing.T) {
		p := pool.New(key, pool.Options{Size: 1, CheckoutTimeout: 5 * time.Second, Password: "app"})
		defer p.Close()
		a, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(100 * time.Millisecond); p.Put(a) }()
		b, err := p.Get(ctx)
		if err != nil || b != a {
			t.Fatalf("waiter: %v", err)
		}
		p.Discard(b) // frees the slot for a new connection
		c, err := p.Get(ctx)
		if err != nil || c == a {
			t.Fatalf("after discard: %v", err)
		}
		p.Put(c)
	})

	t.Run("min idle, idle timeout, max lifetime", func(t *testing.T) {
		p := pool.New(key, pool.Options{Size: 3, MinIdle: 2, IdleTimeout: 300 * time.Millisecond, Password: "app"})
		defer p.Close()
		deadline := time.Now().Add(5 * time.Second)
		for p.Stats().Idle < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if s := p.Stats(); s.Idle != 2 {
			t.Fatalf("min idle not kept: %+v", s)
		}

		q := pool.New(key, pool.Options{Size: 2, IdleTimeout: 200 * time.Millisecond, Password: "app"})
		defer q.Close()
		a, err := q.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q.Put(a)
		time.Sleep(400 * time.Millisecond)
		b, err := q.Get(ctx) // a expired while idle: a new connection
		if err != nil || b == a {
			t.Fatalf("idle timeout not applied: %v", err)
		}
		q.Put(b)

		r := pool.New(key, pool.Options{Size: 2, MaxLifetime: 200 * time.Millisecond, Password: "app"})
		defer r.Close()
		a, err = r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		r.Put(a) // too old: closed, not kept
		if s := r.Stats(); s.Open != 0 || s.Idle != 0 {
			t.Fatalf("old connection kept: %+v", s)
		}
	})

	t.Run("conns lists server processes", func(t *testing.T) {
		p := pool.New(key, pool.Options{Size: 3, Password: "app"})
		defer p.Close()
		a, err := p.Get(ctx)
		must(t, err)
		b, err := p.Get(ctx)
		must(t, err)
		p.Put(b)
		checkout := time.Now()
		time.Sleep(10 * time.Millisecond)
		again, err := p.Get(ctx) // b: the most recently used goes first
		must(t, err)
		if again != b {
			t.Fatal("b not reused")
		}
		p.Put(a)
		conns := p.Conns()
		if len(conns) != 2 {
			t.Fatalf("conns %+v", conns)
		}
		active, idle := conns[0], conns[1]
		if active.State != "active" || active.PID != b.PID || idle.State != "idle" || idle.PID != a.PID ||
			active.Addr != key.Addr || active.LastUsed.Before(checkout.Add(10*time.Millisecond)) ||
			!active.Born.Before(checkout) || idle.LastUsed.Before(active.LastUsed) {
			t.Fatalf("conns %+v; a is pid %d, b pid %d, b checked out after %v", conns, a.PID, b.PID, checkout)
		}
		// The PIDs are the server's: pg_stat_activity knows them as app's.
		for _, ci := range conns {
			got, err := c.Shards[0].Primary.QueryString(ctx, "SELECT usename FROM pg_stat_activity WHERE pid = $1", int(ci.PID))
			if err != nil || got != "app" {
				t.Fatalf("pid %d on the server: %q, %v", ci.PID, got, err)
			}
		}
		p.Put(b)
	})

	t.Run("set options keeps the password", func(t *testing.T) {
		p := pool.New(key, pool.Options{Size: 1, Password: "app"})
		defer p.Close()
		p.SetOptions(pool.Options{Size: 2, CheckoutTimeout: time.Second})
		a, err := p.Get(ctx)
		must(t, err)
		b, err := p.Get(ctx) // a second connection: the new size, the old password
		must(t, err)
		p.Put(a)
		p.Put(b)
		q := pool.New(key, pool.Options{Size: 1})
		defer q.Close()
		if _, err := q.Get(ctx); err == nil {
			t.Fatal("the server accepts app without a password: the test proves nothing")
		}
	})

	t.Run("connect failure names the pool", func(t *testing.T) {
		p := pool.New(pool.Key{Addr: key.Addr, User: "app", Database: "no_such_db"}, pool.Options{Size: 1, Password: "app"})
		defer p.Close()
		_, err := p.Get(ctx)
		var pe *pool.Error
		if !errors.As(err, &pe) || pe.SQLState() != "08006" {
			t.Fatalf("got %v", err)
		}
	})
}

// appCluster starts one shard with the given number of replicas, with
// login role app (password app) owning database app; -short skips the
// test instead.
func appCluster(t *testing.T, replicas int) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	return cluster.ForTest(t, cluster.Options{
		Replicas:  replicas,
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
	})
}
