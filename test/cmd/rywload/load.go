package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/test/cluster"
)

// The workload's statements. Each runs on its own, so in transaction mode
// each is a transaction of its own too.
const (
	insertSQL  = "INSERT INTO ryw_load (client, seq) VALUES ($1, $2)"
	ownReadSQL = "SELECT count(*), pg_is_in_recovery() FROM ryw_load WHERE client = $1 AND seq = $2"
	readSQL    = "SELECT pg_is_in_recovery(), count(*) FROM ryw_load WHERE client = $1"
)

// stmtTimeout turns a statement that hangs into an error the report
// shows, rather than a run that never ends. No healthy statement of this
// workload comes near it: the pool checkout gives up after 5s.
const stmtTimeout = 15 * time.Second

// mode is one way of routing the workload.
type mode struct {
	name    string
	routing proxy.Routing
	// chaos pauses and resumes replay at random during the run; pauseAll
	// instead keeps replay paused on every replica throughout.
	chaos, pauseAll bool
}

var (
	modeRYW = mode{
		name:    "ryw=lsn replica_reads=on",
		routing: proxy.Routing{RYW: proxy.RYWLSN, RYWWait: rywWait, RYWWindow: rywWindow},
		chaos:   true,
	}
	modeAllPrimary = mode{
		name:    "all reads on primary",
		routing: proxy.Routing{ReplicaReads: proxy.ReplicaReadsOff, RYWWait: rywWait, RYWWindow: rywWindow},
		chaos:   true,
	}
	// modeNoRYW shows that the stale-read count can be non-zero: without
	// the guarantee, and with no replica replaying, a client's read of its
	// own row goes to a replica that cannot have it.
	modeNoRYW = mode{
		name:     "ryw=off, replay paused",
		routing:  proxy.Routing{RYW: proxy.RYWOff, RYWWait: rywWait, RYWWindow: rywWindow},
		pauseAll: true,
	}
)

// config is what one invocation measures.
type config struct {
	duration   time.Duration
	clients    int
	writeShare float64
	// proofDuration is the length of the ryw=off phase; 0 skips it.
	proofDuration time.Duration
	seed          uint64
	// syncCommit records that the cluster runs with synchronous_commit=on
	// (see clusterOptions), for the report.
	syncCommit bool
	// progress receives a line per phase; proxyLog receives shardgate's
	// warnings.
	progress io.Writer
	proxyLog *cappedLog
}

// phaseResult is one mode's run.
type phaseResult struct {
	mode    mode
	clients int
	elapsed time.Duration
	counts
	chaos chaosStats
}

// tps is statements per second.
func (r *phaseResult) tps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.statements()) / r.elapsed.Seconds()
}

// report is everything measure found.
type report struct {
	cfg      config
	replicas int
	// phases are the measured modes in run order; proof is the ryw=off
	// phase, nil when skipped.
	phases []*phaseResult
	proof  *phaseResult
	// proxyWarnings counts the lines shardgate logged at warning level
	// or above, over all phases.
	proxyWarnings int
}

// measure runs the workload on c in each mode, with a fresh proxy and an
// empty table each time: ryw=lsn first, then all reads on the primary,
// then, if asked, the ryw=off check.
func measure(ctx context.Context, c *cluster.Cluster, cfg config) (*report, error) {
	if cfg.progress == nil {
		cfg.progress = io.Discard
	}
	if cfg.proxyLog == nil {
		cfg.proxyLog = &cappedLog{w: io.Discard}
	}
	sh := c.Shards[0]
	admin, err := pgx.Connect(ctx, sh.Primary.DSN("postgres", "", appDB))
	if err != nil {
		return nil, fmt.Errorf("connect to the primary: %w", err)
	}
	defer admin.Close(context.Background())
	for _, q := range []string{
		"DROP TABLE IF EXISTS ryw_load",
		"CREATE TABLE ryw_load (client int NOT NULL, seq bigint NOT NULL)",
		"CREATE INDEX ryw_load_client_seq ON ryw_load (client, seq)",
		"GRANT SELECT, INSERT ON ryw_load TO " + appUser,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	rep := &report{cfg: cfg, replicas: len(sh.Replicas)}
	log := slog.New(slog.NewTextHandler(cfg.proxyLog, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rng := rand.New(rand.NewPCG(cfg.seed, 0))
	defer func() { rep.proxyWarnings = cfg.proxyLog.count() }()
	for _, m := range []mode{modeRYW, modeAllPrimary} {
		res, err := runPhase(ctx, c, admin, m, cfg.duration, cfg, rng, log)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", m.name, err)
		}
		rep.phases = append(rep.phases, res)
	}
	if cfg.proofDuration > 0 {
		res, err := runPhase(ctx, c, admin, modeNoRYW, cfg.proofDuration, cfg, rng, log)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", modeNoRYW.name, err)
		}
		rep.proof = res
	}
	return rep, nil
}

// runPhase runs the workload for d through a new proxy routing as m says.
func runPhase(ctx context.Context, c *cluster.Cluster, admin *pgx.Conn, m mode, d time.Duration,
	cfg config, rng *rand.Rand, log *slog.Logger) (*phaseResult, error) {
	sh := c.Shards[0]
	if err := resetTable(ctx, admin, sh.Replicas); err != nil {
		return nil, err
	}
	p, err := startProxy(ctx, c, m.routing, log)
	if err != nil {
		return nil, err
	}
	defer p.close()
	// Connect everyone before the clock starts, so that the run measures
	// statements rather than logins.
	workers := make([]*worker, cfg.clients)
	defer func() {
		for _, w := range workers {
			if w != nil && w.conn != nil {
				w.conn.Close(context.Background())
			}
		}
	}()
	for i := range workers {
		w := &worker{id: i, dsn: p.dsn(), writeShare: cfg.writeShare,
			rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))}
		if w.conn, err = pgx.Connect(ctx, w.dsn); err != nil {
			return nil, fmt.Errorf("client %d: connect through shardgate: %w", i, err)
		}
		workers[i] = w
	}
	if m.pauseAll {
		if err := pauseAll(ctx, sh.Replicas); err != nil {
			return nil, fmt.Errorf("pause replay: %w", err)
		}
		defer resumeAll(sh.Replicas, nil)
	}
	fmt.Fprintf(cfg.progress, "rywload: %s: %d clients for %v...\n", m.name, cfg.clients, d)

	res := &phaseResult{mode: m, clients: cfg.clients}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	chaosDone := make(chan chaosStats, 1)
	if m.chaos {
		chaosRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		go func() { chaosDone <- replayChaos(chaosCtx, sh.Replicas, chaosRng) }()
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx, deadline) })
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if m.chaos {
		stopChaos()
		res.chaos = <-chaosDone
	}
	for _, w := range workers {
		res.merge(&w.c)
	}
	fmt.Fprintf(cfg.progress, "rywload: %s: %.1f tps, %d stale, %d errors\n",
		m.name, res.tps(), res.stale, res.errorTotal())
	return res, ctx.Err()
}

// resetTable empties the table, so that every phase starts from the same
// state, and waits until the replicas have replayed that.
func resetTable(ctx context.Context, admin *pgx.Conn, replicas []*cluster.Host) error {
	for _, q := range []string{"TRUNCATE ryw_load", "ANALYZE ryw_load"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var lsn string
	if err := admin.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	for _, h := range replicas {
		if err := h.WaitReplayed(ctx, lsn); err != nil {
			return err
		}
	}
	return nil
}

// worker is one client of the workload, with its own connection.
type worker struct {
	id         int
	dsn        string
	conn       *pgx.Conn
	rng        *rand.Rand
	writeShare float64
	seq        int64
	c          counts
}

func (w *worker) run(ctx context.Context, deadline time.Time) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if w.conn.IsClosed() && !w.reconnect(ctx, deadline) {
			return
		}
		if w.rng.Float64() < w.writeShare {
			w.writeThenRead(ctx)
		} else {
			w.plainRead(ctx)
		}
	}
}

// reconnect replaces a connection the proxy or a timeout closed, retrying
// until the deadline; reports whether it got one.
func (w *worker) reconnect(ctx context.Context, deadline time.Time) bool {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, stmtTimeout)
		conn, err := pgx.Connect(cctx, w.dsn)
		cancel()
		if err == nil {
			w.conn = conn
			w.c.reconnects++
			return true
		}
		w.c.noteError("connect", err)
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// writeThenRead inserts a new row and at once reads it back: a count of 0
// is a stale read of the client's own write.
func (w *worker) writeThenRead(ctx context.Context) {
	w.seq++
	t0 := time.Now()
	if err := w.exec(ctx, insertSQL, w.id, w.seq); err != nil {
		// An insert that failed may or may not have committed; either
		// way there is nothing the read must find.
		w.c.noteError("insert", err)
		return
	}
	t1 := time.Now()
	w.c.writeLat.add(t1.Sub(t0))
	w.c.writes++
	var n int64
	var onReplica bool
	if err := w.queryRow(ctx, ownReadSQL, []any{w.id, w.seq}, &n, &onReplica); err != nil {
		w.c.noteError("own read", err)
		return
	}
	took := time.Since(t1)
	w.c.ownLat.add(took)
	w.c.ownReads++
	if onReplica {
		w.c.ownOnReplica++
	}
	if n == 0 {
		w.c.stale++
		if onReplica {
			w.c.staleOnReplica++
		}
		if len(w.c.staleSamples) < maxSamples {
			where := "the primary"
			if onReplica {
				where = "a replica"
			}
			w.c.staleSamples = append(w.c.staleSamples,
				fmt.Sprintf("client %d seq %d: count 0 on %s, read %v after the insert returned", w.id, w.seq, where, took.Round(time.Microsecond)))
		}
	}
}

func (w *worker) plainRead(ctx context.Context) {
	t0 := time.Now()
	var onReplica bool
	var n int64
	if err := w.queryRow(ctx, readSQL, []any{w.id}, &onReplica, &n); err != nil {
		w.c.noteError("plain read", err)
		return
	}
	w.c.plainLat.add(time.Since(t0))
	w.c.plainReads++
	if onReplica {
		w.c.plainOnReplica++
	}
}

func (w *worker) exec(ctx context.Context, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	_, err := w.conn.Exec(ctx, sql, args...)
	return explainTimeout(err)
}

func (w *worker) queryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	return explainTimeout(w.conn.QueryRow(ctx, sql, args...).Scan(dest...))
}

// explainTimeout says that a statement ran out of stmtTimeout, which
// pgx reports only as a cancelled context or a closed connection.
func explainTimeout(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v: %w", stmtTimeout, err)
	}
	return err
}
