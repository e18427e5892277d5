package rebalance

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DefaultBatch is the rows Cleanup and Discard delete per transaction
// when given no batch size.
const DefaultBatch = 5000

// Cleanup deletes the range's rows from the source once the target owns
// them, batch rows per transaction so that each holds its locks briefly
// and vacuum can follow, with the fence bypassed. progress, if not nil,
// is told the running total after each batch. It refuses to run while
// the source still publishes the range (ErrStillReplicating) or is not
// fenced (ErrNotFenced). Called again, it deletes what is left, if
// anything.
func (m *Mover) Cleanup(ctx context.Context, batch int, progress func(deleted int64)) (int64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	pub, err := m.hasPublication(ctx)
	if err != nil {
		return 0, err
	}
	slot, err := m.hasSlot(ctx)
	if err != nil {
		return 0, err
	}
	if pub || slot {
		return 0, ErrStillReplicating
	}
	if ok, err := m.fenced(ctx); err != nil {
		return 0, err
	} else if !ok {
		return 0, ErrNotFenced
	}
	return m.deleteRange(ctx, onSource, batch, progress)
}

// Discard aborts the move's data side: it stops replication, deletes the
// range's rows from the target (which owned none of them before the
// move: StartCopy refuses to copy into a target holding some) and drops
// the fence on the source, if any. The source keeps the range. When the
// source is unreachable it still empties the target and returns the
// *LeftoverError of StopReplication; call it again once the source is
// back. The tables EnsureSchema created on the target stay.
func (m *Mover) Discard(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	stopErr := m.StopReplication(ctx)
	var left *LeftoverError
	if stopErr != nil {
		// A subscription that may still be applying would put rows back.
		if !errors.As(stopErr, &left) {
			return stopErr
		}
		if sub, err := m.subscription(ctx); err != nil || sub != nil {
			return errors.Join(stopErr, err)
		}
	}
	if _, err := m.deleteRange(ctx, onTarget, 0, nil); err != nil {
		return errors.Join(stopErr, err)
	}
	if stopErr != nil {
		return stopErr // the source is unreachable: the fence waits too
	}
	return m.Unfence(ctx)
}

// deleteRange deletes the range's rows of every table on one side in
// batches, and returns how many it deleted.
//
// Each batch finds its rows by a scan from where the previous batch
// ended (by ctid, in physical order), so that the whole table is read
// about once rather than once per batch, and deletes them by ctid in the
// same statement. A batch that finds nothing from there starts over from
// the first block; a pass from the first block that finds nothing ends
// the table. That also catches rows the cursor skipped, should the
// planner read in another order (an index on a range key).
func (m *Mover) deleteRange(ctx context.Context, s side, batch int, progress func(int64)) (int64, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	var total int64
	for _, t := range m.Tables {
		if oid, err := m.tableOID(ctx, s, t); err != nil {
			return total, err
		} else if oid == 0 {
			continue // never created on the target: nothing to delete
		}
		where := t.filter(m.Range)
		q := fmt.Sprintf(`WITH d AS (DELETE FROM %[1]s WHERE ctid = ANY (ARRAY (SELECT ctid FROM %[1]s WHERE ctid >= $1::tid AND %[2]s LIMIT %[3]d)) AND %[2]s RETURNING ctid)
			SELECT count(*), coalesce(max(ctid), $1::tid)::text FROM d`, t.sql(), where, batch)
		const first = "(0,0)"
		cursor := first
		for {
			var n int64
			err := m.inTx(ctx, s, true, 0, func(tx pgx.Tx) error {
				// A synchronized scan could start mid-table and skip
				// rows behind it.
				if _, err := tx.Exec(ctx, "SET LOCAL synchronize_seqscans = off"); err != nil {
					return err
				}
				return tx.QueryRow(ctx, q, cursor).Scan(&n, &cursor)
			})
			if err != nil {
				return total, fmt.Errorf("rebalance %s: deleting the range's rows of %s on the %s: %w", m.Job, t, s, err)
			}
			total += n
			if n > 0 && progress != nil {
				progress(total)
			}
			if n == 0 {
				if cursor == first {
					break
				}
				cursor = first
			}
		}
	}
	return total, nil
}
