package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shardgate/shardgate/test/cluster"
)

// proxyStopTimeout bounds how long the proxy gets to drain after SIGTERM
// before it is killed.
const proxyStopTimeout = 10 * time.Second

// catalogDB is the database on shard 0's primary that holds the shard
// map's catalog.
const catalogDB = "shardgate_catalog"

// The roles and databases `make run` offers; the proxy config lists the
// same users.
var (
	devUsers = []cluster.User{
		{Name: "app", Password: "app"},
		// postgres is trusted on loopback anyway; the password is for
		// clients that log in to it through the proxy.
		{Name: "postgres", Password: "postgres", Superuser: true},
	}
	devDatabases = []cluster.Database{
		{Name: "app", Owner: "app"},
		{Name: "pgx_test", Owner: "app"},
	}
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./.run", "directory for the cluster's data and the generated config; wiped on start")
	shards := fs.Int("shards", 2, "number of shards")
	spare := fs.Int("spare", 0, "extra shards in the config that own no data yet, to move data to with shardgate rebalance")
	replicas := fs.Int("replicas", 1, "streaming replicas per shard")
	basePort := fs.Int("base-port", 15432, "shard i host j listens on base-port + i*10 + j (host 0 is the primary)")
	proxyBin := fs.String("proxy-bin", "./bin/shardgate", "path to the shardgate binary")
	listen := fs.String("listen", "127.0.0.1:6432", "address the proxy accepts clients on")
	metricsAddr := fs.String("metrics", "127.0.0.1:9930", "address of the proxy's /metrics, /healthz and /readyz (\"\" for none)")
	pgLog := fs.Bool("pg-log", false, "copy the PostgreSQL server logs to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "devcluster: "+format+"\n", a...)
		return 1
	}
	// Checked before the cluster starts, so that a missing build costs no
	// startup time.
	if fi, err := os.Stat(*proxyBin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fail("proxy binary %s is missing or not executable; build it first (make build) or pass --proxy-bin", *proxyBin)
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return fail("bad --listen %q: %v", *listen, err)
	}

	// The first SIGINT/SIGTERM cancels ctx; later ones are swallowed until
	// stop, so a second Ctrl-C cannot cut the shutdown short and strand
	// servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := cluster.Options{
		Shards:    *shards + *spare,
		Replicas:  *replicas,
		Dir:       *dir,
		BasePort:  *basePort,
		Users:     devUsers,
		Databases: devDatabases,
	}
	if *pgLog {
		opts.Log = stderr
	}
	fmt.Fprintf(stdout, "devcluster: starting %d shard(s) x %d replica(s) in %s ...\n", *shards, *replicas, *dir)
	begin := time.Now()
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "devcluster: interrupted during startup")
			return 0
		}
		return fail("%v", err)
	}
	took := time.Since(begin)
	stopCluster := func() {
		fmt.Fprintln(stdout, "devcluster: stopping the cluster")
		if err := c.Stop(); err != nil {
			fmt.Fprintf(stderr, "devcluster: stop cluster: %v\n", err)
		}
	}

	// The shard map's catalog lives on shard 0's primary, as the design
	// suggests for a local setup.
	if err := c.Shards[0].Primary.Exec(ctx, "CREATE DATABASE "+catalogDB+" OWNER app"); err != nil {
		stopCluster()
		return fail("create the catalog database: %v", err)
	}

	cfgPath := filepath.Join(c.Dir, "shardgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(renderConfig(*listen, *metricsAddr, c.Shards, *shards)), 0o644); err != nil {
		stopCluster()
		return fail("write config: %v", err)
	}
	printBanner(stdout, c, took, cfgPath, *listen)

	proxy := exec.Command(*proxyBin, "serve", "--config", cfgPath)
	proxy.Stdout, proxy.Stderr = stdout, stderr
	// Its own process group keeps the terminal's Ctrl-C away from the proxy:
	// devcluster forwards the signal itself, and so always knows whether the
	// proxy stopped on request or on its own.
	proxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := proxy.Start(); err != nil {
		stopCluster()
		return fail("start proxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proxy.Wait() }()

	select {
	case err := <-exited:
		code := exitCode(err)
		fmt.Fprintf(stderr, "devcluster: proxy exited with status %d\n", code)
		stopCluster()
		return code
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\ndevcluster: stopping the proxy")
		_ = proxy.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(proxyStopTimeout):
			fmt.Fprintf(stderr, "devcluster: proxy still running after %v; killing it\n", proxyStopTimeout)
			_ = proxy.Process.Kill()
			<-exited
		}
		stopCluster()
		return 0
	}
}

// exitCode maps the proxy's end to a shell-style status.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// renderConfig produces the proxy configuration for the cluster. It is
// plain text rather than a YAML library's output so that its layout and
// comments stay exactly as written here.
func renderConfig(listen, metricsAddr string, shards []*cluster.Shard, mapped int) string {
	var b strings.Builder
	b.WriteString("# generated by devcluster for make run\n")
	fmt.Fprintf(&b, "listen:\n  addr: %s\n", listen)
	b.WriteString("pool:\n  mode: transaction\n  size: 40\n")
	b.WriteString(`users:
  - name: app
    password: app
    auth: scram-sha-256
  - name: postgres
    password: postgres
    auth: scram-sha-256
    server_password: ""
`)
	b.WriteString("shards:\n")
	for _, s := range shards {
		fmt.Fprintf(&b, "  - name: s%d\n    hosts:\n", s.Index)
		fmt.Fprintf(&b, "      - addr: %s\n        role: primary\n", s.Primary.Addr())
		for _, r := range s.Replicas {
			fmt.Fprintf(&b, "      - addr: %s\n        role: replica\n", r.Addr())
		}
	}
	// A demo map: users and orders spread by hash of the user id,
	// anything else on s0.
	b.WriteString("sharding:\n  distributions:\n    - name: users\n      method: hash\n      key_type: bigint\n")
	b.WriteString("      tables:\n        - name: users\n          key: id\n        - name: orders\n          key: user_id\n")
	b.WriteString("      shards: [")
	for i, s := range shards[:mapped] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "s%d", s.Index)
	}
	b.WriteString("]\n")
	// The catalog makes the map shared and changeable while serving
	// (shardgate shardmap apply), and records two-phase commit decisions.
	b.WriteString("  two_phase_commit: true\n")
	fmt.Fprintf(&b, "catalog:\n  dsn: %s\n", catalogDSN(shards))
	// The console: postgres runs every command, app may look.
	b.WriteString("admin:\n  users: [postgres]\n  stats_users: [app]\n")
	if metricsAddr != "" {
		fmt.Fprintf(&b, "metrics:\n  listen: %s\n", metricsAddr)
	}
	b.WriteString("log:\n  level: info\n  slow_query: 1s\n")
	return b.String()
}

// catalogDSN is the catalog's connection string, as app.
func catalogDSN(shards []*cluster.Shard) string {
	return fmt.Sprintf("postgres://app:app@%s/%s?sslmode=disable", shards[0].Primary.Addr(), catalogDB)
}

// dialAddr turns a listen address into one a client can dial: a wildcard
// host becomes loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// printBanner tells the developer what runs where and how to connect.
func printBanner(w io.Writer, c *cluster.Cluster, took time.Duration, cfgPath, listen string) {
	fmt.Fprintf(w, "\ndevcluster: cluster up in %v; files in %s\n\n", took.Round(10*time.Millisecond), c.Dir)
	for _, s := range c.Shards {
		for _, h := range append([]*cluster.Host{s.Primary}, s.Replicas...) {
			role := "primary"
			if h.Replica > 0 {
				role = fmt.Sprintf("replica%d", h.Replica)
			}
			fmt.Fprintf(w, "  s%d %-9s %-16s log %s\n", s.Index, role, h.Addr(), h.LogFile)
		}
	}
	fmt.Fprintf(w, "\nProxy config: %s\n", cfgPath)
	fmt.Fprintf(w, "\nConnect through shardgate:\n  psql \"postgres://app:app@%s/app\"\n", dialAddr(listen))
	fmt.Fprintln(w, "\nConnect to a primary directly (postgres needs no password on 127.0.0.1):")
	for _, p := range c.Primaries() {
		fmt.Fprintf(w, "  psql \"%s\"\n", p.DSN("app", "app", "app"))
		fmt.Fprintf(w, "  psql \"%s\"\n", p.DSN("postgres", "", "postgres"))
	}
	fmt.Fprintf(w, "\nThe shard map's catalog (shardgate shardmap show|apply %s):\n  psql \"%s\"\n", cfgPath, catalogDSN(c.Shards))
	if len(c.Shards) > 0 {
		last := c.Shards[len(c.Shards)-1]
		fmt.Fprintf(w, "\nMove data online (see the README's rebalance walk-through), e.g. half of s0 to s%d:\n  PGUSER=postgres ./bin/shardgate rebalance move -c %s --distribution users --from s0 --to s%d\n", last.Index, cfgPath, last.Index)
	}
	fmt.Fprintf(w, "\nThe admin console (SHOW HELP lists its commands):\n  psql \"postgres://postgres:postgres@%s/shardgate\"\n", dialAddr(listen))
	fmt.Fprintln(w, "\nCtrl-C stops the proxy and the cluster.")
	fmt.Fprintln(w)
}
