package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/test/cluster"
)

// followLimit is the hard bound on following a change; the goal is well
// under a second, and the measured time is logged.
const followLimit = 2 * time.Second

// never is a poll interval no test outlasts: with it, only notifications
// can deliver a change.
const never = time.Hour

func TestWatchFollowsSetSpecByNotify(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed, PollInterval: never})
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	maps := watched(t, s, m)
	// Another proxy (or shardgate shardmap apply) changes the map.
	admin := open(t, dsn, Options{})
	time.Sleep(200 * time.Millisecond) // let the listener connect
	for v := uint64(2); v <= 4; v++ {
		start := time.Now()
		if _, err := admin.SetSpec(ctxT(t), testSpec("s1", "2000", "s1"), twoShards); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		took += awaitVersion(t, maps, v, followLimit)
		t.Logf("version %d followed %v after SetSpec began", v, took)
		if took > time.Second {
			t.Errorf("version %d took %v, want < 1s", v, took)
		}
	}
}

// TestWatchPollBackstop changes the map with triggers disabled, so that
// no NOTIFY is sent: a watcher that only listens must miss it (which
// shows the change really was silent), and one that polls must find it.
func TestWatchPollBackstop(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	listenOnly := open(t, dsn, Options{Seed: &seed, PollInterval: never})
	polling := open(t, dsn, Options{PollInterval: 200 * time.Millisecond})
	silent := watched(t, listenOnly, nil)
	awaitVersion(t, silent, 1, followLimit) // the first check loads version 1
	maps := watched(t, polling, nil)
	awaitVersion(t, maps, 1, followLimit)

	start := time.Now()
	exec(t, dsn, `SET session_replication_role = replica;
		UPDATE shardgate.map SET version = 2, spec = jsonb_set(spec, '{default_shard}', '"s1"')`)
	took := awaitVersion(t, maps, 2, followLimit)
	t.Logf("the poll found version 2 after %v (poll interval 200ms)", took)
	if took > time.Second {
		t.Errorf("poll took %v, want < 1s", took)
	}
	select {
	case m := <-silent:
		t.Fatalf("the listen-only watcher got version %d: the change was not silent, so the test proves nothing", m.Version())
	case <-time.After(time.Second - time.Since(start)):
	}
}

func TestWatchRefusesAnInconsistentMap(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	var l logs
	s := open(t, dsn, Options{Seed: &seed, PollInterval: 100 * time.Millisecond, Logger: l.logger()})
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	maps := watched(t, s, m)
	// Written past SetSpec, which would refuse it: ranges that overlap.
	exec(t, dsn, `UPDATE shardgate.map SET version = 2,
		spec = jsonb_set(spec, '{distributions,1,ranges,1,lo}', '"500"')`)
	if !eventually(followLimit, func() bool { return strings.Contains(l.String(), "refused") }) {
		t.Fatalf("no error logged:\n%s", l.String())
	}
	time.Sleep(300 * time.Millisecond) // a few polls, which must not log again
	out := l.String()
	if !contains(out, "level=ERROR", "version=2", "in_force=1", "distributions[1].ranges[1]: overlaps distributions[1].ranges[0]") {
		t.Errorf("the error does not name the problem:\n%s", out)
	}
	if n := strings.Count(out, "refused"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	select {
	case m := <-maps:
		t.Fatalf("an inconsistent map (version %d) was applied", m.Version())
	default:
	}
	// The next good version is taken.
	if _, err := s.SetSpec(ctxT(t), testSpec("s1", "1000", "s0"), twoShards); err != nil {
		t.Fatal(err)
	}
	awaitVersion(t, maps, 3, followLimit)
}

// TestWatchReconnects restarts the catalog's server under a watcher that
// only listens: it must reconnect and follow changes again.
func TestWatchReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	host := cluster.ForTest(t, cluster.Options{Shards: 1}).Shards[0].Primary
	dsn := newDB(t, host)
	seed := testSpec("s0", "1000", "s0")
	var l logs
	s := open(t, dsn, Options{Seed: &seed, PollInterval: never, Logger: l.logger()})
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	maps := watched(t, s, m)
	time.Sleep(200 * time.Millisecond)

	if err := host.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The change goes in as soon as the server is back; the watcher finds
	// it when its listener reconnects, whose backoff is at most 5s.
	if _, err := s.SetSpec(ctxT(t), testSpec("s1", "1000", "s0"), twoShards); err != nil {
		t.Fatal(err)
	}
	awaitVersion(t, maps, 2, maxBackoff+followLimit)
	t.Logf("after the restart, version 2 followed in %v", time.Since(start))
	if !strings.Contains(l.String(), "catalog notifications interrupted") {
		t.Errorf("the lost connection was not logged:\n%s", l.String())
	}
	// Notifications work again.
	start = time.Now()
	if _, err := s.SetSpec(ctxT(t), testSpec("s0", "1000", "s0"), twoShards); err != nil {
		t.Fatal(err)
	}
	awaitVersion(t, maps, 3, followLimit)
	took := time.Since(start)
	t.Logf("then version 3 followed in %v", took)
	if took > time.Second {
		t.Errorf("version 3 took %v, want < 1s", took)
	}
}
