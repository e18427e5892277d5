package pool_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestTopologyReload changes a running topology the way a configuration
// reload and an operator do: hosts added and removed, replicas banned and
// unbanned, MaxLag changed.
func TestTopologyReload(t *testing.T) {
	c := appCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, r1, r2 := c.Shards[0].Primary, c.Shards[0].Replicas[0], c.Shards[0].Replicas[1]
	must(t, p.Exec(ctx, "CREATE TABLE t (id int)"))
	specs := func(hosts ...*cluster.Host) []pool.HostSpec {
		var out []pool.HostSpec
		for _, h := range hosts {
			out = append(out, pool.HostSpec{Addr: h.Addr()})
		}
		return out
	}
	// monitors counts the monitoring connections open on h.
	monitors := func(h *cluster.Host) string {
		n, err := h.QueryString(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shardgate monitor'")
		must(t, err)
		return n
	}

	t.Run("hosts added take reads, hosts removed stop", func(t *testing.T) {
		tp := startTopology(t, pool.TopologyOptions{Shards: []pool.ShardSpec{{Name: "s0", Hosts: specs(p, r1)}}})
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 10 {
			t.Fatalf("reads before r2 is added: %v", got)
		}
		added, removed := tp.SetHosts(0, specs(p, r1, r2))
		if strings.Join(added, ",") != r2.Addr() || len(removed) != 0 {
			t.Fatalf("added %v, removed %v", added, removed)
		}
		took := waitFor(t, 5*time.Second, "r2 up", func() bool { return status(t, tp, r2.Addr()).State == "up" })
		t.Logf("r2 up %v after SetHosts", took)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 || got[r2.Addr()] != 5 {
			t.Fatalf("reads after r2 was added: %v", got)
		}
		waitFor(t, 5*time.Second, "a monitor on r1", func() bool { return monitors(r1) == "1" })

		added, removed = tp.SetHosts(0, specs(p, r2))
		if len(added) != 0 || strings.Join(removed, ",") != r1.Addr() {
			t.Fatalf("added %v, removed %v", added, removed)
		}
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads after r1 was removed: %v", got)
		}
		for _, s := range tp.Snapshot() {
			if s.Addr == r1.Addr() {
				t.Fatalf("r1 still in the snapshot: %+v", s)
			}
		}
		// The monitor closed its connection before SetHosts returned; the
		// server notices within moments.
		waitFor(t, 2*time.Second, "r1's monitoring connection closed", func() bool { return monitors(r1) == "0" })
	})

	t.Run("an operator ban keeps a healthy replica out of reads", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
			t.Fatalf("reads before the ban: %v", got)
		}
		must(t, tp.AdminBan(r1.Addr(), "kernel upgrade"))
		banned := time.Now()
		// Polls go on and succeed, and the ban holds.
		waitFor(t, 5*time.Second, "r1 polled after the ban", func() bool {
			return status(t, tp, r1.Addr()).Polled.After(banned.Add(200 * time.Millisecond))
		})
		s := status(t, tp, r1.Addr())
		if s.State != "banned" || !s.AdminBanned || s.BanReason != "operator: kernel upgrade" || s.LSN == 0 || s.Role != "replica" {
			t.Fatalf("banned r1: %+v", s)
		}
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with r1 banned: %v", got)
		}
		err := tp.AdminBan(p.Addr(), "no")
		if err == nil || !strings.Contains(err.Error(), "primary") {
			t.Fatalf("ban of the primary: %v", err)
		}
		if s := status(t, tp, p.Addr()); s.State != "up" || s.AdminBanned {
			t.Fatalf("primary after a refused ban: %+v", s)
		}
		if err := tp.AdminBan("127.0.0.1:1", "no"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("ban of an unknown host: %v", err)
		}
		must(t, tp.AdminUnban(r1.Addr()))
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
			t.Fatalf("reads after the unban: %v", got)
		}
		if s := status(t, tp, r1.Addr()); s.State != "up" || s.BanReason != "" {
			t.Fatalf("unbanned r1: %+v", s)
		}
	})

	t.Run("set options changes max lag", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		must(t, r1.PauseReplay(ctx))
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				r1.ResumeReplay(ctx)
			}
		})
		must(t, p.Exec(ctx, "INSERT INTO t VALUES (1)"))
		waitFor(t, 5*time.Second, "r1 400ms behind", func() bool { return status(t, tp, r1.Addr()).Lag > 400*time.Millisecond })
		// No MaxLag: r1 takes reads however far behind.
		if s := status(t, tp, r1.Addr()); s.State != "up" {
			t.Fatalf("r1 without MaxLag: %+v", s)
		}
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
			t.Fatalf("reads without MaxLag: %v", got)
		}
		tp.SetOptions(pool.TopologyOptions{Interval: 50 * time.Millisecond, MaxLag: 200 * time.Millisecond})
		took := waitFor(t, 2*time.Second, "r1 lagging", func() bool { return status(t, tp, r1.Addr()).State == "lagging" })
		t.Logf("r1 lagging %v after MaxLag was set", took)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with MaxLag: %v", got)
		}
		tp.SetOptions(pool.TopologyOptions{Interval: 50 * time.Millisecond})
		waitFor(t, 2*time.Second, "r1 up", func() bool { return status(t, tp, r1.Addr()).State == "up" })
		must(t, r1.ResumeReplay(ctx))
		resumed = true
	})
}
