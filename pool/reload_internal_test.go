package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// readsOf makes n reads on shard 0 and counts them by address.
func readsOf(t *testing.T, tp *Topology, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		h, _, err := tp.Read(context.Background(), 0, ReadRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got[h.addr]++
	}
	return got
}

func TestSetHosts(t *testing.T) {
	tp, hosts := fakeTopology(TopologyOptions{}, 0x1000)
	added, removed := tp.SetHosts(0, []HostSpec{{Addr: "p:1"}, {Addr: "r1:1", Zone: "c"}, {Addr: "r2:1"}, {Addr: "r2:1"}})
	if strings.Join(added, ",") != "r2:1" || len(removed) != 0 {
		t.Fatalf("added %v, removed %v", added, removed)
	}
	now := tp.Hosts(0)
	if len(now) != 3 || now[0] != hosts[0] || now[1] != hosts[1] || hosts[1].Zone() != "c" {
		t.Fatalf("hosts %v, r1 zone %q: want the same p and r1, then r2", now, hosts[1].Zone())
	}
	// Not polled yet: no reads.
	if got := readsOf(t, tp, 10); got["r1:1"] != 10 {
		t.Fatalf("reads before r2's first poll: %v", got)
	}
	r2 := now[2]
	r2.st.Store(stReplicaUp)
	if got := readsOf(t, tp, 10); got["r1:1"] != 5 || got["r2:1"] != 5 {
		t.Fatalf("reads once r2 is up: %v", got)
	}

	added, removed = tp.SetHosts(0, []HostSpec{{Addr: "p:1"}, {Addr: "r2:1"}})
	if len(added) != 0 || strings.Join(removed, ",") != "r1:1" {
		t.Fatalf("added %v, removed %v", added, removed)
	}
	if got := readsOf(t, tp, 10); got["r2:1"] != 10 {
		t.Fatalf("reads after removing r1: %v", got)
	}
	if err := tp.AdminBan("r1:1", "x"); err == nil || !strings.Contains(err.Error(), "no host r1:1") {
		t.Fatalf("ban of a removed host: %v", err)
	}
	for _, s := range tp.Snapshot() {
		if s.Addr == "r1:1" {
			t.Fatal("removed host in the snapshot")
		}
	}

	// Removing the primary: the shard has none, reads still go to r2.
	tp.SetHosts(0, []HostSpec{{Addr: "r2:1"}})
	if h, err := tp.Primary(0); err == nil {
		t.Fatalf("primary %v after its removal", h)
	}
	if got := readsOf(t, tp, 3); got["r2:1"] != 3 {
		t.Fatalf("reads without a primary: %v", got)
	}
	if _, _, err := tp.SetShards([]ShardSpec{{}, {}}); err == nil || !strings.Contains(err.Error(), "needs a restart") {
		t.Fatalf("SetShards with another shard count: %v", err)
	}
}

// TestSetHostsReady checks that Ready stops waiting for removed hosts and
// that hosts added after Ready returned do not count towards it.
func TestSetHostsReady(t *testing.T) {
	tp, _ := fakeTopology(TopologyOptions{}, 0x1000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := tp.Ready(ctx); err == nil || !strings.Contains(err.Error(), "p:1, r1:1") {
		t.Fatalf("Ready with unchecked hosts: %v", err)
	}
	tp.SetHosts(0, []HostSpec{{Addr: "r1:1"}})
	tp.markChecked(tp.Hosts(0)[0])
	if err := tp.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	tp.SetHosts(0, []HostSpec{{Addr: "r1:1"}, {Addr: "r3:1"}})
	tp.markChecked(tp.Hosts(0)[1]) // must not close ready again
	if err := tp.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAdminBan(t *testing.T) {
	tp, hosts := fakeTopology(TopologyOptions{}, 0x1000, 0x1000)
	if got := readsOf(t, tp, 10); got["r1:1"] != 5 {
		t.Fatalf("reads before the ban: %v", got)
	}
	if err := tp.AdminBan("r1:1", "disk swap"); err != nil {
		t.Fatal(err)
	}
	// A successful poll does not lift it.
	tp.answered(hosts[1], hosts[1].banGen, pollResult{replica: true, lsn: 0x1000})
	if got := readsOf(t, tp, 10); got["r2:1"] != 10 {
		t.Fatalf("reads with r1 banned: %v", got)
	}
	s := tp.Snapshot()[1]
	if s.State != "banned" || !s.AdminBanned || s.BanReason != "operator: disk swap" || s.Polled.IsZero() || s.RetryIn != 0 {
		t.Fatalf("banned row %+v", s)
	}
	if hosts[1].Up() {
		t.Fatal("banned host Up")
	}
	for _, addr := range []string{"p:1", "nope:5432"} {
		err := tp.AdminBan(addr, "x")
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Message, addr) {
			t.Fatalf("ban %s: %v", addr, err)
		}
		t.Logf("ban %s: %v", addr, err)
	}
	if err := tp.AdminBan("p:1", "x"); !strings.Contains(err.Error(), "primary") {
		t.Fatalf("primary ban: %v", err)
	}
	// With every replica banned the read falls back for want of a replica.
	must(t, tp.AdminBan("r2:1", ""))
	if h, why, _ := tp.Read(context.Background(), 0, ReadRequest{}); h != hosts[0] || why != ReasonNoReplica {
		t.Fatalf("all replicas banned: %v %v", h, why)
	}
	must(t, tp.AdminUnban("r2:1"))
	must(t, tp.AdminUnban("r1:1"))
	must(t, tp.AdminUnban("r1:1"))
	if got := readsOf(t, tp, 10); got["r1:1"] != 5 {
		t.Fatalf("reads after the unban: %v", got)
	}
	if s := tp.Snapshot()[1]; s.State != "up" || s.AdminBanned || s.BanReason != "" {
		t.Fatalf("unbanned row %+v", s)
	}

	// A banned replica promoted while the primary is down becomes the
	// primary, ban lifted: writes need it.
	must(t, tp.AdminBan("r1:1", "x"))
	hosts[0].setHealth(healthBanned)
	tp.answered(hosts[1], hosts[1].banGen, pollResult{lsn: 0x2000, timeline: 2})
	if h, err := tp.Primary(0); h != hosts[1] || err != nil {
		t.Fatalf("primary %v %v", h, err)
	}
	if s := tp.Snapshot()[1]; s.AdminBanned || s.State != "up" {
		t.Fatalf("promoted host %+v", s)
	}
}

func TestTopologySetOptions(t *testing.T) {
	tp, _ := fakeTopology(TopologyOptions{}, 0x1000, 0x1000)
	if got := readsOf(t, tp, 10); got["r1:1"] != 5 {
		t.Fatalf("reads without a zone: %v", got)
	}
	tp.SetOptions(TopologyOptions{Zone: "b", Interval: time.Second})
	if got := readsOf(t, tp, 10); got["r2:1"] != 10 {
		t.Fatalf("reads in zone b: %v", got)
	}
	if o := tp.opts(); o.Interval != time.Second || o.BanMin != DefaultBanMin || o.Connect == nil {
		t.Fatalf("options %+v", o)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
