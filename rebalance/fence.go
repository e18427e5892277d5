package rebalance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultFenceWait is how long Fence and Unfence wait for each table's
// lock. Creating or dropping a trigger waits for the transactions writing
// the table, and new writers queue behind it meanwhile, so the wait is
// the write pause a long transaction can cause.
const DefaultFenceWait = 5 * time.Second

// Fence is FenceWithin(ctx, DefaultFenceWait).
func (m *Mover) Fence(ctx context.Context) error { return m.FenceWithin(ctx, DefaultFenceWait) }

// FenceWithin makes the source refuse writes to the range: a BEFORE row
// trigger on each table fails any INSERT, UPDATE or DELETE whose old or
// new row lies in the range, with SQLSTATE FenceSQLState and a message
// naming the table, the move and TargetShard, unless the session set
// shardgate.fence_bypass to on. It keeps a stale proxy, or a direct
// connection, from writing rows the target would never see.
//
// The triggers are created in one transaction, so that all tables are
// fenced or none. Creating a trigger waits for the transactions already
// writing the table: once FenceWithin returns, every write to the range
// the source accepted has committed (or rolled back), and WaitCaughtUp
// then brings all of them to the target. Each table's lock is awaited
// for at most wait (0 means DefaultFenceWait); ctx is checked before the
// transaction, not during it, so that a deadline cannot cost the
// connection (see WaitCaughtUp). Called again, it changes nothing.
func (m *Mover) FenceWithin(ctx context.Context, wait time.Duration) error {
	if err := m.check(); err != nil {
		return err
	}
	if wait <= 0 {
		wait = DefaultFenceWait
	}
	return m.detached(ctx, m.lockLimit(wait), func(ctx context.Context) error {
		return m.inTx(ctx, onSource, false, wait, func(tx pgx.Tx) error {
			for _, t := range m.Tables {
				if err := m.fenceTable(ctx, tx, t); err != nil {
					return fmt.Errorf("rebalance %s: fencing %s on the source: %w", m.Job, t, err)
				}
			}
			return nil
		})
	})
}

// fenceTable creates t's fence function and trigger unless both are
// there already.
func (m *Mover) fenceTable(ctx context.Context, tx pgx.Tx, t Table) error {
	var oid *uint32
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1)::oid", t.sql()).Scan(&oid); err != nil {
		return err
	}
	if oid == nil {
		return fmt.Errorf("table %s does not exist", t)
	}
	fn := pgx.Identifier{t.schema(), m.fenceFuncName(*oid)}.Sanitize()
	var done bool
	err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND tgname = $2 AND tgfoid = to_regproc($3))",
		*oid, m.triggerName(), fn).Scan(&done)
	if err != nil || (done && !m.rebuild) {
		return err
	}
	shard := "another shard"
	if m.TargetShard != "" {
		shard = "shard " + m.TargetShard
	}
	msg := fmt.Sprintf("shardgate move %s fenced %s: this range now lives on %s", m.Job, t, shard)
	raise := func(row string) string {
		return fmt.Sprintf(`RAISE EXCEPTION USING ERRCODE = %s, MESSAGE = %s, DETAIL = 'key: ' || coalesce(%s.%s::text, 'NULL'),
				HINT = 'Write through a shardgate proxy with the current shard map; maintenance that must write here sets shardgate.fence_bypass = on.';`,
			quoteLiteral(FenceSQLState), quoteLiteral(msg), row, ident(t.Key))
	}
	// The body is a quoted literal rather than dollar-quoted, since the
	// filter holds key values that could contain any dollar tag.
	body := fmt.Sprintf(`
BEGIN
	IF current_setting('shardgate.fence_bypass', true) IS DISTINCT FROM 'on' THEN
		IF TG_OP <> 'INSERT' THEN
			IF %s THEN
				%s
			END IF;
		END IF;
		IF TG_OP <> 'DELETE' THEN
			IF %s THEN
				%s
			END IF;
		END IF;
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	RETURN NEW;
END`, m.refused("OLD."+ident(t.Key)), raise("OLD"), m.refused("NEW."+ident(t.Key)), raise("NEW"))
	if _, err := tx.Exec(ctx, "CREATE OR REPLACE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS "+quoteLiteral(body)); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
		ident(m.triggerName()), t.sql(), fn))
	return err
}

// Unfence drops the fence: the triggers and their functions, found by
// name in any schema, also for tables no longer listed. It undoes Fence
// after a failed cutover, or after an abort. Like FenceWithin it waits
// at most DefaultFenceWait for each table's lock.
func (m *Mover) Unfence(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	return m.detached(ctx, m.lockLimit(DefaultFenceWait), func(ctx context.Context) error {
		return m.inTx(ctx, onSource, false, DefaultFenceWait, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT oid::regprocedure::text FROM pg_proc WHERE proname ~ $1",
				"^sg_"+m.Job+"_fence_[0-9]+$")
			if err != nil {
				return err
			}
			fns, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, fn := range fns {
				// CASCADE drops the triggers using the function.
				if _, err := tx.Exec(ctx, "DROP FUNCTION IF EXISTS "+fn+" CASCADE"); err != nil {
					return fmt.Errorf("rebalance %s: dropping the fence %s on the source: %w", m.Job, fn, err)
				}
			}
			return nil
		})
	})
}

// lockLimit bounds a transaction that waits up to wait for each table's
// lock: the server's lock_timeout ends the waits, this only a hung server.
func (m *Mover) lockLimit(wait time.Duration) time.Duration {
	return time.Duration(len(m.Tables))*wait + statementTimeout
}

// fenced reports whether every table has the fence trigger on the source.
func (m *Mover) fenced(ctx context.Context) (bool, error) {
	for _, t := range m.Tables {
		ok, err := m.exists(ctx, onSource, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)",
			t.sql(), m.triggerName())
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// refused is the condition of a row the fence refuses: in Range and in
// none of Allowed.
func (m *Mover) refused(col string) string {
	cond := Filter(m.Range, col)
	if len(m.Allowed) == 0 {
		return cond
	}
	back := make([]string, len(m.Allowed))
	for i, a := range m.Allowed {
		back[i] = Filter(a, col)
	}
	return "(" + cond + ") AND NOT coalesce(" + strings.Join(back, " OR ") + ", false)"
}
