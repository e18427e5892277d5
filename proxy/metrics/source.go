package metrics

import (
	"context"
	"time"

	"github.com/shardgate/shardgate/pool"
)

// Source is what the metrics read at scrape time. Counters live in the
// proxy and are pulled, not pushed, so that /metrics and the admin
// console's SHOW STATS print the very same numbers and the hot path pays
// for one atomic add, not for a Prometheus label lookup.
//
// Each method is called once per scrape, possibly from several scrapes at
// once; it must be safe for concurrent use and should not block on the
// network (Ready excepted).
type Source interface {
	// Pools describes every server connection pool.
	Pools() []PoolSample
	// Clients describes the client connections.
	Clients() ClientSample
	// Hosts is the topology's view of every server (pool.Topology.Snapshot).
	Hosts() []pool.HostStatus
	// ParseCache describes the cache of parsed statements.
	ParseCache() CacheSample
	// FanOuts counts the statements sent to more than one shard, by kind.
	FanOuts() []FanOutSample
	// Ready reports whether a primary of every shard can be reached (for
	// /readyz); nil means ready. It may do I/O and must give up when ctx
	// ends, since a load balancer's probe has a deadline of its own.
	Ready(ctx context.Context) error
}

// PoolSample is one server connection pool: the connections to one host
// as one user to one database. Counters are cumulative since the pool was
// created and must never go down while it lives.
type PoolSample struct {
	// Shard is the shard's name, Host the server's "host:port", Role
	// "primary" or "replica" (the host's role as the pool sees it).
	Shard, Host, Role, User, Database string
	// ServersActive are linked to a client, ServersIdle are ready for one,
	// ServersLogin are still connecting or authenticating.
	ServersActive, ServersIdle, ServersLogin int
	// ClientsWaiting are clients waiting for a connection from this pool.
	ClientsWaiting int
	// Xacts and Queries count transactions and statements run on the
	// pool's connections; Errors counts the statements among them that
	// failed.
	Xacts, Queries, Errors int64
	// BytesIn went from clients to the server, BytesOut from the server
	// to clients.
	BytesIn, BytesOut int64
	// QueryTime and XactTime are the time spent in statements and in
	// transactions; WaitTime is the time clients spent waiting for one of
	// the pool's connections.
	QueryTime, XactTime, WaitTime time.Duration
	// CheckoutTimeouts counts clients that gave up waiting for a
	// connection; ConnectErrors counts failed attempts to open one.
	CheckoutTimeouts, ConnectErrors int64
}

// ClientSample describes the client connections.
type ClientSample struct {
	// Active clients are linked to a server connection, Waiting ones wait
	// for one, Idle ones are between transactions, Paused ones are held
	// back until the proxy resumes them.
	Active, Waiting, Idle, Paused int
	// Total counts the connections accepted since start; Refused those
	// turned away before their session began.
	Total, Refused int64
}

// CacheSample describes the parsed-statement cache.
type CacheSample struct {
	// Hits and Misses are cumulative lookups.
	Hits, Misses uint64
	// Size is the number of statements cached now.
	Size int
}

// FanOutSample counts the statements of one kind that were sent to more
// than one shard.
type FanOutSample struct {
	// Kind is what was fanned out, such as "read", "write", "ddl" or
	// "copy"; it becomes a label, so it must come from a small fixed set.
	Kind string
	// Count is cumulative.
	Count int64
}

// RebalanceSample is the progress of an online move of a table's rows
// between shards. The zero value means no move is running.
type RebalanceSample struct {
	// Table is the table being moved, FromShard and ToShard the shards'
	// names.
	Table, FromShard, ToShard string
	// RowsCopied have been copied so far out of RowsTotal expected (an
	// estimate taken when the copy started; RowsCopied may pass it).
	RowsCopied, RowsTotal int64
	// Phase is the move's current step, such as "copy", "catchup" or
	// "cutover".
	Phase string
}
