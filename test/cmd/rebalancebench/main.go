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
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is one run's settings, from the flags.
type config struct {
	// rows are loaded into s0 before the moves.
	rows int
	// cutovers are the small range's moves back and forth.
	cutovers int
	// clients write through shardgate during the moves; rate caps their
	// writes per second in total (0: as fast as they can).
	clients, rate int
	// maxPause is the move's --max-pause.
	maxPause time.Duration
	// proxyBin is the shardgate binary; empty builds ./cmd/shardgate.
	proxyBin string
	// keepLogs keeps the log directory (proxy, moves) and prints its path.
	keepLogs bool
	// log receives progress lines.
	log io.Writer
}

// parseFlags turns the command line into a config; --quick sets the
// smoke run's sizes where the user gave none.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("rebalancebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smoke run: 100k rows, 3 cutovers (explicit flags still win)")
	rows := fs.Int("rows", 1_000_000, "rows loaded into s0")
	cutovers := fs.Int("cutovers", 10, "moves of the small range [0, 2^60) back and forth")
	clients := fs.Int("clients", 8, "clients writing through shardgate during the moves")
	rate := fs.Int("rate", 2000, "total writes per second of all clients, about a third of what 2 cores take; 0 is as fast as they can")
	maxPause := fs.Duration("max-pause", time.Second, "the move's --max-pause")
	proxyBin := fs.String("proxy-bin", "", "shardgate binary; empty builds ./cmd/shardgate from this module")
	keepLogs := fs.Bool("keep-logs", false, "keep the proxy's and the moves' logs and print where")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg := config{rows: *rows, cutovers: *cutovers, clients: *clients, rate: *rate,
		maxPause: *maxPause, proxyBin: *proxyBin, keepLogs: *keepLogs}
	if *quick {
		if !set["rows"] {
			cfg.rows = 100_000
		}
		if !set["cutovers"] {
			cfg.cutovers = 3
		}
	}
	if cfg.rows < 1000 || cfg.cutovers < 0 || cfg.clients < 1 || cfg.rate < 0 || cfg.maxPause <= 0 {
		return cfg, errors.New("--rows must be at least 1000, --clients at least 1, --cutovers and --rate at least 0, --max-pause positive")
	}
	return cfg, nil
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rebalancebench: %v\n", err)
		return 2
	}
	cfg.log = stderr
	// The first SIGINT/SIGTERM cancels ctx and the run tears everything
	// down; later ones are swallowed until then, so that a second Ctrl-C
	// cannot strand servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	rep, err := runBench(ctx, cfg)
	interrupted := ctx.Err() != nil
	if rep.hasResults() {
		if interrupted || err != nil {
			rep.notes = append(rep.notes, "incomplete run: the tables are partial")
		}
		fmt.Fprintln(stdout)
		_ = rep.writeText(stdout)
	}
	fmt.Fprintf(stderr, "rebalancebench: done in %v\n", time.Since(begin).Round(time.Second))
	switch {
	case interrupted:
		fmt.Fprintln(stderr, "rebalancebench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "rebalancebench: %v\n", err)
		return 1
	case len(rep.problems) > 0:
		fmt.Fprintf(stderr, "rebalancebench: %d problem(s); see PROBLEM lines above\n", len(rep.problems))
		return 1
	}
	return 0
}
