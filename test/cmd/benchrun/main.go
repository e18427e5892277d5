package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardgate/shardgate/test/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "CI smoke: 3s runs, 16 clients only, 1s warm-up (explicit flags still win)")
	duration := fs.Duration("duration", 10*time.Second, "length of each pgbench run (-T, whole seconds)")
	clients := fs.String("clients", "1,16,64", "comma-separated client counts (-c)")
	protocols := fs.String("protocols", strings.Join(bench.Protocols, ","), "comma-separated query modes (-M)")
	workloads := fs.String("workloads", "select-only,tpc-b", "comma-separated workloads: select-only (-S), tpc-b (default script)")
	targets := fs.String("targets", "direct,shardgate,pgbouncer", "comma-separated targets")
	poolSize := fs.Int("pool-size", 64, "server connections per pool, for shardgate and pgbouncer alike")
	scale := fs.Int("scale", 10, "pgbench -i scale factor")
	threads := fs.Int("threads", 2, "pgbench threads (-j), capped at the client count")
	warmup := fs.Duration("warmup", 3*time.Second, "select-only load per target before measuring; 0 skips it")
	shards := fs.Int("shards", 1, "shards in the cluster (direct and pgbouncer use shard 0)")
	replicas := fs.Int("replicas", 0, "streaming replicas per shard")
	proxyBin := fs.String("proxy-bin", "", "shardgate binary; empty builds ./cmd/shardgate from this module")
	out := fs.String("out", "bench-results.md", "markdown copy of the results; empty skips it")
	raw := fs.String("raw", "", "directory to save every pgbench run's full output in")
	strict := fs.Bool("strict", false, "exit 1 when a direct or shardgate run fails or reports errors")
	sharding := fs.Bool("sharding", false, "run the sharding benchmark instead: 2 hash shards vs 1 shard without a map vs direct, point selects and scatter queries (make bench-sharding)")
	rows := fs.Int("rows", 1_000_000, "--sharding: rows in the scatter table t")
	users := fs.Int("users", 1_000_000, "--sharding: rows in users, read by the point selects")
	rounds := fs.Int("rounds", 2, "--sharding: rounds of the point-select matrix")
	scatterRuns := fs.Int("scatter-runs", 7, "--sharding: timed runs of each scatter query per target; 0 skips them")
	perf := fs.String("perf", "", "--sharding: directory for `perf record -g` profiles of the proxies in round 1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "benchrun: "+format+"\n", a...)
		return 2
	}
	if *sharding {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		return runSharding(shardingFlags{
			set: set, quick: *quick, duration: *duration, clients: *clients, protocols: *protocols,
			poolSize: *poolSize, threads: *threads, warmup: *warmup, proxyBin: *proxyBin, out: *out,
			raw: *raw, strict: *strict, rows: *rows, users: *users, rounds: *rounds, scatterRuns: *scatterRuns, perf: *perf,
		}, stdout, stderr)
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			*duration = 3 * time.Second
		}
		if !set["clients"] {
			*clients = "16"
		}
		if !set["warmup"] {
			*warmup = time.Second
		}
	}
	cfg := bench.Config{
		Shards: *shards, Replicas: *replicas, Scale: *scale, PoolSize: *poolSize,
		Seconds: int(duration.Round(time.Second) / time.Second), Threads: *threads,
		WarmupSeconds: int(warmup.Round(time.Second) / time.Second),
		ProxyBin:      *proxyBin, RawDir: *raw, Log: stderr,
	}
	if cfg.Seconds < 1 || *poolSize < 1 || *scale < 1 || *threads < 1 || *shards < 1 || *replicas < 0 {
		return fail("--duration, --pool-size, --scale, --threads and --shards must be at least 1 (1s), --replicas at least 0")
	}
	var err error
	if cfg.Clients, err = parseInts(*clients); err != nil {
		return fail("--clients: %v", err)
	}
	if cfg.Protocols, err = pick(*protocols, bench.Protocols); err != nil {
		return fail("--protocols: %v", err)
	}
	names, err := pick(*workloads, []string{bench.SelectOnly.Name, bench.TPCB.Name})
	if err != nil {
		return fail("--workloads: %v", err)
	}
	for _, n := range names {
		if n == bench.SelectOnly.Name {
			cfg.Workloads = append(cfg.Workloads, bench.SelectOnly)
		} else {
			cfg.Workloads = append(cfg.Workloads, bench.TPCB)
		}
	}
	if cfg.Targets, err = pick(*targets, []string{bench.TargetDirect, bench.TargetShardgate, bench.TargetPgBouncer}); err != nil {
		return fail("--targets: %v", err)
	}

	// The first SIGINT/SIGTERM cancels ctx and Run tears everything down;
	// later ones are swallowed until then, so that a second Ctrl-C cannot
	// strand servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	rep, err := bench.Run(ctx, cfg)
	interrupted := ctx.Err() != nil
	if len(rep.Runs) > 0 {
		if interrupted {
			rep.Notes = append(rep.Notes, "interrupted: the tables are incomplete")
		}
		fmt.Fprintln(stdout)
		_ = rep.WriteText(stdout)
		if *out != "" {
			if werr := writeMarkdown(*out, rep); werr != nil {
				fmt.Fprintf(stderr, "benchrun: write %s: %v\n", *out, werr)
			} else {
				fmt.Fprintf(stderr, "benchrun: markdown written to %s\n", *out)
			}
		}
	}
	fmt.Fprintf(stderr, "benchrun: done in %v\n", time.Since(begin).Round(time.Second))
	switch {
	case interrupted:
		fmt.Fprintln(stderr, "benchrun: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	if *strict {
		if bad := unclean(rep); len(bad) > 0 {
			fmt.Fprintf(stderr, "benchrun: --strict: %d direct/shardgate run(s) failed or reported errors:\n  %s\n", len(bad), strings.Join(bad, "\n  "))
			return 1
		}
	}
	return 0
}

// unclean lists the direct and shardgate runs with a failure or errors.
// pgbouncer's are left out: its failures (prepared statements before 1.21)
// are expected and not shardgate's to fix.
func unclean(rep *bench.Report) []string {
	var bad []string
	for k, o := range rep.Runs {
		if k.Target == bench.TargetPgBouncer {
			continue
		}
		if o.Err != "" || !o.Result.Clean() {
			bad = append(bad, k.String())
		}
	}
	return bad
}

func writeMarkdown(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// pick splits a comma-separated list and checks each entry against known,
// keeping the user's order.
func pick(s string, known []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		ok := false
		for _, k := range known {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("unknown %q (known: %s)", f, strings.Join(known, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}
