package rebalance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// caughtUpPoll is how often WaitCaughtUp looks at the target: a marker
// usually arrives within milliseconds, and the poll is one index lookup.
const caughtUpPoll = 3 * time.Millisecond

// WaitCaughtUp waits until the target has applied everything committed
// on the source before the call, and returns how long that took. It
// writes a marker row on the source and waits for it on the target:
// logical replication applies transactions in commit order, so when the
// marker is there, so is everything before it. That holds once every
// table's initial copy has handed over to the subscription's apply worker
// (state r), so it waits for that first, writing markers meanwhile to
// move the hand-over along. It stops at ctx's end with a
// *NotCaughtUpError. ctx is checked between its statements, which take
// milliseconds, rather than during them: pgx closes a connection whose
// context ends mid-statement, and a cutover's deadline passing must leave
// the connections usable for its undo.
func (m *Mover) WaitCaughtUp(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := m.check(); err != nil {
		return 0, err
	}
	var sub *subscription
	err := m.detached(ctx, statementTimeout, func(ctx context.Context) (err error) {
		sub, err = m.subscription(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if sub == nil || !sub.enabled {
		return 0, fmt.Errorf("rebalance %s: no enabled subscription on the target: StartCopy first", m.Job)
	}
	var nudged time.Time
	for {
		var pending []string
		err := m.detached(ctx, statementTimeout, func(ctx context.Context) (err error) {
			pending, err = m.pendingSync(ctx)
			if err == nil && len(pending) > 0 && time.Since(nudged) > 50*time.Millisecond {
				err, nudged = m.writeMarker(ctx, 0), time.Now()
			}
			return err
		})
		if err != nil {
			return 0, m.notCaughtUp(start, err)
		}
		if len(pending) == 0 {
			break
		}
		if err := sleep(ctx, caughtUpPoll); err != nil {
			return 0, m.notCaughtUp(start, err)
		}
	}
	token := rand.Int64N(1<<62) + 1
	if err := m.detached(ctx, statementTimeout, func(ctx context.Context) error { return m.writeMarker(ctx, token) }); err != nil {
		return 0, m.notCaughtUp(start, err)
	}
	probe := "SELECT EXISTS (SELECT 1 FROM " + m.marker().sql() + " WHERE token = $1)"
	for {
		var seen bool
		err := m.detached(ctx, statementTimeout, func(ctx context.Context) (err error) {
			seen, err = m.exists(ctx, onTarget, probe, token)
			return err
		})
		if err != nil {
			return 0, m.notCaughtUp(start, err)
		}
		if seen {
			return time.Since(start), nil
		}
		if err := sleep(ctx, caughtUpPoll); err != nil {
			return 0, m.notCaughtUp(start, err)
		}
	}
}

// detached runs f, whose statements are short, on a context detached
// from ctx, after checking that ctx is still live: pgx closes a
// connection whose context ends mid-statement, and a cutover's tight
// deadline must not cost the move its connections, so ctx is checked
// between statements instead. limit bounds f all the same.
func (m *Mover) detached(ctx context.Context, limit time.Duration, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	return f(dctx)
}

// writeMarker commits a marker row on the source, waiting for its local
// flush whatever synchronous_commit says: logical decoding only sends
// flushed WAL, and an unflushed marker would wait for the WAL writer.
// Token 0 is the one row that nudges are written to.
func (m *Mover) writeMarker(ctx context.Context, token int64) error {
	err := m.inTx(ctx, onSource, false, 0, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL synchronous_commit = local;
			INSERT INTO %s (token) VALUES (%d) ON CONFLICT (token) DO UPDATE SET at = now()`, m.marker().sql(), token))
		return err
	})
	if err != nil {
		return fmt.Errorf("rebalance %s: writing a marker on the source: %w", m.Job, err)
	}
	return nil
}

// pendingSync lists the subscribed tables not ready yet, with their state.
func (m *Mover) pendingSync(ctx context.Context) ([]string, error) {
	states, err := m.syncStates(ctx)
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, fmt.Errorf("rebalance %s: the subscription has no tables", m.Job)
	}
	var out []string
	for name, s := range states {
		if s.state != "r" {
			out = append(out, name+" ("+s.state+")")
		}
	}
	return out, nil
}

// notCaughtUp wraps err with what the target says about the subscription.
func (m *Mover) notCaughtUp(start time.Time, err error) error {
	e := &NotCaughtUpError{Job: m.Job, Waited: time.Since(start), Err: err}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m.Target.IsClosed() {
		return e
	}
	e.Syncing, _ = m.pendingSync(ctx)
	_ = m.Target.QueryRow(ctx, "SELECT apply_error_count, sync_error_count FROM pg_stat_subscription_stats WHERE subname = $1",
		m.subName()).Scan(&e.ApplyErrors, &e.SyncErrors)
	return e
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// statementTimeout bounds the statements WaitCaughtUp runs detached from
// its caller's context (see detached); they take milliseconds.
const statementTimeout = 10 * time.Second
