package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/3000148"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", s, err)
		}
		if l.String() != s {
			t.Fatalf("ParseLSN(%q).String() = %q", s, l.String())
		}
	}
	if l, _ := ParseLSN("16/b374d848"); l != 0x16_B374D848 {
		t.Fatalf("lower case: %X", uint64(l))
	}
	for _, s := range []string{"", "/", "1/", "/1", "1", "1/2/3", "123456789/0", "0/123456789", "x/1", "1/ 2", "-1/0"} {
		if _, err := ParseLSN(s); err == nil || !strings.Contains(err.Error(), "16/B374D848") {
			t.Fatalf("ParseLSN(%q) = %v, want an error showing the form", s, err)
		}
	}
}

func TestLagHistory(t *testing.T) {
	var hs lagHistory
	t0 := time.Now()
	if b, d := hs.lag(t0, 0); b != 0 || d != 0 {
		t.Fatalf("empty history: %d %v", b, d)
	}
	hs.add(t0, 100)
	hs.add(t0.Add(time.Second), 100) // unchanged: the first sighting counts
	hs.add(t0.Add(2*time.Second), 300)
	hs.add(t0.Add(3*time.Second), 600)
	now := t0.Add(10 * time.Second)
	for _, c := range []struct {
		replay LSN
		bytes  int64
		lag    time.Duration
	}{
		{600, 0, 0}, {700, 0, 0}, // caught up, however long the primary idles
		{599, 1, 7 * time.Second},
		{300, 300, 7 * time.Second},
		{299, 301, 8 * time.Second},
		{99, 501, 10 * time.Second},
	} {
		if b, d := hs.lag(now, c.replay); b != c.bytes || d != c.lag {
			t.Errorf("lag(%d) = %d bytes %v, want %d %v", c.replay, b, d, c.bytes, c.lag)
		}
	}
	for i := range 3 * historySize {
		hs.add(t0.Add(time.Duration(i)*time.Millisecond), LSN(1000+i))
	}
	if hs.n != historySize {
		t.Fatalf("ring holds %d", hs.n)
	}
	if _, d := hs.lag(t0.Add(time.Hour), 0); d != time.Hour-time.Duration(2*historySize)*time.Millisecond {
		t.Fatalf("beyond the ring, lag is measured from its oldest sample: %v", d)
	}
	hs.add(now, 5) // the primary went back: start over
	if hs.n != 1 {
		t.Fatalf("history not reset: %d samples", hs.n)
	}
}

// fakeTopology returns a topology of one shard whose hosts' states are set
// by hand: a primary at 0/1000 and replicas at the given LSNs.
func fakeTopology(o TopologyOptions, replicas ...LSN) (*Topology, []*Host) {
	o.Shards = []ShardSpec{{Name: "s0", Hosts: []HostSpec{{Addr: "p:1", Zone: "a"}}}}
	for i := range replicas {
		o.Shards[0].Hosts = append(o.Shards[0].Hosts, HostSpec{Addr: "r" + string(rune('1'+i)) + ":1", Zone: []string{"a", "b"}[i%2]})
	}
	o.Connect = func(context.Context, string) (*pgconn.PgConn, error) { return nil, errors.New("fake") }
	t := NewTopology(o)
	hosts := t.shards[0].list()
	hosts[0].st.Store(stPrimaryUp)
	hosts[0].lsn.Store(0x1000)
	t.shards[0].primary.Store(hosts[0])
	for i, l := range replicas {
		hosts[i+1].st.Store(stReplicaUp)
		hosts[i+1].lsn.Store(uint64(l))
	}
	return t, hosts
}

func TestPick(t *testing.T) {
	ctx := context.Background()
	read := func(tp *Topology, r ReadRequest) (*Host, Reason) {
		t.Helper()
		h, why, err := tp.Read(ctx, 0, r)
		if err != nil {
			t.Fatal(err)
		}
		return h, why
	}
	tp, hosts := fakeTopology(TopologyOptions{}, 0x1000, 0x800)
	seen := map[*Host]int{}
	for range 10 {
		h, why := read(tp, ReadRequest{})
		if why != ReasonReplica {
			t.Fatalf("reason %v", why)
		}
		seen[h]++
	}
	if seen[hosts[1]] != 5 || seen[hosts[2]] != 5 {
		t.Fatalf("round robin: %v", seen)
	}
	for range 5 {
		if h, _ := read(tp, ReadRequest{MinLSN: 0x900}); h != hosts[1] {
			t.Fatalf("MinLSN: got %v", h)
		}
	}
	if h, why := read(tp, ReadRequest{MinLSN: 0x2000}); h != hosts[0] || why != ReasonRYW {
		t.Fatalf("nobody replayed MinLSN: %v %v", h, why)
	}
	if h, _ := read(tp, ReadRequest{Exclude: hosts[1]}); h != hosts[2] {
		t.Fatalf("Exclude: %v", h)
	}
	seen = map[*Host]int{}
	for range 30 {
		h, _ := read(tp, ReadRequest{IncludePrimary: true, MinLSN: 0x900})
		seen[h]++
	}
	if len(seen) != 2 || seen[hosts[2]] != 0 {
		t.Fatalf("include primary: %v", seen)
	}

	hosts[1].setLagging(true)
	if h, _ := read(tp, ReadRequest{}); h != hosts[2] {
		t.Fatalf("lagging replica chosen: %v", h)
	}
	hosts[2].setLagging(true)
	if h, why := read(tp, ReadRequest{}); h != hosts[0] || why != ReasonLag {
		t.Fatalf("all lagging: %v %v", h, why)
	}
	hosts[1].setHealth(healthBanned)
	hosts[2].setHealth(healthBanned)
	if h, why := read(tp, ReadRequest{}); h != hosts[0] || why != ReasonNoReplica {
		t.Fatalf("none up: %v %v", h, why)
	}
	hosts[0].setHealth(healthBanned)
	tp.shards[0].primary.Store(nil)
	_, _, err := tp.Read(ctx, 0, ReadRequest{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "57P03" || !strings.Contains(pe.Message, `shard "s0" has no host for this read right now: p:1 down`) {
		t.Fatalf("no host: %v", err)
	}
	if _, err := tp.Primary(0); err == nil || !strings.Contains(err.Error(), "no primary right now") {
		t.Fatalf("Primary: %v", err)
	}
	if _, _, err := tp.Read(ctx, 1, ReadRequest{}); err == nil {
		t.Fatal("shard out of range accepted")
	}
	c := hosts[0].readsRYW.Load() + hosts[0].readsLag.Load() + hosts[0].readsNoReplica.Load()
	if c != 3 {
		t.Fatalf("fallback counters: %d", c)
	}
}

func TestPickZoneAndLeastConnections(t *testing.T) {
	ctx := context.Background()
	load := map[string]int{"r1:1": 5, "r2:1": 1, "r3:1": 3, "r4:1": 0}
	tp, hosts := fakeTopology(TopologyOptions{Zone: "a", Policy: LeastConnections, Load: func(addr string) int { return load[addr] }},
		0x1000, 0x1000, 0x1000, 0x1000)
	// Zone a holds r1 and r3 (and the primary, not a candidate).
	for range 5 {
		if h, _, _ := tp.Read(ctx, 0, ReadRequest{}); h != hosts[3] {
			t.Fatalf("zone a, least connections: %v", h)
		}
	}
	load["r1:1"] = 2
	if h, _, _ := tp.Read(ctx, 0, ReadRequest{}); h != hosts[1] {
		t.Fatalf("after the load changed: %v", h)
	}
	hosts[1].setHealth(healthBanned)
	hosts[3].setLagging(true)
	if h, _, _ := tp.Read(ctx, 0, ReadRequest{}); h != hosts[4] {
		t.Fatalf("no candidate in zone: want the least loaded elsewhere, got %v", h)
	}
}

func TestWaitReplay(t *testing.T) {
	tp, hosts := fakeTopology(TopologyOptions{}, 0x800)
	sh := tp.shards[0]
	go func() {
		for sh.waiters.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		hosts[1].lsn.Store(0x1000)
		sh.wakeWaiters()
	}()
	start := time.Now()
	h, why, err := tp.Read(context.Background(), 0, ReadRequest{MinLSN: 0x1000, Wait: 5 * time.Second})
	if err != nil || h != hosts[1] || why != ReasonReplica || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v %v %v after %v", h, why, err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := tp.Read(ctx, 0, ReadRequest{MinLSN: 0x2000, Wait: 5 * time.Second}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx ended: %v", err)
	}
}

func BenchmarkRead(b *testing.B) {
	tp, _ := fakeTopology(TopologyOptions{Zone: "b"}, 0x1000, 0x1000, 0x1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if h, _, err := tp.Read(ctx, 0, ReadRequest{MinLSN: 0x900}); err != nil || h == nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkReadSerial(b *testing.B) {
	tp, _ := fakeTopology(TopologyOptions{}, 0x1000, 0x1000, 0x1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if h, _, err := tp.Read(ctx, 0, ReadRequest{MinLSN: 0x900}); err != nil || h == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadLeastConnections(b *testing.B) {
	var s Set
	tp, _ := fakeTopology(TopologyOptions{Policy: LeastConnections, Load: s.InUse}, 0x1000, 0x1000, 0x1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if h, _, err := tp.Read(ctx, 0, ReadRequest{}); err != nil || h == nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPrimary(b *testing.B) {
	tp, _ := fakeTopology(TopologyOptions{}, 0x1000, 0x1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if h, err := tp.Primary(0); err != nil || h == nil {
				b.Fatal(err)
			}
		}
	})
}
