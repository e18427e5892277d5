package rebalance

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// StartCopy starts copying the range to the target and following its
// changes: a publication on the source with each table filtered to the
// range (and the unfiltered marker table WaitCaughtUp writes to), a
// logical slot, and a subscription on the target that copies the
// existing rows first (PostgreSQL 15 applies the row filter to that
// initial copy too). It publishes inserts, updates and deletes but not
// TRUNCATE, which would empty the target's tables, ranges it owns
// included. Called again, it leaves a running copy alone.
//
// Before creating anything it checks that each table's replica identity
// covers its key (*ReplicaIdentityError otherwise: the source would refuse
// every UPDATE and DELETE on the table while the publication exists), that
// the target can apply updates and deletes, and that the target holds no
// row of the range yet (*TargetNotEmptyError).
func (m *Mover) StartCopy(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	for _, t := range m.Tables {
		if err := m.checkIdentity(ctx, t); err != nil {
			return err
		}
	}
	sub, err := m.subscription(ctx)
	if err != nil {
		return err
	}
	if sub != nil {
		return m.resumeCopy(ctx, sub)
	}
	for _, t := range m.Tables {
		n, err := RowsIn(ctx, m.Target, t, m.Range)
		if err != nil {
			return err
		}
		if n > 0 {
			return &TargetNotEmptyError{Table: t, Rows: n}
		}
	}
	markerDDL := "CREATE TABLE IF NOT EXISTS " + m.marker().sql() + " (token bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
	if err := m.exec(ctx, onSource, markerDDL); err != nil {
		return err
	}
	if err := m.exec(ctx, onTarget, markerDDL); err != nil {
		return err
	}
	if err := m.ensurePublication(ctx); err != nil {
		return err
	}
	// A slot without a subscription is left by a run that died in
	// between; a new one starts from now, after the publication exists,
	// which the slot's decoding needs. Creating the slot here rather than
	// in CREATE SUBSCRIPTION also works when source and target databases
	// share a server, where CREATE SUBSCRIPTION would wait on itself.
	if ok, err := m.hasSlot(ctx); err != nil {
		return err
	} else if ok {
		if err := m.dropSlot(ctx, m.slotName()); err != nil {
			return err
		}
	}
	if err := m.exec(ctx, onSource, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", m.slotName()); err != nil {
		return err
	}
	return m.exec(ctx, onTarget, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s, copy_data = true)",
		ident(m.subName()), quoteLiteral(m.SourceDSN), ident(m.pubName()), quoteLiteral(m.slotName())))
}

// resumeCopy checks that a subscription found on the target still has
// its source side, and enables it if a stop was interrupted.
func (m *Mover) resumeCopy(ctx context.Context, sub *subscription) error {
	pub, err := m.hasPublication(ctx)
	if err != nil {
		return err
	}
	slot, err := m.hasSlot(ctx)
	if err != nil {
		return err
	}
	if !pub || !slot || sub.slot == nil {
		return fmt.Errorf("rebalance %s: the subscription exists on the target but its publication or slot is gone from the source: abort the move (Discard) and start it again", m.Job)
	}
	if !sub.enabled {
		return m.exec(ctx, onTarget, "ALTER SUBSCRIPTION "+ident(m.subName())+" ENABLE")
	}
	return nil
}

// checkIdentity checks that t's updates and deletes can be published with
// a filter on its key, and applied on the target.
func (m *Mover) checkIdentity(ctx context.Context, t Table) error {
	oid, err := m.tableOID(ctx, onSource, t)
	if err != nil {
		return err
	}
	if oid == 0 {
		return fmt.Errorf("rebalance %s: table %s does not exist on the source", m.Job, t)
	}
	var kind, ident string
	var hasKey, keyIn, hasIndex bool
	err = m.Source.QueryRow(ctx, `SELECT c.relkind::text, c.relreplident::text,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = $2 AND attnum > 0 AND NOT attisdropped),
		EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = c.oid AND a.attname = $2 AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident AND c.relreplident = 'i')),
		EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident AND c.relreplident = 'i'))
		FROM pg_class c WHERE c.oid = $1`, oid, t.Key).Scan(&kind, &ident, &hasKey, &keyIn, &hasIndex)
	if err != nil {
		return fmt.Errorf("rebalance %s: reading the replica identity of %s: %w", m.Job, t, err)
	}
	names := map[string]string{"d": "default", "i": "index", "f": "full", "n": "nothing"}
	e := &ReplicaIdentityError{Table: t, Identity: names[ident]}
	switch {
	case kind != "r":
		return fmt.Errorf("rebalance %s: %s is not a plain table (relkind %s): partitioned tables and views cannot be moved", m.Job, t, kind)
	case !hasKey:
		return fmt.Errorf("rebalance %s: table %s has no column %s", m.Job, t, t.Key)
	case ident == "f":
		return m.checkTargetIdentity(ctx, t, true)
	case ident == "n":
		e.Reason = "the table publishes no replica identity at all"
	case !hasIndex && ident == "d":
		e.Reason = "the table has no primary key"
	case !keyIn:
		e.Reason = "the key is not in the replica identity's index"
	default:
		return m.checkTargetIdentity(ctx, t, false)
	}
	return e
}

// checkTargetIdentity checks that the target can find the rows updates
// and deletes name: by its primary key or replica identity index, or,
// when the source sends whole old rows (full), by a scan.
func (m *Mover) checkTargetIdentity(ctx context.Context, t Table, full bool) error {
	oid, err := m.tableOID(ctx, onTarget, t)
	if err != nil || oid == 0 || full {
		if err == nil && oid == 0 {
			err = fmt.Errorf("rebalance %s: table %s does not exist on the target: EnsureSchema first", m.Job, t)
		}
		return err
	}
	ok, err := m.exists(ctx, onTarget, "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1 AND (indisprimary OR indisreplident))", oid)
	if err == nil && !ok {
		err = fmt.Errorf("rebalance %s: table %s on the target has neither a primary key nor a replica identity index, so it could not apply updates and deletes", m.Job, t)
	}
	return err
}

// ensurePublication creates the publication, or checks that the one
// there covers the same tables.
func (m *Mover) ensurePublication(ctx context.Context) error {
	want := map[string]bool{m.marker().String(): true}
	for _, t := range m.Tables {
		want[t.String()] = true
	}
	ok, err := m.hasPublication(ctx)
	if err != nil {
		return err
	}
	if !ok {
		parts := make([]string, 0, len(m.Tables)+1)
		for _, t := range m.Tables {
			parts = append(parts, t.sql()+" WHERE ("+t.filter(m.Range)+")")
		}
		parts = append(parts, m.marker().sql())
		return m.exec(ctx, onSource, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = 'insert, update, delete')",
			ident(m.pubName()), strings.Join(parts, ", ")))
	}
	rows, err := m.Source.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", m.pubName())
	if err != nil {
		return fmt.Errorf("rebalance %s: reading the publication: %w", m.Job, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("rebalance %s: reading the publication: %w", m.Job, err)
	}
	same := len(have) == len(want)
	for _, h := range have {
		same = same && want[h]
	}
	if !same {
		return fmt.Errorf("rebalance %s: publication %s on the source covers other tables (%s): abort the move (Discard) and start it again", m.Job, m.pubName(), strings.Join(have, ", "))
	}
	return nil
}
