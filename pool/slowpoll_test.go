package pool_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestSlowHealthCheck: a host whose health check times out once, while
// it still accepts connections, stays in traffic. A host that hangs for
// good (postmaster frozen too) is taken out when another host can stand
// in for it, a replica here; the shard's only primary keeps its traffic,
// since banning it would only turn a slow shard into a refusing one.
func TestSlowHealthCheck(t *testing.T) {
	c := appCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, r := c.Shards[0].Primary, c.Shards[0].Replicas[0]
	tp := newTopology(t, c, pool.TopologyOptions{Interval: 50 * time.Millisecond, Timeout: time.Second}, nil)
	for _, h := range []*cluster.Host{p, r} {
		waitFor(t, 10*time.Second, h.Addr()+" up", func() bool { return status(t, tp, h.Addr()).State == "up" })
	}

	// stop freezes processes with SIGSTOP until the returned func or the
	// test's end resumes them.
	stop := func(t *testing.T, pids ...int) func() {
		t.Helper()
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				if errors.Is(err, syscall.EPERM) {
					t.Skip("cannot signal the server's processes:", err)
				}
				t.Fatal(err)
			}
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				for _, pid := range pids {
					syscall.Kill(pid, syscall.SIGCONT)
				}
			}
		}
		t.Cleanup(resume)
		return resume
	}
	monitorBackend := func(t *testing.T, h *cluster.Host) int {
		t.Helper()
		var s string
		waitFor(t, 5*time.Second, "the monitor's backend", func() bool {
			var err error
			s, err = h.QueryString(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = 'shardgate monitor' LIMIT 1")
			return err == nil && s != ""
		})
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	postmaster := func(t *testing.T, h *cluster.Host) int {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(h.DataDir, "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	// watch samples h's state every 5ms for d.
	watch := func(h *cluster.Host, d time.Duration) (states map[string]bool) {
		states = map[string]bool{}
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			states[status(t, tp, h.Addr()).State] = true
		}
		return states
	}

	t.Run("one slow check is forgiven", func(t *testing.T) {
		// The frozen backend misses one check's timeout; the next check
		// connects afresh and gets its answer.
		frozen := monitorBackend(t, p)
		resume := stop(t, frozen)
		states := watch(p, 1500*time.Millisecond)
		resume()
		states2 := watch(p, time.Second)
		if states["banned"] || states2["banned"] || !states2["up"] {
			t.Fatalf("states seen: %v then %v, want up throughout", states, states2)
		}
		// The check did time out: the monitor gave up the frozen backend's
		// connection and polls on another one.
		other, err := p.QueryString(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shardgate monitor' AND pid <> $1", frozen)
		if err != nil || other == "0" {
			t.Fatalf("the monitor still polls on the frozen backend only (%v): no check timed out", err)
		}
	})

	t.Run("a hung replica is taken out", func(t *testing.T) {
		// The primary can take its reads, so it is banned.
		resume := stop(t, monitorBackend(t, r), postmaster(t, r))
		waitFor(t, 6*time.Second, "replica banned", func() bool { return status(t, tp, r.Addr()).State == "banned" })
		resume()
		waitFor(t, 10*time.Second, "replica up again", func() bool { return status(t, tp, r.Addr()).State == "up" })
	})

	t.Run("the only primary keeps its traffic", func(t *testing.T) {
		// Hung for 4 s, four timeouts: past the grace, but no host can
		// take its writes.
		resume := stop(t, monitorBackend(t, p), postmaster(t, p))
		states := watch(p, 4*time.Second)
		resume()
		if states["banned"] || !states["up"] {
			t.Fatalf("states seen: %v, want up throughout", states)
		}
		if after := watch(p, time.Second); after["banned"] {
			t.Fatalf("banned after it answered again: %v", after)
		}
	})
}
