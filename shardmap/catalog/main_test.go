package catalog

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
)

// pg is the server most tests share, each in a database of its own. Tests
// that stop a server start their own.
var pg *cluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Shards: 1})
	if err != nil {
		if errors.Is(err, cluster.ErrNoPostgres) && os.Getenv(cluster.RequirePGEnv) != "1" {
			fmt.Println("catalog: no PostgreSQL binaries; skipping (set", cluster.RequirePGEnv+"=1 to fail instead)")
			return m.Run()
		}
		fmt.Println("catalog: cannot start cluster:", err)
		return 1
	}
	pg = c
	defer c.Stop()
	return m.Run()
}

var dbSeq atomic.Int32

// newDB creates an empty database on host for one test and returns its
// DSN, as the superuser.
func newDB(t testing.TB, host *cluster.Host) string {
	t.Helper()
	name := fmt.Sprintf("catalog_%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := host.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return host.DSN("postgres", "", name)
}

// sharedDB is newDB on the shared server; it skips without PostgreSQL.
func sharedDB(t testing.TB) string {
	t.Helper()
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	return newDB(t, pg.Shards[0].Primary)
}

var twoShards = []string{"s0", "s1"}

// testSpec places users by hash over both shards, events by range split
// at split, tenants by directory on place, and the rest on def.
func testSpec(def, split, place string) shardmap.Spec {
	return shardmap.Spec{
		DefaultShard: def,
		Distributions: []shardmap.DistributionSpec{
			{Name: "users", Method: shardmap.MethodHash, KeyType: "bigint", Shards: twoShards,
				Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}}},
			{Name: "events", Method: shardmap.MethodRange, KeyType: "bigint",
				Tables: []shardmap.TableSpec{{Name: "events", Key: "id"}},
				Ranges: []shardmap.RangeSpec{{Hi: split, Shard: "s0"}, {Lo: split, Shard: "s1"}}},
			{Name: "tenants", Method: shardmap.MethodDirectory, KeyType: "text", Place: place,
				Tables: []shardmap.TableSpec{{Name: "tenants", Key: "name"}}},
		},
	}
}

// logs collects a Store's log records for assertions.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) logger() *slog.Logger {
	var w io.Writer = l
	if testing.Verbose() {
		w = io.MultiWriter(l, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a Store on dsn for the test and closes it at cleanup.
func open(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = (&logs{}).logger()
	}
	if opts.Shards == nil {
		opts.Shards = twoShards
	}
	s, err := Open(ctxT(t), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// exec runs sql on dsn as given (the superuser).
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// watched runs Watch on s for the test; maps applied arrive on the
// channel returned.
func watched(t testing.TB, s *Store, current *shardmap.Map) <-chan *shardmap.Map {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	maps := make(chan *shardmap.Map, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, current, func(m *shardmap.Map) { maps <- m })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return maps
}

// awaitVersion waits up to limit for a map of version v and returns how
// long it took.
func awaitVersion(t testing.TB, maps <-chan *shardmap.Map, v uint64, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(limit)
	for {
		select {
		case m := <-maps:
			if m.Version() == v {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("no map of version %d within %v", v, limit)
		}
	}
}

// eventually retries cond every 10ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
