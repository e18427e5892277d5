package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/proxy/metrics"
	"github.com/shardgate/shardgate/router"
)

// daemon is the running process: its config in force, what was built
// from it, and how to change it (RELOAD, SIGHUP) or stop it (SHUTDOWN).
type daemon struct {
	path  string
	flags *pflag.FlagSet
	log   *slog.Logger
	level *slog.LevelVar
	// shutdown starts the graceful shutdown, as SIGTERM does.
	shutdown func()

	backendTLS  *tls.Config
	tlsFallback bool
	metrics     *metrics.Metrics

	// mu serialises reloads. cfg is read without it: the monitors read it
	// to connect, and a reload waits for a removed host's monitor to end,
	// which must not wait for the reload in turn.
	mu  sync.Mutex
	cfg atomic.Pointer[config.Config]
	b   *built
}

// current returns the config in force.
func (d *daemon) current() *config.Config { return d.cfg.Load() }

// reloadLogged reloads on SIGHUP, which has nobody to answer but the log.
func (d *daemon) reloadLogged() {
	if _, _, err := d.reload(); err != nil {
		d.log.Error("reload refused: the new configuration is invalid; the running one stays in force", "err", err)
	}
}

// reload reads the config file again and applies what can change while
// serving; it returns the keys applied and those that need a restart. An
// invalid file changes nothing.
func (d *daemon) reload() (changed, restart []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := config.Load(d.path, d.flags)
	if err != nil {
		return nil, nil, err
	}
	old := d.cfg.Load()
	changed = config.Changed(old, next)
	restart = config.NeedsRestart(old, next)
	users, err := proxyUsers(next)
	if err != nil {
		return nil, nil, err
	}
	live := slices.DeleteFunc(slices.Clone(changed), func(k string) bool { return slices.Contains(restart, k) })
	b := d.b
	// The map first: a file map that does not build stops the reload
	// before anything changed.
	if b.catalog == nil && (slices.Contains(live, "sharding.distributions") || slices.Contains(live, "sharding.reference_tables") ||
		slices.Contains(live, "sharding.default_shard")) && !slices.Contains(restart, "shards") {
		m, err := next.ShardMap()
		if err != nil {
			return nil, nil, err
		}
		b.srv.SetShardMap(m)
	}
	opts := liveOptions(next, users)
	if slices.Contains(live, "routing.parse_cache_size") || slices.Contains(live, "routing.write_functions") {
		opts.Router = newRouter(next)
	}
	b.srv.Reconfigure(opts)
	b.pools.Reconfigure(poolOptions(next, d.backendTLS, d.tlsFallback))
	b.topo.SetOptions(topologyOptions(next, d.current, b.pools, d.backendTLS, d.tlsFallback, d.log))
	if !slices.Contains(restart, "shards") {
		for i, sh := range next.Shards {
			hosts := make([]pool.HostSpec, len(sh.Hosts))
			for j, h := range sh.Hosts {
				hosts[j] = pool.HostSpec{Addr: h.Addr, Zone: h.Zone}
			}
			added, removed := b.topo.SetHosts(i, hosts)
			for _, addr := range removed {
				b.pools.Remove(addr)
			}
			if len(added)+len(removed) > 0 {
				d.log.Info("shard hosts changed", "shard", sh.Name, "added", added, "removed", removed)
			}
		}
	}
	d.level.Set(next.Log.Level.Slog())
	if next.Runtime.MaxProcs != old.Runtime.MaxProcs {
		procs := next.Runtime.MaxProcs
		if procs <= 0 {
			procs = runtime.NumCPU()
		}
		runtime.GOMAXPROCS(procs)
	}
	// Restart-only keys keep their running values, so that the config in
	// force (SHOW CONFIG) says what the process really does.
	keepRestartKeys(next, old)
	d.cfg.Store(next)
	d.log.Info("configuration reloaded", "changed", changed, "needs_restart", restart)
	return live, restart, nil
}

// keepRestartKeys copies into next the settings a reload cannot apply.
func keepRestartKeys(next, old *config.Config) {
	next.Listen = old.Listen
	next.Backend.TLS, next.Backend.CAFile = old.Backend.TLS, old.Backend.CAFile
	next.Sharding.TwoPhaseCommit, next.Sharding.NodeName = old.Sharding.TwoPhaseCommit, old.Sharding.NodeName
	next.Catalog = old.Catalog
	next.Metrics = old.Metrics
	next.Log.Format = old.Log.Format
	if !reflect.DeepEqual(next.ShardNames(), old.ShardNames()) {
		next.Shards = old.Shards
		next.Sharding = old.Sharding
	}
}

// proxyUsers turns the configured users into the proxy's.
func proxyUsers(cfg *config.Config) (map[string]*proxy.User, error) {
	users := make(map[string]*proxy.User, len(cfg.Users))
	for _, u := range cfg.Users {
		pu := &proxy.User{
			Credential: auth.Credential{User: u.Name, Method: auth.Method(u.Auth), Password: u.Password,
				Verifier: u.ScramVerifier, MD5Hash: u.MD5Hash},
			ServerUser:     u.ServerUser,
			ServerPassword: u.ServerPassword,
		}
		if err := pu.Credential.Prepare(); err != nil {
			return nil, fmt.Errorf("users %q: %w", u.Name, err)
		}
		users[u.Name] = pu
	}
	return users, nil
}

// liveOptions are the proxy options a reload can change.
func liveOptions(cfg *config.Config, users map[string]*proxy.User) proxy.Options {
	return proxy.Options{
		Users:             users,
		Mode:              poolMode(cfg.Pool.Mode),
		PreparedCacheSize: cfg.Pool.PreparedCacheSize,
		MaxClients:        cfg.Pool.MaxClientConn,
		Routing:           routing(cfg.Routing),
		Admin:             proxy.AdminOptions{Database: cfg.Admin.Database, Users: cfg.Admin.Users, StatsUsers: cfg.Admin.StatsUsers},
		SlowQuery:         cfg.Log.SlowQuery,
		LogParameters:     cfg.Log.Parameters,
	}
}

func newRouter(cfg *config.Config) *router.Router {
	return router.New(router.Options{CacheSize: cfg.Routing.ParseCacheSize, WriteFunctions: cfg.Routing.WriteFunctions})
}

// poolOptions gives every pool its options from cfg.
func poolOptions(cfg *config.Config, backendTLS *tls.Config, fallback bool) func(pool.Key) pool.Options {
	return func(pool.Key) pool.Options {
		return pool.Options{
			Size:            cfg.Pool.Size,
			MinIdle:         cfg.Pool.MinIdle,
			CheckoutTimeout: cfg.Pool.CheckoutTimeout,
			IdleTimeout:     cfg.Pool.IdleTimeout,
			MaxLifetime:     cfg.Pool.MaxLifetime,
			ConnectTimeout:  cfg.Backend.ConnectTimeout,
			TLS:             backendTLS,
			TLSFallback:     fallback,
		}
	}
}

// configRows flattens the config in force, secrets redacted, for SHOW
// CONFIG: one row per key, lists as one value.
func (d *daemon) configRows() [][2]string {
	var rows [][2]string
	flatten("", reflect.ValueOf(*d.current().Redacted()), &rows)
	return rows
}

func flatten(prefix string, v reflect.Value, rows *[][2]string) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if key == "" || !f.IsExported() {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			flatten(key, fv, rows)
			continue
		}
		*rows = append(*rows, [2]string{key, valueText(fv)})
	}
}

func valueText(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return ""
		}
		if v.Type().Elem().Kind() == reflect.String {
			parts := make([]string, v.Len())
			for i := range parts {
				parts[i] = v.Index(i).String()
			}
			return strings.Join(parts, ", ")
		}
		return fmt.Sprintf("(%d entries)", v.Len())
	case reflect.Map:
		return fmt.Sprintf("(%d entries)", v.Len())
	}
	return fmt.Sprint(v.Interface())
}

// serveMetrics starts the HTTP listener of /metrics, /healthz and /readyz.
func (d *daemon) serveMetrics(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: d.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener failed", "err", err)
		}
	}()
	d.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}

// metricsSource reads the proxy's figures for the metrics.
type metricsSource struct{ d *daemon }

func (m metricsSource) Pools() []metrics.PoolSample {
	var out []metrics.PoolSample
	for _, p := range m.d.b.srv.PoolStats() {
		out = append(out, metrics.PoolSample{
			Shard: p.Shard, Host: p.Key.Addr, Role: p.Role, User: p.Key.User, Database: p.Key.Database,
			ServersActive: p.Servers.Active, ServersIdle: p.Servers.Idle, ServersLogin: p.Servers.Login,
			ClientsWaiting: p.Servers.Waiting,
			Xacts:          p.Xacts, Queries: p.Queries, Errors: p.Errors, BytesIn: p.BytesIn, BytesOut: p.BytesOut,
			QueryTime: p.QueryTime, XactTime: p.XactTime, WaitTime: p.Wait,
			CheckoutTimeouts: p.Servers.Timeouts, ConnectErrors: p.Servers.ConnectErrors,
		})
	}
	return out
}

func (m metricsSource) Clients() metrics.ClientSample {
	c := m.d.b.srv.Clients()
	return metrics.ClientSample{Active: c.Active, Waiting: c.Waiting, Idle: c.Idle, Paused: c.Paused, Total: c.Accepted, Refused: c.Refused}
}

func (m metricsSource) Hosts() []pool.HostStatus { return m.d.b.topo.Snapshot() }

func (m metricsSource) ParseCache() metrics.CacheSample {
	st := m.d.b.srv.CacheStats()
	return metrics.CacheSample{Hits: st.Hits, Misses: st.Misses, Size: st.Size}
}

func (m metricsSource) FanOuts() []metrics.FanOutSample {
	var out []metrics.FanOutSample
	for _, f := range m.d.b.srv.FanOuts() {
		out = append(out, metrics.FanOutSample{Kind: f.Kind, Count: f.Count})
	}
	return out
}

// Ready reports whether every shard has a primary that answered its last
// health check: the monitor polls every monitor.interval, so this costs
// no I/O and is as fresh as routing's own view.
func (m metricsSource) Ready(context.Context) error {
	if m.d.b.srv.Draining() {
		return errors.New("shutting down")
	}
	topo := m.d.b.topo
	var missing []string
	names := m.d.current().ShardNames()
	for i := range topo.NumShards() {
		h, err := topo.Primary(i)
		if err != nil || !h.Up() {
			name := fmt.Sprint(i)
			if i < len(names) {
				name = names[i]
			}
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("no reachable primary for shard(s) %s", strings.Join(missing, ", "))
	}
	return nil
}

// listen opens the client listener. With listen.reuse_port (SO_REUSEPORT)
// several shardgate processes can share one address: during a rolling restart the kernel
// sends new connections to the process that still accepts.
func listen(c config.ListenConfig) (net.Listener, error) {
	if !c.ReusePort {
		return net.Listen("tcp", c.Addr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", c.Addr)
}
