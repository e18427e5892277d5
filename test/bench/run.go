package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/test/cluster"
)

// Config describes one benchmark run.
type Config struct {
	// Shards and Replicas shape the cluster. Every primary gets the pgbench
	// tables; direct and pgbouncer runs use shard 0's primary.
	Shards, Replicas int
	// Scale is pgbench -i -s.
	Scale int
	// PoolSize is the server connection pool of both proxies.
	PoolSize int
	// Seconds is each run's pgbench -T.
	Seconds int
	// Threads is pgbench -j (capped at the client count).
	Threads   int
	Workloads []Workload
	Protocols []string
	Clients   []int
	// Targets to measure, from TargetDirect, TargetShardgate and
	// TargetPgBouncer; pgbouncer is dropped, with a note, when it cannot
	// be had.
	Targets []string
	// ProxyBin is the shardgate binary; empty builds one from the module.
	ProxyBin string
	// RawDir, if set, receives every pgbench run's command and output.
	RawDir string
	// WarmupSeconds of select-only load per target fill the proxies' pools
	// and the caches before the first measured run; 0 skips it.
	WarmupSeconds int
	// Log receives progress lines.
	Log io.Writer
}

// bench holds what Run has started.
type bench struct {
	cfg     Config
	log     io.Writer
	hz      int
	pgbench string
	ports   map[string]int
	procs   map[string]*Proc
	cl      *cluster.Cluster
	rep     *Report
	// start (re)starts a proxy target, should it die during the matrix.
	start map[string]func(context.Context) (*Proc, int, error)
	// warm is the warm-up workload; the zero value means SelectOnly.
	warm Workload
}

// Run sets everything up, runs the matrix and tears everything down again,
// also when ctx is cancelled (Ctrl-C). It returns the report so far even
// with an error, so that an interrupted run still shows what it measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	b := &bench{cfg: cfg, log: cfg.Log, ports: map[string]int{}, procs: map[string]*Proc{},
		start: map[string]func(context.Context) (*Proc, int, error){}}
	if b.log == nil {
		b.log = io.Discard
	}
	b.rep = &Report{Workloads: cfg.Workloads, Protocols: cfg.Protocols, Clients: cfg.Clients}
	defer func() {
		for _, name := range []string{TargetShardgate, TargetPgBouncer} {
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
		return b.rep, err
	}
	defer os.RemoveAll(work)
	// pgbouncer runs as the postgres user and must reach its own subdirectory.
	if err := os.Chmod(work, 0o755); err != nil {
		return b.rep, err
	}
	if cfg.RawDir != "" {
		if err := os.MkdirAll(cfg.RawDir, 0o755); err != nil {
			return b.rep, err
		}
	}
	if err := b.setup(ctx, work); err != nil {
		return b.rep, err
	}
	return b.rep, b.matrix(ctx)
}

func (b *bench) setup(ctx context.Context, work string) error {
	cfg := b.cfg
	b.hz = ClockTicks(ctx)
	binDir, err := cluster.FindBinDir("")
	if err != nil {
		return err
	}
	if b.pgbench, err = FindPgbench(binDir); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, t := range cfg.Targets {
		want[t] = true
	}

	var pgbBin, pgbVersion string
	var pgbPrepared bool
	if want[TargetPgBouncer] {
		var note string
		if pgbBin, note = EnsurePgBouncer(ctx, b.log); note != "" {
			b.note(note)
		}
		if pgbBin != "" {
			v, s, err := PgBouncerVersion(ctx, pgbBin)
			if err != nil {
				b.note(fmt.Sprintf("%v; pgbouncer left out", err))
				pgbBin = ""
			}
			pgbVersion, pgbPrepared = s, SupportsPreparedStatements(v)
			if err == nil && !pgbPrepared {
				b.note(fmt.Sprintf("pgbouncer %s predates max_prepared_statements (1.21), so in transaction mode "+
					"`-M prepared` runs through it are expected to fail: a client's named statements collide with "+
					"other clients' on the server connections it shares, or are missing from the next one it gets", pgbVersion))
			}
		}
	}

	var proxyBin string
	switch {
	case !want[TargetShardgate]:
	case cfg.ProxyBin != "":
		if proxyBin, err = CopyShardgate(cfg.ProxyBin, work, proxyBinName); err != nil {
			return err
		}
	default:
		fmt.Fprintln(b.log, "benchrun: building shardgate")
		if proxyBin, err = BuildShardgate(ctx, work, proxyBinName); err != nil {
			return err
		}
	}

	fmt.Fprintf(b.log, "benchrun: starting %d shard(s) x %d replica(s)\n", cfg.Shards, cfg.Replicas)
	maxClients := 0
	for _, c := range cfg.Clients {
		maxClients = max(maxClients, c)
	}
	b.cl, err = cluster.Start(ctx, cluster.Options{
		Shards:    cfg.Shards,
		Replicas:  cfg.Replicas,
		Users:     []cluster.User{{Name: User, Password: Password}},
		Databases: []cluster.Database{{Name: Database, Owner: User}},
		ExtraConf: []string{
			// Both proxies keep their pools open while direct runs
			// connect maxClients more backends.
			fmt.Sprintf("max_connections = %d", 2*cfg.PoolSize+maxClients+20),
			// Scale 10 is ~160 MB: keep it in shared buffers so every
			// target reads the same warm data.
			"shared_buffers = 256MB",
		},
	})
	if err != nil {
		return err
	}
	primary := b.cl.Shards[0].Primary
	var addrs []string
	for _, p := range b.cl.Primaries() {
		addrs = append(addrs, p.Addr())
		fmt.Fprintf(b.log, "benchrun: pgbench -i -s %d on %s\n", cfg.Scale, p.Addr())
		if err := b.initTables(ctx, p); err != nil {
			return err
		}
	}
	if want[TargetDirect] {
		b.ports[TargetDirect] = primary.Port
		b.rep.Targets = append(b.rep.Targets, TargetDirect)
	}
	if want[TargetShardgate] {
		b.start[TargetShardgate] = func(ctx context.Context) (*Proc, int, error) {
			return startShardgate(ctx, proxyBin, work, cfg.PoolSize, addrs)
		}
		p, port, err := b.start[TargetShardgate](ctx)
		if err != nil {
			return err
		}
		b.procs[TargetShardgate], b.ports[TargetShardgate] = p, port
		b.rep.Targets = append(b.rep.Targets, TargetShardgate)
		fmt.Fprintf(b.log, "benchrun: shardgate (pid %d) on 127.0.0.1:%d\n", p.Pid(), port)
	}
	if pgbBin != "" {
		maxPrep := 0
		if pgbPrepared {
			maxPrep = 200
		}
		b.start[TargetPgBouncer] = func(ctx context.Context) (*Proc, int, error) {
			return startPgBouncer(ctx, pgbBin, work, cfg.PoolSize, maxPrep, "127.0.0.1", primary.Port)
		}
		p, port, err := b.start[TargetPgBouncer](ctx)
		if err != nil {
			// A broken pgbouncer setup should not cost the shardgate figures.
			b.note(fmt.Sprintf("pgbouncer %s did not start, so its columns are left out: %v", pgbVersion, err))
		} else {
			b.procs[TargetPgBouncer], b.ports[TargetPgBouncer] = p, port
			b.rep.Targets = append(b.rep.Targets, TargetPgBouncer)
			fmt.Fprintf(b.log, "benchrun: pgbouncer %s (pid %d) on 127.0.0.1:%d\n", pgbVersion, p.Pid(), port)
		}
	}
	b.meta(ctx, primary, pgbVersion)
	return nil
}

// initTables runs pgbench -i on a primary, directly.
func (b *bench) initTables(ctx context.Context, h *cluster.Host) error {
	cmd := exec.CommandContext(ctx, b.pgbench, "-i", "-q", "-s", strconv.Itoa(b.cfg.Scale),
		"-h", "127.0.0.1", "-p", strconv.Itoa(h.Port), "-U", User, Database)
	cmd.Env = pgbenchEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: pgbench -i on %s: %w\n%s", h.Addr(), err, out)
	}
	return nil
}

func pgbenchEnv() []string {
	// TLS and GSS negotiation are turned off so that no target pays for a
	// refused handshake the others skip.
	return CleanEnv("PGPASSWORD="+Password, "PGSSLMODE=disable", "PGGSSENCMODE=disable")
}

func (b *bench) note(s string) {
	fmt.Fprintf(b.log, "benchrun: NOTE: %s\n", s)
	b.rep.Notes = append(b.rep.Notes, s)
}

// meta records the setup above the tables, so that pasted results carry
// their context.
func (b *bench) meta(ctx context.Context, primary *cluster.Host, pgbVersion string) {
	cfg := b.cfg
	pgVersion, _ := primary.QueryString(ctx, "SHOW server_version")
	pgbenchVersion, _ := exec.CommandContext(ctx, b.pgbench, "--version").Output()
	m := []string{
		"date: " + time.Now().Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %d CPUs (%s/%s); pgbench, PostgreSQL and the proxies share them", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("cluster: %d shard(s) x %d replica(s), PostgreSQL %s, pgbench -i -s %d", cfg.Shards, cfg.Replicas, pgVersion, cfg.Scale),
		fmt.Sprintf("pgbench: %s, -n -T %d -j %d (at most one thread per client)", strings.TrimSpace(string(pgbenchVersion)), cfg.Seconds, cfg.Threads),
		fmt.Sprintf("proxies: transaction pooling, %d server connections each", cfg.PoolSize),
	}
	if pgbVersion != "" {
		m = append(m, "pgbouncer: "+pgbVersion)
	}
	b.rep.Meta = m
}

// matrix runs every combination. The targets of one combination run back
// to back, so that slow drifts of the machine hit them alike.
func (b *bench) matrix(ctx context.Context) error {
	for _, t := range b.rep.Targets {
		if err := b.warmUp(ctx, t); err != nil {
			return err
		}
	}
	total := len(b.cfg.Workloads) * len(b.cfg.Protocols) * len(b.cfg.Clients) * len(b.rep.Targets)
	n := 0
	for _, w := range b.cfg.Workloads {
		for _, p := range b.cfg.Protocols {
			for _, c := range b.cfg.Clients {
				for _, t := range b.rep.Targets {
					n++
					k := Key{Workload: w.Name, Protocol: p, Clients: c, Target: t}
					o, err := b.one(ctx, w, p, c, t)
					if err != nil {
						return err
					}
					b.rep.Set(k, o)
					fmt.Fprintf(b.log, "benchrun: [%d/%d] %s: %s\n", n, total, k, summary(o))
				}
			}
		}
	}
	return nil
}

// warmUp runs select-only load (or b.warm) with the most clients through
// a target, unmeasured, so that the proxies' pools are full and the caches warm
// before a measured run. Only a cancelled ctx is an error.
func (b *bench) warmUp(ctx context.Context, target string) error {
	if b.cfg.WarmupSeconds <= 0 {
		return nil
	}
	maxClients := 0
	for _, c := range b.cfg.Clients {
		maxClients = max(maxClients, c)
	}
	fmt.Fprintf(b.log, "benchrun: warm-up %s (%ds, %d clients)\n", target, b.cfg.WarmupSeconds, maxClients)
	w := b.warm
	if w.Name == "" {
		w = SelectOnly
	}
	spec := b.spec(w, "simple", maxClients, target)
	spec.Seconds = b.cfg.WarmupSeconds
	if _, stderr, err := b.pgbenchRun(ctx, spec); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(b.log, "benchrun: warm-up of %s failed: %v %s\n", target, err, FirstErrorLine("", stderr))
	}
	return nil
}

func summary(o *Outcome) string {
	if o.failed() {
		return "failed: " + o.Err
	}
	s := fmt.Sprintf("%.0f tps, %s ms", o.Result.TPS, fmtMs(o.Result.LatencyMs))
	if o.CPUMicros >= 0 {
		s += fmt.Sprintf(", proxy %.1f us/txn", o.CPUMicros)
	}
	if !o.Result.Clean() || o.Warn != "" {
		s += " [" + describeProblems(o) + "]"
	}
	return s
}

func (b *bench) spec(w Workload, protocol string, clients int, target string) RunSpec {
	return RunSpec{Workload: w, Protocol: protocol, Clients: clients, Threads: b.cfg.Threads,
		Seconds: b.cfg.Seconds, Host: "127.0.0.1", Port: b.ports[target], User: User, DB: Database}
}

// one runs a single combination. Only a cancelled ctx is an error; a
// failing pgbench is an Outcome.
func (b *bench) one(ctx context.Context, w Workload, protocol string, clients int, target string) (*Outcome, error) {
	if w.Name == TPCB.Name {
		if err := b.resetTPCB(ctx); err != nil {
			return nil, err
		}
	}
	var restarted string
	if pr := b.procs[target]; pr != nil && pr.exited() {
		why := pr.exitStatus()
		if why == "exit status 0" && target == TargetShardgate {
			// shardgate exits 0 on SIGTERM/SIGINT, which benchrun only
			// sends when stopping: someone else signalled it.
			why += ", i.e. stopped by a signal from outside benchrun"
		}
		restarted = fmt.Sprintf("%s had exited (%s) before this run, log ending %q; restarted and warmed it up",
			target, why, pr.LogTail(3))
		fmt.Fprintf(b.log, "benchrun: %s\n", restarted)
		p, port, err := b.start[target](ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return &Outcome{Err: fmt.Sprintf("%s had exited (%s) and did not restart: %v", target, pr.exitStatus(), err), CPUMicros: -1}, nil
		}
		b.procs[target], b.ports[target] = p, port
		if err := b.warmUp(ctx, target); err != nil {
			return nil, err
		}
	}
	spec := b.spec(w, protocol, clients, target)
	pr := b.procs[target]
	var before uint64
	var cpuErr error
	if pr != nil {
		before, cpuErr = ProcCPUTicks(pr.Pid())
	}
	stdout, stderr, runErr := b.pgbenchRun(ctx, spec)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	o := &Outcome{CPUMicros: -1}
	var after uint64
	if pr != nil && cpuErr == nil {
		after, cpuErr = ProcCPUTicks(pr.Pid())
	}
	res, perr := ParseOutput(stdout, stderr)
	o.Result = res
	switch {
	case runErr != nil:
		o.Err = FirstErrorLine(stdout, stderr)
		if o.Err == "" {
			o.Err = runErr.Error()
		}
	case perr != nil:
		o.Err = perr.Error()
	case res.Aborted:
		o.Err = res.FirstError
	}
	if o.Err != "" && res.AbortedClients > 0 {
		o.Err += fmt.Sprintf(" (%d of %d clients aborted)", res.AbortedClients, clients)
	}
	if pr != nil && cpuErr == nil && after >= before {
		o.CPUMicros = MicrosPerTxn(after-before, b.hz, res.Txns)
	}
	if pr != nil && pr.exited() {
		// Put first, before whatever pgbench reported: pgbench's "backend
		// died" is the symptom, the proxy's exit the cause.
		died := fmt.Sprintf("%s exited during the run (%s); its log ends with: %q", target, pr.exitStatus(), pr.LogTail(5))
		if o.Err == "" {
			o.Err = died
		} else {
			o.Err = died + "; pgbench: " + o.Err
		}
	}
	if restarted != "" {
		o.Warn = restarted
	}
	if msg, err := b.lingering(ctx); err != nil {
		return nil, err
	} else if msg != "" {
		o.Warn = strings.TrimPrefix(o.Warn+"; "+msg, "; ")
	}
	b.saveRaw(spec, target, stdout, stderr, runErr)
	return o, nil
}

// lingerWait is how long a proxy gets, after pgbench has disconnected, to
// roll back the transactions its clients were in.
const lingerWait = 2 * time.Second

// lingering looks for server sessions left idle inside a transaction once
// pgbench is gone. pgbench -T ends with clients mid-transaction; a pooler
// that hands such a connection back without a rollback keeps its row locks,
// which would stall the next runs (of every target) and be blamed on them.
// Sessions still there after lingerWait are reported and terminated, so
// the report names the culprit run and later runs start clean.
func (b *bench) lingering(ctx context.Context) (string, error) {
	const q = `SELECT count(*) || ' ' || coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity
WHERE datname = $1 AND state LIKE 'idle in transaction%' AND backend_type = 'client backend'`
	deadline := time.Now().Add(lingerWait)
	var found []string
	for {
		found = found[:0]
		for _, h := range b.cl.Primaries() {
			v, err := h.QueryString(ctx, q, Database)
			if err != nil {
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				return "", fmt.Errorf("bench: look for idle transactions on %s: %w", h.Addr(), err)
			}
			if n, pids, _ := strings.Cut(v, " "); n != "0" {
				found = append(found, fmt.Sprintf("%s on %s (pids %s)", n, h.Addr(), pids))
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	for _, h := range b.cl.Primaries() {
		_ = h.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = $1 AND state LIKE 'idle in transaction%' AND backend_type = 'client backend'`, Database)
	}
	return fmt.Sprintf("server sessions left idle in transaction %v after pgbench disconnected: %s; terminated so that later runs are not blocked",
		lingerWait, strings.Join(found, ", ")), nil
}

// pgbenchRun runs pgbench with a safety timeout, in case a broken target
// hangs a connection beyond -T.
func (b *bench) pgbenchRun(ctx context.Context, spec RunSpec) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(2*spec.Seconds+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.pgbench, spec.Args()...)
	cmd.Env = pgbenchEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("pgbench did not finish within %v and was killed", time.Duration(2*spec.Seconds+60)*time.Second)
		stderr.WriteString("\n" + err.Error() + "\n")
	}
	return stdout.String(), stderr.String(), err
}

// resetTPCB does what pgbench's own pre-run vacuum (skipped with -n) does,
// directly on every primary, so that each TPC-B run starts from tables as
// fresh as the previous one had.
func (b *bench) resetTPCB(ctx context.Context) error {
	for _, h := range b.cl.Primaries() {
		conn, err := pgx.Connect(ctx, h.DSN("postgres", "", Database))
		if err != nil {
			return fmt.Errorf("bench: connect to %s for vacuum: %w", h.Addr(), err)
		}
		for _, sql := range []string{"VACUUM pgbench_branches", "VACUUM pgbench_tellers", "TRUNCATE pgbench_history"} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				conn.Close(context.Background())
				return fmt.Errorf("bench: %s on %s: %w", sql, h.Addr(), err)
			}
		}
		conn.Close(context.Background())
	}
	return nil
}

// saveRaw keeps a run's full output under RawDir for later inspection and
// for test fixtures.
func (b *bench) saveRaw(spec RunSpec, target, stdout, stderr string, runErr error) {
	if b.cfg.RawDir == "" {
		return
	}
	name := fmt.Sprintf("%s-%s-c%d-%s.txt", spec.Workload.Name, spec.Protocol, spec.Clients, target)
	status := "exit 0"
	if runErr != nil {
		status = runErr.Error()
	}
	content := fmt.Sprintf("$ pgbench %s\n# %s\n--- stdout\n%s--- stderr\n%s", strings.Join(spec.Args(), " "), status, stdout, stderr)
	if err := os.WriteFile(filepath.Join(b.cfg.RawDir, name), []byte(content), 0o644); err != nil {
		fmt.Fprintf(b.log, "benchrun: save raw output: %v\n", err)
	}
}
