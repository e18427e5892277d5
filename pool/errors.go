package pool

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error is a failure to provide a server connection. It knows its SQLSTATE,
// so the proxy can hand it to the client as a proper ErrorResponse.
type Error struct {
	// Code is the SQLSTATE to report to the client.
	Code string
	// Message says what happened and what to do about it.
	Message string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// SQLState returns the SQLSTATE for the client.
func (e *Error) SQLState() string { return e.Code }

func checkoutTimeout(k Key, size int, waited time.Duration) *Error {
	return &Error{
		Code: "53300", // too_many_connections
		Message: fmt.Sprintf("shardgate: no server connection in pool %s became free within %s (pool.size=%d); "+
			"raise pool.size or pool.checkout_timeout, or shorten transactions", k, waited.Round(time.Millisecond), size),
	}
}

func connectFailed(k Key, err error) *Error {
	if errors.Is(err, pgconn.ErrReadOnlyConnection) {
		return &Error{
			Code: "57P03", // cannot_connect_now: a failover is under way or done
			Message: fmt.Sprintf("shardgate: server %s is not a primary any more (in recovery or read-only), "+
				"so pool %s cannot use it; retry on the shard's current primary", k.Addr, k),
			Err: ErrNotPrimary,
		}
	}
	return &Error{
		Code:    "08006", // connection_failure
		Message: fmt.Sprintf("shardgate: cannot connect to server for pool %s", k),
		Err:     err,
	}
}

// ErrNotPrimary is the cause of the error Get returns when a read-write
// pool (Key.ReadWrite) reached a server in recovery or in read-only mode:
// test for it with errors.Is, recheck the topology and retry on the
// shard's current primary.
var ErrNotPrimary = errors.New("server is in recovery or read-only")

// ErrClosed is returned by Get on a closed pool.
var ErrClosed = &Error{Code: "57P01", Message: "shardgate: pool is closed (server removed or proxy shutting down)"}
