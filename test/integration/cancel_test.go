package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/proxy"
)

// TestCancel: a cancel stops the client's own query.
func TestCancel(t *testing.T) {
	for _, mode := range []proxy.PoolMode{proxy.TransactionMode, proxy.SessionMode} {
		t.Run(mode.String(), func(t *testing.T) {
			p := startProxy(t, mode)
			c := p.connect(t)
			ctx := ctxT(t)
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Exec(qctx, "select pg_sleep(10)")
			if err == nil || time.Since(start) > 5*time.Second {
				t.Fatalf("query not cancelled: %v after %v", err, time.Since(start))
			}
		})
	}
}

// TestCancelNeverHitsAnotherClient: cancels sent for client B while its
// quick queries finish and the server passes to client A must never cancel
// A's query. The race is made likely with a pool of one server shared by
// both. The first part shows the check notices a stray cancel.
func TestCancelNeverHitsAnotherClient(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(1))
	ctx := ctxT(t)
	a, b := p.connect(t), p.connect(t)

	// victim runs short sleeps on the shared server and counts cancels.
	victim := func(d time.Duration, stray func(pid uint32)) int {
		var cancelled int
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			var pid uint32
			err := a.QueryRow(ctx, "select pg_backend_pid() from pg_sleep(0.002)").Scan(&pid)
			if sqlState(err) == "57014" {
				cancelled++
			} else if err != nil {
				t.Fatal(err)
			} else if stray != nil {
				stray(pid)
			}
		}
		return cancelled
	}

	// A cancel aimed straight at the server's process does reach A.
	db := direct(t)
	var pidOnce sync.Once
	var serverPID atomic.Uint32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if pid := serverPID.Load(); pid != 0 {
				db.Exec(ctx, "select pg_cancel_backend($1)", pid)
			}
			time.Sleep(time.Millisecond)
		}
	})
	n := victim(500*time.Millisecond, func(pid uint32) { pidOnce.Do(func() { serverPID.Store(pid) }) })
	close(stop)
	wg.Wait()
	if n == 0 {
		t.Fatal("the check saw no cancelled query even with cancels aimed at the server")
	}

	// Now B's own cancel requests, racing the ends of its quick queries
	// as the one server passes between B and A.
	stop = make(chan struct{})
	var bQueries, cancels atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := b.Exec(ctx, "select 1", pgx.QueryExecModeSimpleProtocol)
			if err != nil && sqlState(err) != "57014" {
				t.Error(err)
				return
			}
			bQueries.Add(1)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.PgConn().CancelRequest(ctx); err != nil {
				t.Error(err)
				return
			}
			cancels.Add(1)
		}
	})
	n = victim(2*time.Second, nil)
	close(stop)
	wg.Wait()
	if n > 0 {
		t.Fatalf("%d of client A's queries were cancelled by client B's cancel requests", n)
	}
	if bQueries.Load() < 50 || cancels.Load() < 50 {
		t.Fatalf("only %d queries and %d cancels from B: the race was not exercised", bQueries.Load(), cancels.Load())
	}
	t.Logf("%d queries and %d cancel requests from B, none reached A", bQueries.Load(), cancels.Load())
}
