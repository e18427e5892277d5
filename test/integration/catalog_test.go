package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/shardmap/catalog"
	"github.com/shardgate/shardgate/test/cluster"
)

// catalogOn creates the catalog database on shard 0's primary, as make run
// does, and returns its DSN.
func catalogOn(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	if err := c.Shards[0].Primary.Exec(ctxT(t), "CREATE DATABASE shardgate_catalog"); err != nil {
		t.Fatal(err)
	}
	return c.Shards[0].Primary.DSN("postgres", "", "shardgate_catalog")
}

func shardNames(c *cluster.Cluster) []string {
	var names []string
	for i := range c.Shards {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	return names
}

func catalogLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openCatalog opens the catalog as a proxy does at start, seeding it with
// seed if it is empty.
func openCatalog(t *testing.T, c *cluster.Cluster, dsn string, seed shardmap.Spec) *catalog.Store {
	t.Helper()
	s, err := catalog.Open(ctxT(t), dsn, catalog.Options{Shards: shardNames(c), Seed: &seed, Logger: catalogLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// withMap points a test proxy at every shard of c and serves m.
func withMap(c *cluster.Cluster, m *shardmap.Map) func(*proxyConfig) {
	return func(cfg *proxyConfig) {
		cfg.opts.Shards = nil
		for i, sh := range c.Shards {
			cfg.opts.Shards = append(cfg.opts.Shards, proxy.Shard{Name: fmt.Sprintf("s%d", i), Primary: sh.Primary.Addr()})
		}
		cfg.opts.ShardMap = m
	}
}

// startCatalogProxy starts a proxy wired as serve wires one with
// catalog.dsn: its map is loaded from the catalog, and it follows changes.
func startCatalogProxy(t *testing.T, c *cluster.Cluster, s *catalog.Store) *testProxy {
	t.Helper()
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, proxy.TransactionMode, withMap(c, m))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, m, p.srv.SetShardMap)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

func directorySpec(dist, table, place string) shardmap.Spec {
	return shardmap.Spec{Distributions: []shardmap.DistributionSpec{{
		Name: dist, Method: shardmap.MethodDirectory, KeyType: "text", Place: place,
		Tables: []shardmap.TableSpec{{Name: table, Key: "tenant"}},
	}}}
}

// TestCatalogDirectoryRace inserts rows of the same new keys through two
// proxies at once. The proxies place new keys differently, as they do
// while a change of `place` is rolling out (one has followed it, the other
// not yet), so only the catalog's atomic Put keeps a key on one shard.
// The same race with a check-then-insert directory splits keys, which
// shows the check can fail.
func TestCatalogDirectoryRace(t *testing.T) {
	c := shardedCluster(t, 2)
	dsn := catalogOn(t, c)
	pool, err := pgxpool.New(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	for run, tc := range []struct {
		name      string
		directory func(*catalog.Store) shardmap.Directory
		wantSplit bool
	}{
		{"catalog", func(s *catalog.Store) shardmap.Directory { return s.Directory() }, false},
		{"check-then-insert", func(*catalog.Store) shardmap.Directory { return naiveDirectory{pool} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dist, table := fmt.Sprintf("tenants_%d", run), fmt.Sprintf("events_%d", run)
			a := openCatalog(t, c, dsn, directorySpec(dist, table, "s0"))
			b := openCatalog(t, c, dsn, directorySpec(dist, table, "s0"))
			mapFor := func(s *catalog.Store, place string) *shardmap.Map {
				m, err := shardmap.Build(directorySpec(dist, table, place), shardNames(c), 1, tc.directory(s))
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			pa := startProxy(t, proxy.TransactionMode, withMap(c, mapFor(a, "s0")))
			pb := startProxy(t, proxy.TransactionMode, withMap(c, mapFor(b, "s1")))
			if _, err := pa.connect(t).Exec(ctxT(t), "create table "+table+" (tenant text, via text)"); err != nil {
				t.Fatal(err)
			}

			const keys, connsPerProxy = 100, 4
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, p := range []*testProxy{pa, pb} {
				for range connsPerProxy {
					conn := p.connect(t)
					wg.Go(func() {
						<-start
						for k := range keys {
							if _, err := conn.Exec(ctxT(t), "insert into "+table+" (tenant, via) values ($1, $2)", fmt.Sprintf("t%d", k), p.addr); err != nil {
								t.Errorf("insert t%d: %v", k, err)
								return
							}
						}
					})
				}
			}
			close(start)
			wg.Wait()

			// Checked on the shards themselves.
			on := map[string][]int{}
			total := int64(0)
			for i := range c.Shards {
				total += countOn(t, c, i, "select count(*) from "+table)
				rows := onShard(t, c, i, "select distinct tenant from "+table)
				names, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					on[n] = append(on[n], i)
				}
			}
			if want := int64(keys * connsPerProxy * 2); total != want {
				t.Fatalf("%d rows on the shards, want %d", total, want)
			}
			var split []string
			for k := range keys {
				if n := fmt.Sprintf("t%d", k); len(on[n]) != 1 {
					split = append(split, fmt.Sprintf("%s on shards %v", n, on[n]))
				}
			}
			slices.Sort(split)
			t.Logf("%d of %d keys on more than one shard", len(split), keys)
			switch {
			case tc.wantSplit && len(split) == 0:
				t.Fatal("a check-then-insert directory split no key: the race test cannot catch the bug")
			case !tc.wantSplit && len(split) > 0:
				t.Fatalf("keys on two shards: %v", split)
			}
		})
	}
}

// naiveDirectory is the bug TestCatalogDirectoryRace guards against: it
// checks, then inserts, and trusts its own choice.
type naiveDirectory struct{ pool *pgxpool.Pool }

func (d naiveDirectory) Get(ctx context.Context, dist, key string) (string, bool, error) {
	var s string
	err := d.pool.QueryRow(ctx, "SELECT shard FROM shardgate.directory WHERE distribution = $1 AND key = $2", dist, key).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return s, err == nil, err
}

func (d naiveDirectory) Put(ctx context.Context, dist, key, shard string) (string, error) {
	if s, ok, err := d.Get(ctx, dist, key); ok || err != nil {
		return s, err
	}
	time.Sleep(time.Millisecond) // widens the window, so the demonstration does not depend on luck
	_, err := d.pool.Exec(ctx, "INSERT INTO shardgate.directory VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", dist, key, shard)
	return shard, err
}

// TestCatalogFollowsMapChanges changes the map in the catalog and watches
// two proxies route by the new map within a second.
func TestCatalogFollowsMapChanges(t *testing.T) {
	c := shardedCluster(t, 2)
	dsn := catalogOn(t, c)
	spec := func(def, split string) shardmap.Spec {
		return shardmap.Spec{DefaultShard: def, Distributions: []shardmap.DistributionSpec{{
			Name: "probes", Method: shardmap.MethodRange, KeyType: "bigint",
			Tables: []shardmap.TableSpec{{Name: "range_probe", Key: "id"}},
			Ranges: []shardmap.RangeSpec{{Hi: split, Shard: "s0"}, {Lo: split, Shard: "s1"}},
		}}}
	}
	// Each shard answers with its own name, so a query shows where it ran.
	for i, sh := range c.Shards {
		conn := connectDSN(t, sh.Primary.DSN("app", "app", "app"))
		for _, sql := range []string{
			"create table where_am_i (shard text)",
			fmt.Sprintf("insert into where_am_i values ('s%d')", i),
			"create table range_probe (id bigint, shard text)",
			fmt.Sprintf("insert into range_probe values (1500, 's%d')", i),
		} {
			if _, err := conn.Exec(ctxT(t), sql); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := openCatalog(t, c, dsn, spec("s0", "2000"))
	var conns []*pgx.Conn
	for range 2 {
		p := startCatalogProxy(t, c, openCatalog(t, c, dsn, spec("s0", "2000")))
		conns = append(conns, p.connect(t))
	}
	where := func(conn *pgx.Conn, q string) string {
		var s string
		if err := conn.QueryRow(ctxT(t), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	const unsharded, ranged = "select shard from where_am_i", "select shard from range_probe where id = 1500"
	for i, conn := range conns {
		if got := [2]string{where(conn, unsharded), where(conn, ranged)}; got != [2]string{"s0", "s0"} {
			t.Fatalf("proxy %d routes to %v before the change, want s0 for both", i, got)
		}
	}

	for _, change := range []struct {
		name, query string
		spec        shardmap.Spec
	}{
		{"default shard s0 -> s1", unsharded, spec("s1", "2000")},
		{"range [1000, 2000) s0 -> s1", ranged, spec("s1", "1000")},
	} {
		start := time.Now()
		if _, err := admin.SetSpec(ctxT(t), change.spec, shardNames(c)); err != nil {
			t.Fatal(err)
		}
		for i, conn := range conns {
			for where(conn, change.query) != "s1" {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("%s: proxy %d still routes to s0 after 2s", change.name, i)
				}
				time.Sleep(2 * time.Millisecond)
			}
			took := time.Since(start)
			t.Logf("%s: proxy %d follows %v after the change began", change.name, i, took)
			if took > time.Second {
				t.Errorf("%s: proxy %d took %v, want < 1s", change.name, i, took)
			}
		}
	}
}
