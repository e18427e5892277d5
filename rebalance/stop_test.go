package rebalance_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/rebalance"
)

// testStopWithoutSource stops replication when the source is out of
// reach mid-copy: the target's subscription goes at once, and the next
// call, with the source back, drops the slot and the initial-copy slot
// the interrupted copy left there.
func (e *testEnv) testStopWithoutSource(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, `CREATE TABLE big (id bigint PRIMARY KEY, v text);
		INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g`)
	m := p.mover("m6", upperHalf, rebalance.Table{Name: "big", Key: "id"})
	ctx := ctxFor(t, 2*time.Minute)
	if err := m.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		pr, err := m.Progress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Tables[0].TargetRows > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The target loses the source: its workers restart and cannot connect.
	mustExec(t, p.dst, "ALTER SUBSCRIPTION sg_m6 CONNECTION 'host=127.0.0.1 port=1 connect_timeout=2'")
	if n := queryInt(t, p.src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg\\_%\\_sync\\_%'"); n == 0 {
		t.Log("no initial-copy slot left on the source: a weak case")
	}

	// A deadline in the middle of waiting costs no connection.
	_, err := m.WaitCaughtUp(ctxFor(t, 100*time.Millisecond))
	var nc *rebalance.NotCaughtUpError
	if !errors.As(err, &nc) || len(nc.Syncing) == 0 {
		t.Fatalf("WaitCaughtUp without the source: %v, want a NotCaughtUpError naming the tables still syncing", err)
	}
	t.Logf("WaitCaughtUp: %v", err)
	if p.dst.IsClosed() || p.src.IsClosed() {
		t.Fatal("WaitCaughtUp's deadline closed a connection")
	}

	// And this process loses it too.
	m.Source = connect(t, p.srcDSN)
	m.Source.Close(ctx)
	err = m.StopReplication(ctx)
	var left *rebalance.LeftoverError
	if !errors.As(err, &left) || len(left.Source) == 0 || slices.ContainsFunc(left.Target, func(s string) bool { return strings.HasPrefix(s, "subscription") }) {
		t.Fatalf("StopReplication without the source: %v, want a LeftoverError listing source objects and no subscription", err)
	}
	t.Logf("StopReplication without the source: %v", err)
	if n := queryInt(t, p.dst, "SELECT count(*) FROM pg_subscription"); n != 0 {
		t.Fatalf("%d subscriptions left on the target", n)
	}

	m.Source = p.src
	twice(t, "StopReplication with the source back", func() error { return m.StopReplication(ctx) })
	if left := leftovers(t, p); len(left) > 0 {
		t.Fatalf("left: %v", left)
	}
	if err := m.Discard(ctx); err != nil {
		t.Fatal(err)
	}
}

// testStopWithoutSlot stops replication whose slot someone dropped.
func (e *testEnv) testStopWithoutSlot(t *testing.T) {
	p := e.newPair(t)
	mustExec(t, p.src, "CREATE TABLE small (id bigint PRIMARY KEY); INSERT INTO small SELECT generate_series(1, 1000)")
	m := p.mover("m7", upperHalf, rebalance.Table{Name: "small", Key: "id"})
	ctx := ctxFor(t, time.Minute)
	if err := m.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StartCopy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// The apply worker waits wal_retrieve_retry_interval (5s) before it
	// comes back for the slot.
	for queryInt(t, p.src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sg_m7'") > 0 {
		_, _ = p.src.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'sg_m7' AND active_pid IS NOT NULL")
		_, _ = p.src.Exec(ctx, "SELECT pg_drop_replication_slot('sg_m7')")
	}
	twice(t, "StopReplication", func() error { return m.StopReplication(ctx) })
	if left := leftovers(t, p); len(left) > 0 {
		t.Fatalf("left: %v", left)
	}
}
