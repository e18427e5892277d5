package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/pflag"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/metrics"
	"github.com/shardgate/shardgate/proxy/tlsconf"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/shardmap/catalog"
)

func serve(args []string, stderr io.Writer) int {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.StringP("config", "c", "", "config file (YAML)")
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(*path, fs)
	if err != nil {
		fmt.Fprintf(stderr, "shardgate: invalid configuration:\n%v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level.Slog())
	log := newLogger(cfg.Log, level, stderr)
	if cfg.Runtime.MaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.Runtime.MaxProcs)
	}
	// Set up first, so that a signal also ends the wait for the catalog.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP is caught from the start: a reload sent while the proxy
	// still waits for its catalog is applied once it serves, not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := &daemon{path: *path, flags: fs, log: log, level: level, shutdown: stop}
	d.cfg.Store(cfg)
	b, err := build(ctx, cfg, log, d)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	d.b = b
	srv, topo := b.srv, b.topo
	defer b.close()
	topo.Start()
	defer topo.Close()
	if b.catalog != nil {
		// The watcher follows the catalog's map, installing each new one,
		// until serve returns; it logs its own errors and never gives up.
		wctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			b.catalog.Watch(wctx, b.shardMap, srv.SetShardMap)
		}()
		defer func() {
			cancel()
			<-watched
		}()
	}
	readyCtx, cancelReady := context.WithTimeout(context.Background(), cfg.Monitor.Timeout+2*cfg.Monitor.Interval+time.Second)
	if err := topo.Ready(readyCtx); err != nil {
		log.Warn("not every server answered the first health check; serving anyway", "err", err)
	}
	cancelReady()
	ln, err := listen(cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen.Addr, "err", err)
		return 1
	}
	log.Info("shardgate listening", "addr", ln.Addr().String(), "pool_mode", cfg.Pool.Mode, "version", version)
	if cfg.Metrics.Listen != "" {
		closeMetrics, err := d.serveMetrics(cfg.Metrics.Listen)
		if err != nil {
			log.Error("cannot serve metrics", "addr", cfg.Metrics.Listen, "err", err)
			return 1
		}
		defer closeMetrics()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	for {
		select {
		case <-hup:
			d.reloadLogged()
		case <-ctx.Done():
			timeout := d.current().Shutdown.DrainTimeout
			log.Info("shutting down: no new clients; waiting for running transactions", "drain_timeout", timeout.String())
			if left := srv.Shutdown(timeout); left > 0 {
				log.Warn("shut down with transactions cut short by the drain timeout", "sessions", left)
			} else {
				log.Info("shut down cleanly")
			}
			return 0
		case err := <-errc:
			log.Error("listener failed", "err", err)
			srv.Close()
			return 1
		}
	}
}

// built is what build makes of a config.
type built struct {
	srv   *proxy.Server
	pools *pool.Set
	// topo is the topology monitor, not started.
	topo *pool.Topology
	// catalog is the shard map's catalog, nil without catalog.dsn. It is
	// also where two-phase commit records its decisions.
	catalog *catalog.Store
	// shardMap is the map srv starts with.
	shardMap *shardmap.Map
}

// close releases what build opened.
func (b *built) close() {
	b.pools.Close()
	if b.catalog != nil {
		b.catalog.Close()
	}
}

// build turns a validated config into a proxy server, its pools, the
// topology monitor (not started) and, with catalog.dsn, the catalog,
// whose map it serves. ctx bounds the wait for the catalog.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, d *daemon) (*built, error) {
	users, err := proxyUsers(cfg)
	if err != nil {
		return nil, err
	}
	shards := make([]proxy.Shard, len(cfg.Shards))
	for i, sh := range cfg.Shards {
		shards[i] = proxy.Shard{Name: sh.Name, Primary: primaryOf(sh)}
	}
	backendTLS, fallback, err := backendTLS(cfg.Backend)
	if err != nil {
		return nil, err
	}
	d.backendTLS, d.tlsFallback = backendTLS, fallback
	pools := &pool.Set{Options: poolOptions(cfg, backendTLS, fallback)}
	var clientTLS *tls.Config
	if cfg.Listen.TLS.Mode != config.ClientTLSDisable {
		if clientTLS, err = tlsconf.ServerConfig(cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile); err != nil {
			return nil, fmt.Errorf("listen.tls: %w", err)
		}
	}
	b := &built{pools: pools, topo: pool.NewTopology(topologyOptions(cfg, d.current, pools, backendTLS, fallback, log))}
	if cfg.Catalog.DSN == "" {
		if b.shardMap, err = cfg.ShardMap(); err != nil {
			return nil, err
		}
	} else if b.catalog, b.shardMap, err = openCatalog(ctx, cfg, log); err != nil {
		return nil, err
	}
	opts := liveOptions(cfg, users)
	opts.ShardMap = b.shardMap
	opts.Shards = shards
	opts.Pools = pools
	opts.Logger = log
	opts.Topology = b.topo
	opts.Router = newRouter(cfg)
	opts.Version = version
	opts.Config = d.configRows
	opts.Reload = d.reload
	opts.Shutdown = d.shutdown
	if cfg.Metrics.Listen != "" {
		d.metrics = metrics.New(metricsSource{d}, version)
		d.metrics.SetShards(cfg.ShardNames())
		opts.Observer = d.metrics
	}
	if b.catalog != nil {
		// Online moves wait for every proxy to acknowledge a frozen map.
		opts.Acker = b.catalog
	}
	if cfg.Sharding.TwoPhaseCommit && b.catalog != nil {
		opts.TwoPhase = &proxy.TwoPhase{Log: b.catalog, Node: nodeName(cfg)}
	}
	if cfg.Listen.TLS.Mode != config.ClientTLSDisable {
		opts.TLS = clientTLS
		opts.RequireTLS = cfg.Listen.TLS.Mode == config.ClientTLSRequire
	}
	b.srv = proxy.NewServer(opts)
	return b, nil
}

// catalogWait bounds how long a starting proxy waits for its catalog
// database to come up, as it may when both start together.
const catalogWait = 30 * time.Second

// openCatalog opens the catalog (seeding it with the file's map if it is
// empty) and loads its map, retrying while the database is unreachable
// or starting up. Other failures (authentication, a missing database, an
// inconsistent map) are final.
// nodeName is the proxy's name in two-phase commit ids.
func nodeName(cfg *config.Config) string {
	if cfg.Sharding.NodeName != "" {
		return cfg.Sharding.NodeName
	}
	host, _ := os.Hostname()
	return host + "/" + cfg.Listen.Addr
}

func openCatalog(ctx context.Context, cfg *config.Config, log *slog.Logger) (*catalog.Store, *shardmap.Map, error) {
	spec := cfg.MapSpec()
	host, _ := os.Hostname()
	opts := catalog.Options{
		Shards:         cfg.ShardNames(),
		Seed:           &spec,
		PollInterval:   cfg.Catalog.PollInterval,
		DirectoryCache: cfg.Catalog.DirectoryCache,
		Name:           host + "/" + cfg.Listen.Addr,
		Addr:           cfg.Listen.Addr,
		Logger:         log,
	}
	ctx, cancel := context.WithTimeout(ctx, catalogWait)
	defer cancel()
	const firstBackoff = 200 * time.Millisecond
	backoff := firstBackoff
	for {
		store, err := catalog.Open(ctx, cfg.Catalog.DSN, opts)
		if err == nil {
			m, err := store.Load(ctx)
			if err != nil {
				store.Close()
				return nil, nil, err
			}
			log.Info("shard map loaded from the catalog", "version", m.Version())
			return store, m, nil
		}
		if !catalogRetryable(err) || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("cannot open the catalog (catalog.dsn): %w", err)
		}
		if backoff == firstBackoff {
			log.Warn("catalog not reachable yet; retrying", "err", err, "for", catalogWait.String())
		} else {
			log.Debug("catalog still not reachable", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, nil, fmt.Errorf("stopped while waiting for the catalog (catalog.dsn): %w", err)
			}
			return nil, nil, fmt.Errorf("cannot open the catalog (catalog.dsn) within %s: %w", catalogWait, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// catalogRetryable tells a catalog that may yet come up (no answer, or
// the server starting, shutting down or full) from one that answered no
// or holds something wrong.
func catalogRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300": // shutting down, crashed, starting, too many connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exceptions
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// topologyOptions configures the monitor of every shard's hosts.
func topologyOptions(cfg *config.Config, current func() *config.Config, pools *pool.Set, backendTLS *tls.Config, fallback bool, log *slog.Logger) pool.TopologyOptions {
	specs := make([]pool.ShardSpec, len(cfg.Shards))
	for i, sh := range cfg.Shards {
		specs[i].Name = sh.Name
		for _, h := range sh.Hosts {
			specs[i].Hosts = append(specs[i].Hosts, pool.HostSpec{Addr: h.Addr, Zone: h.Zone})
		}
	}
	policy, _ := pool.ParsePolicy(string(cfg.Routing.ReplicaChoice)) // validated
	return pool.TopologyOptions{
		Shards: specs,
		Connect: func(ctx context.Context, addr string) (*pgconn.PgConn, error) {
			// The credentials in force now: a reload may change them.
			cfg := current()
			user, password := cfg.MonitorCredentials()
			pc, err := pool.ConnConfig(addr, user, password, cfg.Monitor.Database, backendTLS, fallback)
			if err != nil {
				return nil, err
			}
			pc.RuntimeParams["application_name"] = "shardgate monitor"
			return pgconn.ConnectConfig(ctx, pc)
		},
		Interval:    cfg.Monitor.Interval,
		Timeout:     cfg.Monitor.Timeout,
		BanMin:      cfg.Monitor.BanMin,
		BanMax:      cfg.Monitor.BanMax,
		MaxLag:      cfg.Monitor.MaxReplicaLag,
		MaxLagBytes: int64(cfg.Monitor.MaxReplicaLagBytes),
		Policy:      policy,
		Zone:        cfg.Routing.Zone,
		Load:        pools.InUse,
		Logger:      log,
	}
}

func routing(r config.RoutingConfig) proxy.Routing {
	out := proxy.Routing{RYWWait: r.RYWWait, RYWWindow: r.RYWWindow}
	switch r.ReplicaReads {
	case config.ReplicaReadsOff:
		out.ReplicaReads = proxy.ReplicaReadsOff
	case config.ReplicaReadsIncludePrimary:
		out.ReplicaReads = proxy.ReplicaReadsIncludePrimary
	}
	switch r.ReadYourWrites {
	case config.RYWTime:
		out.RYW = proxy.RYWTime
	case config.RYWOff:
		out.RYW = proxy.RYWOff
	}
	return out
}

// primaryOf picks the host that takes writes when no topology is used:
// the one marked primary, else the first host.
func primaryOf(sh config.Shard) string {
	for _, h := range sh.Hosts {
		if h.Role == config.RolePrimary {
			return h.Addr
		}
	}
	return sh.Hosts[0].Addr
}

func poolMode(m config.PoolMode) proxy.PoolMode {
	switch m {
	case config.PoolSession:
		return proxy.SessionMode
	case config.PoolStatement:
		return proxy.StatementMode
	}
	return proxy.TransactionMode
}

// backendTLS maps libpq-style sslmode values to a client TLS config.
func backendTLS(b config.BackendConfig) (*tls.Config, bool, error) {
	switch b.TLS {
	case config.ServerTLSPrefer:
		return &tls.Config{InsecureSkipVerify: true}, true, nil
	case config.ServerTLSRequire:
		// libpq's require encrypts without verifying the certificate.
		return &tls.Config{InsecureSkipVerify: true}, false, nil
	case config.ServerTLSVerifyFull:
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if b.CAFile != "" {
			pem, err := os.ReadFile(b.CAFile)
			if err != nil {
				return nil, false, fmt.Errorf("backend.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, false, fmt.Errorf("backend.ca_file: no PEM certificates in %s", b.CAFile)
			}
		}
		return tc, false, nil
	}
	return nil, false, nil
}

func newLogger(c config.LogConfig, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	text := c.Format == config.LogFormatText
	if c.Format == config.LogFormatAuto {
		text = isTerminal(w)
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a character device, which is what a
// terminal is; good enough to choose a log format.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
