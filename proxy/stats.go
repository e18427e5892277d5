package proxy

import (
	"sort"

	"sync/atomic"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/router"
)

// poolCounters are the cumulative counters of one pool, as SHOW STATS and
// the metrics report them. Links add to them once per request, not once
// per message: a link keeps its own tally (acct) under the session's lock
// and flushes it when the server says ReadyForQuery.
type poolCounters struct {
	xacts, queries, errors           atomic.Int64
	bytesIn, bytesOut                atomic.Int64
	queryNanos, xactNanos, waitNanos atomic.Int64
	// waitHist is not kept here: the Observer gets each wait.
}

// acct is a link's tally since its last flush. Guarded by the session's mu.
type acct struct {
	queries, errors   int64
	bytesIn, bytesOut int64
	// reqAt is when the request now running was sent, txAt when the
	// transaction now open started; zero when none is.
	reqAt, txAt time.Time
	// lastStmt is the server name of the statement last executed, for
	// the slow query log.
	lastStmt string
}

// counters returns the counters of the pool with key k, creating them on
// first use. They live as long as the server: a pool that is dropped and
// made again (a host removed and added back) keeps counting where it left.
func (s *Server) counters(k pool.Key) *poolCounters {
	if c, ok := s.poolCtr.Load(k); ok {
		return c.(*poolCounters)
	}
	c, _ := s.poolCtr.LoadOrStore(k, new(poolCounters))
	return c.(*poolCounters)
}

// noteSend marks the start of a request on l, and of a transaction if
// none is open. Called by the session goroutine with mu held.
func (s *session) noteSendLocked(l *link) {
	l.acct.bytesIn += s.bytesIn
	s.bytesIn = 0
	if !l.acct.reqAt.IsZero() {
		return // a pipeline: the request in flight started the clock
	}
	now := time.Now()
	l.acct.reqAt = now
	if l.acct.txAt.IsZero() {
		l.acct.txAt = now
	}
}

// flushLocked adds l's tally to its pool's counters when the server is
// ready for the next request, and reports the request's duration to the
// observer and, when slow, to the log. Called by the pump with mu held.
func (s *session) flushLocked(l *link) {
	if l.ctr == nil {
		return
	}
	a := &l.acct
	c := l.ctr
	now := time.Now()
	if a.queries != 0 {
		c.queries.Add(a.queries)
	}
	if a.errors != 0 {
		c.errors.Add(a.errors)
	}
	if a.bytesIn != 0 {
		c.bytesIn.Add(a.bytesIn)
	}
	if a.bytesOut != 0 {
		c.bytesOut.Add(a.bytesOut)
	}
	a.queries, a.errors, a.bytesIn, a.bytesOut = 0, 0, 0, 0
	if !a.reqAt.IsZero() {
		d := now.Sub(a.reqAt)
		c.queryNanos.Add(int64(d))
		o := s.srv.o()
		if o.Observer != nil {
			o.Observer.ObserveQuery(l.shard, roleName(l.rw), d)
		}
		if o.SlowQuery > 0 && d >= o.SlowQuery {
			s.logSlowLocked(l, d, o.LogParameters)
		}
		a.reqAt = time.Time{}
	}
	// The statement belongs to the request just ended, logged or not.
	a.lastStmt = ""
	if l.txStatus == 'I' && !a.txAt.IsZero() {
		c.xacts.Add(1)
		c.xactNanos.Add(int64(now.Sub(a.txAt)))
		a.txAt = time.Time{}
	}
}

// roleName is how stats and metrics name the role of a link's server.
func roleName(rw bool) string {
	if rw {
		return "primary"
	}
	return "replica"
}

// noteWait records the time a request waited for a server connection.
func (s *Server) noteWait(c *poolCounters, shard int, d time.Duration) {
	c.waitNanos.Add(int64(d))
	if ob := s.o().Observer; ob != nil {
		ob.ObserveCheckoutWait(shard, d)
	}
}

// PoolStats is one pool as SHOW POOLS, SHOW STATS and the metrics see it.
type PoolStats struct {
	Key   pool.Key
	Shard string
	// Role is "primary" or "replica": the pool's host role now.
	Role string
	// Servers are the pool's own figures; Size is the most server
	// connections it opens.
	Servers pool.Stats
	Size    int
	// ClientsActive are clients with a server of this pool attached.
	ClientsActive             int
	Xacts, Queries, Errors    int64
	BytesIn, BytesOut         int64
	QueryTime, XactTime, Wait time.Duration
	Mode                      PoolMode
}

// PoolStats returns every pool's figures, ordered by shard, host, user
// and database.
func (s *Server) PoolStats() []PoolStats {
	o := s.o()
	active := s.activeByPool()
	roles, shards := s.hostRoles()
	var out []PoolStats
	for _, p := range o.Pools.All() {
		k := p.Key()
		c := s.counters(k)
		ps := PoolStats{
			Key: k, Servers: p.Stats(), Size: p.Size(), ClientsActive: active[k], Mode: o.Mode,
			Xacts: c.xacts.Load(), Queries: c.queries.Load(), Errors: c.errors.Load(),
			BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
			QueryTime: time.Duration(c.queryNanos.Load()), XactTime: time.Duration(c.xactNanos.Load()),
			Wait: time.Duration(c.waitNanos.Load()),
		}
		ps.Shard, ps.Role = shards[k.Addr], roles[k.Addr]
		if ps.Role == "" {
			ps.Role = roleName(k.ReadWrite)
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		if a.Key.Addr != b.Key.Addr {
			return a.Key.Addr < b.Key.Addr
		}
		if a.Key.User != b.Key.User {
			return a.Key.User < b.Key.User
		}
		if a.Key.Database != b.Key.Database {
			return a.Key.Database < b.Key.Database
		}
		return a.Key.ReadWrite && !b.Key.ReadWrite
	})
	return out
}

// hostRoles maps each known address to its role and shard name.
func (s *Server) hostRoles() (roles, shards map[string]string) {
	roles, shards = map[string]string{}, map[string]string{}
	for _, h := range s.o().hosts() {
		roles[h.Addr], shards[h.Addr] = h.Role, h.Shard
	}
	return roles, shards
}

// activeByPool counts the sessions with a server of each pool attached.
func (s *Server) activeByPool() map[pool.Key]int {
	out := map[pool.Key]int{}
	for _, ss := range s.allSessions() {
		ss.mu.Lock()
		if ss.link != nil {
			out[ss.link.be.Pool().Key()]++
		}
		if d := ss.dtx; d != nil {
			for _, c := range d.conns {
				out[c.be.Pool().Key()]++
			}
		}
		ss.mu.Unlock()
	}
	return out
}

// allSessions returns the sessions connected now.
func (s *Server) allSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// ClientCounts are the connected clients by state.
type ClientCounts struct {
	// Active clients have a server attached; Waiting ones wait for one
	// (a checkout or a pause); Idle ones have neither.
	Active, Waiting, Idle int
	// Paused clients wait at a PAUSE (counted in Waiting too).
	Paused int
	// Admin are admin console sessions (not in the other counts).
	Admin int
	// Accepted and Refused count since start: logins that succeeded, and
	// connections turned away (bad password, too many clients, draining).
	Accepted, Refused int64
}

// A client's states, as SHOW CLIENTS names them.
const (
	clientAdmin   = "admin"
	clientActive  = "active"
	clientWaiting = "waiting"
	clientIdle    = "idle"
)

// stateLocked returns the client's state. SHOW CLIENTS and Clients (the
// metrics) both ask here, so a client counted active is shown active.
// Called with mu held.
func (s *session) stateLocked() string {
	switch {
	case s.admin:
		return clientAdmin
	case s.link != nil || s.dtx != nil || s.scattered != nil:
		return clientActive
	case s.waiting.Load():
		return clientWaiting
	}
	return clientIdle
}

// Clients counts the clients connected now.
func (s *Server) Clients() ClientCounts {
	var cc ClientCounts
	for _, ss := range s.allSessions() {
		ss.mu.Lock()
		switch ss.stateLocked() {
		case clientAdmin:
			cc.Admin++
		case clientActive:
			cc.Active++
		case clientWaiting:
			cc.Waiting++
			if ss.paused.Load() {
				cc.Paused++
			}
		default:
			cc.Idle++
		}
		ss.mu.Unlock()
	}
	cc.Accepted, cc.Refused = s.accepted.Load(), s.refused.Load()
	return cc
}

// fanOuts counts statements run over several shards, by kind.
type fanOuts struct {
	read, write, ddl, copy atomic.Int64
}

// FanOut is the number of statements of one kind run over several shards.
type FanOut struct {
	Kind  string
	Count int64
}

// FanOuts returns the multi-shard statements run since start, by kind.
func (s *Server) FanOuts() []FanOut {
	f := &s.fanouts
	return []FanOut{{"read", f.read.Load()}, {"write", f.write.Load()}, {"ddl", f.ddl.Load()}, {"copy", f.copy.Load()}}
}

// count adds a statement sent to several shards.
func (f *fanOuts) count(p *router.Plan) {
	switch {
	case p.Copy != nil:
		f.copy.Add(1)
	case p.DDL:
		f.ddl.Add(1)
	case p.Write:
		f.write.Add(1)
	default:
		f.read.Add(1)
	}
}

// logSlowLocked logs a request that took d. The text has its constants
// replaced by $n unless the operator asked for parameters in logs: a
// literal may be a password or personal data. Called with mu held.
func (s *session) logSlowLocked(l *link, d time.Duration, withParams bool) {
	sql := ""
	if name := l.acct.lastStmt; name != "" {
		for _, st := range s.stmts {
			if st.server == name {
				sql = st.query
				break
			}
		}
	}
	if sql == "" {
		sql = s.slowSQL
	}
	if !withParams {
		sql = router.Redact(sql)
	}
	s.log.Warn("slow query", "duration", d.String(), "shard", nameOf(s.srv.shardNames(), l.shard), "server", l.be.Addr(),
		"role", roleName(l.rw), "query", sql)
}

// CacheStats returns the statement analysis caches' figures.
func (s *Server) CacheStats() router.CacheStats { return s.o().Router.CacheStats() }
