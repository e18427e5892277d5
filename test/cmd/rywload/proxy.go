package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/test/cluster"
)

// The proxy's settings, as shardgate's built-in defaults have them
// (cmd/shardgate/config.Default) where the brief does not fix them.
const (
	poolSize        = 20
	checkoutTimeout = 5 * time.Second
	connectTimeout  = 5 * time.Second
	monitorInterval = 100 * time.Millisecond
	monitorTimeout  = time.Second
	banMin          = 250 * time.Millisecond
	banMax          = 10 * time.Second
	maxReplicaLag   = 10 * time.Second
	maxLagBytes     = 64 << 20
	rywWait         = 50 * time.Millisecond
	rywWindow       = 5 * time.Second
)

// The role clients log in as, through the proxy and on the servers.
const (
	appUser     = "app"
	appPassword = "app"
	appDB       = "app"
)

// runningProxy is an in-process shardgate serving one cluster.
type runningProxy struct {
	addr  string
	srv   *proxy.Server
	pools *pool.Set
	topo  *pool.Topology
}

// startProxy starts shardgate in transaction mode on a free loopback port
// with a topology monitor over the cluster's hosts, routing as rt says.
func startProxy(ctx context.Context, c *cluster.Cluster, rt proxy.Routing, log *slog.Logger) (*runningProxy, error) {
	users := map[string]*proxy.User{
		appUser: {Credential: auth.Credential{User: appUser, Method: auth.MethodSCRAM, Password: appPassword},
			ServerUser: appUser, ServerPassword: appPassword},
	}
	for _, u := range users {
		if err := u.Credential.Prepare(); err != nil {
			return nil, err
		}
	}
	pools := &pool.Set{Options: func(pool.Key) pool.Options {
		return pool.Options{
			Size:            poolSize,
			CheckoutTimeout: checkoutTimeout,
			IdleTimeout:     10 * time.Minute,
			MaxLifetime:     time.Hour,
			ConnectTimeout:  connectTimeout,
		}
	}}
	var shards []proxy.Shard
	var specs []pool.ShardSpec
	for i, sh := range c.Shards {
		name := fmt.Sprintf("s%d", i)
		shards = append(shards, proxy.Shard{Name: name, Primary: sh.Primary.Addr()})
		spec := pool.ShardSpec{Name: name, Hosts: []pool.HostSpec{{Addr: sh.Primary.Addr()}}}
		for _, r := range sh.Replicas {
			spec.Hosts = append(spec.Hosts, pool.HostSpec{Addr: r.Addr()})
		}
		specs = append(specs, spec)
	}
	topo := pool.NewTopology(pool.TopologyOptions{
		Shards: specs,
		// The monitor logs in as the trusted superuser, as the
		// integration tests do; it needs no privileges.
		Connect: func(ctx context.Context, addr string) (*pgconn.PgConn, error) {
			pc, err := pool.ConnConfig(addr, "postgres", "", "postgres", nil, false)
			if err != nil {
				return nil, err
			}
			pc.RuntimeParams["application_name"] = "shardgate monitor"
			return pgconn.ConnectConfig(ctx, pc)
		},
		Interval:    monitorInterval,
		Timeout:     monitorTimeout,
		BanMin:      banMin,
		BanMax:      banMax,
		MaxLag:      maxReplicaLag,
		MaxLagBytes: maxLagBytes,
		Policy:      pool.RoundRobin,
		Load:        pools.InUse,
		Logger:      log,
	})
	topo.Start()
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := topo.Ready(readyCtx); err != nil {
		topo.Close()
		return nil, fmt.Errorf("topology monitor: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		topo.Close()
		return nil, err
	}
	srv := proxy.NewServer(proxy.Options{
		Users:    users,
		Shards:   shards,
		Pools:    pools,
		Mode:     proxy.TransactionMode,
		Logger:   log,
		Topology: topo,
		Routing:  rt,
	})
	go srv.Serve(ln)
	return &runningProxy{addr: ln.Addr().String(), srv: srv, pools: pools, topo: topo}, nil
}

// dsn is a connection string for the proxy as the app role.
func (p *runningProxy) dsn() string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable connect_timeout=10",
		host, port, appUser, appPassword, appDB)
}

// cappedLog passes the first limit lines written to it on to w and only
// counts the rest, so that a proxy failing on every statement cannot bury
// the report under its warnings. slog handlers write a record per call.
type cappedLog struct {
	mu    sync.Mutex
	w     io.Writer
	limit int
	lines int
}

func (l *cappedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := bytes.Count(p, []byte("\n"))
	if l.lines < l.limit {
		if _, err := io.WriteString(l.w, "shardgate: "); err != nil {
			return 0, err
		}
		if _, err := l.w.Write(p); err != nil {
			return 0, err
		}
	}
	l.lines += max(n, 1)
	return len(p), nil
}

// count returns how many lines were written, shown or not.
func (l *cappedLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines
}

// mute stops showing lines: a proxy left running because a session hung
// would otherwise go on logging below the report as the cluster stops.
func (l *cappedLog) mute() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = 0
}
