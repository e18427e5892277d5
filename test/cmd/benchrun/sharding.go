package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shardgate/shardgate/test/bench"
)

// shardingFlags are the command line as --sharding reads it; set names
// the flags the user gave, so that the sharding defaults apply to the
// others.
type shardingFlags struct {
	set                                    map[string]bool
	quick, strict                          bool
	duration, warmup                       time.Duration
	clients, protocols, proxyBin, out, raw string
	perf                                   string
	poolSize, threads, rows, users, rounds int
	scatterRuns                            int
}

// shardingConfig turns the flags into a run's config: the defaults of
// bench.DefaultShardingConfig (16 and 64 clients, 8 s runs, two rounds)
// where the user gave nothing, --quick's where asked. It reports flag
// errors as an error.
func shardingConfig(f shardingFlags) (bench.ShardingConfig, error) {
	cfg := bench.DefaultShardingConfig()
	if f.quick {
		// A smoke run of about a minute.
		cfg.Seconds, cfg.Rounds, cfg.Clients, cfg.WarmupSeconds = 3, 1, []int{16}, 1
		cfg.Users, cfg.Rows, cfg.ScatterRuns = 100_000, 100_000, 3
	}
	var err error
	if f.set["duration"] {
		cfg.Seconds = int(f.duration.Round(time.Second) / time.Second)
	}
	if f.set["warmup"] {
		cfg.WarmupSeconds = int(f.warmup.Round(time.Second) / time.Second)
	}
	if f.set["clients"] {
		if cfg.Clients, err = parseInts(f.clients); err != nil {
			return cfg, fmt.Errorf("--clients: %v", err)
		}
	}
	if f.set["protocols"] {
		if cfg.Protocols, err = pick(f.protocols, bench.Protocols); err != nil {
			return cfg, fmt.Errorf("--protocols: %v", err)
		}
	}
	if f.set["pool-size"] {
		cfg.PoolSize = f.poolSize
	}
	if f.set["threads"] {
		cfg.Threads = f.threads
	}
	if f.set["rows"] {
		cfg.Rows = f.rows
	}
	if f.set["users"] {
		cfg.Users = f.users
	}
	if f.set["rounds"] {
		cfg.Rounds = f.rounds
	}
	if f.set["scatter-runs"] {
		cfg.ScatterRuns = f.scatterRuns
	}
	for _, name := range []string{"workloads", "targets", "scale", "shards", "replicas"} {
		if f.set[name] {
			return cfg, fmt.Errorf("--%s does not apply to --sharding", name)
		}
	}
	cfg.ProxyBin, cfg.RawDir, cfg.PerfDir = f.proxyBin, f.raw, f.perf
	if cfg.Seconds < 1 || cfg.PoolSize < 1 || cfg.Threads < 1 || cfg.Rows < 1 || cfg.Users < 4 || cfg.Rounds < 1 || cfg.ScatterRuns < 0 || cfg.WarmupSeconds < 0 {
		return cfg, fmt.Errorf("--duration, --pool-size, --threads, --rows and --rounds must be at least 1 (1s), --users at least 4, --scatter-runs and --warmup at least 0")
	}
	return cfg, nil
}

// runSharding is run for --sharding: the sharding benchmark
// (bench.RunSharding). Only --out given explicitly writes markdown, so that
// make bench's bench-results.md is not overwritten.
func runSharding(f shardingFlags, stdout, stderr io.Writer) int {
	cfg, err := shardingConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 2
	}
	cfg.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	rep, err := bench.RunSharding(ctx, cfg)
	interrupted := ctx.Err() != nil
	if len(rep.Point) > 0 || len(rep.Scatter) > 0 {
		if interrupted || err != nil {
			rep.Notes = append(rep.Notes, "incomplete run: the tables are partial")
		}
		fmt.Fprintln(stdout)
		_ = rep.WriteText(stdout)
		if f.set["out"] && f.out != "" {
			if werr := writeFile(f.out, rep.WriteMarkdown); werr != nil {
				fmt.Fprintf(stderr, "benchrun: write %s: %v\n", f.out, werr)
			} else {
				fmt.Fprintf(stderr, "benchrun: markdown written to %s\n", f.out)
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
	if f.strict {
		if bad := uncleanSharding(rep); len(bad) > 0 {
			fmt.Fprintf(stderr, "benchrun: --strict: %d run(s) failed, reported errors or answered differently:\n  %s\n", len(bad), strings.Join(bad, "\n  "))
			return 1
		}
	}
	return 0
}

// uncleanSharding lists failed or unclean point-select rounds and scatter
// queries that failed or whose answers differed.
func uncleanSharding(rep *bench.ShardingReport) []string {
	var bad []string
	for k, runs := range rep.Point {
		if s := bench.SummarizeRounds(runs); s.Problem != "" {
			bad = append(bad, fmt.Sprintf("point-select %s c=%d %s: %s", k.Protocol, k.Clients, k.Target, s.Problem))
		}
	}
	for _, s := range rep.Scatter {
		if s.Err != "" || s.Mismatch != "" {
			bad = append(bad, fmt.Sprintf("scatter %s %s: %s%s", s.Query.Name, s.Mode, s.Err, s.Mismatch))
		}
	}
	return bad
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
