package rebalance_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestWithServer runs everything that needs PostgreSQL on one two-shard
// cluster: shard 0 is the source, shard 1 the target. Subtests run one
// at a time, each in databases of its own, since they compete for the
// servers' replication workers and for a small machine's CPUs.
func TestWithServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers")
	}
	// PostgreSQL 15's launcher starts apply workers at most once per
	// wal_retrieve_retry_interval (5s), which would delay every subtest's
	// copy behind the previous one's.
	c := cluster.ForTest(t, cluster.Options{Shards: 2, ExtraConf: []string{"wal_retrieve_retry_interval = '200ms'"}})
	e := &testEnv{src: c.Shards[0].Primary, dst: c.Shards[1].Primary}
	t.Run("FilterMatchesShardmap", e.testFilterMatchesShardmap)
	t.Run("SchemaOnEmptyTarget", e.testSchemaOnEmptyTarget)
	t.Run("ReplicaIdentity", e.testReplicaIdentity)
	t.Run("MoveHashHalfUnderWrites", e.testMoveUnderWrites)
	t.Run("MoveOtherMethods", e.testMoveOtherMethods)
	t.Run("DiscardPartialCopy", e.testDiscardPartialCopy)
	t.Run("ProgressOnce", e.testProgressOnce)
	t.Run("StopWithoutSource", e.testStopWithoutSource)
	t.Run("StopWithoutSlot", e.testStopWithoutSlot)
	t.Run("CopyThroughput", e.testCopyThroughput)
}

// testEnv is the cluster the subtests share.
type testEnv struct {
	src, dst *cluster.Host
	dbs      atomic.Int32
}

// pair is one subtest's database on each shard.
type pair struct {
	srcDSN, dstDSN string
	src, dst       *pgx.Conn
}

// newPair creates an empty database on both shards and connects to it.
func (e *testEnv) newPair(t *testing.T) *pair {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	name := fmt.Sprintf("rb_%d", e.dbs.Add(1))
	p := &pair{srcDSN: e.src.DSN("postgres", "", name), dstDSN: e.dst.DSN("postgres", "", name)}
	for _, h := range []*cluster.Host{e.src, e.dst} {
		if err := h.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
	}
	p.src, p.dst = connect(t, p.srcDSN), connect(t, p.dstDSN)
	return p
}

// mover returns a Mover of job over tables, moving r to shard s1.
func (p *pair) mover(job string, r rebalance.Range, tables ...rebalance.Table) *rebalance.Mover {
	return &rebalance.Mover{Source: p.src, Target: p.dst, SourceDSN: p.srcDSN + " connect_timeout=5",
		Job: job, Tables: tables, Range: r, TargetShard: "s1"}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctxFor(t, 10*time.Second), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(ctxFor(t, 2*time.Minute), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(ctxFor(t, time.Minute), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func queryStrings(t testing.TB, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(ctxFor(t, time.Minute), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// leftovers lists replication objects of any move, and initial-copy
// slots, on both sides.
func leftovers(t testing.TB, p *pair) []string {
	t.Helper()
	left := queryStrings(t, p.src, `SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name LIKE 'sg\_%' OR slot_name LIKE 'pg\_%\_sync\_%'
		UNION ALL SELECT 'publication ' || pubname FROM pg_publication
		UNION ALL SELECT 'source table ' || relname FROM pg_class WHERE relname LIKE 'sg\_%'`)
	return append(left, queryStrings(t, p.dst, `SELECT 'subscription ' || subname FROM pg_subscription
		UNION ALL SELECT 'target table ' || relname FROM pg_class WHERE relname LIKE 'sg\_%'`)...)
}

// upperHalf is the hash space's upper half: what a split of a single
// shard moves.
var upperHalf = rebalance.Range{Method: shardmap.MethodHash, KeyType: "bigint", Lo: "0"}

// lowerHalf is what stays.
var lowerHalf = rebalance.Range{Method: shardmap.MethodHash, KeyType: "bigint", Hi: "0"}

func twice(t *testing.T, what string, f func() error) {
	t.Helper()
	for i := range 2 {
		if err := f(); err != nil {
			t.Fatalf("%s (call %d): %v", what, i+1, err)
		}
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
