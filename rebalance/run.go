package rebalance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/shardmap/catalog"
)

// Phases of a move, as recorded in the catalog.
const (
	PhaseCopying  = "copying"  // initial copy and catch-up; the source owns the slice
	PhaseSwitched = "switched" // the target owns the slice; cleanup pending
	PhaseDone     = "done"
	PhaseAborted  = "aborted"
	PhaseFailed   = "failed" // stopped with an error: resume or abort
)

// Figures are a move's progress, recorded in the catalog and shown.
type Figures struct {
	Phase       string        `json:"phase"`
	RowsCopied  int64         `json:"rows_copied"`
	RowsTotal   int64         `json:"rows_total"`
	LagBytes    int64         `json:"lag_bytes"`
	CopyStarted time.Time     `json:"copy_started,omitzero"`
	CopyTook    time.Duration `json:"copy_took,omitempty"`
	Attempts    int           `json:"cutover_attempts,omitempty"`
	Pause       time.Duration `json:"write_pause,omitempty"`
	Deleted     int64         `json:"rows_deleted,omitempty"`
	Verified    bool          `json:"verified,omitempty"`
	Note        string        `json:"note,omitempty"`
}

// Env is what a move runs against.
type Env struct {
	Catalog *catalog.Store
	// Connect opens a connection, able to create publications and
	// subscriptions, to a shard's primary in the moved tables' database;
	// DSN is the connection string a target server uses to reach it.
	Connect func(ctx context.Context, shard string) (*pgx.Conn, error)
	DSN     func(shard string) (string, error)
	// MaxPause bounds the write pause of one cutover attempt; Attempts
	// bounds the attempts before the move stops (and can be resumed).
	MaxPause time.Duration
	Attempts int
	// Alive is how recent a proxy's heartbeat must be for the cutover to
	// wait for its acknowledgement.
	Alive time.Duration
	// Progress, when set, is told the figures as they change.
	Progress func(Figures)
	Log      *slog.Logger
}

// Start records a new move for plan and returns its id.
func Start(ctx context.Context, env *Env, plan *Plan) (int64, error) {
	return env.Catalog.CreateMove(ctx, PhaseCopying, plan)
}

// Load reads a recorded move's plan and figures.
func Load(ctx context.Context, c *catalog.Store, id int64) (*Plan, Figures, catalog.Move, error) {
	moves, err := c.Moves(ctx, id)
	if err != nil {
		return nil, Figures{}, catalog.Move{}, err
	}
	if len(moves) == 0 {
		return nil, Figures{}, catalog.Move{}, fmt.Errorf("no move %d in the catalog: `shardgate rebalance status` lists them", id)
	}
	p, f, err := Decode(moves[0])
	return p, f, moves[0], err
}

// Decode reads the plan and figures of a move record already read from
// the catalog, as Load does: a list of moves needs no read per move.
func Decode(mv catalog.Move) (*Plan, Figures, error) {
	var p Plan
	if err := json.Unmarshal(mv.Plan, &p); err != nil {
		return nil, Figures{}, fmt.Errorf("move %d: unreadable plan: %w", mv.ID, err)
	}
	// Figures are a display: a move whose figures do not decode (none
	// recorded yet) still runs, from zero.
	var f Figures
	_ = json.Unmarshal(mv.Figures, &f)
	return &p, f, nil
}

// mover returns the data operations of move id.
func (r *runner) mover(ctx context.Context) (*Mover, error) {
	src, err := r.env.Connect(ctx, r.plan.From)
	if err != nil {
		return nil, fmt.Errorf("source shard %s: %w", r.plan.From, err)
	}
	dst, err := r.env.Connect(ctx, r.plan.To)
	if err != nil {
		src.Close(ctx)
		return nil, fmt.Errorf("target shard %s: %w", r.plan.To, err)
	}
	dsn, err := r.env.DSN(r.plan.From)
	if err != nil {
		src.Close(ctx)
		dst.Close(ctx)
		return nil, fmt.Errorf("source shard %s: %w", r.plan.From, err)
	}
	return &Mover{Source: src, Target: dst, SourceDSN: dsn, Job: fmt.Sprintf("m%d", r.id),
		Tables: r.plan.Tables, Range: r.plan.Range, TargetShard: r.plan.To}, nil
}

type runner struct {
	env  *Env
	id   int64
	plan *Plan
	fig  Figures
	m    *Mover
	// after is the map the switch installs: the plan's, with the
	// target's read floor.
	after shardmap.Spec
	// snap holds open, on the target, the transaction whose snapshot
	// (exported as m.TargetSnapshot) saw the target at the cutover.
	snap pgx.Tx
}

func (r *runner) record(ctx context.Context, phase string, err error) {
	r.fig.Phase = phase
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if e := r.env.Catalog.UpdateMove(ctx, r.id, phase, r.fig, msg); e != nil {
		r.env.Log.Warn("could not record the move's progress", "err", e)
	}
	if r.env.Progress != nil {
		r.env.Progress(r.fig)
	}
}

// owner reads which shard owns the slice in the catalog's map now: the
// truth about whether the cutover happened, whatever the move's record
// says (the tool may have died between the two writes).
func (r *runner) owner(ctx context.Context) (string, error) {
	if keys := r.plan.Range.Keys; len(keys) > 0 {
		owners, err := r.env.Catalog.KeyOwners(ctx, r.plan.Distribution, keys)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if owners[k] != r.plan.To {
				return r.plan.From, nil
			}
		}
		return r.plan.To, nil
	}
	snap, err := r.env.Catalog.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	for _, d := range snap.Spec.Distributions {
		if d.Name != r.plan.Distribution {
			continue
		}
		for _, rs := range d.Ranges {
			if rs.Lo == r.plan.Range.Lo && rs.Hi == r.plan.Range.Hi {
				return rs.Shard, nil
			}
		}
	}
	return "", nil
}

// Run runs (or resumes) move id to its end: copy and catch up, cut over,
// fence, clean up, verify.
func Run(ctx context.Context, env *Env, id int64) error {
	plan, fig, _, err := Load(ctx, env.Catalog, id)
	if err != nil {
		return err
	}
	r := &runner{env: env, id: id, plan: plan, fig: fig}
	if r.m, err = r.mover(ctx); err != nil {
		return err
	}
	defer r.m.Source.Close(context.Background())
	defer r.m.Target.Close(context.Background())
	owner, err := r.owner(ctx)
	if err != nil {
		return err
	}
	if owner != plan.To {
		if err := r.copyAndCutover(ctx, owner); err != nil {
			r.record(context.Background(), PhaseFailed, err)
			return err
		}
	}
	if err := r.finish(ctx); err != nil {
		r.record(context.Background(), PhaseFailed, err)
		return err
	}
	return nil
}

// copyAndCutover copies the slice and switches its owner; owner is the
// slice's owner in the map now, "" when the map has no range of its own
// for it yet.
func (r *runner) copyAndCutover(ctx context.Context, owner string) error {
	env, m := r.env, r.m
	// Make sure the map has the slice as a range of its own before
	// anything: proxies must be able to freeze exactly it.
	if owner == "" {
		if _, err := env.Catalog.SetSpec(ctx, r.plan.Before, r.plan.Shards); err != nil {
			return err
		}
	}
	if err := m.EnsureSchema(ctx); err != nil {
		return err
	}
	if err := m.StartCopy(ctx); err != nil {
		return err
	}
	if r.fig.CopyStarted.IsZero() {
		r.fig.CopyStarted = time.Now()
		// An exact count once, for the progress bar: the planner's
		// estimate is poor for tables never analysed.
		for _, t := range r.plan.Tables {
			if n, err := RowsIn(ctx, m.Source, t, r.plan.Range); err == nil {
				r.fig.RowsTotal += n
			}
		}
	}
	r.record(ctx, PhaseCopying, nil)
	// Initial copy, then catch-up until the lag is small.
	for {
		pr, err := m.Progress(ctx)
		if err != nil {
			return err
		}
		r.fig.RowsCopied, r.fig.LagBytes = pr.TargetRows(), pr.LagBytes
		r.record(ctx, PhaseCopying, nil)
		if pr.Synced() && pr.LagBytes < 1<<20 {
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if _, err := m.WaitCaughtUp(ctx); err != nil {
		return err
	}
	r.fig.CopyTook = time.Since(r.fig.CopyStarted)
	if err := r.fixOldFences(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		r.fig.Attempts++ // over resumes too
		pause, err := r.cutover(ctx)
		if err == nil {
			r.fig.Pause = pause
			r.record(ctx, PhaseSwitched, nil)
			env.Log.Info("cutover done", "move", r.id, "write_pause", pause.String(), "attempt", attempt)
			return nil
		}
		env.Log.Warn("cutover undone; writes go on on the source", "move", r.id, "attempt", attempt, "err", err)
		if attempt >= max(env.Attempts, 1) || ctx.Err() != nil {
			return fmt.Errorf("cutover did not finish within --max-pause %s in %d attempts: %w", env.MaxPause, attempt, err)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// cutover tries once to switch the slice's owner within MaxPause; on
// failure everything is as before (the copy keeps flowing).
func (r *runner) cutover(ctx context.Context) (time.Duration, error) {
	env, m := r.env, r.m
	start := time.Now()
	deadline := start.Add(env.MaxPause)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	undo := func(cause error) (time.Duration, error) {
		bg := context.Background()
		if err := m.Unfence(bg); err != nil {
			env.Log.Warn("could not drop the fence after a failed cutover", "err", err)
		}
		if _, err := env.Catalog.SetSpec(bg, r.plan.Before, r.plan.Shards); err != nil {
			return 0, errors.Join(cause, fmt.Errorf("and the map could not be unfrozen: %w", err))
		}
		return 0, cause
	}
	version, err := env.Catalog.SetSpec(cctx, r.plan.Frozen, r.plan.Shards)
	if err != nil {
		return undo(err)
	}
	// Every live proxy holds new writes to the slice and has seen the
	// transactions that may have written it end.
	var missing []string
	for {
		// Each poll has a deadline of its own: one cut short by the
		// cutover's could not say which proxies were missing.
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		missing, err = env.Catalog.Unacked(pctx, version, env.Alive)
		pcancel()
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return undo(fmt.Errorf("reading the proxies' acknowledgements: %w", err))
			}
			return undo(fmt.Errorf("proxies did not acknowledge the frozen map within --max-pause: %s", strings.Join(missing, ", ")))
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The fence refuses what a stale proxy or a direct connection would
	// still write; creating it waits for open writers of the tables.
	if err := m.FenceWithin(cctx, time.Until(deadline)); err != nil {
		return undo(fmt.Errorf("fencing the source: %w", err))
	}
	if _, err := m.WaitCaughtUp(cctx); err != nil {
		return undo(fmt.Errorf("waiting for the target to catch up: %w", err))
	}
	// Replicas of the target must replay past this before they serve the
	// slice: a client's own write, replicated here, would be missed.
	var floor string
	if err := m.Target.QueryRow(cctx, "SELECT pg_current_wal_lsn()::text").Scan(&floor); err != nil {
		return undo(fmt.Errorf("reading the target's WAL position: %w", err))
	}
	r.after = r.plan.After
	r.after.ReadFloors = map[string]string{r.plan.To: floor}
	// The target now holds exactly the fenced source's slice: keep a
	// snapshot of it for Verify, which runs after writes resume.
	if err := r.exportSnapshot(cctx); err != nil {
		env.Log.Warn("no snapshot of the target for verify; it will check placement only", "err", err)
	}
	if err := r.switchOwner(ctx); err != nil {
		r.dropSnapshot()
		return undo(fmt.Errorf("switching the owner: %w", err))
	}
	return time.Since(start), nil
}

// finish cleans up after the cutover: stops replication, verifies the
// target got the slice, deletes it from the source, checks placement.
func (r *runner) finish(ctx context.Context) error {
	m := r.m
	if err := m.StopReplication(ctx); err != nil {
		return err
	}
	if r.snap != nil {
		rep, err := m.Verify(ctx)
		r.dropSnapshot()
		if err != nil {
			return err
		}
		if !rep.Equal() {
			return fmt.Errorf("verify: the source and the target differ on the moved slice: %s", rep)
		}
		r.fig.Verified = true
	} else {
		// Resumed after the cutover: the target's state at the switch is
		// gone, so only placement can be checked (after cleanup).
		r.fig.Note = "checksums not compared: resumed after the cutover"
	}
	r.record(ctx, PhaseSwitched, nil)
	n, err := m.Cleanup(ctx, 5000, func(deleted int64) {
		r.fig.Deleted = deleted
		r.record(ctx, PhaseSwitched, nil)
	})
	r.fig.Deleted = n
	if err != nil {
		return err
	}
	r.record(ctx, PhaseDone, nil)
	return nil
}

// Abort undoes a move that has not switched owner yet: the map goes back
// to Before, replication objects are dropped, the target's copy deleted.
func Abort(ctx context.Context, env *Env, id int64) error {
	plan, fig, _, err := Load(ctx, env.Catalog, id)
	if err != nil {
		return err
	}
	r := &runner{env: env, id: id, plan: plan, fig: fig}
	owner, err := r.owner(ctx)
	if err != nil {
		return err
	}
	if owner == plan.To {
		return fmt.Errorf("move %d already switched %s to shard %s, where writes now go: it cannot be aborted; `shardgate rebalance resume %d` finishes its cleanup", id, plan.Range.Describe(plan.Method), plan.To, id)
	}
	if r.m, err = r.mover(ctx); err != nil {
		return err
	}
	defer r.m.Source.Close(context.Background())
	defer r.m.Target.Close(context.Background())
	if _, err := env.Catalog.SetSpec(ctx, plan.Before, plan.Shards); err != nil {
		return err
	}
	if err := r.m.Discard(ctx); err != nil {
		return err
	}
	r.record(ctx, PhaseAborted, nil)
	return nil
}

// exportSnapshot opens a read-only transaction on the target and exports
// its snapshot for Verify.
func (r *runner) exportSnapshot(ctx context.Context) error {
	conn, err := r.env.Connect(ctx, r.plan.To)
	if err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(context.Background())
		return err
	}
	var id string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id); err != nil {
		conn.Close(context.Background())
		return err
	}
	r.snap, r.m.TargetSnapshot = tx, id
	return nil
}

func (r *runner) dropSnapshot() {
	if r.snap == nil {
		return
	}
	ctx := context.Background()
	r.snap.Rollback(ctx)
	r.snap.Conn().Close(ctx)
	r.snap, r.m.TargetSnapshot = nil, ""
}

// switchOwner gives the slice to the target: a new map, or for directory
// keys their entries and a new map in one catalog transaction.
func (r *runner) switchOwner(ctx context.Context) error {
	p := r.plan
	if len(p.Range.Keys) > 0 {
		_, err := r.env.Catalog.MoveKeys(ctx, r.after, p.Shards, p.Distribution, p.Range.Keys, p.To)
		return err
	}
	_, err := r.env.Catalog.SetSpec(ctx, r.after, p.Shards)
	return err
}
