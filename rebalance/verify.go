package rebalance

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Report compares the range on the source and the target, per table.
type Report struct {
	Tables []TableReport
}

// TableReport is one table's figures on both sides.
type TableReport struct {
	Table          Table
	Source, Target Checksum
}

// Checksum sums up a table's rows of the range without regard to their
// order: how many, and the sum of a 64-bit hash of each row's text.
type Checksum struct {
	Rows int64
	// Sum is a numeric in decimal text (the sum of int8 hashes can
	// exceed int8).
	Sum string
}

// Equal reports whether both sides hold the same rows.
func (t TableReport) Equal() bool { return t.Source == t.Target }

// Equal reports whether every table holds the same rows on both sides.
func (r Report) Equal() bool {
	for _, t := range r.Tables {
		if !t.Equal() {
			return false
		}
	}
	return true
}

// String prints one line per table.
func (r Report) String() string {
	var b strings.Builder
	for i, t := range r.Tables {
		if i > 0 {
			b.WriteString("; ")
		}
		verdict := "equal"
		if !t.Equal() {
			verdict = "DIFFERENT"
		}
		fmt.Fprintf(&b, "%s: %s, source %d rows (sum %s), target %d rows (sum %s)", t.Table, verdict, t.Source.Rows, t.Source.Sum, t.Target.Rows, t.Target.Sum)
	}
	return b.String()
}

// Verify compares the range's rows on the source and the target: row
// counts and order-independent checksums per table, each side read in
// one snapshot. The comparison means something only while neither side
// changes the range: after Fence and WaitCaughtUp (or StopReplication),
// before Cleanup.
//
// Rows hash by their text form over the source's columns, in the
// source's column order, with the settings that shape text forms (time
// zone, date style, float digits) pinned, so that servers with other
// defaults, or a target whose columns are in another order, still agree.
func (m *Mover) Verify(ctx context.Context) (Report, error) {
	if err := m.check(); err != nil {
		return Report{}, err
	}
	var rep Report
	queries := make([]string, len(m.Tables))
	for i, t := range m.Tables {
		cols, err := m.columnList(ctx, t)
		if err != nil {
			return rep, err
		}
		queries[i] = fmt.Sprintf("SELECT count(*), coalesce(sum(hashtextextended(ROW(%s)::text, 0)), 0)::text FROM %s WHERE %s",
			cols, t.sql(), t.filter(m.Range))
		rep.Tables = append(rep.Tables, TableReport{Table: t})
	}
	for _, s := range []side{onSource, onTarget} {
		opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
		err := pgx.BeginTxFunc(ctx, m.conn(s), opts, func(tx pgx.Tx) error {
			if s == onTarget && m.TargetSnapshot != "" {
				// The target as it was at the cutover: it takes new
				// writes from then on, the fenced source does not.
				if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(m.TargetSnapshot)); err != nil {
					return fmt.Errorf("importing the cutover's snapshot: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres';
				SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`); err != nil {
				return err
			}
			for i, q := range queries {
				sum := &rep.Tables[i].Source
				if s == onTarget {
					sum = &rep.Tables[i].Target
				}
				if err := tx.QueryRow(ctx, q).Scan(&sum.Rows, &sum.Sum); err != nil {
					return fmt.Errorf("%s: %w", m.Tables[i], err)
				}
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("rebalance %s: checksumming the range on the %s: %w", m.Job, s, err)
		}
	}
	return rep, nil
}

// columnList is the source's columns of t, quoted, in their order.
func (m *Mover) columnList(ctx context.Context, t Table) (string, error) {
	rows, err := m.Source.Query(ctx, `SELECT quote_ident(attname) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, t.sql())
	if err != nil {
		return "", fmt.Errorf("rebalance %s: reading the columns of %s on the source: %w", m.Job, t, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("rebalance %s: reading the columns of %s on the source: %w", m.Job, t, err)
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("rebalance %s: table %s does not exist on the source", m.Job, t)
	}
	return strings.Join(cols, ", "), nil
}
