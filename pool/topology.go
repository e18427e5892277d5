package pool

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Topology defaults, used where TopologyOptions leaves a zero value.
const (
	DefaultMonitorInterval = 100 * time.Millisecond
	DefaultMonitorTimeout  = time.Second
	DefaultBanMin          = 250 * time.Millisecond
	DefaultBanMax          = 10 * time.Second
)

// fastInterval is how often a replica is polled while a read waits for it
// to replay a causal LSN: short enough that a wait of a few tens of
// milliseconds is meaningful, long enough not to spin.
const fastInterval = 2 * time.Millisecond

// HostSpec is one server of a shard as configured.
type HostSpec struct {
	// Addr is "host:port".
	Addr string
	// Zone is the availability zone or data centre, for
	// TopologyOptions.Zone; may be empty.
	Zone string
}

// ShardSpec is one shard as configured: its servers in any order, since
// roles are discovered, not configured.
type ShardSpec struct {
	// Name appears in logs, errors and Snapshot; empty means the index.
	Name  string
	Hosts []HostSpec
}

// TopologyOptions configure a Topology. Zero values mean the defaults.
type TopologyOptions struct {
	// Shards are indexed as given: Primary(i) and Read(ctx, i, ...) refer
	// to Shards[i].
	Shards []ShardSpec
	// Connect opens a monitoring connection to addr; the caller supplies
	// credentials and TLS, typically with ConnConfig. The role needs no
	// privileges: the monitor only calls functions open to PUBLIC.
	Connect func(ctx context.Context, addr string) (*pgconn.PgConn, error)
	// Interval is how often each host is polled for its role and position.
	Interval time.Duration
	// Timeout bounds one connection attempt and one poll query.
	Timeout time.Duration
	// BanMin and BanMax bound how long a failed host is left alone before
	// the next attempt: BanMin after the first failure, doubling with each
	// consecutive one up to BanMax.
	BanMin, BanMax time.Duration
	// MaxLag and MaxLagBytes: a replica further behind its primary, in
	// time or in WAL bytes, takes no reads until it catches up. Zero means
	// no limit. Time lag is measured with Interval's resolution, so MaxLag
	// should be several Intervals.
	MaxLag      time.Duration
	MaxLagBytes int64
	// Policy chooses among the replicas that qualify for a read.
	Policy Policy
	// Zone is the proxy's own zone: when set, replicas in it are preferred
	// whenever at least one of them qualifies.
	Zone string
	// Load returns the connections in use to addr (Set.InUse), for
	// LeastConnections; nil makes LeastConnections act as RoundRobin.
	Load func(addr string) int
	// Logger receives state changes (never one line per poll); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Policy is how Read chooses among qualifying replicas.
type Policy uint8

// Read policies.
const (
	// RoundRobin takes the qualifying replicas in turn (the default).
	RoundRobin Policy = iota
	// LeastConnections takes the replica with the fewest connections in use
	// according to TopologyOptions.Load; ties are broken in turn.
	LeastConnections
	// Random takes a qualifying replica at random.
	Random
)

// String returns the policy's configuration name.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round_robin"
	case LeastConnections:
		return "least_connections"
	case Random:
		return "random"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// ParsePolicy parses a policy's configuration name: round_robin,
// least_connections or random.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{RoundRobin, LeastConnections, Random} {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown read policy %q: want round_robin, least_connections or random", s)
}

// Role is what a host was last seen as.
type Role uint8

// Roles.
const (
	RoleUnknown Role = iota // never answered yet
	RolePrimary             // not in recovery
	RoleReplica             // in recovery (a standby)
)

// String returns "unknown", "primary" or "replica".
func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// A host's role, health and lag flag live in one atomic word so that Read
// sees a consistent triple with a single load.
const (
	roleMask   = 0b11
	healthMask = 0b11 << 2
	lagBit     = 1 << 4
	adminBit   = 1 << 5 // banned by an operator (AdminBan): no reads

	healthUnknown = 0 << 2 // not checked yet
	healthUp      = 1 << 2 // answered its last poll
	healthBanned  = 2 << 2 // failed, or banned by the proxy, and not answered since

	stPrimaryUp      = uint32(RolePrimary) | healthUp
	stReplicaUp      = uint32(RoleReplica) | healthUp
	stReplicaLagging = stReplicaUp | lagBit
)

// Host is one server of a topology. Its accessors are cheap atomic loads.
type Host struct {
	addr string
	zone atomic.Pointer[string] // SetHosts may change it
	sh   *shard
	log  *slog.Logger

	// ctx ends the host's monitor, when the topology closes or SetHosts
	// removes the host; done is closed when the monitor has ended and
	// closed its connection (nil if no monitor was started). done is
	// guarded by Topology.mu.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	st       atomic.Uint32 // role | health | lagBit | adminBit
	lsn      atomic.Uint64 // primary: current WAL LSN; replica: replay LSN
	timeline atomic.Uint32 // primaries only: the timeline they write on
	lagBytes atomic.Int64
	lagNanos atomic.Int64

	wake chan struct{} // Recheck and waiting reads; buffered 1

	// The counters every read writes get cache lines of their own, away
	// from the state every read loads.
	_                                  [64]byte
	reads                              atomic.Uint64
	readsRYW, readsLag, readsNoReplica atomic.Uint64
	_                                  [64]byte

	// mu serialises health changes between the monitor and Ban and guards
	// the fields below.
	mu          sync.Mutex
	checked     bool      // a first check has completed (for Ready)
	failures    int       // consecutive
	slowPolls   int       // consecutive timeouts of an up host (see slowPollGrace)
	bannedAt    time.Time // start of the current ban
	bannedUntil time.Time // no attempt before this
	lastErr     string
	banGen      uint64 // bumped by Ban, so a poll already under way cannot lift it
	reconnect   bool   // Ban asks the monitor for a fresh connection
	polled      time.Time
	adminReason string    // with adminBit: the operator's reason
	adminAt     time.Time // with adminBit: when the operator banned it
}

// Addr returns the host's "host:port".
func (h *Host) Addr() string { return h.addr }

// Zone returns the host's configured zone.
func (h *Host) Zone() string { return *h.zone.Load() }

// Shard returns the index of the host's shard.
func (h *Host) Shard() int { return h.sh.index }

// Role returns the role the host had when it last answered; a host that is
// down keeps its last known role.
func (h *Host) Role() Role { return Role(h.st.Load() & roleMask) }

// Up reports whether the host answered its last poll and is not banned,
// by a failure or by an operator.
func (h *Host) Up() bool { return h.st.Load()&(healthMask|adminBit) == healthUp }

// Lagging reports whether the host is a replica too far behind to read.
func (h *Host) Lagging() bool { return h.st.Load()&lagBit != 0 }

// LSN returns the host's position at its last poll: the current WAL LSN of
// a primary, the replay LSN of a replica (0 before it replayed anything).
func (h *Host) LSN() LSN { return LSN(h.lsn.Load()) }

// String returns the address, for logs.
func (h *Host) String() string { return h.addr }

// update applies f to the status word atomically: the monitor, Ban and
// the shard's primary choice all change parts of it.
func (h *Host) update(f func(old uint32) uint32) {
	for {
		old := h.st.Load()
		if st := f(old); st == old || h.st.CompareAndSwap(old, st) {
			return
		}
	}
}

// setHealth replaces the health bits; leaving "up" clears the lag flag
// because lag is only meaningful for a replica that answers. An operator
// ban is independent of health and stays.
func (h *Host) setHealth(health uint32) {
	h.update(func(old uint32) uint32 {
		st := old&(roleMask|adminBit) | health
		if health == healthUp {
			st |= old & lagBit
		}
		return st
	})
}

// setLagging sets or clears the lag flag of a host that is up.
func (h *Host) setLagging(lagging bool) {
	h.update(func(old uint32) uint32 {
		st := old &^ lagBit
		if lagging && old&healthMask == healthUp {
			st |= lagBit
		}
		return st
	})
}

// shard holds one shard's hosts and the state derived from all of them.
type shard struct {
	index int
	name  string
	// hosts is replaced whole by SetHosts, under mu, and read without a
	// lock by every read: see list.
	hosts atomic.Pointer[[]*Host]

	primary atomic.Pointer[Host]
	waiters atomic.Int32 // reads waiting for a replica to replay
	notify  atomic.Pointer[chan struct{}]
	_       [64]byte      // keep rr, written by every read, off their line
	rr      atomic.Uint64 // round-robin counter
	_       [64]byte

	// mu guards the primary choice and the lag history, which combine
	// the latest polls of several hosts.
	mu       sync.Mutex
	history  lagHistory
	conflict string // the primary conflict last logged, to log each once
}

// list returns the shard's hosts in configuration order. The slice is
// never modified: SetHosts stores a new one.
func (sh *shard) list() []*Host { return *sh.hosts.Load() }

// Topology tracks the role, health and lag of every host of every shard
// and chooses hosts for writes (Primary) and reads (Read).
type Topology struct {
	// cfg holds the options, replaced whole by SetOptions so that a read
	// or a poll sees one consistent set with one atomic load.
	cfg    atomic.Pointer[TopologyOptions]
	log    *slog.Logger
	shards []*shard // fixed: only each shard's hosts change

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu guards started, closed and Host.done, and serialises SetHosts, so
	// that a host added while the topology starts is monitored once.
	mu              sync.Mutex
	started, closed bool

	pending atomic.Int32 // hosts without a completed first check
	ready   chan struct{}
}

// NewTopology returns a topology for o; Start begins monitoring. It panics
// without o.Connect.
func NewTopology(o TopologyOptions) *Topology {
	if o.Connect == nil {
		panic("pool: TopologyOptions.Connect is nil")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	t := &Topology{log: log, ready: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.cfg.Store(normalize(o))
	n := 0
	for i, spec := range o.Shards {
		sh := &shard{index: i, name: spec.Name}
		if sh.name == "" {
			sh.name = strconv.Itoa(i)
		}
		ch := make(chan struct{})
		sh.notify.Store(&ch)
		var hosts []*Host
		for _, hs := range spec.Hosts {
			hosts = append(hosts, t.newHost(sh, hs))
		}
		sh.hosts.Store(&hosts)
		n += len(hosts)
		t.shards = append(t.shards, sh)
	}
	t.pending.Store(int32(n))
	if n == 0 {
		close(t.ready)
	}
	return t
}

// normalize returns a copy of o with defaults for its zero values.
// Shards are left out: after NewTopology, each shard's hosts are the truth.
func normalize(o TopologyOptions) *TopologyOptions {
	o.Shards = nil
	if o.Interval <= 0 {
		o.Interval = DefaultMonitorInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultMonitorTimeout
	}
	if o.BanMin <= 0 {
		o.BanMin = DefaultBanMin
	}
	if o.BanMax <= 0 {
		o.BanMax = DefaultBanMax
	}
	o.BanMax = max(o.BanMax, o.BanMin)
	return &o
}

// opts returns the current options.
func (t *Topology) opts() *TopologyOptions { return t.cfg.Load() }

// newHost returns a host of sh, not monitored yet.
func (t *Topology) newHost(sh *shard, hs HostSpec) *Host {
	h := &Host{addr: hs.Addr, sh: sh, wake: make(chan struct{}, 1)}
	zone := hs.Zone
	h.zone.Store(&zone)
	h.log = t.log.With("shard", sh.name, "addr", hs.Addr)
	h.ctx, h.cancel = context.WithCancel(t.ctx)
	return h
}

// allHosts returns every host, shard by shard.
func (t *Topology) allHosts() []*Host {
	var out []*Host
	for _, sh := range t.shards {
		out = append(out, sh.list()...)
	}
	return out
}

// Start starts one monitor goroutine per host. Calling it again, or after
// Close, does nothing.
func (t *Topology) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed {
		return
	}
	t.started = true
	for _, h := range t.allHosts() {
		t.startMonitorLocked(h)
	}
}

// startMonitorLocked starts h's monitor goroutine, which runs until h.ctx
// ends (Close, or SetHosts removing h). t.mu is held.
func (t *Topology) startMonitorLocked(h *Host) {
	h.done = make(chan struct{})
	t.wg.Add(1)
	go t.monitor(h)
}

// Close stops the monitors and closes their connections. Hosts keep their
// last state; nothing is polled any more.
func (t *Topology) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// Ready waits until every host has been checked once, answering or not,
// so that the first queries after start-up find roles known. Hosts that
// SetHosts removes are not waited for, nor hosts it adds after Ready has
// returned. When ctx ends
// first, the error names the hosts still unchecked.
func (t *Topology) Ready(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
	}
	var slow []string
	for _, h := range t.allHosts() {
		h.mu.Lock()
		if !h.checked {
			slow = append(slow, h.addr)
		}
		h.mu.Unlock()
	}
	if len(slow) == 0 {
		return nil
	}
	return fmt.Errorf("shardgate: hosts not checked yet: %s: %w", strings.Join(slow, ", "), ctx.Err())
}

// NumShards returns the number of shards.
func (t *Topology) NumShards() int { return len(t.shards) }

// Hosts returns the hosts of a shard in configuration order, or nil for an
// index out of range.
func (t *Topology) Hosts(shard int) []*Host {
	if shard < 0 || shard >= len(t.shards) {
		return nil
	}
	return append([]*Host(nil), t.shards[shard].list()...)
}

// Ban takes h out of traffic after a failure the proxy saw (connection
// refused, connection lost) until the monitor sees it answer again, on a
// fresh connection, after the ban's backoff. It is meant for failures of
// the server, not of one session (a query error, a full pool): a host
// that still answers is back after BanMin. Banning a banned host does
// nothing.
func (t *Topology) Ban(h *Host, err error) {
	h.mu.Lock()
	if h.st.Load()&healthMask == healthBanned {
		h.mu.Unlock()
		return
	}
	h.banGen++
	h.reconnect = true
	retry := t.banLocked(h, err, time.Now())
	h.mu.Unlock()
	h.log.Warn("shardgate: host banned after a failure seen by the proxy; it takes no traffic until it answers again",
		"err", briefError(err, t.opts().Timeout), "retry_in", retry)
	h.sh.changed(t)
	h.poke()
}

// Recheck asks the monitors of h's shard to poll now, e.g. because a
// connection found h is not a primary any more: when one host's role is
// in doubt, so are the others' (the new primary may not have been polled
// since its promotion). Calls in quick succession cost one poll per host;
// a banned host is still only retried when its backoff ends.
func (t *Topology) Recheck(h *Host) {
	for _, o := range h.sh.list() {
		o.poke()
	}
}

func (h *Host) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
