package rebalance

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// FenceSQLState is the SQLSTATE of the fence's refusal (class SG is
// implementation-defined). A proxy that gets it wrote with a stale map:
// the statement did nothing and is safe to retry once the map is current.
const FenceSQLState = "SG001"

// ErrStillReplicating refuses Cleanup while the move's publication or
// slot exists on the source: the deletes would replicate to the target.
var ErrStillReplicating = errors.New("rebalance: the source still publishes the range to the target; StopReplication first, or the deletes would replicate")

// ErrNotFenced refuses Cleanup on a source without the fence: a write
// from a stale proxy could add rows to the range while it is deleted, and
// they would be lost.
var ErrNotFenced = errors.New("rebalance: the source is not fenced for the range; Fence first")

// ReplicaIdentityError is a table whose updates and deletes could not be
// published with the range's row filter: PostgreSQL needs the columns a
// filter reads in the replica identity, and without it refuses every
// UPDATE and DELETE on the table once the publication exists.
type ReplicaIdentityError struct {
	Table Table
	// Identity is the table's replica identity: "default" (the primary
	// key), "index", "full" or "nothing".
	Identity string
	// Reason says what is missing.
	Reason string
}

func (e *ReplicaIdentityError) Error() string {
	return fmt.Sprintf("rebalance: cannot publish %s filtered on its key %s: %s (replica identity %s); make the key part of the primary key, or ALTER TABLE ... REPLICA IDENTITY FULL",
		e.Table, e.Table.Key, e.Reason, e.Identity)
}

// SchemaMismatchError is a table that exists on the target with other
// columns than on the source.
type SchemaMismatchError struct {
	Table    Table
	Problems []string
}

func (e *SchemaMismatchError) Error() string {
	return fmt.Sprintf("rebalance: %s differs between the source and the target: %s", e.Table, strings.Join(e.Problems, "; "))
}

// TargetNotEmptyError refuses to start copying into a table that already
// holds rows of the range on the target: they would collide with the
// copy. A move aborted before left them; Discard removes them.
type TargetNotEmptyError struct {
	Table Table
	Rows  int64
}

func (e *TargetNotEmptyError) Error() string {
	return fmt.Sprintf("rebalance: the target already holds %d rows of the range in %s; Discard them (abort the move) before copying again", e.Rows, e.Table)
}

// NotCaughtUpError is WaitCaughtUp giving up. The counts come from the
// target's pg_stat_subscription_stats: errors there mean the target
// refuses what it is sent, and its server log says why.
type NotCaughtUpError struct {
	Job    string
	Waited time.Duration
	// Syncing lists the tables whose initial copy is not done, with
	// their pg_subscription_rel state.
	Syncing                 []string
	ApplyErrors, SyncErrors int64
	Err                     error
}

func (e *NotCaughtUpError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rebalance %s: the target did not catch up with the source within %s", e.Job, e.Waited.Round(time.Millisecond))
	if len(e.Syncing) > 0 {
		fmt.Fprintf(&b, "; initial copy not done for %s", strings.Join(e.Syncing, ", "))
	}
	if e.ApplyErrors+e.SyncErrors > 0 {
		fmt.Fprintf(&b, "; the subscription failed %d times applying changes and %d times copying (see the target's server log)", e.ApplyErrors, e.SyncErrors)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *NotCaughtUpError) Unwrap() error { return e.Err }

// LeftoverError is StopReplication unable to drop everything, typically
// because a server was unreachable: it dropped what it could. Call it
// again once the server is back. A replication slot left on the source
// keeps WAL there until it is dropped.
type LeftoverError struct {
	Job            string
	Source, Target []string // objects left on each side
	Err            error
}

func (e *LeftoverError) Error() string {
	var left []string
	if len(e.Source) > 0 {
		left = append(left, "on the source: "+strings.Join(e.Source, ", "))
	}
	if len(e.Target) > 0 {
		left = append(left, "on the target: "+strings.Join(e.Target, ", "))
	}
	return fmt.Sprintf("rebalance %s: replication not fully stopped, left %s: %v", e.Job, strings.Join(left, "; "), e.Err)
}

func (e *LeftoverError) Unwrap() error { return e.Err }
