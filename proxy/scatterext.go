package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// scatterPortal is a portal bound to a statement that runs on several
// shards. No server holds it: it is run on each shard when the client
// executes it.
type scatterPortal struct {
	plan  *router.Plan
	set   shardSet
	n     need
	query string
	oids  []uint32
	// bind is the client's Bind body with the portal and statement names
	// emptied: the parameters and formats every shard gets.
	bind []byte
	ps   *params
	how  runHow
	// parts, for an INSERT split by shard, is what each shard runs.
	parts map[int]*portalPart
	// savepoint, when set, is a savepoint statement of a transaction over
	// several shards: it runs on every shard of the transaction.
	savepoint *savepointOp
	// end, when set, is the COMMIT or ROLLBACK of the client's
	// transaction over several shards, which the proxy runs itself.
	end *router.Statement
}

// bindTxEnd binds COMMIT or ROLLBACK of a transaction over several
// shards: executing it ends the transaction on every shard.
func (s *session) bindTxEnd(portal []byte, st router.Statement) error {
	s.mu.Lock()
	if s.scatterPortals == nil {
		s.scatterPortals = map[string]*scatterPortal{}
	}
	s.scatterPortals[string(portal)] = &scatterPortal{end: &st}
	s.mu.Unlock()
	return s.reply([]byte{'2', 0, 0, 0, 4})
}

// bindScatter handles a Bind whose statement runs on several shards.
func (s *session) bindScatter(portal []byte, cs *stmt, p *router.Plan, set shardSet, n need, ps *params, rest []byte) error {
	if op, ok := savepointOf(cs.query); ok && s.inDist() {
		s.mu.Lock()
		if s.scatterPortals == nil {
			s.scatterPortals = map[string]*scatterPortal{}
		}
		s.scatterPortals[string(portal)] = &scatterPortal{savepoint: &op, query: cs.query}
		s.mu.Unlock()
		return s.reply([]byte{'2', 0, 0, 0, 4})
	}
	how, err := s.multiShard(&cs.analysis, cs.query, p, set)
	if err != nil {
		return s.reject('B', err)
	}
	sp := &scatterPortal{plan: p, set: set, n: n, query: cs.query, oids: cs.oids, ps: ps,
		bind: append([]byte{0, 0}, rest...), how: how}
	if p.Insert != nil && len(set) > 1 {
		if err := s.splitInsertPortal(sp, rest); err != nil {
			return s.reject('B', err)
		}
	}
	if p.Rewritten != "" && p.Merge != nil && len(set) > 1 {
		sp.query = p.Rewritten
		if p.Merge.Hidden > 0 {
			b, err := withHiddenFormats(sp.bind, p.Merge.Hidden)
			if err != nil {
				return protocolViolation("Bind", err)
			}
			sp.bind = b
		}
	}
	s.mu.Lock()
	if s.scatterPortals == nil {
		s.scatterPortals = map[string]*scatterPortal{}
	}
	s.scatterPortals[string(portal)] = sp
	s.mu.Unlock()
	return s.reply([]byte{'2', 0, 0, 0, 4})
}

// scatterPortalOf returns the scatter portal named, if it is one.
func (s *session) scatterPortalOf(name []byte) *scatterPortal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scatterPortals[string(name)]
}

// forgetScatterPortal drops a portal a new Bind or a Close replaces.
func (s *session) forgetScatterPortal(name []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.scatterPortals[string(name)]; ok {
		delete(s.scatterPortals, string(name))
		return true
	}
	return false
}

// writeExtended sends the requests that run a scatter portal on one
// server: Parse and Bind unnamed, Describe (to learn the row shape), and
// Execute unless only a description is wanted.
func (sp *scatterPortal) writeExtended(be *pool.Conn, execute bool) {
	sp.writeFor(be, sp.query, sp.oids, sp.bind, execute)
}

func (sp *scatterPortal) writeFor(be *pool.Conn, query string, oids []uint32, bind []byte, execute bool) {
	w := be.Writer()
	wire.WriteMessage(w, &pgproto3.Parse{Query: query, ParameterOIDs: oids})
	wire.WriteFrame(w, 'B', bind)
	wire.WriteFrame(w, 'D', []byte{'P', 0})
	if execute {
		wire.WriteFrame(w, 'E', []byte{0, 0, 0, 0, 0})
	}
	wire.WriteFrame(w, 'S', nil)
}

// describeScatter answers Describe of a scatter portal from one shard:
// every shard has the same tables.
func (s *session) describeScatter(sp *scatterPortal) error {
	if sp.end != nil || sp.savepoint != nil {
		return s.reply([]byte{'n', 0, 0, 0, 4})
	}
	var m *mergeRun
	var err error
	if len(sp.set) > 1 {
		if m, err = s.mergeFor(sp.plan, sp.ps); err != nil {
			return s.reject('D', err)
		}
	}
	var sc *scatter
	if s.inDist() {
		// Inside the transaction: it may have created what the
		// statement uses.
		sc, err = s.openInDist(sp.set[:1], false)
	} else {
		sc, err = s.openShards(sp.set[:1], sp.n)
	}
	if err != nil {
		return s.reject('D', err)
	}
	c := sc.conns[0]
	err = sc.send(func(be *pool.Conn) { sp.writeExtended(be, false) })
	if err == nil {
		var typ byte
		var body []byte
		typ, body, err = sc.head(c)
		switch {
		case err != nil:
			err = sc.lost(c, err)
		case typ == 'T' && m != nil:
			err = m.describe(s, body)
		case typ == 'T' || typ == 'n':
			s.writeOut(typ, body)
		case typ == 'E':
			sc.firstErr = sc.shardError(c, body)
			err = sc.fail()
		}
	}
	return sc.finish(err, false)
}

// executeScatter runs a scatter portal on its shards.
func (s *session) executeScatter(sp *scatterPortal, maxRows uint32) error {
	if sp.end != nil {
		msg, _ := s.endDistReply(sp.end.Command == router.CmdCommit, sp.end.Chain)
		if msg[0] == 'E' {
			s.mu.Lock()
			s.skipUntilSync = true
			s.mu.Unlock()
		}
		return s.reply(msg)
	}
	if sp.savepoint != nil {
		return s.distSavepoint(*sp.savepoint, append([]byte(sp.query), 0), false)
	}
	if maxRows > 0 {
		return s.reject('E', &Error{Code: "0A000",
			Message: "fetching a statement over several shards a few rows at a time (Execute with a row limit) is not supported",
			Hint:    "fetch all rows at once, or add a condition on the sharding key"})
	}
	var m *mergeRun
	var err error
	if len(sp.set) > 1 {
		if m, err = s.mergeFor(sp.plan, sp.ps); err != nil {
			return s.reject('E', err)
		}
	}
	var sc *scatter
	if sp.how == runInDist {
		sc, err = s.openInDist(sp.set, sp.plan.Write)
	} else {
		sc, err = s.openShards(sp.set, sp.n)
	}
	if err != nil {
		return s.reject('E', err)
	}
	if len(sp.set) > 1 {
		s.srv.fanouts.count(sp.plan) // at Execute: Bind and Describe run nothing
	}
	sc.ddl = sp.plan.DDL
	sc.reference = sp.plan.Reference && sp.plan.Write
	sc.copy = sp.plan.Copy
	if sp.parts != nil {
		err = sc.sendEach(func(c *shardConn, _ int) {
			part := sp.parts[c.shard]
			sp.writeFor(c.be, part.query, part.oids, part.bind, true)
		})
	} else {
		err = sc.send(func(be *pool.Conn) { sp.writeExtended(be, true) })
	}
	if err == nil {
		err = sc.results(m, false)
	}
	return sc.finish(err, false)
}

// withHiddenFormats extends a Bind body's result format codes to the
// hidden columns a rewritten query adds, when the client gave one code per
// column: the server wants exactly one per column. Hidden columns come in
// text, which the merge reads as well as binary.
func withHiddenFormats(bind []byte, hidden int) ([]byte, error) {
	bad := fmt.Errorf("malformed Bind")
	b := bind
	skip := func(n int) bool {
		if len(b) < n {
			return false
		}
		b = b[n:]
		return true
	}
	for range 2 { // portal and statement names, both empty here
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, bad
		}
		b = b[i+1:]
	}
	if len(b) < 2 {
		return nil, bad
	}
	nf := int(binary.BigEndian.Uint16(b))
	if !skip(2+2*nf) || len(b) < 2 {
		return nil, bad
	}
	nv := int(binary.BigEndian.Uint16(b))
	skip(2)
	for range nv {
		if len(b) < 4 {
			return nil, bad
		}
		size := int(int32(binary.BigEndian.Uint32(b)))
		skip(4)
		if size > 0 && !skip(size) {
			return nil, bad
		}
	}
	if len(b) < 2 {
		return nil, bad
	}
	nr := int(binary.BigEndian.Uint16(b))
	if nr <= 1 {
		return bind, nil // none or one code: it applies to every column
	}
	head := len(bind) - len(b)
	out := make([]byte, 0, len(bind)+2*hidden)
	out = append(out, bind[:head]...)
	out = binary.BigEndian.AppendUint16(out, uint16(nr+hidden))
	out = append(out, b[2:]...)
	for range hidden {
		out = append(out, 0, 0)
	}
	return out, nil
}

// describeInDist answers Describe of a statement in a transaction over
// several shards, from the transaction's first shard (it may have created
// what the statement uses).
func (s *session) describeInDist(cs *stmt) error {
	s.mu.Lock()
	shard := s.dtx.conns[0].shard
	s.mu.Unlock()
	sc, err := s.openInDist(shardSet{shard}, false)
	if err != nil {
		return s.reject('D', err)
	}
	c := sc.conns[0]
	err = sc.send(func(be *pool.Conn) {
		w := be.Writer()
		wire.WriteMessage(w, &pgproto3.Parse{Query: cs.query, ParameterOIDs: cs.oids})
		wire.WriteFrame(w, 'D', []byte{'S', 0})
		wire.WriteFrame(w, 'S', nil)
	})
	for err == nil {
		var typ byte
		var body []byte
		typ, body, err = sc.head(c)
		if err != nil {
			err = sc.lost(c, err)
			break
		}
		switch typ {
		case 't':
			s.writeOut(typ, body)
			continue
		case 'T', 'n':
			s.writeOut(typ, body)
		case 'E':
			sc.firstErr = sc.shardError(c, body)
			err = sc.fail()
		}
		break
	}
	return sc.finish(err, false)
}
