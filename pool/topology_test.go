package pool_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/test/cluster"
)

// logWriter sends a topology's log to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// newTopology monitors c's shards as the unprivileged role app, starts and
// waits for the topology and closes it when t ends. Unset durations get
// test-friendly values; zones maps addresses to zones.
func newTopology(t testing.TB, c *cluster.Cluster, o pool.TopologyOptions, zones map[string]string) *pool.Topology {
	t.Helper()
	for _, s := range c.Shards {
		spec := pool.ShardSpec{Name: "s" + string(rune('0'+s.Index))}
		for _, h := range append([]*cluster.Host{s.Primary}, s.Replicas...) {
			spec.Hosts = append(spec.Hosts, pool.HostSpec{Addr: h.Addr(), Zone: zones[h.Addr()]})
		}
		o.Shards = append(o.Shards, spec)
	}
	return startTopology(t, o)
}

// startTopology starts a topology for o's shards as newTopology does.
func startTopology(t testing.TB, o pool.TopologyOptions) *pool.Topology {
	t.Helper()
	o.Connect = func(ctx context.Context, addr string) (*pgconn.PgConn, error) {
		cfg, err := pool.ConnConfig(addr, "app", "app", "app", nil, false)
		if err != nil {
			return nil, err
		}
		cfg.RuntimeParams["application_name"] = "shardgate monitor"
		return pgconn.ConnectConfig(ctx, cfg)
	}
	if o.Interval == 0 {
		o.Interval = 50 * time.Millisecond
	}
	if o.BanMin == 0 {
		o.BanMin, o.BanMax = 100*time.Millisecond, 400*time.Millisecond
	}
	if o.Timeout == 0 {
		// Generous, so that a loaded machine does not make hosts look down.
		o.Timeout = 5 * time.Second
	}
	o.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tp := pool.NewTopology(o)
	tp.Start()
	t.Cleanup(tp.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tp.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return tp
}

// status returns the Snapshot row of addr.
func status(t testing.TB, tp *pool.Topology, addr string) pool.HostStatus {
	t.Helper()
	for _, s := range tp.Snapshot() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("%s not in the snapshot", addr)
	return pool.HostStatus{}
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// reads makes n reads and counts the hosts they went to, by address.
func reads(t testing.TB, tp *pool.Topology, n int, r pool.ReadRequest) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		h, _, err := tp.Read(context.Background(), 0, r)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Addr()]++
	}
	return got
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTopology runs a shard of a primary and two replicas through reads,
// read-your-writes, lag, bans and crashes. Subtests share the cluster and
// leave it as they found it: every replica streaming and replaying.
func TestTopology(t *testing.T) {
	c := appCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, r1, r2 := c.Shards[0].Primary, c.Shards[0].Replicas[0], c.Shards[0].Replicas[1]
	must(t, p.Exec(ctx, "CREATE TABLE t (id int, pad text)"))
	// write runs sql on the primary, committing synchronously so that the
	// WAL write position returned covers the commit: it is the causal LSN.
	write := func(t *testing.T, sql string) pool.LSN {
		t.Helper()
		must(t, p.Exec(ctx, "SET synchronous_commit = on; "+sql))
		s, err := p.QueryString(ctx, "SELECT pg_current_wal_lsn()")
		must(t, err)
		l, err := pool.ParseLSN(s)
		must(t, err)
		return l
	}
	// pause pauses replay on h until resumed or the subtest ends, so that
	// a failing subtest does not leave the next ones a paused replica.
	pause := func(t *testing.T, h *cluster.Host) {
		t.Helper()
		must(t, h.PauseReplay(ctx))
		t.Cleanup(func() { h.ResumeReplay(ctx) })
	}
	caughtUp := func(t *testing.T, tp *pool.Topology, l pool.LSN, hosts ...*cluster.Host) {
		t.Helper()
		for _, h := range hosts {
			must(t, h.WaitReplayed(ctx, l.String()))
			waitFor(t, 5*time.Second, h.Name+" seen caught up", func() bool { return status(t, tp, h.Addr()).LSN >= l })
		}
	}

	t.Run("roles", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		h, err := tp.Primary(0)
		must(t, err)
		if h.Addr() != p.Addr() || h.Role() != pool.RolePrimary || h.Shard() != 0 {
			t.Fatalf("primary %s (%v), want %s", h.Addr(), h.Role(), p.Addr())
		}
		for _, s := range tp.Snapshot() {
			want := "replica"
			if s.Addr == p.Addr() {
				want = "primary"
				if !s.Primary || s.Timeline != 1 || s.LSN == 0 {
					t.Errorf("primary row %+v", s)
				}
			}
			if s.Role != want || s.State != "up" || s.Shard != "s0" {
				t.Errorf("row %+v, want role %s, state up", s, want)
			}
		}
	})

	t.Run("reads go to replicas in turn and are counted", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		got := reads(t, tp, 10, pool.ReadRequest{})
		if got[r1.Addr()] != 5 || got[r2.Addr()] != 5 {
			t.Fatalf("reads %v", got)
		}
		if s := status(t, tp, r1.Addr()); s.Reads != 5 {
			t.Fatalf("r1 counted %d reads", s.Reads)
		}
		got = reads(t, tp, 30, pool.ReadRequest{IncludePrimary: true})
		if len(got) != 3 {
			t.Fatalf("include primary: %v", got)
		}
	})

	t.Run("read your writes", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		slow := newTopology(t, c, pool.TopologyOptions{Interval: 20 * time.Second}, nil)
		pause(t, r1)
		lsn := write(t, "INSERT INTO t VALUES (1)")
		caughtUp(t, tp, lsn, r2)
		if got := reads(t, tp, 10, pool.ReadRequest{MinLSN: lsn}); got[r2.Addr()] != 10 {
			t.Fatalf("with MinLSN, reads went to %v; want all on %s", got, r2.Name)
		}
		// The same reads without MinLSN do go to r1: it was skipped above
		// for its LSN alone.
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
			t.Fatalf("without MinLSN, reads went to %v", got)
		}

		pause(t, r2)
		lsn = write(t, "INSERT INTO t VALUES (2)")
		start := time.Now()
		h, why, err := tp.Read(ctx, 0, pool.ReadRequest{MinLSN: lsn, Wait: 300 * time.Millisecond})
		took := time.Since(start)
		must(t, err)
		if h.Addr() != p.Addr() || why != pool.ReasonRYW || took < 300*time.Millisecond || took > 3*time.Second {
			t.Fatalf("no replica replayed: got %s, %v after %v; want the primary, ryw, after 300ms", h.Addr(), why, took)
		}
		if s := status(t, tp, p.Addr()); s.PrimaryReadsRYW != 1 || s.Reads != 1 {
			t.Fatalf("primary counters %+v", s)
		}

		// slow polls every 20s: only the fast polls during the wait can
		// see r2 replay within the 10s wait, let alone within 5s.
		go func() {
			time.Sleep(200 * time.Millisecond)
			if err := r2.ResumeReplay(ctx); err != nil {
				t.Error(err)
			}
		}()
		start = time.Now()
		h, why, err = slow.Read(ctx, 0, pool.ReadRequest{MinLSN: lsn, Wait: 10 * time.Second})
		took = time.Since(start)
		must(t, err)
		t.Logf("the wait ended %v after it began, replay resumed at 200ms", took)
		if h.Addr() != r2.Addr() || why != pool.ReasonReplica || took < 200*time.Millisecond || took > 5*time.Second {
			t.Fatalf("waiting for a replay: got %s, %v after %v; want %s soon after 200ms", h.Addr(), why, took, r2.Name)
		}
		must(t, r1.ResumeReplay(ctx))
		caughtUp(t, tp, lsn, r1, r2)
	})

	t.Run("recheck polls at once", func(t *testing.T) {
		slow := newTopology(t, c, pool.TopologyOptions{Interval: 20 * time.Second}, nil)
		lsn := write(t, "INSERT INTO t VALUES (3)")
		h, err := slow.Primary(0)
		must(t, err)
		if h.LSN() >= lsn {
			t.Fatal("primary LSN already past the write")
		}
		slow.Recheck(h)
		waitFor(t, 5*time.Second, "the primary's new LSN seen", func() bool { return h.LSN() >= lsn })
	})

	t.Run("lagging replicas take no reads", func(t *testing.T) {
		byTime := newTopology(t, c, pool.TopologyOptions{MaxLag: 400 * time.Millisecond}, nil)
		byBytes := newTopology(t, c, pool.TopologyOptions{MaxLagBytes: 256 << 10}, nil)
		// An idle primary makes no replica lag, however long it idles.
		time.Sleep(600 * time.Millisecond)
		for _, s := range byTime.Snapshot() {
			if s.State != "up" || s.Lag > 100*time.Millisecond {
				t.Fatalf("idle cluster: %+v", s)
			}
		}
		pause(t, r1)
		start := time.Now()
		write(t, "INSERT INTO t VALUES (4)")
		waitFor(t, 5*time.Second, "r1 lagging by time", func() bool { return status(t, byTime, r1.Addr()).State == "lagging" })
		if took := time.Since(start); took < 350*time.Millisecond {
			t.Fatalf("r1 lagging %v after a write, MaxLag is 400ms", took)
		}
		if s := status(t, byBytes, r1.Addr()); s.State != "up" || s.LagBytes == 0 || s.LagBytes > 256<<10 {
			t.Fatalf("a small write made r1 lag in bytes: %+v", s)
		}
		if s := status(t, byTime, r2.Addr()); s.State != "up" {
			t.Fatalf("r2 %+v", s)
		}
		if got := reads(t, byTime, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with r1 lagging: %v", got)
		}
		write(t, "INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, 3000) i")
		waitFor(t, 5*time.Second, "r1 lagging in bytes", func() bool { return status(t, byBytes, r1.Addr()).State == "lagging" })
		if s := status(t, byBytes, r1.Addr()); s.LagBytes <= 256<<10 {
			t.Fatalf("lagging with %d bytes", s.LagBytes)
		}
		// r2 replays the 800 kB too, but the monitor may see the primary's
		// new position a poll before r2's: until then r2 lags as well.
		waitFor(t, 5*time.Second, "r2 replayed the write", func() bool { return status(t, byBytes, r2.Addr()).State == "up" })
		if got := reads(t, byBytes, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with r1 lagging: %v", got)
		}
		must(t, r1.ResumeReplay(ctx))
		for _, tp := range []*pool.Topology{byTime, byBytes} {
			waitFor(t, 5*time.Second, "r1 caught up", func() bool { return status(t, tp, r1.Addr()).State == "up" })
			if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
				t.Fatalf("reads after r1 caught up: %v", got)
			}
		}
	})

	t.Run("a ban holds until the host answers again", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{BanMin: 300 * time.Millisecond, BanMax: time.Second}, nil)
		h := tp.Hosts(0)[1]
		start := time.Now()
		tp.Ban(h, errors.New("connection refused"))
		if s := status(t, tp, h.Addr()); s.State != "banned" || !strings.Contains(s.LastError, "connection refused") {
			t.Fatalf("after Ban: %+v", s)
		}
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[h.Addr()] != 0 {
			t.Fatalf("reads went to a banned host: %v", got)
		}
		waitFor(t, 5*time.Second, "ban lifted", h.Up)
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Fatalf("ban lifted after %v, BanMin is 300ms", took)
		}
	})

	t.Run("a killed replica is banned, then back", func(t *testing.T) {
		tp := newTopology(t, c, pool.TopologyOptions{}, nil)
		must(t, r1.Kill())
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				r1.Start()
			}
		})
		took := waitFor(t, 5*time.Second, "r1 banned", func() bool { return status(t, tp, r1.Addr()).State == "banned" })
		t.Logf("r1 banned %v after kill -9", took)
		if s := status(t, tp, r1.Addr()); s.LastError == "" {
			t.Fatalf("no error recorded: %+v", s)
		}
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with r1 down: %v", got)
		}
		must(t, r1.Start())
		restarted = true
		took = waitFor(t, 10*time.Second, "r1 up again", func() bool { return status(t, tp, r1.Addr()).State == "up" })
		t.Logf("r1 up %v after its restart", took)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 5 {
			t.Fatalf("reads after r1 came back: %v", got)
		}
	})

	t.Run("zone preference", func(t *testing.T) {
		zones := map[string]string{p.Addr(): "a", r1.Addr(): "b", r2.Addr(): "a"}
		tp := newTopology(t, c, pool.TopologyOptions{Zone: "b"}, zones)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 10 {
			t.Fatalf("reads in zone b: %v", got)
		}
		r1h := tp.Hosts(0)[1]
		if r1h.Zone() != "b" {
			t.Fatalf("zone %q", r1h.Zone())
		}
		if got := reads(t, tp, 10, pool.ReadRequest{Exclude: r1h}); got[r2.Addr()] != 10 {
			t.Fatalf("reads with the zone's replica excluded: %v", got)
		}
	})

	t.Run("least connections", func(t *testing.T) {
		var mu sync.Mutex
		load := map[string]int{r1.Addr(): 7, r2.Addr(): 2}
		tp := newTopology(t, c, pool.TopologyOptions{Policy: pool.LeastConnections, Load: func(addr string) int {
			mu.Lock()
			defer mu.Unlock()
			return load[addr]
		}}, nil)
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r2.Addr()] != 10 {
			t.Fatalf("reads %v", got)
		}
		mu.Lock()
		load[r2.Addr()] = 9
		mu.Unlock()
		if got := reads(t, tp, 10, pool.ReadRequest{}); got[r1.Addr()] != 10 {
			t.Fatalf("reads after the load moved: %v", got)
		}
	})

	t.Run("read-write pools only reach primaries", func(t *testing.T) {
		key := pool.Key{Addr: r1.Addr(), User: "app", Database: "app", ReadWrite: true}
		if !strings.Contains(key.String(), "(read-write)") {
			t.Fatalf("key %s", key)
		}
		rw := pool.New(key, pool.Options{Size: 1, Password: "app"})
		defer rw.Close()
		_, err := rw.Get(ctx)
		var pe *pool.Error
		if !errors.Is(err, pool.ErrNotPrimary) || !errors.As(err, &pe) || pe.Code != "57P03" {
			t.Fatalf("read-write pool on a replica: %v", err)
		}
		for _, k := range []pool.Key{{Addr: p.Addr(), User: "app", Database: "app", ReadWrite: true}, {Addr: r1.Addr(), User: "app", Database: "app"}} {
			q := pool.New(k, pool.Options{Size: 1, Password: "app"})
			conn, err := q.Get(ctx)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			q.Put(conn)
			q.Close()
		}
	})
}

// TestTopologyFailover stops the primary, promotes the replica, then brings
// the old primary back un-demoted.
func TestTopologyFailover(t *testing.T) {
	c := appCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, r := c.Shards[0].Primary, c.Shards[0].Replicas[0]
	tp := newTopology(t, c, pool.TopologyOptions{MaxLagBytes: 1}, nil)
	primary := func() string {
		h, err := tp.Primary(0)
		if err != nil {
			return ""
		}
		return h.Addr()
	}
	if got := primary(); got != p.Addr() {
		t.Fatalf("primary %q", got)
	}

	must(t, p.Stop())
	waitFor(t, 5*time.Second, "no primary", func() bool { return primary() == "" })
	_, err := tp.Primary(0)
	var pe *pool.Error
	if !errors.As(err, &pe) || pe.Code != "57P03" {
		t.Fatalf("without a primary: %v", err)
	}
	t.Logf("Primary() without a primary: %v", err)
	for _, want := range []string{`shard "s0" has no primary right now: `, p.Addr() + " down for ", r.Addr() + " in recovery", "retry once"} {
		if !strings.Contains(pe.Message, want) {
			t.Fatalf("error %q lacks %q", pe.Message, want)
		}
	}
	// The replica still serves reads: with no primary, lag cannot be
	// measured and does not count (MaxLagBytes is 1).
	h, why, err := tp.Read(ctx, 0, pool.ReadRequest{})
	if err != nil || h.Addr() != r.Addr() || why != pool.ReasonReplica {
		t.Fatalf("read without a primary: %v %v %v", h, why, err)
	}
	if _, _, err := tp.Read(ctx, 0, pool.ReadRequest{MinLSN: h.LSN() + 1}); !errors.As(err, &pe) || !strings.Contains(pe.Message, "no host for this read") {
		t.Fatalf("read no host can serve: %v", err)
	}

	must(t, r.Promote(ctx))
	took := waitFor(t, 5*time.Second, "promoted replica is the primary", func() bool { return primary() == r.Addr() })
	t.Logf("the promoted replica became the primary %v after the promotion finished", took)

	// The old primary comes back, un-demoted, on the old timeline.
	must(t, p.Start())
	waitFor(t, 10*time.Second, "old primary up", func() bool {
		s := status(t, tp, p.Addr())
		return s.State == "up" && s.Role == "primary"
	})
	for range 5 {
		if got := primary(); got != r.Addr() {
			t.Fatalf("primary %s, want the promoted %s", got, r.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	old, promoted := status(t, tp, p.Addr()), status(t, tp, r.Addr())
	if old.Primary || !promoted.Primary || promoted.Timeline <= old.Timeline {
		t.Fatalf("old %+v, promoted %+v", old, promoted)
	}
}

// TestSetInUse counts checked-out connections per address across pools.
func TestSetInUse(t *testing.T) {
	dial := func(context.Context, pool.Key) (net.Conn, *pool.Hello, error) {
		a, b := net.Pipe()
		go func() { io.Copy(io.Discard, b) }()
		return a, &pool.Hello{}, nil
	}
	s := &pool.Set{Options: func(pool.Key) pool.Options { return pool.Options{Size: 5, Dial: dial} }}
	defer s.Close()
	ctx := context.Background()
	a := s.Get(pool.Key{Addr: "h:1", User: "u", Database: "a"}, "")
	b := s.Get(pool.Key{Addr: "h:1", User: "u", Database: "b"}, "")
	o := s.Get(pool.Key{Addr: "h:2", User: "u", Database: "a"}, "")
	var conns []*pool.Conn
	for _, p := range []*pool.Pool{a, a, b, o} {
		c, err := p.Get(ctx)
		must(t, err)
		conns = append(conns, c)
	}
	if s.InUse("h:1") != 3 || s.InUse("h:2") != 1 || s.InUse("h:3") != 0 {
		t.Fatalf("in use: %d %d", s.InUse("h:1"), s.InUse("h:2"))
	}
	conns[0].Pool().Put(conns[0])
	conns[2].Pool().Discard(conns[2])
	if s.InUse("h:1") != 1 {
		t.Fatalf("after put and discard: %d", s.InUse("h:1"))
	}
}
