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
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	c := cluster.ForTest(t, cluster.Options{
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
	})
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
