package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/test/cluster"
)

// pg is the cluster every test of the package shares: one shard, a primary
// and a replica.
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
	c, err := cluster.Start(ctx, cluster.Options{
		Shards: 1, Replicas: 1,
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
	})
	if err != nil {
		if errors.Is(err, cluster.ErrNoPostgres) && os.Getenv(cluster.RequirePGEnv) != "1" {
			fmt.Println("integration: no PostgreSQL binaries; skipping (set", cluster.RequirePGEnv+"=1 to fail instead)")
			return 0
		}
		fmt.Println("integration: cannot start cluster:", err)
		return 1
	}
	pg = c
	defer c.Stop()
	return m.Run()
}

func primary() *cluster.Host { return pg.Shards[0].Primary }

// proxyConfig is what a test may change before its proxy starts.
type proxyConfig struct {
	opts proxy.Options
	pool pool.Options
	// topology, when set, starts a topology monitor for the proxy.
	topology *pool.TopologyOptions
}

// testProxy is a shardgate server serving the shared cluster.
type testProxy struct {
	addr  string
	srv   *proxy.Server
	pools *pool.Set
}

// startProxy starts a proxy on a free port, in the given mode, after
// letting the test adjust its settings.
func startProxy(t testing.TB, mode proxy.PoolMode, adjust ...func(*proxyConfig)) *testProxy {
	t.Helper()
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	cfg := &proxyConfig{
		opts: proxy.Options{
			Mode: mode,
			Users: map[string]*proxy.User{
				"app":      {Credential: auth.Credential{User: "app", Method: auth.MethodSCRAM, Password: "app"}, ServerUser: "app", ServerPassword: "app"},
				"postgres": {Credential: auth.Credential{User: "postgres", Method: auth.MethodTrust}, ServerUser: "postgres"},
			},
			Shards: []proxy.Shard{{Name: "s0", Primary: primary().Addr()}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		pool: pool.Options{Size: 10, CheckoutTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second},
	}
	for _, f := range adjust {
		f(cfg)
	}
	if testing.Verbose() {
		cfg.opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, u := range cfg.opts.Users {
		if err := u.Credential.Prepare(); err != nil {
			t.Fatal(err)
		}
	}
	po := cfg.pool
	cfg.opts.Pools = &pool.Set{Options: func(pool.Key) pool.Options { return po }}
	if cfg.topology != nil {
		to := *cfg.topology
		to.Logger = cfg.opts.Logger
		to.Load = cfg.opts.Pools.InUse
		topo := pool.NewTopology(to)
		topo.Start()
		t.Cleanup(topo.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := topo.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		cfg.opts.Topology = topo
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(cfg.opts)
	go srv.Serve(ln)
	tp := &testProxy{addr: ln.Addr().String(), srv: srv, pools: cfg.opts.Pools}
	t.Cleanup(func() {
		srv.Close()
		tp.pools.Close()
	})
	return tp
}

// dsn returns a connection string for the proxy.
func (p *testProxy) dsn(user, password string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=app sslmode=disable", host, port, user, password)
}

// connect opens a pgx connection through the proxy as app.
func (p *testProxy) connect(t testing.TB) *pgx.Conn {
	t.Helper()
	return connectDSN(t, p.dsn("app", "app"))
}

func connectDSN(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := connectDSNErr(dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func connectDSNErr(dsn string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

// direct opens a superuser connection straight to the primary.
func direct(t testing.TB) *pgx.Conn {
	t.Helper()
	return connectDSN(t, primary().DSN("postgres", "", "app"))
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// appBackends lists the server sessions of role app on the primary, by
// state, excluding the asking session.
func appBackends(t testing.TB, db *pgx.Conn) map[string]int {
	t.Helper()
	rows, err := db.Query(ctxT(t), `select coalesce(state, ''), count(*) from pg_stat_activity
		where usename = 'app' and pid <> pg_backend_pid() group by 1`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually retries cond for up to d.
func eventually(t testing.TB, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// waitIdle waits until every server connection the proxy has open is
// idle in its pool. A server goes back to the pool just after its client
// got the last response, so a test that relies on which server the pool
// hands out next must wait for it.
func (p *testProxy) waitIdle(t testing.TB) {
	t.Helper()
	if !eventually(t, 5*time.Second, func() bool {
		for _, pl := range p.pools.All() {
			if st := pl.Stats(); st.Idle != st.Open {
				return false
			}
		}
		return true
	}) {
		t.Fatal("server connections still busy")
	}
}
