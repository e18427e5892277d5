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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/pflag"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/proxy/tlsconf"
	"github.com/shardgate/shardgate/router"
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
	log := newLogger(cfg.Log, stderr)
	if cfg.Runtime.MaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.Runtime.MaxProcs)
	}
	srv, pools, topo, err := build(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer pools.Close()
	topo.Start()
	defer topo.Close()
	readyCtx, cancelReady := context.WithTimeout(context.Background(), cfg.Monitor.Timeout+2*cfg.Monitor.Interval+time.Second)
	if err := topo.Ready(readyCtx); err != nil {
		log.Warn("not every server answered the first health check; serving anyway", "err", err)
	}
	cancelReady()
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen.Addr, "err", err)
		return 1
	}
	log.Info("shardgate listening", "addr", ln.Addr().String(), "pool_mode", cfg.Pool.Mode, "version", version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		srv.Close()
		return 0
	case err := <-errc:
		log.Error("listener failed", "err", err)
		srv.Close()
		return 1
	}
}

// build turns a validated config into a proxy server, its pools and the
// topology monitor (not started).
func build(cfg *config.Config, log *slog.Logger) (*proxy.Server, *pool.Set, *pool.Topology, error) {
	users := make(map[string]*proxy.User, len(cfg.Users))
	for _, u := range cfg.Users {
		pu := &proxy.User{
			Credential: auth.Credential{User: u.Name, Method: auth.Method(u.Auth), Password: u.Password,
				Verifier: u.ScramVerifier, MD5Hash: u.MD5Hash},
			ServerUser:     u.ServerUser,
			ServerPassword: u.ServerPassword,
		}
		if err := pu.Credential.Prepare(); err != nil {
			return nil, nil, nil, fmt.Errorf("users %q: %w", u.Name, err)
		}
		users[u.Name] = pu
	}
	shards := make([]proxy.Shard, len(cfg.Shards))
	for i, sh := range cfg.Shards {
		shards[i] = proxy.Shard{Name: sh.Name, Primary: primaryOf(sh)}
	}
	backendTLS, fallback, err := backendTLS(cfg.Backend)
	if err != nil {
		return nil, nil, nil, err
	}
	pools := &pool.Set{Options: func(pool.Key) pool.Options {
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
	}}
	topo := pool.NewTopology(topologyOptions(cfg, pools, backendTLS, fallback, log))
	shardMap, err := cfg.ShardMap()
	if err != nil {
		return nil, nil, nil, err
	}
	opts := proxy.Options{
		ShardMap:          shardMap,
		Users:             users,
		Shards:            shards,
		Pools:             pools,
		Mode:              poolMode(cfg.Pool.Mode),
		PreparedCacheSize: cfg.Pool.PreparedCacheSize,
		MaxClients:        cfg.Pool.MaxClientConn,
		Logger:            log,
		Topology:          topo,
		Routing:           routing(cfg.Routing),
		Router:            router.New(router.Options{CacheSize: cfg.Routing.ParseCacheSize, WriteFunctions: cfg.Routing.WriteFunctions}),
	}
	if cfg.Listen.TLS.Mode != config.ClientTLSDisable {
		tc, err := tlsconf.ServerConfig(cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("listen.tls: %w", err)
		}
		opts.TLS = tc
		opts.RequireTLS = cfg.Listen.TLS.Mode == config.ClientTLSRequire
	}
	return proxy.NewServer(opts), pools, topo, nil
}

// topologyOptions configures the monitor of every shard's hosts.
func topologyOptions(cfg *config.Config, pools *pool.Set, backendTLS *tls.Config, fallback bool, log *slog.Logger) pool.TopologyOptions {
	specs := make([]pool.ShardSpec, len(cfg.Shards))
	for i, sh := range cfg.Shards {
		specs[i].Name = sh.Name
		for _, h := range sh.Hosts {
			specs[i].Hosts = append(specs[i].Hosts, pool.HostSpec{Addr: h.Addr, Zone: h.Zone})
		}
	}
	user, password := cfg.MonitorCredentials()
	policy, _ := pool.ParsePolicy(string(cfg.Routing.ReplicaChoice)) // validated
	return pool.TopologyOptions{
		Shards: specs,
		Connect: func(ctx context.Context, addr string) (*pgconn.PgConn, error) {
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

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level.Slog()}
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
