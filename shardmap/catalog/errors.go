package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoMap is returned by Load and Snapshot when the catalog holds no shard
// map yet: nothing seeded it and no map was applied.
var ErrNoMap = errors.New("catalog: the catalog holds no shard map yet")

// MapError is a shard map in the catalog that cannot be used: its spec
// does not decode, names shards this proxy does not have, or fails
// shardmap.Build. Err joins the problems, each a *shardmap.SpecError, so
// errors.As finds them.
type MapError struct {
	Version uint64
	Err     error
}

// Error names the version and lists the problems on one line, which suits
// a log record.
func (e *MapError) Error() string {
	return fmt.Sprintf("catalog: shard map version %d is inconsistent: %s", e.Version,
		strings.ReplaceAll(e.Err.Error(), "\n", "; "))
}

// Unwrap returns the problems.
func (e *MapError) Unwrap() error { return e.Err }
