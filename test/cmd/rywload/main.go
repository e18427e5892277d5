package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shardgate/shardgate/test/cluster"
)

// startTimeout bounds bringing the cluster up.
const startTimeout = 2 * time.Minute

// maxShownWarnings is how many of shardgate's warning lines reach stderr;
// the rest are only counted.
const maxShownWarnings = 20

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// clusterOptions is the cluster every run uses: one shard, a primary and
// two streaming replicas, and the role the clients log in as.
//
// test/cluster runs with synchronous_commit=off for speed, so a commit
// reaches the replicas only when the WAL writer next flushes (every 10ms
// there): a read of one's own write must wait for that. syncCommit turns
// it back on, as production clusters have it, where the commit's flush
// wakes the WAL senders at once.
func clusterOptions(syncCommit bool) cluster.Options {
	o := cluster.Options{
		Shards: 1, Replicas: 2,
		Users:     []cluster.User{{Name: appUser, Password: appPassword}},
		Databases: []cluster.Database{{Name: appDB, Owner: appUser}},
	}
	if syncCommit {
		o.ExtraConf = []string{"synchronous_commit = on"}
	}
	return o
}

// run is main without os.Exit, so that deferred cleanups (the cluster's
// shutdown above all) run.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rywload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 60*time.Second, "length of each measured run")
	clients := fs.Int("clients", 64, "concurrent clients, one connection each")
	writeShare := fs.Float64("write-share", 0.3, "share of iterations that write a row and read it back (the rest read only)")
	staleCheck := fs.Duration("stale-check", 5*time.Second, "length of the ryw=off run with replay paused that must see stale reads; 0 skips it")
	quick := fs.Bool("quick", false, "smoke test: 10s runs and a 3s stale check (explicit flags still win)")
	syncCommit := fs.Bool("sync-commit", false, "run PostgreSQL with synchronous_commit=on instead of test/cluster's off, which delays each commit's arrival on the replicas by up to 10ms")
	seed := fs.Uint64("seed", 0, "random seed for the workload and the chaos; 0 picks one from the clock")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rywload: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			*duration = 10 * time.Second
		}
		if !set["stale-check"] {
			*staleCheck = 3 * time.Second
		}
	}
	if *duration < time.Second || *clients < 1 || *writeShare <= 0 || *writeShare >= 1 || *staleCheck < 0 {
		fmt.Fprintln(stderr, "rywload: --duration must be at least 1s, --clients at least 1, --write-share between 0 and 1 (exclusive), --stale-check not negative")
		return 2
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	cfg := config{
		duration: *duration, clients: *clients, writeShare: *writeShare,
		proofDuration: *staleCheck, seed: *seed, syncCommit: *syncCommit, progress: stderr,
		proxyLog: &cappedLog{w: stderr, limit: maxShownWarnings},
	}

	// The first SIGINT/SIGTERM cancels ctx: the clients stop, the chaos
	// resumes replay and the cluster is stopped on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "rywload: seed %d; starting PostgreSQL: 1 primary + 2 replicas...\n", *seed)
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	c, err := cluster.Start(startCtx, clusterOptions(*syncCommit))
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "rywload: start cluster: %v\n", err)
		if errors.Is(err, cluster.ErrNoPostgres) {
			fmt.Fprintln(stderr, "rywload: install the PostgreSQL server (.ci/install-deps does it on Debian)")
		}
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(stderr, "rywload: stop cluster: %v\n", err)
		}
	}()

	rep, err := measure(ctx, c, cfg)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "rywload: interrupted")
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "rywload: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout)
	rep.write(stdout)
	if bad := rep.failures(); len(bad) > 0 {
		fmt.Fprintln(stdout, "result: FAIL")
		for _, b := range bad {
			fmt.Fprintf(stdout, "  - %s\n", b)
		}
		return 1
	}
	fmt.Fprintln(stdout, "result: PASS")
	return 0
}
