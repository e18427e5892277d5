package rebalance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Mover does one move's data operations. Its methods keep no state
// between calls: each finds what earlier calls, possibly by a process
// that died, left on the servers by name, and does only what is missing.
// That is what lets a move resume or abort after a crash. (Progress keeps
// its row estimates, which nothing depends on for correctness.)
//
// The connections are used one statement at a time and must not be
// shared with other goroutines while a method runs.
type Mover struct {
	// Source and Target are connections to the two primaries, in the
	// moved tables' database: on the target as a superuser (PostgreSQL 15
	// lets only superusers create subscriptions), on the source as one
	// or as the tables' owner with REPLICATION.
	Source, Target *pgx.Conn
	// SourceDSN is the libpq connection string the target server uses to
	// reach the source (CREATE SUBSCRIPTION ... CONNECTION); EnsureSchema
	// also runs pg_dump with it. Give it a connect_timeout: the target
	// uses it to drop the slot when the subscription is dropped.
	SourceDSN string
	// Job names the move's objects; see doc.go. It must be a short
	// lowercase identifier (letters, digits, underscores).
	Job string
	// Tables are the moving distribution's tables.
	Tables []Table
	// Range is what moves.
	Range Range
	// TargetShard names the target in the fence's message.
	TargetShard string
	// TargetSnapshot, when set, is a snapshot exported on the target
	// (pg_export_snapshot) that Verify reads the target through: the
	// target as of the cutover, before it took writes of its own.
	TargetSnapshot string
	// Allowed are parts of Range that came back to the source by later
	// moves: the fence lets their writes through. rebuild makes
	// FenceWithin write the fence again even when it exists.
	Allowed []Range
	rebuild bool
	// PgDump is the pg_dump binary for EnsureSchema; empty means
	// "pg_dump" on PATH. It must be at least the source server's version.
	PgDump string
	// estimates are Progress's row estimates by table and range filter:
	// a progress bar's total needs no fresh planner call on every poll.
	estimates map[string]int64
}

// jobName keeps every derived name a valid slot name (lowercase letters,
// digits, underscores) within PostgreSQL's 63 bytes.
var jobName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// The names of the move's objects.
func (m *Mover) pubName() string     { return "sg_" + m.Job }
func (m *Mover) subName() string     { return "sg_" + m.Job }
func (m *Mover) slotName() string    { return "sg_" + m.Job }
func (m *Mover) markerName() string  { return "sg_" + m.Job + "_marker" }
func (m *Mover) triggerName() string { return "sg_" + m.Job + "_fence" }
func (m *Mover) marker() Table       { return Table{Name: m.markerName()} }

// fenceFuncName is per table (its oid on the source), since each fence
// function has its table's key and name built in.
func (m *Mover) fenceFuncName(oid uint32) string { return fmt.Sprintf("sg_%s_fence_%d", m.Job, oid) }

// check refuses a Mover that would build bad names or SQL.
func (m *Mover) check() error {
	if !jobName.MatchString(m.Job) {
		return fmt.Errorf("rebalance: job name %q: expected a lowercase letter, then up to 39 lowercase letters, digits or underscores", m.Job)
	}
	if m.Source == nil || m.Target == nil {
		return errors.New("rebalance: Mover needs both the Source and the Target connection")
	}
	if len(m.Tables) == 0 {
		return errors.New("rebalance: Mover has no tables")
	}
	for _, t := range m.Tables {
		if t.Name == "" || t.Key == "" {
			return fmt.Errorf("rebalance: table %q: expected a name and a key column", t.Name)
		}
	}
	return m.Range.Check()
}

// side names a server in errors.
type side string

const (
	onSource side = "source"
	onTarget side = "target"
)

func (m *Mover) conn(s side) *pgx.Conn {
	if s == onSource {
		return m.Source
	}
	return m.Target
}

// exec runs one statement, saying where it failed.
func (m *Mover) exec(ctx context.Context, s side, sql string, args ...any) error {
	if _, err := m.conn(s).Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("rebalance %s: on the %s: %w", m.Job, s, err)
	}
	return nil
}

// exists runs a query returning one boolean.
func (m *Mover) exists(ctx context.Context, s side, sql string, args ...any) (bool, error) {
	var ok bool
	if err := m.conn(s).QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
		return false, fmt.Errorf("rebalance %s: on the %s: %w", m.Job, s, err)
	}
	return ok, nil
}

// tableOID finds a table; 0 means it does not exist.
func (m *Mover) tableOID(ctx context.Context, s side, t Table) (uint32, error) {
	var oid *uint32
	if err := m.conn(s).QueryRow(ctx, "SELECT to_regclass($1)::oid", t.sql()).Scan(&oid); err != nil {
		return 0, fmt.Errorf("rebalance %s: looking up %s on the %s: %w", m.Job, t, s, err)
	}
	if oid == nil {
		return 0, nil
	}
	return *oid, nil
}

// subscription describes the move's subscription on the target.
type subscription struct {
	oid     uint32
	enabled bool
	slot    *string
}

// subscription returns the move's subscription on the target, nil if
// there is none.
func (m *Mover) subscription(ctx context.Context) (*subscription, error) {
	var s subscription
	err := m.Target.QueryRow(ctx, `SELECT oid, subenabled, subslotname FROM pg_subscription
		WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		m.subName()).Scan(&s.oid, &s.enabled, &s.slot)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rebalance %s: reading the subscription on the target: %w", m.Job, err)
	}
	return &s, nil
}

// hasSlot reports whether the move's slot exists on the source.
func (m *Mover) hasSlot(ctx context.Context) (bool, error) {
	return m.exists(ctx, onSource, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", m.slotName())
}

// hasPublication reports whether the move's publication exists on the
// source.
func (m *Mover) hasPublication(ctx context.Context) (bool, error) {
	return m.exists(ctx, onSource, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", m.pubName())
}

// inTx runs f in a transaction on one side, with the fence bypassed when
// asked and a lock timeout when positive.
func (m *Mover) inTx(ctx context.Context, s side, bypass bool, lockTimeout time.Duration, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, m.conn(s), func(tx pgx.Tx) error {
		if bypass {
			if _, err := tx.Exec(ctx, "SELECT set_config('shardgate.fence_bypass', 'on', true)"); err != nil {
				return err
			}
		}
		if lockTimeout > 0 {
			ms := max(lockTimeout.Milliseconds(), 1)
			if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", ms)); err != nil {
				return err
			}
		}
		return f(tx)
	})
}

// sqlState returns err's SQLSTATE, "" if it has none.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
