package rebalance

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DropOldFences drops, on the target, the fences earlier moves left on
// the moved tables. A fence keeps stale proxies from writing a range a
// shard gave away; when a range comes back to that shard, its old fence
// would refuse the proxies' own writes. The proxies that fence guarded
// against have long been excluded by their missing heartbeat, so the
// move that brings data back removes it before its cutover.
func (m *Mover) DropOldFences(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	for _, t := range m.Tables {
		rows, err := m.Target.Query(ctx, `SELECT tg.tgname, tg.tgfoid::regprocedure::text FROM pg_trigger tg
			WHERE tg.tgrelid = to_regclass($1) AND tg.tgname LIKE 'sg\_%\_fence' AND tg.tgname <> $2`, t.sql(), m.triggerName())
		if err != nil {
			return fmt.Errorf("rebalance %s: listing old fences on %s: %w", m.Job, t, err)
		}
		type fence struct{ name, fn string }
		var old []fence
		for rows.Next() {
			var f fence
			if err := rows.Scan(&f.name, &f.fn); err != nil {
				rows.Close()
				return err
			}
			old = append(old, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, f := range old {
			sql := fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s; DROP FUNCTION IF EXISTS %s", pgx.Identifier{f.name}.Sanitize(), t.sql(), f.fn)
			if _, err := m.Target.Exec(ctx, sql); err != nil {
				return fmt.Errorf("rebalance %s: dropping the old fence %s on %s: %w", m.Job, f.name, t, err)
			}
		}
	}
	return nil
}
