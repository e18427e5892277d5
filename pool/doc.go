// Package pool owns shardgate's connections to PostgreSQL servers.
//
// There is one Pool per (host, user, database). A Pool opens connections
// with pgconn (which performs TLS and password, md5 or SCRAM
// authentication), then hands the raw, authenticated socket to its user,
// who drives the protocol itself. The pool knows nothing of the protocol
// beyond connecting: resetting a connection before it is returned (ROLLBACK,
// DISCARD ALL) is the caller's job, because only the caller knows what the
// connection was used for.
//
// Checkout is bounded by a timeout; waiters are served first come, first
// served. Idle connections past their idle timeout or lifetime are closed
// lazily at checkout and by a background reaper, which also keeps MinIdle
// connections open.
package pool
