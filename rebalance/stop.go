package rebalance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// slotDropWait bounds how long dropSlot waits for a slot's walsender to
// let go after it was told to.
const slotDropWait = 10 * time.Second

// StopReplication drops the move's replication objects: the
// subscription; on the source the publication, the slot, initial-copy
// slots left behind and the marker table; then the target's marker
// table. It then checks that no publication, slot, subscription or
// marker table of the move remains.
//
// When the source is unreachable, or the slot is already gone, the
// subscription is detached from its slot and dropped anyway, and a
// *LeftoverError lists what remains on the source; call again once it is
// back. The same goes for an unreachable target, whose subscription
// would otherwise try the source again and again. Called again after
// success, it does nothing.
func (m *Mover) StopReplication(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	var errs []error
	// What identifies the initial-copy slots, read before the
	// subscription goes (see dropSyncSlots).
	var sysid string
	relids := map[uint32]bool{}
	targetErr := func() error {
		if err := m.Target.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&sysid); err != nil {
			return fmt.Errorf("rebalance %s: on the target: %w", m.Job, err)
		}
		for _, t := range append([]Table{m.marker()}, m.Tables...) {
			oid, err := m.tableOID(ctx, onTarget, t)
			if err != nil {
				return err
			}
			relids[oid] = true
		}
		return m.dropSubscription(ctx)
	}()
	errs = append(errs, targetErr)
	sourceErr := func() error {
		if err := m.exec(ctx, onSource, "DROP PUBLICATION IF EXISTS "+ident(m.pubName())); err != nil {
			return err
		}
		if err := m.dropSlot(ctx, m.slotName()); err != nil {
			return err
		}
		if targetErr == nil {
			if err := m.dropSyncSlots(ctx, sysid, relids); err != nil {
				return err
			}
		}
		return m.exec(ctx, onSource, "DROP TABLE IF EXISTS "+m.marker().sql())
	}()
	errs = append(errs, sourceErr)
	// The target's marker table stays until the source is clean: its oid
	// names an initial-copy slot the source may still have.
	if targetErr == nil && sourceErr == nil {
		errs = append(errs, m.exec(ctx, onTarget, "DROP TABLE IF EXISTS "+m.marker().sql()))
	}
	left := &LeftoverError{Job: m.Job, Err: errors.Join(errs...)}
	if sourceErr != nil {
		left.Source = []string{"publication " + m.pubName(), "slot " + m.slotName(), "table " + m.marker().String()}
	} else if left.Source, sourceErr = m.remains(ctx, onSource); sourceErr != nil {
		left.Err = errors.Join(left.Err, sourceErr)
	}
	if targetErr != nil {
		left.Target = []string{"subscription " + m.subName(), "table " + m.marker().String()}
	} else if left.Target, targetErr = m.remains(ctx, onTarget); targetErr != nil {
		left.Err = errors.Join(left.Err, targetErr)
	}
	if left.Err == nil && len(left.Source)+len(left.Target) == 0 {
		return nil
	}
	if left.Err == nil {
		left.Err = errors.New("they are still there after being dropped")
	}
	return left
}

// dropSubscription drops the subscription, which also drops its slot on
// the source. If that fails (the source is unreachable, or the slot is
// gone), it detaches the subscription from its slot and drops it on the
// target alone; the caller drops the slot.
func (m *Mover) dropSubscription(ctx context.Context) error {
	sub, err := m.subscription(ctx)
	if err != nil || sub == nil {
		return err
	}
	dropErr := m.exec(ctx, onTarget, "DROP SUBSCRIPTION IF EXISTS "+ident(m.subName()))
	if dropErr == nil {
		return nil
	}
	for _, sql := range []string{
		"ALTER SUBSCRIPTION " + ident(m.subName()) + " DISABLE",
		"ALTER SUBSCRIPTION " + ident(m.subName()) + " SET (slot_name = NONE)",
		"DROP SUBSCRIPTION " + ident(m.subName()),
	} {
		if err := m.exec(ctx, onTarget, sql); err != nil {
			return errors.Join(dropErr, err)
		}
	}
	return nil
}

// dropSlot drops a slot on the source if it exists, ending the walsender
// still using it: the slot is the move's, and whatever reads it is a
// subscription being dropped, or gone.
func (m *Mover) dropSlot(ctx context.Context, name string) error {
	deadline := time.Now().Add(slotDropWait)
	for {
		var pid *int32
		err := m.Source.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rebalance %s: reading slot %s on the source: %w", m.Job, name, err)
		}
		if pid != nil {
			err = m.exec(ctx, onSource, "SELECT pg_terminate_backend($1)", *pid)
		} else {
			err = m.exec(ctx, onSource, "SELECT pg_drop_replication_slot($1)", name)
			switch code := sqlState(err); {
			case err == nil, code == "42704": // undefined_object: dropped meanwhile
				return nil
			case code == "55006": // object_in_use: taken again meanwhile
				err = nil
			}
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rebalance %s: slot %s on the source is still in use after %s", m.Job, name, slotDropWait)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// syncSlot matches the slots a subscription's initial copy creates on the
// source: pg_<subscription oid>_sync_<table oid>_<target system id>.
var syncSlot = regexp.MustCompile(`^pg_([0-9]+)_sync_([0-9]+)_([0-9]+)$`)

// dropSyncSlots drops initial-copy slots that an interrupted copy left on
// the source. DROP SUBSCRIPTION drops them itself when it can reach the
// source; otherwise they stay, named after the subscription, one of our
// tables on the target and the target's system identifier. A slot naming
// this target, one of our tables and a subscription the target no longer
// has belongs to no one and is dropped, even if a previous call dropped
// our subscription.
func (m *Mover) dropSyncSlots(ctx context.Context, sysid string, relids map[uint32]bool) error {
	rows, err := m.Source.Query(ctx, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pg\\_%\\_sync\\_%'")
	if err != nil {
		return fmt.Errorf("rebalance %s: listing slots on the source: %w", m.Job, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("rebalance %s: listing slots on the source: %w", m.Job, err)
	}
	for _, name := range names {
		p := syncSlot.FindStringSubmatch(name)
		if p == nil || p[3] != sysid {
			continue
		}
		sub, _ := strconv.ParseUint(p[1], 10, 32)
		rel, _ := strconv.ParseUint(p[2], 10, 32)
		if !relids[uint32(rel)] {
			continue
		}
		alive, err := m.exists(ctx, onTarget, "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE oid = $1)", uint32(sub))
		if err != nil {
			return err
		}
		if !alive {
			if err := m.dropSlot(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// remains lists the move's replication objects on one side.
func (m *Mover) remains(ctx context.Context, s side) ([]string, error) {
	q := `SELECT 'publication ' || pubname FROM pg_publication WHERE pubname = $1
		UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name = $1`
	if s == onTarget {
		q = `SELECT 'subscription ' || subname FROM pg_subscription WHERE subname = $1
			AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`
	}
	q += " UNION ALL SELECT 'table ' || $2 WHERE to_regclass($3) IS NOT NULL"
	rows, err := m.conn(s).Query(ctx, q, "sg_"+m.Job, m.marker().String(), m.marker().sql())
	if err != nil {
		return nil, fmt.Errorf("rebalance %s: checking what is left on the %s: %w", m.Job, s, err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("rebalance %s: checking what is left on the %s: %w", m.Job, s, err)
	}
	return left, nil
}
