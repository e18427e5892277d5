package proxy

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
}

func newStmt(query string, oids []uint32) *stmt {
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
		analysis: router.Analyze(query),
		server:   "sg_" + hex.EncodeToString(h.Sum(nil)[:16]),
	}
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

// lru is a bounded set of names, evicting the least recently used.
type lru struct {
	max   int
	order *list.List // of string, most recent at the front
	items map[string]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

// touch marks name used and reports whether it was present.
func (c *lru) touch(name string) bool {
	el, ok := c.items[name]
	if ok {
		c.order.MoveToFront(el)
	}
	return ok
}

// add inserts name and returns the name evicted to make room, or "".
func (c *lru) add(name string) (evicted string) {
	if c.touch(name) {
		return ""
	}
	c.items[name] = c.order.PushFront(name)
	if c.order.Len() > c.max {
		el := c.order.Back()
		evicted = el.Value.(string)
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

func (c *lru) len() int { return len(c.items) }

// knownStmts remembers server statement names that some server has
// prepared successfully. A client's Parse of a known statement is answered
// by the proxy without a server: it is prepared where it runs, at Bind.
// That keeps a Parse from waiting for a free server, which matters to
// clients that prepare synchronously while their other connections hold
// transactions open (pgbench -M prepared does). The cost is that a
// statement made invalid by DDL since reports its error at Bind instead.
type knownStmts struct {
	mu    sync.RWMutex
	names map[string]struct{}
	max   int
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
