package rebalance

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/shardmap"
)

// Progress is a move's copy as seen now: enough for a progress bar (rows
// copied of rows expected) and, from two samples, a rate and an ETA.
type Progress struct {
	Tables []TableProgress
	// LagBytes is how much of the source's WAL the target has not
	// confirmed; -1 when the move has no slot.
	LagBytes int64
}

// TableProgress is one table's part of a Progress.
type TableProgress struct {
	Table Table
	// State is the initial copy's state in pg_subscription_rel: i (init),
	// d (copying), f (copied, catching up), s (synced), r (ready,
	// following changes); "" when the table is not subscribed.
	State string
	// TargetRows are the range's rows on the target: during the copy,
	// the rows COPY has received so far (they become visible only at its
	// end), then a count.
	TargetRows int64
	// SourceRows estimates the range's rows on the source, from the
	// planner's statistics: a progress bar's total, not a check.
	SourceRows int64
}

// TargetRows sums the tables' rows on the target.
func (p Progress) TargetRows() int64 {
	var n int64
	for _, t := range p.Tables {
		n += t.TargetRows
	}
	return n
}

// SourceRows sums the tables' estimated rows on the source.
func (p Progress) SourceRows() int64 {
	var n int64
	for _, t := range p.Tables {
		n += t.SourceRows
	}
	return n
}

// Synced reports whether every table's initial copy is done.
func (p Progress) Synced() bool {
	for _, t := range p.Tables {
		if t.State != "s" && t.State != "r" {
			return false
		}
	}
	return len(p.Tables) > 0
}

// Progress reports the copy's state per table and the slot's lag.
func (m *Mover) Progress(ctx context.Context) (Progress, error) {
	if err := m.check(); err != nil {
		return Progress{}, err
	}
	states, err := m.syncStates(ctx)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{LagBytes: -1}
	for _, t := range m.Tables {
		tp := TableProgress{Table: t, State: states[t.String()].state}
		switch tp.State {
		case "i", "d":
			tp.TargetRows = states[t.String()].copied
		default:
			if tp.TargetRows, err = RowsIn(ctx, m.Target, t, m.Range); err != nil {
				return p, err
			}
		}
		if tp.SourceRows, err = m.estimate(ctx, t); err != nil {
			return p, err
		}
		p.Tables = append(p.Tables, tp)
	}
	err = m.Source.QueryRow(ctx, `SELECT coalesce((SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1), -1)`, m.slotName()).Scan(&p.LagBytes)
	if err != nil {
		return p, fmt.Errorf("rebalance %s: reading the slot's lag on the source: %w", m.Job, err)
	}
	return p, nil
}

// syncState is a subscribed table's initial copy state and, while COPY
// runs, its rows so far.
type syncState struct {
	state  string
	copied int64
}

// syncStates reads the subscription's tables (the marker's included) by
// "schema.name".
func (m *Mover) syncStates(ctx context.Context) (map[string]syncState, error) {
	rows, err := m.Target.Query(ctx, `SELECT n.nspname || '.' || c.relname, r.srsubstate::text, coalesce(p.tuples_processed, 0)
		FROM pg_subscription s
		JOIN pg_subscription_rel r ON r.srsubid = s.oid
		JOIN pg_class c ON c.oid = r.srrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_progress_copy p ON p.relid = r.srrelid AND p.datid = s.subdbid
		WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, m.subName())
	if err != nil {
		return nil, fmt.Errorf("rebalance %s: reading the subscription's tables on the target: %w", m.Job, err)
	}
	out := map[string]syncState{}
	var name string
	var st syncState
	_, err = pgx.ForEachRow(rows, []any{&name, &st.state, &st.copied}, func() error {
		out[name] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebalance %s: reading the subscription's tables on the target: %w", m.Job, err)
	}
	return out, nil
}

// estimate guesses the range's rows of t on the source. A hash range
// holds its share of the hash space (the hash is uniform, which the
// planner cannot know); other ranges are the planner's estimate of the
// filter, good with statistics on the key. The first guess for a table
// and range is kept: a poll's EXPLAIN would cost the source a planner
// call per table for a figure that only sizes the progress bar.
func (m *Mover) estimate(ctx context.Context, t Table) (int64, error) {
	filter := t.filter(m.Range)
	where, share := filter, 1.0
	if m.Range.Method == shardmap.MethodHash {
		lo, hi, _ := hashBounds(m.Range)
		l, h := -9223372036854775808.0, 9223372036854775808.0
		if lo != nil {
			l = float64(*lo)
		}
		if hi != nil {
			h = float64(*hi)
		}
		where, share = "true", (h-l)/18446744073709551616.0
	}
	// Keyed by the range's own filter, not by the statement: a hash
	// range's statement says just "true".
	key := t.sql() + " WHERE " + filter
	if n, ok := m.estimates[key]; ok {
		return n, nil
	}
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := m.Source.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT 1 FROM "+t.sql()+" WHERE "+where).Scan(&plan); err != nil {
		return 0, fmt.Errorf("rebalance %s: estimating the rows of %s: %w", m.Job, t, err)
	}
	var n int64
	if len(plan) > 0 {
		n = int64(plan[0].Plan.Rows*share + 0.5)
	}
	if m.estimates == nil {
		m.estimates = map[string]int64{}
	}
	m.estimates[key] = n
	return n, nil
}
