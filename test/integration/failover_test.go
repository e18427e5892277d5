package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/test/cluster"
)

// faultCluster starts a cluster of its own for a test that breaks it.
func faultCluster(t *testing.T, extra ...string) *cluster.Cluster {
	t.Helper()
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	return cluster.ForTest(t, cluster.Options{
		Shards: 1, Replicas: 1,
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
		ExtraConf: extra,
	})
}

// onCluster points a test proxy at another cluster than the shared one.
func onCluster(c *cluster.Cluster, rt proxy.Routing) func(*proxyConfig) {
	return func(cfg *proxyConfig) {
		withTopology(c, rt)(cfg)
		cfg.opts.Shards = []proxy.Shard{{Name: "s0", Primary: c.Shards[0].Primary.Addr()}}
	}
}

// readLoad runs reads through the proxy from several clients until stop is
// closed, counting them and their errors.
func readLoad(t *testing.T, p *testProxy, clients int, stop <-chan struct{}) (reads, fails *atomic.Int64, firstErr *atomic.Value, wait func()) {
	reads, fails, firstErr = new(atomic.Int64), new(atomic.Int64), new(atomic.Value)
	var wg sync.WaitGroup
	for i := range clients {
		c := p.connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mode := pgx.QueryExecModeCacheStatement
			if i%2 == 1 {
				mode = pgx.QueryExecModeSimpleProtocol
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A read sleeping in the server when the replica dies is
				// cut off (a backend waiting on anything exits at once
				// when its postmaster dies); a short one usually is not.
				q := "select count(*) from generate_series(1, 50)"
				if i%4 < 2 {
					q = "select count(*) from pg_sleep(0.02)"
				}
				var n int
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.QueryRow(ctx, q, mode).Scan(&n)
				cancel()
				reads.Add(1)
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	return reads, fails, firstErr, wg.Wait
}

// TestReplicaKilledUnderReadLoad kills a replica with SIGKILL while
// clients read through it: every read succeeds (reads that fail on the
// dead replica before any reply run again elsewhere), the replica is
// banned, and it takes reads again once restarted. Without the retry the
// same kill makes reads fail, which shows the test can see it.
func TestReplicaKilledUnderReadLoad(t *testing.T) {
	c := faultCluster(t)
	rep := c.Shards[0].Replicas[0]
	for _, retry := range []bool{true, false} {
		t.Run(fmt.Sprintf("retry=%v", retry), func(t *testing.T) {
			rt := lsnRouting()
			rt.NoReadRetry = !retry
			p := startProxy(t, proxy.TransactionMode, onCluster(c, rt))
			stop := make(chan struct{})
			reads, fails, firstErr, wait := readLoad(t, p, 8, stop)
			time.Sleep(500 * time.Millisecond)
			t.Logf("before the kill: %d reads, replica %s", reads.Load(), hostState(t, p, rep.Addr()))
			if err := rep.Kill(); err != nil {
				close(stop)
				wait()
				t.Fatal(err)
			}
			killed := time.Now()
			time.Sleep(1500 * time.Millisecond)
			state := hostState(t, p, rep.Addr())
			close(stop)
			wait()
			if err := rep.Start(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d reads, %d failed (first: %v); replica state %q %v after the kill", reads.Load(), fails.Load(), firstErr.Load(), state, time.Since(killed))
			if state != "banned" {
				t.Errorf("killed replica is %q, want banned", state)
			}
			if retry && fails.Load() > 0 {
				t.Fatalf("%d of %d reads failed with retries on: %v", fails.Load(), reads.Load(), firstErr.Load())
			}
			if !retry && fails.Load() == 0 {
				t.Fatalf("no read failed without retries: the test cannot see a failed read")
			}
			// Back in service once it answers again.
			cl := p.connect(t)
			if !eventually(t, 15*time.Second, func() bool {
				var r bool
				err := cl.QueryRow(ctxT(t), "select pg_is_in_recovery()").Scan(&r)
				return err == nil && r
			}) {
				t.Fatalf("restarted replica takes no reads; it is %q", hostState(t, p, rep.Addr()))
			}
		})
	}
}

// hostState reads a host's state from SHOW shardgate.hosts.
func hostState(t *testing.T, p *testProxy, addr string) string {
	t.Helper()
	c := p.connect(t)
	rows, err := c.Query(ctxT(t), "show shardgate.hosts", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if v[1] == addr {
			return v[4].(string)
		}
	}
	return "missing"
}

// TestPrimaryFailover kills the primary with SIGKILL under write load and
// promotes the replica: writes fail with clear errors while there is no
// primary, succeed again within 5 s of the promotion without restarting
// the proxy, and every write the client saw acknowledged is on the new
// primary. Synchronous replication is what makes an acknowledged write
// survive losing the primary; the proxy's part is to follow the promotion
// and never report a write it did not see committed.
func TestPrimaryFailover(t *testing.T) {
	c := faultCluster(t, "synchronous_standby_names = '*'")
	prim, rep := c.Shards[0].Primary, c.Shards[0].Replicas[0]
	p := startProxy(t, proxy.TransactionMode, onCluster(c, lsnRouting()))
	ctx := ctxT(t)
	setup := p.connect(t)
	if _, err := setup.Exec(ctx, "create table acked (id int primary key)"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []int
	var errs []error
	var lastErrAt, firstOKAfterErr time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	w := p.connect(t)
	go func() {
		defer close(done)
		for id := 1; ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := w.Exec(cctx, "insert into acked values ($1)", id)
			cancel()
			mu.Lock()
			if err == nil {
				acked = append(acked, id)
				if !lastErrAt.IsZero() && firstOKAfterErr.IsZero() {
					firstOKAfterErr = time.Now()
				}
			} else {
				errs = append(errs, err)
				lastErrAt = time.Now()
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if err := prim.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // no primary: writes must fail, clearly
	if err := rep.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	deadline := promoted.Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		ok := !firstOKAfterErr.IsZero()
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 0 {
		t.Fatal("no write failed while the shard had no primary: the test did not see the failover")
	}
	for _, err := range errs {
		var pe *pgconn.PgError
		// shardgate's own errors (no primary, lost connection) and the
		// dying server's last word (57P01) are fine; a hang, a dropped
		// client connection or an internal error are not.
		if !errors.As(err, &pe) || !(pe.Code == "57P01" || (pe.Code == "57P03" || pe.Code == "08006") && strings.Contains(pe.Message, "shardgate")) {
			t.Errorf("unclear error during failover: %v", err)
		}
	}
	t.Logf("%d writes acknowledged, %d failed; first: %v", len(acked), len(errs), errs[0])
	if firstOKAfterErr.IsZero() || firstOKAfterErr.After(deadline) {
		t.Fatalf("writes did not resume within 5s of the promotion (first success %v after it)", firstOKAfterErr.Sub(promoted))
	}
	t.Logf("writes resumed %v after the promotion", firstOKAfterErr.Sub(promoted))
	// Every acknowledged write is on the new primary.
	nc, err := pgx.Connect(ctx, rep.DSN("postgres", "", "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close(ctx)
	var missing int
	if err := nc.QueryRow(ctx, "select count(*) from unnest($1::int[]) id where not exists (select 1 from acked a where a.id = id)", acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged writes are missing on the new primary", missing)
	}
}
