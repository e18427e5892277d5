package proxy

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sync"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// stmt is a client's prepared statement, kept by the proxy in transaction
// and statement modes so it can be prepared on whichever server runs it.
type stmt struct {
	query    string
	oids     []uint32
	analysis router.Analysis
	// server is the name the statement has on servers: derived from the
	// text and parameter types, so clients preparing the same statement
	// share it on a server connection.
	server string
	// epoch is the statement name's epoch when the client prepared it; a
	// later epoch means servers said its result type changed since.
	epoch uint32
}

func newStmt(r *router.Router, query string, oids []uint32) *stmt {
	// A cryptographic hash, because two statements sharing a name would
	// silently run one in place of the other.
	h := sha256.New()
	h.Write([]byte(query))
	var b [4]byte
	for _, o := range oids {
		binary.BigEndian.PutUint32(b[:], o)
		h.Write(b[:])
	}
	return &stmt{
		query:    query,
		oids:     oids,
		analysis: r.Analyze(query),
		server:   "sg_" + hex.EncodeToString(h.Sum(nil)[:16]),
	}
}

// stmtFor returns a new client statement for a Parse. Drivers parse the
// same unnamed statement for every execution; when the text, parameter
// types and router are those of the session's previous Parse, its server
// name and analysis are reused rather than hashed and looked up again
// (3-5% of the proxy's CPU on pgbench's extended protocol). The copy keeps
// statements independent: the caller sets its epoch.
func (s *session) stmtFor(query string, oids []uint32) *stmt {
	r := s.srv.o().Router
	if p := s.lastParse; p != nil && s.lastRouter == r && p.query == query && slices.Equal(p.oids, oids) {
		cs := *p
		return &cs
	}
	cs := newStmt(r, query, oids)
	last := *cs
	s.lastParse, s.lastRouter = &last, r
	return cs
}

// serverState is what the proxy remembers about one server session; it
// lives in pool.Conn.State across checkouts.
type serverState struct {
	r *wire.Reader
	// settings are values set on this server beyond its defaults.
	settings map[string]string
	// prepared lists the statements prepared on it, least recently used
	// first.
	prepared *lru
	// unnamed is the client statement last parsed as the server's unnamed
	// statement, or nil if unknown.
	unnamed *stmt
	// ctr are the counters of the connection's pool, found once per
	// connection rather than per checkout.
	ctr *poolCounters
}

// countersOf returns the counters of be's pool, cached in its state.
func (s *Server) countersOf(be *pool.Conn) *poolCounters {
	st := stateOf(be, s.o().PreparedCacheSize)
	if st.ctr == nil {
		st.ctr = s.counters(be.Pool().Key())
	}
	return st.ctr
}

func stateOf(be *pool.Conn, cacheSize int) *serverState {
	if st, ok := be.State.(*serverState); ok {
		return st
	}
	st := &serverState{
		r:        wire.NewReaderFrom(be.Reader(), nil),
		settings: map[string]string{},
		prepared: newLRU(cacheSize),
	}
	be.State = st
	return st
}

// lru is a bounded set of statement names, each with the epoch it was
// prepared in, evicting the least recently used.
type lru struct {
	max   int
	order *list.List // of lruItem, most recent at the front
	items map[string]*list.Element
}

type lruItem struct {
	name string
	// epoch is the statement name's epoch, schema the schema epoch, when
	// the server prepared it.
	epoch, schema uint32
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

// lookup marks name used and reports whether it is present and, if so,
// the epochs it was prepared in.
func (c *lru) lookup(name string) (item lruItem, ok bool) {
	el, ok := c.items[name]
	if !ok {
		return lruItem{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(lruItem), true
}

// add inserts or refreshes name and returns the name evicted to make
// room, or "".
func (c *lru) add(name string, epoch, schema uint32) (evicted string) {
	if el, ok := c.items[name]; ok {
		el.Value = lruItem{name, epoch, schema}
		c.order.MoveToFront(el)
		return ""
	}
	c.items[name] = c.order.PushFront(lruItem{name, epoch, schema})
	if c.order.Len() > c.max {
		el := c.order.Back()
		evicted = el.Value.(lruItem).name
		c.order.Remove(el)
		delete(c.items, evicted)
	}
	return evicted
}

func (c *lru) remove(name string) {
	if el, ok := c.items[name]; ok {
		c.order.Remove(el)
		delete(c.items, name)
	}
}

func (c *lru) clear() {
	c.order.Init()
	clear(c.items)
}

// knownStmts remembers server statement names that some server has
// prepared successfully. A client's Parse of a known statement is answered
// by the proxy without a server: it is prepared where it runs, at Bind.
// That keeps a Parse from waiting for a free server, which matters to
// clients that prepare synchronously while their other connections hold
// transactions open (pgbench -M prepared does).
//
// Server copies are shared between clients, so changes of schema need
// care to keep PostgreSQL's own behaviour:
//   - epochs: when a server says a statement's result type changed
//     ("cached plan must not change result type") or an object it was
//     planned against is gone, its name's epoch moves on. Copies from an
//     older epoch are prepared again before use; a client whose statement
//     is from an older epoch gets the server's error once, as it would
//     directly, and its driver prepares again.
//   - schema: DROP and ALTER through the proxy move the schema epoch. A
//     client's new Parse then goes to a server again, to be checked
//     against the current schema as PostgreSQL would; statements already
//     prepared are left to the server, which revalidates them itself.
type knownStmts struct {
	mu     sync.RWMutex
	names  map[string]struct{}
	epochs map[string]uint32
	schema uint32
	max    int
}

func (k *knownStmts) has(name string) bool {
	k.mu.RLock()
	_, ok := k.names[name]
	k.mu.RUnlock()
	return ok
}

func (k *knownStmts) add(name string) {
	k.mu.Lock()
	if k.names == nil || len(k.names) >= k.max {
		// Crude bound: forgetting only costs a server round trip.
		k.names = make(map[string]struct{}, 64)
	}
	k.names[name] = struct{}{}
	k.mu.Unlock()
}

// epoch returns the current epoch of a statement name and the schema
// epoch.
func (k *knownStmts) epoch(name string) (epoch, schema uint32) {
	k.mu.RLock()
	e, sc := k.epochs[name], k.schema
	k.mu.RUnlock()
	return e, sc
}

// invalidate makes every server copy of a statement stale.
func (k *knownStmts) invalidate(name string) {
	k.mu.Lock()
	delete(k.names, name)
	if k.epochs == nil {
		k.epochs = map[string]uint32{}
	}
	k.epochs[name]++
	k.mu.Unlock()
}

// schemaChanged records DDL: new Parses are checked by a server again.
func (k *knownStmts) schemaChanged() {
	k.mu.Lock()
	k.names = nil
	k.schema++
	k.mu.Unlock()
}
