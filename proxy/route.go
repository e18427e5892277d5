package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unsafe"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/router"
)

// ReplicaReads says where statements that cannot change data go.
type ReplicaReads uint8

// Replica read modes.
const (
	// ReplicaReadsOn sends reads to replicas, and to the primary when none
	// is usable.
	ReplicaReadsOn ReplicaReads = iota
	// ReplicaReadsOff sends everything to the primary.
	ReplicaReadsOff
	// ReplicaReadsIncludePrimary lets the primary take reads like one more
	// replica.
	ReplicaReadsIncludePrimary
)

// RYWMode is the read-your-writes guarantee given to each client.
type RYWMode uint8

// Read-your-writes modes.
const (
	// RYWLSN sends a client's reads only to replicas that have replayed
	// its last commit, by WAL position.
	RYWLSN RYWMode = iota
	// RYWTime sends a client's reads to the primary for a while after each
	// of its writes.
	RYWTime
	// RYWOff gives no guarantee.
	RYWOff
)

// Routing configures read/write splitting; it needs Options.Topology.
type Routing struct {
	ReplicaReads ReplicaReads
	RYW          RYWMode
	// RYWWait bounds how long a read waits for a replica to replay the
	// client's last commit before it goes to the primary (RYWLSN).
	RYWWait time.Duration
	// RYWWindow is how long after a write a client's reads go to the
	// primary (RYWTime).
	RYWWindow time.Duration
	// NoReadRetry gives a read that fails on a replica before anything
	// reached the client an error, instead of running it again on another
	// host; tests use it to show the retry is what saves such reads.
	NoReadRetry bool
}

// roleOverride is a client's SET shardgate.role.
type roleOverride uint8

const (
	roleAuto roleOverride = iota
	rolePrimary
	roleReplica
)

// need is what a request requires of the server it runs on.
type need struct {
	// write: the request may change data; it must run on the primary.
	write bool
	hint  router.Hint
	// readOnlyTx: the request starts with SET TRANSACTION READ ONLY, which
	// makes a transaction whose BEGIN is deferred a read-only one.
	readOnlyTx bool
	// shard is the index+1 of the shard the request must run on; 0 means
	// the default shard.
	shard int
	// any: the request goes to whatever server the client has.
	any bool
}

// anyServer is the need of a request that names state on the server it
// was sent to (a portal); without a link it fails wherever it goes.
var anyServer = need{write: true, any: true}

// onShard returns n bound to shard i.
func (n need) onShard(i int) need {
	n.shard = i + 1
	return n
}

// shardOf is the index of the shard a request runs on.
func (s *session) shardOf(n need) int {
	if n.shard > 0 {
		return n.shard - 1
	}
	return s.srv.defaultShard()
}

func needOf(a *router.Analysis) need {
	n := need{write: a.Write, hint: a.Hint}
	if len(a.Statements) > 0 && a.Statements[0].Command == router.CmdSetTransaction && a.Statements[0].TxAccess == router.TxReadOnly {
		n.readOnlyTx = true
	}
	return n
}

// deferredBegin is a lone BEGIN the proxy answered itself: the server is
// picked by the transaction's first statement, and the BEGIN goes ahead of
// it in the same packet.
type deferredBegin struct {
	sql    string
	access router.TxAccess
	// failed: the proxy refused a request of the transaction, which a
	// server would have aborted.
	failed bool
}

// target is the server a new link goes to.
type target struct {
	pool *pool.Pool
	host *pool.Host // nil without a topology
	// rw: the shard's primary, through a pool that only connects to a
	// server accepting writes.
	rw    bool
	shard int
}

// recheckPause is how long a write waits for the monitor to find a new
// primary after the old one turned out to be in recovery.
const recheckPause = 50 * time.Millisecond

// routeAttempts bounds how many hosts one request tries before giving up.
const routeAttempts = 3

// route picks the server for a request that needs a new link, and checks a
// connection out of its pool.
func (s *session) route(n need) (*pool.Conn, target, error) {
	exclude := s.exclude
	var lastErr error
	for range routeAttempts {
		t, err := s.pick(n, exclude)
		if err != nil {
			return nil, t, err
		}
		start := time.Now()
		s.waiting.Store(true)
		be, err := s.srv.checkoutAlive(t.pool)
		s.waiting.Store(false)
		if err == nil {
			s.srv.noteWait(s.srv.countersOf(be), t.shard, time.Since(start))
			return be, t, nil
		}
		s.srv.noteWait(s.srv.counters(t.pool.Key()), t.shard, time.Since(start))
		lastErr = err
		topo := s.srv.o().Topology
		var pe *pool.Error
		switch {
		case topo == nil || t.host == nil:
			return nil, t, err
		case errors.Is(err, pool.ErrNotPrimary):
			// The host went into recovery (it restarted as a standby)
			// before the monitor noticed; look again and retry.
			s.log.Warn("server is not a primary any more; looking for the new one", "server", t.host.Addr())
			topo.Recheck(t.host)
			time.Sleep(recheckPause)
		case errors.As(err, &pe) && pe.SQLState() == "08006":
			topo.Ban(t.host, err)
			exclude = t.host
		default:
			return nil, t, err // a checkout timeout: the host is busy, not down
		}
	}
	return nil, target{}, lastErr
}

// pick decides where a request goes: the shard's primary for writes and
// for transactions that are not read-only, a replica for reads, within the
// client's read-your-writes guarantee.
func (s *session) pick(n need, exclude *pool.Host) (target, error) {
	t, err := s.pickHost(n, exclude)
	t.shard = s.shardOf(n)
	return t, err
}

func (s *session) pickHost(n need, exclude *pool.Host) (target, error) {
	shard := s.shardOf(n)
	topo := s.srv.o().Topology
	if topo == nil {
		return target{pool: s.srv.pool(s.user, s.db, shard, s.srv.o().Shards[shard].Primary, false)}, nil
	}
	rt := &s.srv.o().Routing
	s.mu.Lock()
	write := n.write
	if b := s.begin; b != nil {
		write = !s.readOnlyTxLocked(b, n)
	}
	forced := false
	switch {
	case n.hint == router.HintPrimary:
		write = true
	case n.hint == router.HintReplica:
		write, forced = false, true
	case s.role == rolePrimary:
		write = true
	case s.role == roleReplica:
		write, forced = false, true
	}
	minLSN, wroteAt, primaryUntil := max(s.causal.at(shard), s.srv.readFloor(shard)), s.wroteAt, s.primaryUntil
	pinned := s.pinned
	s.mu.Unlock()

	if write || s.mode == SessionMode || pinned || rt.ReplicaReads == ReplicaReadsOff {
		return s.primaryTarget(shard)
	}
	req := pool.ReadRequest{IncludePrimary: rt.ReplicaReads == ReplicaReadsIncludePrimary, Exclude: exclude}
	if !forced {
		switch rt.RYW {
		case RYWLSN:
			req.MinLSN, req.Wait = minLSN, rt.RYWWait
			if time.Now().Before(primaryUntil) {
				return s.rywPrimary(shard)
			}
		case RYWTime:
			if !wroteAt.IsZero() && time.Since(wroteAt) < rt.RYWWindow {
				return s.rywPrimary(shard)
			}
		}
	}
	h, _, err := topo.Read(context.Background(), shard, req)
	if err != nil {
		return target{}, err
	}
	p, _ := topo.Primary(shard)
	rw := h == p
	return target{pool: s.srv.pool(s.user, s.db, shard, h.Addr(), rw), host: h, rw: rw}, nil
}

// rywPrimary sends a read to the primary for read-your-writes, and counts
// it so.
func (s *session) rywPrimary(shard int) (target, error) {
	t, err := s.primaryTarget(shard)
	if err == nil {
		s.srv.o().Topology.NoteRYWRead(t.host)
	}
	return t, err
}

func (s *session) primaryTarget(shard int) (target, error) {
	h, err := s.srv.o().Topology.Primary(shard)
	if err != nil {
		return target{}, err
	}
	return target{pool: s.srv.pool(s.user, s.db, shard, h.Addr(), true), host: h, rw: true}, nil
}

// readOnlyTxLocked reports whether a transaction whose BEGIN was deferred
// can run on a replica. A serializable one cannot: a hot standby refuses
// that isolation level.
func (s *session) readOnlyTxLocked(b *deferredBegin, n need) bool {
	if strings.Contains(strings.ToLower(b.sql), "serializable") {
		return false
	}
	switch b.access {
	case router.TxReadOnly:
		return true
	case router.TxReadWrite:
		return false
	}
	if n.readOnlyTx {
		return true
	}
	v := strings.ToLower(s.settings.values["default_transaction_read_only"])
	return v == "on" || v == "true" || v == "1" || v == "yes"
}

// fitsLocked reports whether an idle link suits a request, or whether it is
// better let go so the request is routed afresh.
func (s *session) fitsLocked(l *link, n need) bool {
	if !n.any && l.shard != s.shardOf(n) {
		return false
	}
	if s.srv.o().Topology == nil || s.mode == SessionMode || s.pinned {
		return true
	}
	if n.write || n.hint == router.HintPrimary || s.role == rolePrimary {
		return l.rw
	}
	return !l.rw || s.srv.o().Routing.ReplicaReads == ReplicaReadsOff
}

// lookahead widens a read's need to the rest of its extended-protocol
// batch, as far as the client has already sent it: a batch runs on one
// server, so a write anywhere in it needs the primary. What the client has
// not sent yet cannot be known; a write arriving later in a batch that
// started on a replica gets the server's read-only error.
func (s *session) lookahead(n need) need {
	if n.write || n.hint != router.HintNone || s.srv.o().Topology == nil {
		return n
	}
	b := s.in.Peek()
	for len(b) >= 5 {
		size := int(binary.BigEndian.Uint32(b[1:5]))
		if size < 4 || len(b) < 1+size {
			break
		}
		typ, body := b[0], b[5:1+size]
		b = b[1+size:]
		switch typ {
		case 'S', 'Q', 'X':
			return n
		case 'P':
			_, rest, ok := cutCStringBytes(body)
			q, _, ok2 := cutCStringBytes(rest)
			if !ok || !ok2 {
				return n
			}
			a := s.srv.o().Router.Analyze(unsafe.String(unsafe.SliceData(q), len(q)))
			if a.Write || a.Hint == router.HintPrimary {
				n.write = true
				return n
			}
		case 'B':
			_, rest, ok := cutCStringBytes(body)
			name, _, ok2 := cutCStringBytes(rest)
			if !ok || !ok2 || len(name) == 0 {
				continue
			}
			s.mu.Lock()
			cs := s.stmts[string(name)]
			s.mu.Unlock()
			if cs != nil && (cs.analysis.Write || cs.analysis.Hint == router.HintPrimary) {
				n.write = true
				return n
			}
		}
	}
	return n
}
