package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/pflag"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap/catalog"
)

const rebalanceUsage = `usage: shardgate rebalance SUBCOMMAND -c CONFIG [flags]

  plan    --distribution D --to SHARD (--from SHARD | --lo X --hi Y | --keys K1,K2,...)
          print what would move where, with row estimates; changes nothing
  move    (same flags as plan) [--max-pause 1s] [--dry-run]
          run the move online: copy and catch up, cut over, fence, clean up, verify
  status  [ID]         every move, or one, with its phase and figures
  verify               check that no row of a range lives on a shard that does not own it
  resume  ID           go on with a stopped move where it was
  abort   ID           undo a move that has not switched yet: map and data as before

The move connects to each shard's primary as --user (default: $PGUSER or
postgres; password from $PGPASSWORD or --password), a role that may create
publications and subscriptions, in --database (default: $PGDATABASE or app).
`

// rebalanceCmd runs shardgate rebalance.
func rebalanceCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, rebalanceUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := pflag.NewFlagSet("rebalance "+sub, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.StringP("config", "c", "", "shardgate config file (for catalog.dsn and the shards' hosts)")
	dist := fs.String("distribution", "", "distribution whose slice moves")
	to := fs.String("to", "", "shard that receives the slice")
	from := fs.String("from", "", "hash: split this shard's range and move its upper half")
	lo := fs.String("lo", "", "lower bound of the slice (hash value or key; empty: open)")
	hi := fs.String("hi", "", "upper bound of the slice, excluded (empty: open)")
	keys := fs.StringSlice("keys", nil, "directory: the keys to move, comma-separated")
	maxPause := fs.Duration("max-pause", time.Second, "longest write pause of one cutover attempt")
	attempts := fs.Int("attempts", 5, "cutover attempts before the move stops (it can be resumed)")
	dryRun := fs.Bool("dry-run", false, "plan and check, change nothing")
	user := fs.String("user", envOr("PGUSER", "postgres"), "role on the shards' primaries")
	password := fs.String("password", os.Getenv("PGPASSWORD"), "its password (prefer $PGPASSWORD)")
	database := fs.String("database", envOr("PGDATABASE", "app"), "database of the sharded tables")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, rebalanceUsage)
			return 0
		}
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "shardgate rebalance: --config is required (catalog.dsn and the shards come from it)")
		return 2
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", *path, err)
		return 1
	}
	if cfg.Catalog.DSN == "" {
		fmt.Fprintln(stderr, "shardgate rebalance: the config has no catalog.dsn: online moves need the catalog, which every proxy follows")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, err := catalog.Connect(ctx, cfg.Catalog.DSN, catalog.Options{Shards: cfg.ShardNames(), Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance:", err)
		return 1
	}
	defer store.Close()
	sh := &shardConns{cfg: cfg, user: *user, password: *password, database: *database}
	env := &rebalance.Env{
		Catalog: store, Connect: sh.connect, DSN: sh.dsn, MaxPause: *maxPause, Attempts: *attempts,
		Alive: 3 * catalog.HeartbeatInterval, Log: log,
	}
	req := rebalance.Request{Distribution: *dist, To: *to, From: *from, Lo: *lo, Hi: *hi, Keys: *keys}
	var code int
	switch sub {
	case "plan", "move":
		code = rebalancePlanMove(ctx, env, req, sub == "move", *dryRun, stdout, stderr)
	case "status":
		code = rebalanceStatus(ctx, store, fs.Args(), stdout, stderr)
	case "verify":
		code = rebalanceVerify(ctx, env, stdout, stderr)
	case "resume", "abort":
		id, err := moveID(fs.Args())
		if err != nil {
			fmt.Fprintln(stderr, "shardgate rebalance:", err)
			return 2
		}
		if sub == "abort" {
			err = rebalance.Abort(ctx, env, id)
		} else {
			env.Progress = progressPrinter(stdout)
			err = rebalance.Run(ctx, env, id)
		}
		if err != nil {
			fmt.Fprintf(stderr, "shardgate rebalance %s %d: %v\n", sub, id, err)
			return 1
		}
		fmt.Fprintf(stdout, "move %d: %s\n", id, map[string]string{"abort": "aborted; the map and the data are as before", "resume": "done"}[sub])
	default:
		fmt.Fprintf(stderr, "shardgate rebalance: unknown subcommand %q\n\n%s", sub, rebalanceUsage)
		return 2
	}
	return code
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func moveID(args []string) (int64, error) {
	if len(args) != 1 {
		return 0, errors.New("expected one move id (`shardgate rebalance status` lists them)")
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a move id", args[0])
	}
	return id, nil
}

func rebalancePlanMove(ctx context.Context, env *rebalance.Env, req rebalance.Request, move, dryRun bool, stdout, stderr io.Writer) int {
	if req.Distribution == "" || req.To == "" {
		fmt.Fprintln(stderr, "shardgate rebalance: --distribution and --to are required")
		return 2
	}
	snap, err := env.Catalog.Snapshot(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance:", err)
		return 1
	}
	if len(req.Keys) > 0 {
		// The directory says where the keys live now (as canonical text).
		canon := rebalance.CanonicalKeys(snap.Spec, req.Distribution, req.Keys)
		if req.Owners, err = env.Catalog.KeyOwners(ctx, req.Distribution, canon); err != nil {
			fmt.Fprintln(stderr, "shardgate rebalance:", err)
			return 1
		}
	}
	plan, err := rebalance.NewPlan(snap.Spec, snap.Shards, req)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance: cannot plan:", err)
		return 1
	}
	missing, err := rebalance.DropMissingTables(ctx, env, plan)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance: cannot plan:", err)
		return 1
	}
	fmt.Fprint(stdout, plan.Describe())
	for _, t := range missing {
		fmt.Fprintf(stdout, "  (table %s is in the map but not on shard %s: skipped)\n", t, plan.From)
	}
	if est, err := rebalance.Estimate(ctx, env, plan); err == nil {
		fmt.Fprint(stdout, est)
	} else {
		fmt.Fprintln(stdout, "  (no estimate:", err, ")")
	}
	if !move || dryRun {
		if move {
			fmt.Fprintln(stdout, "dry run: nothing changed")
		}
		return 0
	}
	id, err := rebalance.Start(ctx, env, plan)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance:", err)
		return 1
	}
	fmt.Fprintf(stdout, "move %d started\n", id)
	env.Progress = progressPrinter(stdout)
	if err := rebalance.Run(ctx, env, id); err != nil {
		fmt.Fprintf(stderr, "\nshardgate rebalance: move %d stopped: %v\n`shardgate rebalance resume %d` goes on, `abort %d` undoes it\n", id, err, id, id)
		return 1
	}
	fmt.Fprintf(stdout, "\nmove %d done\n", id)
	return 0
}

func rebalanceStatus(ctx context.Context, store *catalog.Store, args []string, stdout, stderr io.Writer) int {
	var id int64
	if len(args) > 0 {
		var err error
		if id, err = moveID(args); err != nil {
			fmt.Fprintln(stderr, "shardgate rebalance:", err)
			return 2
		}
	}
	moves, err := store.Moves(ctx, id)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance:", err)
		return 1
	}
	if len(moves) == 0 {
		fmt.Fprintln(stdout, "no moves")
		return 0
	}
	for _, mv := range moves {
		plan, fig, err := rebalance.Decode(mv)
		if err != nil {
			fmt.Fprintln(stderr, err)
			continue
		}
		fmt.Fprintf(stdout, "move %d  %-8s  %s  started %s  updated %s\n", mv.ID, mv.Phase,
			strings.TrimSpace(plan.Describe()), mv.Created.Format(time.DateTime), mv.Updated.Format(time.DateTime))
		fmt.Fprintf(stdout, "  rows copied %d of ~%d, copy took %s, cutover attempts %d, write pause %s, rows deleted from the source %d, verified %v\n",
			fig.RowsCopied, fig.RowsTotal, fig.CopyTook.Round(time.Millisecond), fig.Attempts, fig.Pause.Round(time.Microsecond), fig.Deleted, fig.Verified)
		if mv.Error != "" {
			fmt.Fprintf(stdout, "  error: %s\n", mv.Error)
		}
	}
	return 0
}

func rebalanceVerify(ctx context.Context, env *rebalance.Env, stdout, stderr io.Writer) int {
	snap, err := env.Catalog.Snapshot(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance:", err)
		return 1
	}
	report, err := rebalance.VerifyPlacement(ctx, env, snap.Spec, snap.Shards)
	fmt.Fprint(stdout, report)
	if err != nil {
		fmt.Fprintln(stderr, "shardgate rebalance verify:", err)
		return 1
	}
	return 0
}

// progressPrinter shows a move's figures: a bar redrawn in place on a
// terminal, a line every few seconds otherwise.
func progressPrinter(w io.Writer) func(rebalance.Figures) {
	tty := isTerminal(w)
	var last time.Time
	return func(f rebalance.Figures) {
		if !tty && time.Since(last) < 2*time.Second && f.Phase == rebalance.PhaseCopying {
			return
		}
		last = time.Now()
		line := progressLine(f)
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func progressLine(f rebalance.Figures) string {
	pct := 0.0
	if f.RowsTotal > 0 {
		pct = min(100*float64(f.RowsCopied)/float64(f.RowsTotal), 100)
	}
	bar := strings.Repeat("#", int(pct/5)) + strings.Repeat(".", 20-int(pct/5))
	rate, eta := 0.0, "?"
	if !f.CopyStarted.IsZero() {
		el := time.Since(f.CopyStarted).Seconds()
		if el > 0 {
			rate = float64(f.RowsCopied) / el
		}
		if rate > 0 && f.RowsTotal > f.RowsCopied {
			eta = (time.Duration(float64(f.RowsTotal-f.RowsCopied)/rate) * time.Second).Round(time.Second).String()
		} else if f.RowsCopied >= f.RowsTotal {
			eta = "0s"
		}
	}
	return fmt.Sprintf("%-8s [%s] %3.0f%% %d/%d rows  %.0f rows/s  lag %d B  ETA %s  pause %s  deleted %d",
		f.Phase, bar, pct, f.RowsCopied, f.RowsTotal, rate, f.LagBytes, eta, f.Pause.Round(time.Millisecond), f.Deleted)
}

// shardConns connects to the shards' primaries for a move.
type shardConns struct {
	cfg                      *config.Config
	user, password, database string
	// primaries caches each shard's primary address once probed: one
	// move connects to the same shards several times.
	mu        sync.Mutex
	primaries map[string]string
}

func (s *shardConns) cached(shard string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, ok := s.primaries[shard]
	return addr, ok
}

func (s *shardConns) remember(shard, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.primaries == nil {
		s.primaries = map[string]string{}
	}
	s.primaries[shard] = addr
}

// forget drops shard's cached primary, to be probed again.
func (s *shardConns) forget(shard string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.primaries, shard)
}

func (s *shardConns) dsnFor(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	d := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=5", host, port, quoteDSN(s.user), quoteDSN(s.database))
	if s.password != "" {
		d += " password=" + quoteDSN(s.password)
	}
	return d
}

func quoteDSN(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
}

// primary finds the shard's primary among its configured hosts: the one
// not in recovery.
func (s *shardConns) primary(ctx context.Context, shard string) (string, error) {
	if addr, ok := s.cached(shard); ok {
		return addr, nil
	}
	for _, sh := range s.cfg.Shards {
		if sh.Name != shard {
			continue
		}
		var lastErr error
		for _, h := range sh.Hosts {
			c, err := pgx.Connect(ctx, s.dsnFor(h.Addr))
			if err != nil {
				lastErr = err
				continue
			}
			var rec bool
			err = c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
			c.Close(ctx)
			if err == nil && !rec {
				s.remember(shard, h.Addr)
				return h.Addr, nil
			}
			lastErr = err
		}
		return "", fmt.Errorf("no reachable primary among the hosts of shard %s: %v", shard, lastErr)
	}
	return "", fmt.Errorf("shard %q is not in the config's shards", shard)
}

func (s *shardConns) connect(ctx context.Context, shard string) (*pgx.Conn, error) {
	addr, err := s.primary(ctx, shard)
	if err != nil {
		return nil, err
	}
	c, err := pgx.Connect(ctx, s.dsnFor(addr))
	if err != nil {
		// The primary may have moved since it was probed: probe again.
		s.forget(shard)
		if addr, err = s.primary(ctx, shard); err != nil {
			return nil, err
		}
		return pgx.Connect(ctx, s.dsnFor(addr))
	}
	return c, err
}

func (s *shardConns) dsn(shard string) (string, error) {
	addr, err := s.primary(context.Background(), shard)
	if err != nil {
		return "", err
	}
	return s.dsnFor(addr), nil
}
