package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
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
	// dumpDir receives goroutine dumps taken when a statement or the
	// proxy's shutdown hangs; empty means the system's temporary
	// directory.
	dumpDir string
}

// phaseResult is one mode's run.
type phaseResult struct {
	mode mode
	// window is the run's nominal length; elapsed lasts until the last
	// client finished, later if a statement hung.
	window, elapsed time.Duration
	counts
	chaos chaosStats
	// timeline is the throughput of each timelineStep of the window, to
	// tell a steady rate from one that decays as the table grows.
	timeline []float64
	// closeHung: the proxy's Server.Close did not return within
	// closeTimeout after every client had left.
	closeHung bool
}

// tps is statements per second within the window, so that a statement
// hanging past its end does not stretch the run it is measured over.
func (r *phaseResult) tps() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.inWindow) / r.window.Seconds()
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
	// dumps are the goroutine dumps written, if any.
	dumps []string
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
	if cfg.dumpDir == "" {
		cfg.dumpDir = os.TempDir()
	}
	dg := &diag{w: cfg.progress, dir: cfg.dumpDir}
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
	defer func() {
		cfg.proxyLog.mute()
		rep.proxyWarnings, rep.dumps = cfg.proxyLog.count(), dg.dumps
	}()
	for _, m := range []mode{modeRYW, modeAllPrimary} {
		res, err := runPhase(ctx, c, admin, m, cfg.duration, cfg, rng, log, dg)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", m.name, err)
		}
		rep.phases = append(rep.phases, res)
	}
	if cfg.proofDuration > 0 {
		res, err := runPhase(ctx, c, admin, modeNoRYW, cfg.proofDuration, cfg, rng, log, dg)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", modeNoRYW.name, err)
		}
		rep.proof = res
	}
	return rep, nil
}

// runPhase runs the workload for d through a new proxy routing as m says.
func runPhase(ctx context.Context, c *cluster.Cluster, admin *pgx.Conn, m mode, d time.Duration,
	cfg config, rng *rand.Rand, log *slog.Logger, dg *diag) (*phaseResult, error) {
	sh := c.Shards[0]
	if err := resetTable(ctx, admin, sh.Replicas); err != nil {
		return nil, err
	}
	p, err := startProxy(ctx, c, m.routing, log)
	if err != nil {
		return nil, err
	}
	res := &phaseResult{mode: m}
	defer func() { res.closeHung = !closeBounded(p, dg) }()
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
		w := &worker{id: i, dsn: p.dsn(), writeShare: cfg.writeShare, diag: dg,
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

	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	chaosDone := make(chan chaosStats, 1)
	if m.chaos {
		chaosRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		go func() { chaosDone <- replayChaos(chaosCtx, sh.Replicas, chaosRng) }()
	}
	var finished atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	timeline := make(chan []float64, 1)
	go func() { timeline <- sampleRate(ctx, &finished, start, deadline) }()
	var wg sync.WaitGroup
	for _, w := range workers {
		w.total = &finished
		wg.Go(func() { w.run(ctx, deadline) })
	}
	wg.Wait()
	res.window, res.elapsed = d, time.Since(start)
	res.timeline = <-timeline
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
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
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
	diag       *diag
	deadline   time.Time
	// total counts the statements of every client, for the timeline.
	total *atomic.Int64
}

// finished counts a statement that succeeded at t towards throughput if
// it did so within the window.
func (w *worker) finished(t time.Time) {
	if !t.After(w.deadline) {
		w.c.inWindow++
		w.total.Add(1)
	}
}

// timelineStep is the resolution of phaseResult.timeline.
const timelineStep = 10 * time.Second

// sampleRate returns the rate at which n grew in each whole timelineStep
// from start until deadline, or until ctx ends.
func sampleRate(ctx context.Context, n *atomic.Int64, start, deadline time.Time) []float64 {
	var out []float64
	prev := int64(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for at := start.Add(timelineStep); !at.After(deadline); at = at.Add(timelineStep) {
		timer.Reset(time.Until(at))
		select {
		case <-ctx.Done():
			return out
		case <-timer.C:
		}
		cur := n.Load()
		out = append(out, float64(cur-prev)/timelineStep.Seconds())
		prev = cur
	}
	return out
}

func (w *worker) run(ctx context.Context, deadline time.Time) {
	w.deadline = deadline
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
		w.fail("connect", err)
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
		w.fail("insert", err)
		return
	}
	t1 := time.Now()
	w.finished(t1)
	w.c.writeLat.add(t1.Sub(t0))
	w.c.writes++
	var n int64
	var onReplica bool
	if err := w.queryRow(ctx, ownReadSQL, []any{w.id, w.seq}, &n, &onReplica); err != nil {
		w.fail("own read", err)
		return
	}
	t2 := time.Now()
	w.finished(t2)
	took := t2.Sub(t1)
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
				fmt.Sprintf("client %d seq %d: count 0 on %s; the read took %v", w.id, w.seq, where, took.Round(time.Microsecond)))
		}
	}
}

func (w *worker) plainRead(ctx context.Context) {
	t0 := time.Now()
	var onReplica bool
	var n int64
	if err := w.queryRow(ctx, readSQL, []any{w.id}, &onReplica, &n); err != nil {
		w.fail("plain read", err)
		return
	}
	t1 := time.Now()
	w.finished(t1)
	w.c.plainLat.add(t1.Sub(t0))
	w.c.plainReads++
	if onReplica {
		w.c.plainOnReplica++
	}
}

// fail counts a failed statement and shows the first ones at once; a
// statement that timed out also gets the goroutines dumped, since a hung
// session is still stuck only now.
func (w *worker) fail(stmt string, err error) {
	w.c.noteError(stmt, err)
	w.diag.statementFailed(w.id, stmt, err)
	if errors.Is(err, errTimeout) {
		w.diag.dump(fmt.Sprintf("client %d: %s got no answer within %v", w.id, stmt, stmtTimeout))
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

// errTimeout marks a statement that ran out of stmtTimeout.
var errTimeout = fmt.Errorf("no answer within %v", stmtTimeout)

// explainTimeout says that a statement ran out of stmtTimeout, which pgx
// reports only as an expired context.
func explainTimeout(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	return err
}
