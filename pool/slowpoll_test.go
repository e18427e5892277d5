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
)

// TestSlowHealthCheck: a host whose health check times out once, while
// it still accepts connections, stays in traffic; a host that also stops
// accepting them is taken out at the next check. The second half shows
// the test sees a ban when there is one.
func TestSlowHealthCheck(t *testing.T) {
	c := appCluster(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := c.Shards[0].Primary
	tp := newTopology(t, c, pool.TopologyOptions{Interval: 50 * time.Millisecond, Timeout: time.Second}, nil)
	waitFor(t, 5*time.Second, "primary up", func() bool { return status(t, tp, p.Addr()).State == "up" })

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
	monitorBackend := func(t *testing.T) int {
		t.Helper()
		var s string
		waitFor(t, 5*time.Second, "the monitor's backend", func() bool {
			var err error
			s, err = p.QueryString(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = 'shardgate monitor' LIMIT 1")
			return err == nil && s != ""
		})
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	// watch samples the primary's state every 5ms for d.
	watch := func(d time.Duration) (states map[string]bool) {
		states = map[string]bool{}
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			states[status(t, tp, p.Addr()).State] = true
		}
		return states
	}

	t.Run("one slow check is forgiven", func(t *testing.T) {
		// The frozen backend misses one check's timeout; the next check
		// connects afresh and gets its answer.
		frozen := monitorBackend(t)
		resume := stop(t, frozen)
		states := watch(1500 * time.Millisecond)
		resume()
		states2 := watch(time.Second)
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

	t.Run("a hung host is taken out", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		postmaster, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		resume := stop(t, monitorBackend(t), postmaster)
		waitFor(t, 6*time.Second, "primary banned", func() bool { return status(t, tp, p.Addr()).State == "banned" })
		resume()
		waitFor(t, 5*time.Second, "primary up again", func() bool { return status(t, tp, p.Addr()).State == "up" })
	})
}
