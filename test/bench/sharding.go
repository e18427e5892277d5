package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/test/cluster"
)

// ShardingConfig describes a sharding benchmark run (`make bench-sharding`,
// `go run ./test/cmd/benchrun --sharding`).
//
// The cluster has three primaries: the first holds every row (the
// "direct" target, and behind shardgate with one shard and no map), the
// other two hold the same rows split by the hash map (behind shardgate
// with two shards). Both proxies are real shardgate processes, so that
// their CPU time can be read from /proc.
type ShardingConfig struct {
	// Users is the number of rows in users, which the point selects read.
	Users int
	// Rows is the number of rows in t, which the scatter queries read.
	Rows int
	// PoolSize is each proxy's server connections per shard.
	PoolSize int
	// Seconds is each point-select run's pgbench -T.
	Seconds int
	// Rounds repeats the point-select matrix, alternating the order of the
	// targets, so that drift of a shared machine shows as spread.
	Rounds int
	// Threads is pgbench -j (capped at the client count).
	Threads   int
	Clients   []int
	Protocols []string
	// WarmupSeconds of point selects per target before measuring.
	WarmupSeconds int
	// ScatterRuns is how many timed runs each scatter query gets per
	// target and protocol (after one untimed run); 0 skips the scatter
	// benchmark.
	ScatterRuns int
	// ProxyBin is the shardgate binary; empty builds one from the module.
	ProxyBin string
	// RawDir, if set, receives every pgbench run's command and output.
	RawDir string
	// PerfDir, if set, receives a `perf record -g` profile of the proxy
	// for each point-select run through a proxy in the first round
	// (<protocol>-c<clients>-<target>.perf.data). perf costs the proxy
	// CPU, so those rounds' figures are lower.
	PerfDir string
	// Log receives progress lines.
	Log io.Writer
}

// DefaultShardingConfig is a full run: 5-6 minutes on 2 cores.
func DefaultShardingConfig() ShardingConfig {
	return ShardingConfig{
		Users: 1_000_000, Rows: 1_000_000, PoolSize: 64, Seconds: 8, Rounds: 2, Threads: 2,
		Clients: []int{16, 64}, Protocols: slices.Clone(Protocols),
		WarmupSeconds: 3, ScatterRuns: 7,
	}
}

// shardBench is a sharding benchmark in progress. It reuses bench's
// pgbench runner (one), with the cluster's first shard as "direct".
type shardBench struct {
	*bench
	scfg   ShardingConfig
	srep   *ShardingReport
	single *cluster.Host   // every row
	halves []*cluster.Host // s0, s1 of the sharded proxy
}

// RunSharding sets up the cluster, loads the data, starts both proxies,
// runs the point-select matrix and the scatter queries, and tears
// everything down, also when ctx is cancelled. It returns the report so
// far even with an error.
func RunSharding(ctx context.Context, cfg ShardingConfig) (*ShardingReport, error) {
	b := &bench{
		cfg: Config{Seconds: cfg.Seconds, Threads: cfg.Threads, WarmupSeconds: cfg.WarmupSeconds,
			Clients: cfg.Clients, PoolSize: cfg.PoolSize, RawDir: cfg.RawDir},
		log: cfg.Log, ports: map[string]int{}, procs: map[string]*Proc{},
		start: map[string]func(context.Context) (*Proc, int, error){},
	}
	if b.log == nil {
		b.log = io.Discard
	}
	sb := &shardBench{bench: b, scfg: cfg, srep: &ShardingReport{Protocols: cfg.Protocols, Clients: cfg.Clients}}
	defer func() {
		for _, name := range []string{TargetSG1, TargetSG2} {
			if p := b.procs[name]; p != nil {
				fmt.Fprintf(b.log, "benchrun: stopping %s\n", name)
				p.Stop(ProxyStopTimeout)
			}
		}
		if b.cl != nil {
			fmt.Fprintln(b.log, "benchrun: stopping the cluster")
			if err := b.cl.Stop(); err != nil {
				fmt.Fprintf(b.log, "benchrun: stop cluster: %v\n", err)
			}
		}
	}()
	work, err := os.MkdirTemp("", "sgbench-") // see proxyBinName
	if err != nil {
		return sb.srep, err
	}
	defer os.RemoveAll(work)
	for _, dir := range []string{cfg.RawDir, cfg.PerfDir} {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return sb.srep, err
			}
		}
	}
	if cfg.PerfDir != "" {
		sb.note("profiled with perf record in round 1 (--perf): that round's proxy figures include perf's cost")
	}
	if err := sb.setup(ctx, work); err != nil {
		return sb.srep, err
	}
	if err := sb.pointMatrix(ctx); err != nil {
		return sb.srep, err
	}
	if cfg.ScatterRuns > 0 {
		if err := sb.scatter(ctx); err != nil {
			return sb.srep, err
		}
	}
	return sb.srep, nil
}

func (sb *shardBench) setup(ctx context.Context, work string) error {
	b, cfg := sb.bench, sb.scfg
	b.hz = ClockTicks(ctx)
	binDir, err := cluster.FindBinDir("")
	if err != nil {
		return err
	}
	if b.pgbench, err = FindPgbench(binDir); err != nil {
		return err
	}
	var proxyBin string
	if cfg.ProxyBin != "" {
		proxyBin, err = CopyShardgate(cfg.ProxyBin, work, proxyBinName)
	} else {
		fmt.Fprintln(b.log, "benchrun: building shardgate")
		proxyBin, err = BuildShardgate(ctx, work, proxyBinName)
	}
	if err != nil {
		return err
	}
	maxClients := slices.Max(cfg.Clients)
	fmt.Fprintln(b.log, "benchrun: starting 3 primaries: one unsharded, two shards")
	b.cl, err = cluster.Start(ctx, cluster.Options{
		Shards:    3,
		Users:     []cluster.User{{Name: User, Password: Password}},
		Databases: []cluster.Database{{Name: Database, Owner: User}},
		ExtraConf: []string{
			// The unsharded server has the direct clients and sg1's pool.
			fmt.Sprintf("max_connections = %d", cfg.PoolSize+maxClients+20),
			// As make bench: the data (about 300 MB on the unsharded
			// server with indexes) is read warm from the page cache.
			"shared_buffers = 256MB",
		},
	})
	if err != nil {
		return err
	}
	sb.single = b.cl.Shards[0].Primary
	sb.halves = []*cluster.Host{b.cl.Shards[1].Primary, b.cl.Shards[2].Primary}
	if err := sb.load(ctx); err != nil {
		return err
	}

	script := filepath.Join(work, "point-select.sql")
	if err := os.WriteFile(script, []byte(PointSelectScript(cfg.Users)), 0o644); err != nil {
		return err
	}
	b.warm = Workload{Name: "point-select", Title: "SELECT id, name, balance FROM users WHERE id = :id (random id)", Args: []string{"-f", script}}

	b.ports[TargetDirect] = sb.single.Port
	for _, tg := range []string{TargetSG1, TargetSG2} {
		dir := filepath.Join(work, tg)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		var render func(string) string
		if tg == TargetSG1 {
			render = func(listen string) string {
				return RenderShardgateConfig(listen, cfg.PoolSize, []string{sb.single.Addr()})
			}
		} else {
			render = func(listen string) string {
				return RenderShardedConfig(listen, cfg.PoolSize, []string{sb.halves[0].Addr(), sb.halves[1].Addr()}, ShardingSpec())
			}
		}
		b.start[tg] = func(ctx context.Context) (*Proc, int, error) {
			return startShardgateWith(ctx, proxyBin, dir, render)
		}
		p, port, err := b.start[tg](ctx)
		if err != nil {
			return err
		}
		b.procs[tg], b.ports[tg] = p, port
		fmt.Fprintf(b.log, "benchrun: %s (pid %d) on 127.0.0.1:%d\n", tg, p.Pid(), port)
	}
	if err := sb.checkRouting(ctx); err != nil {
		return err
	}

	pgVersion, _ := sb.single.QueryString(ctx, "SHOW server_version")
	pgbenchVersion, _ := exec.CommandContext(ctx, b.pgbench, "--version").Output()
	sb.srep.Meta = []string{
		"date: " + time.Now().Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %d CPUs (%s/%s); pgbench, the three servers and both proxies share them", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("servers: PostgreSQL %s, 3 primaries (shared_buffers 256MB, default parallel query settings)", pgVersion),
		fmt.Sprintf("data: users %d rows, t %d rows; all on the unsharded server, split by hash over the two shards", cfg.Users, cfg.Rows),
		fmt.Sprintf("pgbench: %s, -n -T %d -j %d, %d round(s), target order alternating", strings.TrimSpace(string(pgbenchVersion)), cfg.Seconds, cfg.Threads, cfg.Rounds),
		fmt.Sprintf("proxies: transaction pooling, %d server connections per shard, runtime.max_procs 1, log level warn", cfg.PoolSize),
	}
	return nil
}

// ddl creates the tables on a server; the same on all three.
var ddl = []string{
	"CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL)",
	"CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL, x integer NOT NULL, g integer NOT NULL, pad text NOT NULL)",
}

// load creates the tables and COPYs the rows straight into each server:
// all of them into the unsharded one, each row into the shard the map
// places it on. Then it checks the placement with the servers' own hash
// function, so that a disagreement between the proxy's hash and the
// server's would fail the benchmark rather than skew it.
func (sb *shardBench) load(ctx context.Context) error {
	cfg := sb.scfg
	place, err := Placer(ShardingSpec(), []string{"s0", "s1"}, shardDist)
	if err != nil {
		return err
	}
	begin := time.Now()
	fmt.Fprintf(sb.log, "benchrun: loading users (%d rows) and t (%d rows) with COPY\n", cfg.Users, cfg.Rows)
	type job struct {
		host  *cluster.Host
		shard int // -1: every row
	}
	jobs := []job{{sb.single, -1}, {sb.halves[0], 0}, {sb.halves[1], 1}}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keep := func(id int64) bool { return j.shard < 0 || place(id) == j.shard }
			errs[i] = loadHost(ctx, j.host, cfg.Users, cfg.Rows, keep)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Placement and counts, by the servers' own hash.
	for _, table := range []string{usersTable, scatterTable} {
		want := cfg.Users
		if table == scatterTable {
			want = cfg.Rows
		}
		var total int64
		for i, h := range sb.halves {
			owns := []string{"< 0", ">= 0"}[i]
			var n, bad int64
			if err := queryApp(ctx, h, fmt.Sprintf(
				"SELECT count(*), count(*) FILTER (WHERE NOT hashint8extended(id, 0) %s) FROM %s", owns, table), &n, &bad); err != nil {
				return fmt.Errorf("bench: check placement on %s: %w", h.Addr(), err)
			}
			if bad != 0 {
				return fmt.Errorf("bench: shard s%d holds %d rows of %s whose hashint8extended(id, 0) is not %s: the proxy's hash disagrees with the server's", i, bad, table, owns)
			}
			total += n
			fmt.Fprintf(sb.log, "benchrun: s%d has %d rows of %s\n", i, n, table)
		}
		if total != int64(want) {
			return fmt.Errorf("bench: the shards hold %d rows of %s, want %d", total, table, want)
		}
	}
	fmt.Fprintf(sb.log, "benchrun: loaded and checked in %v\n", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// queryApp runs a one-row query in the bench database on h, directly.
func queryApp(ctx context.Context, h *cluster.Host, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, h.DSN(User, Password, Database))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// loadHost creates the tables on h, COPYs the rows keep selects, adds
// the primary keys and vacuums, so that every server starts with compact,
// analyzed tables and all-visible pages.
func loadHost(ctx context.Context, h *cluster.Host, users, rows int, keep func(int64) bool) error {
	conn, err := pgx.Connect(ctx, h.DSN(User, Password, Database))
	if err != nil {
		return fmt.Errorf("bench: connect to %s: %w", h.Addr(), err)
	}
	defer conn.Close(context.Background())
	for _, sql := range ddl {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("bench: %s on %s: %w", sql, h.Addr(), err)
		}
	}
	copyRows := func(table string, cols []string, n int, row func(int64) []any) error {
		id := int64(0)
		src := pgx.CopyFromFunc(func() ([]any, error) {
			for id < int64(n) {
				id++
				if keep(id) {
					return row(id), nil
				}
			}
			return nil, nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			return fmt.Errorf("bench: COPY %s into %s: %w", table, h.Addr(), err)
		}
		return nil
	}
	if err := copyRows(usersTable, []string{"id", "name", "balance"}, users, UserRow); err != nil {
		return err
	}
	if err := copyRows(scatterTable, []string{"id", "v", "x", "g", "pad"}, rows, ScatterRow); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) users, t"); err != nil {
		return fmt.Errorf("bench: vacuum on %s: %w", h.Addr(), err)
	}
	return nil
}

// checkRouting makes sure, before measuring, that every target answers a
// point select with the same row and that sg2 really uses both shards.
func (sb *shardBench) checkRouting(ctx context.Context) error {
	ids := []int64{1, 2, 3, int64(sb.scfg.Users)}
	for _, tg := range ShardingTargets {
		conn, err := pgx.Connect(ctx, ProxyDSN(sb.ports[tg]))
		if err != nil {
			return fmt.Errorf("bench: connect to %s: %w", tg, err)
		}
		for _, id := range ids {
			var name string
			err := conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", id).Scan(&name)
			if err == nil && name != UserRow(id)[1] {
				err = fmt.Errorf("got name %q", name)
			}
			if err != nil {
				conn.Close(context.Background())
				return fmt.Errorf("bench: point select of id %d through %s: %w", id, tg, err)
			}
		}
		conn.Close(context.Background())
	}
	place, _ := Placer(ShardingSpec(), []string{"s0", "s1"}, shardDist)
	seen := map[int]bool{}
	for _, id := range ids {
		seen[place(id)] = true
	}
	if len(seen) < 2 {
		sb.note("the routing check's ids all live on one shard")
	}
	return nil
}

func (sb *shardBench) note(s string) {
	fmt.Fprintf(sb.log, "benchrun: NOTE: %s\n", s)
	sb.srep.Notes = append(sb.srep.Notes, s)
}

// pointMatrix runs the point selects: every protocol and client count,
// through every target back to back, Rounds times, the order of targets
// reversed every other round.
func (sb *shardBench) pointMatrix(ctx context.Context) error {
	b, cfg := sb.bench, sb.scfg
	for _, t := range ShardingTargets {
		if err := b.warmUp(ctx, t); err != nil {
			return err
		}
	}
	total := cfg.Rounds * len(cfg.Protocols) * len(cfg.Clients) * len(ShardingTargets)
	n := 0
	for round := range cfg.Rounds {
		order := slices.Clone(ShardingTargets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range cfg.Protocols {
			for _, c := range cfg.Clients {
				for _, t := range order {
					n++
					dirs := []string{sb.single.DataDir}
					if t == TargetSG2 {
						dirs = []string{sb.halves[0].DataDir, sb.halves[1].DataDir}
					}
					pgBefore, pgErr := ServerCPUTicks(dirs...)
					var stopPerf func()
					if cfg.PerfDir != "" && round == 0 && b.procs[t] != nil {
						stopPerf = sb.perfRecord(ctx, fmt.Sprintf("%s-c%d-%s", p, c, t), b.procs[t].Pid())
					}
					o, err := b.one(ctx, b.warm, p, c, t)
					if stopPerf != nil {
						stopPerf()
					}
					if err != nil {
						return err
					}
					pgMicros := -1.0
					if pgAfter, err := ServerCPUTicks(dirs...); err == nil && pgErr == nil && pgAfter >= pgBefore {
						pgMicros = MicrosPerTxn(pgAfter-pgBefore, b.hz, o.Result.Txns)
					}
					sb.srep.AddPoint(PointKey{Protocol: p, Clients: c, Target: t}, o, pgMicros)
					line := summary(o)
					if pgMicros >= 0 {
						line += fmt.Sprintf(", servers %.1f us/txn", pgMicros)
					}
					fmt.Fprintf(b.log, "benchrun: [%d/%d] round %d point-select %s c=%d %s: %s\n", n, total, round+1, p, c, t, line)
				}
			}
		}
	}
	return nil
}

// perfRecord starts `perf record -g` on pid, writing PerfDir/name.perf.data,
// and returns the function that stops it. A perf that cannot start is
// noted, and the run goes on unprofiled.
func (sb *shardBench) perfRecord(ctx context.Context, name string, pid int) func() {
	out := filepath.Join(sb.scfg.PerfDir, name+".perf.data")
	logf, err := os.Create(filepath.Join(sb.scfg.PerfDir, name+".perf.log"))
	if err != nil {
		sb.note(fmt.Sprintf("perf for %s: %v", name, err))
		return nil
	}
	cmd := exec.CommandContext(ctx, "perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		sb.note(fmt.Sprintf("perf for %s did not start (install linux-perf): %v", name, err))
		return nil
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		logf.Close()
		fmt.Fprintf(sb.log, "benchrun: profile in %s (perf report -i %s)\n", out, out)
	}
}

// scatterTimeout bounds one scatter query.
const scatterTimeout = 2 * time.Minute

// scatter times the scatter queries through every target: one untimed run
// each (whose answers are compared), then ScatterRuns timed runs, the
// targets taking turns so that drift hits them alike.
func (sb *shardBench) scatter(ctx context.Context) error {
	conns := map[string]*pgx.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for _, tg := range ShardingTargets {
		c, err := pgx.Connect(ctx, ProxyDSN(sb.ports[tg]))
		if err != nil {
			return fmt.Errorf("bench: connect to %s: %w", tg, err)
		}
		conns[tg] = c
	}
	total := len(ScatterQueries) * len(ScatterModes)
	n := 0
	for _, q := range ScatterQueries {
		for _, mode := range ScatterModes {
			n++
			res, err := sb.scatterOne(ctx, conns, q, mode)
			if err != nil {
				return err
			}
			sb.srep.Scatter = append(sb.srep.Scatter, res)
			line := res.Err
			if line == "" {
				var parts []string
				for _, tg := range ShardingTargets {
					parts = append(parts, fmt.Sprintf("%s %s ms", tg, fmtDur(Median(res.Times[tg]))))
				}
				line = strings.Join(parts, ", ")
				if res.Mismatch != "" {
					line += " [answers differ: " + res.Mismatch + "]"
				}
			}
			fmt.Fprintf(sb.log, "benchrun: [%d/%d] scatter %s %s: %s\n", n, total, q.Name, mode, line)
		}
	}
	return nil
}

func (sb *shardBench) scatterOne(ctx context.Context, conns map[string]*pgx.Conn, q ScatterQuery, mode string) (*ScatterResult, error) {
	res := &ScatterResult{Query: q, Mode: mode, Times: map[string][]time.Duration{}, CPUMillis: map[string]float64{}}
	answers := map[string][]string{}
	for _, tg := range ShardingTargets {
		ans, _, err := runScatter(ctx, conns[tg], q.SQL, mode, true)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Err = fmt.Sprintf("%s: %v", tg, err)
			return res, nil
		}
		if !q.Ordered {
			slices.Sort(ans)
		}
		answers[tg] = ans
	}
	res.Rows = len(answers[TargetDirect])
	for _, tg := range []string{TargetSG1, TargetSG2} {
		if d := diffAnswers(answers[TargetDirect], answers[tg]); d != "" {
			res.Mismatch = strings.TrimPrefix(res.Mismatch+"; "+tg+": "+d, "; ")
		}
	}
	before := map[string]uint64{}
	for _, tg := range []string{TargetSG1, TargetSG2} {
		if v, err := ProcCPUTicks(sb.procs[tg].Pid()); err == nil {
			before[tg] = v
		}
	}
	for i := range sb.scfg.ScatterRuns {
		// Rotate the order, so that no target always runs first.
		for k := range ShardingTargets {
			tg := ShardingTargets[(i+k)%len(ShardingTargets)]
			_, d, err := runScatter(ctx, conns[tg], q.SQL, mode, false)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.Err = fmt.Sprintf("%s: %v", tg, err)
				return res, nil
			}
			res.Times[tg] = append(res.Times[tg], d)
		}
	}
	for tg, v0 := range before {
		if v1, err := ProcCPUTicks(sb.procs[tg].Pid()); err == nil && v1 >= v0 {
			res.CPUMillis[tg] = float64(v1-v0) * 1e3 / float64(sb.hz) / float64(sb.scfg.ScatterRuns)
		}
	}
	return res, nil
}

// runScatter runs sql in mode and reads every row, returning the time
// taken and, if keep, the rows as comparable strings.
func runScatter(ctx context.Context, conn *pgx.Conn, sql, mode string, keep bool) ([]string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, scatterTimeout)
	defer cancel()
	execMode := pgx.QueryExecModeCacheStatement
	if mode == "simple" {
		execMode = pgx.QueryExecModeSimpleProtocol
	}
	start := time.Now()
	rows, err := conn.Query(ctx, sql, execMode)
	if err != nil {
		return nil, 0, err
	}
	var out []string
	for rows.Next() {
		if keep {
			out = append(out, RowKey(rows.RawValues()))
		}
	}
	rows.Close()
	d := time.Since(start)
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return out, d, nil
}

// RowKey renders a row's raw column values (text or binary, as the server
// sent them) as one comparable string; NULL differs from every value.
func RowKey(vals [][]byte) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('|')
		}
		if v == nil {
			b.WriteString("NULL")
		} else {
			fmt.Fprintf(&b, "%q", v)
		}
	}
	return b.String()
}

// diffAnswers describes the first difference between two answers, or "".
func diffAnswers(want, got []string) string {
	for i := 0; i < len(want) && i < len(got); i++ {
		if want[i] != got[i] {
			return fmt.Sprintf("row %d is %s, direct has %s", i+1, got[i], want[i])
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("%d rows, direct has %d", len(got), len(want))
	}
	return ""
}
