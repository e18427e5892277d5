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
//
// A Topology watches the servers of every shard: one goroutine per host
// polls its role (primary or replica) and WAL position, bans hosts that
// fail, with exponential backoff, and measures each replica's lag behind
// its primary. Primary returns a shard's current primary, rediscovered
// after a promotion without a restart; Read chooses a replica for a read
// that is up, not lagging and, for read-your-writes, has replayed the
// client's causal LSN, waiting briefly for one if asked, else falls back
// to the primary and says why. Both are lock-free atomic loads.
//
// Both follow a configuration reload without a restart: Pool.SetOptions
// and Set.Reconfigure resize pools, closing surplus connections only when
// they are idle; Topology.SetHosts and Topology.SetOptions add and remove
// hosts and change the monitoring and read settings, swapping immutable
// values so that reads stay lock-free. Only the number of shards is fixed.
// Topology.AdminBan lets an operator drain a replica.
package pool
