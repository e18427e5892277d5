package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// query handles a simple-protocol Query.
func (s *session) query(body []byte) error {
	s.mu.Lock()
	skip := s.skipUntilSync
	s.mu.Unlock()
	if skip {
		return nil // a server ignores it too, until Sync
	}
	text := bytes.TrimSuffix(body, []byte{0})
	// The analysis keeps no reference to the text, so it may read the
	// message buffer in place: no copy on the hot path.
	a := s.srv.o().Router.Analyze(unsafe.String(unsafe.SliceData(text), len(text)))
	p := pending{kind: 'Q'}
	if s.srv.o().SlowQuery > 0 {
		s.mu.Lock()
		s.slowSQL = string(text)
		s.mu.Unlock()
	}
	if !a.Plain() {
		if err := s.admit(&a); err != nil {
			return s.reject('Q', err)
		}
		if done, err := s.control(&a); done {
			return err
		}
		if done, err := s.txControl(&a, text); done {
			return err
		}
		if s.mode != SessionMode && len(a.Statements) == 1 && a.Statements[0].Command == router.CmdDeallocate {
			if done, err := s.deallocate(string(text)); done {
				return err
			}
		}
		p.analysis = &a
	}
	n := needOf(&a)
	if sc := s.srv.shardMap(); sc != nil {
		// The plan keeps no reference to the text either.
		sc, plan, set, err := s.planFor(sc, unsafe.String(unsafe.SliceData(text), len(text)), nil)
		if err != nil {
			return s.reject('Q', err)
		}
		if len(set) > 1 || s.viaDist(set) {
			return s.scatterQuery(&a, plan, set, n, body)
		}
		if err := s.checkNewKey(sc, plan, nil, set[0]); err != nil {
			return s.reject('Q', err)
		}
		n = n.onShard(set[0])
	}
	l, err := s.acquire(n, p)
	if err != nil {
		return s.reject('Q', err)
	}
	s.mu.Lock()
	l.st.unnamed = nil // a simple query replaces the server's unnamed statement
	if p.analysis != nil && a.HasCommand(router.CmdDiscardAll) {
		l.st.prepared.clear()
		clear(s.stmts)
		s.unnamed = nil
	}
	s.noteSentLocked(l, &a)
	if op, ok := savepointOf(unsafe.String(unsafe.SliceData(text), len(text))); ok {
		s.applySavepointLocked(op)
	}
	if a.Write && mayCopyIn(unsafe.String(unsafe.SliceData(text), len(text))) {
		l.copyIn = copySimple
	}
	capture := s.captureDueLocked(l)
	s.mu.Unlock()
	wire.WriteFrame(l.w, 'Q', body)
	if capture {
		writeCapture(l)
	}
	s.done(l)
	return nil
}

// admit checks a statement against the pool mode. In transaction mode a
// statement that leaves state in the server session pins the client to
// its server for the rest of its session, so the state stays usable;
// statement mode refuses those, and multi-statement transactions.
func (s *session) admit(a *router.Analysis) error {
	if s.mode == SessionMode {
		return nil
	}
	for _, st := range a.Statements {
		switch {
		case st.Command.SessionScoped():
			if s.mode == StatementMode {
				return &Error{Code: "0A000",
					Message: fmt.Sprintf("%s is not supported in statement pool mode: it needs a server session of its own", st.Command),
					Hint:    "use pool.mode: transaction or session for this client"}
			}
			s.mu.Lock()
			if !s.pinned {
				// A pinned client keeps one server for the rest of its
				// session, so it had better be the primary: an idle link
				// a read left on a replica goes back first (else the
				// statement that pins, CREATE TEMP TABLE, would run on the
				// replica and fail there).
				if l := s.link; l != nil && !l.rw && s.srv.o().Topology != nil && !l.openTx && l.txStatus == 'I' && !l.unsynced && l.writers == 0 && l.pumping {
					// Its pump ends, and lets it go, once the server has
					// answered what it was sent.
					s.mu.Unlock()
					s.pumpRuns.Wait()
					s.mu.Lock()
				}
				s.pinned = true
				s.log.Info("client pinned to its server connection for the rest of its session", "because", st.Command.String())
			}
			s.mu.Unlock()
		case st.Command == router.CmdBegin && s.mode == StatementMode:
			return &Error{Code: "25001",
				Message: "transactions of more than one statement are not allowed in statement pool mode",
				Hint:    "use pool.mode: transaction for clients that need transactions"}
		}
	}
	return nil
}

func (s *session) admitIfSpecial(a *router.Analysis) error {
	if a.Plain() {
		return nil
	}
	return s.admit(a)
}

// deallocate emulates SQL DEALLOCATE for the proxy's own statements: in
// pooled modes they do not exist on the server under the client's names.
// A name the proxy does not know goes to the server when the client is
// pinned (it may be a statement of SQL PREPARE there); done reports whether
// the statement was answered here.
func (s *session) deallocate(sql string) (done bool, err error) {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(sql), ";"))
	if len(f) > 1 && strings.EqualFold(f[1], "prepare") {
		f = append(f[:1], f[2:]...)
	}
	if len(f) != 2 {
		return false, nil // let the server report the syntax error
	}
	s.mu.Lock()
	pinned := s.pinned
	if strings.EqualFold(f[1], "all") {
		clear(s.stmts)
		s.unnamed = nil
		if pinned {
			// The server drops its statements too, the proxy's among them.
			if s.link != nil {
				s.link.st.prepared.clear()
				s.link.st.unnamed = nil
			}
			s.mu.Unlock()
			return false, nil
		}
		s.mu.Unlock()
		return true, s.reply(append(commandComplete("DEALLOCATE ALL"), rfq('I')...))
	}
	name := unquoteIdent(f[1])
	if _, ok := s.stmts[name]; ok {
		delete(s.stmts, name)
		s.mu.Unlock()
		return true, s.reply(append(commandComplete("DEALLOCATE"), rfq(s.txStatus())...))
	}
	s.mu.Unlock()
	if pinned {
		return false, nil
	}
	return true, s.reject('Q', &Error{Code: "26000", Message: fmt.Sprintf("prepared statement %q does not exist", name)})
}

// txStatus is the status to report in a ReadyForQuery the proxy makes.
func (s *session) txStatus() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.dtx != nil && s.dtx.failed:
		return 'E'
	case s.dtx != nil:
		return 'T'
	case s.link != nil:
		return s.link.txStatus
	case s.begin != nil && s.begin.failed:
		return 'E'
	case s.begin != nil:
		return 'T'
	}
	return 'I'
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return strings.ToLower(s)
}

// parse handles Parse. In pooled modes a named statement gets its server
// name and is prepared only where it is not already.
func (s *session) parse(body []byte) error {
	if s.skipping() {
		return nil
	}
	if s.mode == SessionMode {
		return s.forward(anyServer, pending{kind: 'P'}, 'P', body)
	}
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return protocolViolation("Parse", err)
	}
	if msg.Name == "" && s.srv.o().SlowQuery > 0 {
		s.mu.Lock()
		s.slowSQL = msg.Query
		s.mu.Unlock()
	}
	cs := s.stmtFor(msg.Query, msg.ParameterOIDs)
	cs.epoch, _ = s.srv.known.epoch(cs.server)
	if err := s.admitIfSpecial(&cs.analysis); err != nil {
		return s.reject('P', err)
	}
	sharded := s.srv.shardMap() != nil
	if msg.Name == "" && sharded {
		// The shard is known at Bind, from the parameters: the statement
		// is prepared there, on demand, like a named one.
		s.mu.Lock()
		s.unnamed = cs
		s.mu.Unlock()
		return s.replyParse("")
	}
	if msg.Name == "" {
		l, err := s.acquire(needOf(&cs.analysis), pending{kind: 'P'})
		if err != nil {
			return s.reject('P', err)
		}
		s.mu.Lock()
		s.unnamed = cs
		l.st.unnamed = cs
		s.mu.Unlock()
		wire.WriteFrame(l.w, 'P', body)
		s.done(l)
		return nil
	}
	s.mu.Lock()
	// A read running again after its replica failed prepares anew what
	// its first run prepared.
	_, dup := s.stmts[msg.Name]
	dup = dup && !s.replaying
	known := !dup && s.srv.known.has(cs.server)
	if known {
		s.stmts[msg.Name] = cs
	}
	s.mu.Unlock()
	if dup {
		return s.reject('P', &Error{Code: "42P05", Message: fmt.Sprintf("prepared statement %q already exists", msg.Name)})
	}
	if known || s.inDist() {
		// In a transaction over several shards, the shard a statement
		// runs on prepares it at Bind.
		if !known {
			s.mu.Lock()
			s.stmts[msg.Name] = cs
			s.mu.Unlock()
		}
		return s.replyParse(msg.Name)
	}
	n := needOf(&cs.analysis)
	// Any shard can check the statement; the one it runs on prepares it
	// again at Bind.
	n.any = sharded
	l, err := s.acquire(n)
	if err != nil {
		return s.reject('P', err)
	}
	s.mu.Lock()
	s.stmts[msg.Name] = cs
	if s.preparedLocked(l, cs, true) {
		s.mu.Unlock()
		s.done(l)
		return s.replyParse(msg.Name)
	}
	s.prepareLocked(l, cs, pending{kind: 'P', clientStmt: msg.Name, serverStmt: cs.server})
	s.mu.Unlock()
	s.done(l)
	return nil
}

// replyParse answers a Parse the proxy takes on itself, in its place among
// the responses. Should the server skip it (an earlier request of the
// batch failed), the client's statement is forgotten, as the server would.
func (s *session) replyParse(client string) error {
	return s.replyAs(pending{synth: parseComplete(), clientStmt: client})
}

// preparedLocked reports whether the server has a copy of cs usable by
// a Bind (its name's epoch is current) or, with fresh, by a new Parse (it
// was also prepared after the last schema change).
func (s *session) preparedLocked(l *link, cs *stmt, fresh bool) bool {
	item, ok := l.st.prepared.lookup(cs.server)
	epoch, schema := s.srv.known.epoch(cs.server)
	return ok && item.epoch == epoch && (!fresh || item.schema == schema)
}

// prepareLocked sends a Parse of cs under its server name and queues p for
// its response. A stale copy on the server is closed first, and so is the
// least recently used statement if the server's cache is full.
func (s *session) prepareLocked(l *link, cs *stmt, p pending) {
	if _, present := l.st.prepared.lookup(cs.server); present {
		wire.WriteMessage(l.w, &pgproto3.Close{ObjectType: 'S', Name: cs.server})
		l.q.push(pending{kind: 'C', hidden: true})
	}
	epoch, schema := s.srv.known.epoch(cs.server)
	if evicted := l.st.prepared.add(cs.server, epoch, schema); evicted != "" {
		wire.WriteMessage(l.w, &pgproto3.Close{ObjectType: 'S', Name: evicted})
		l.q.push(pending{kind: 'C', hidden: true})
	}
	wire.WriteMessage(l.w, &pgproto3.Parse{Name: cs.server, Query: cs.query, ParameterOIDs: cs.oids})
	l.q.push(p)
	l.unsynced = true
}

// ensurePreparedLocked makes sure the server has the statement a Bind or
// Describe names, re-preparing it as a hidden request if not.
func (s *session) ensurePreparedLocked(l *link, name string, cs *stmt) {
	if name == "" {
		if l.st.unnamed != cs {
			wire.WriteMessage(l.w, &pgproto3.Parse{Query: cs.query, ParameterOIDs: cs.oids})
			l.q.push(pending{kind: 'P', hidden: true})
			l.st.unnamed = cs
		}
		return
	}
	if !s.preparedLocked(l, cs, false) {
		s.prepareLocked(l, cs, pending{kind: 'P', hidden: true, serverStmt: cs.server})
	}
}

// staleLocked reports whether a client's statement predates a change of
// its result type that a server reported; the client gets that error, as
// from PostgreSQL, and prepares again.
func (s *session) staleLocked(cs *stmt) error {
	if epoch, _ := s.srv.known.epoch(cs.server); epoch != cs.epoch {
		return &Error{Code: "0A000", Message: "cached plan must not change result type"}
	}
	return nil
}

// lookupLocked finds a client statement by name.
func (s *session) lookupLocked(name string) (*stmt, error) {
	var cs *stmt
	if name == "" {
		cs = s.unnamed
	} else {
		cs = s.stmts[name]
	}
	if cs == nil {
		if name == "" {
			return nil, &Error{Code: "26000", Message: "unnamed prepared statement does not exist"}
		}
		return nil, &Error{Code: "26000", Message: fmt.Sprintf("prepared statement %q does not exist", name)}
	}
	return cs, nil
}

// bind handles Bind, renaming the statement to its server name.
func (s *session) bind(body []byte) error {
	if s.skipping() {
		return nil
	}
	portal, rest, ok1 := cutCStringBytes(body)
	name, params, ok2 := cutCStringBytes(rest)
	if !ok1 || !ok2 {
		return protocolViolation("Bind", nil)
	}
	if s.mode == SessionMode {
		return s.forward(anyServer, pending{kind: 'B'}, 'B', body)
	}
	s.mu.Lock()
	cs, err := s.lookupLocked(string(name))
	if err == nil && len(name) > 0 {
		err = s.staleLocked(cs)
	}
	if err == nil {
		if len(s.portals) > 1000 {
			clear(s.portals)
			clear(s.portalStmts)
		}
		if cs.analysis.Plain() {
			delete(s.portals, string(portal))
		} else {
			s.portals[string(portal)] = &cs.analysis
		}
		delete(s.portalStmts, string(portal))
	}
	s.mu.Unlock()
	if err != nil {
		return s.reject('B', err)
	}
	n := needOf(&cs.analysis)
	if sc := s.srv.shardMap(); sc != nil {
		s.forgetScatterPortal(portal)
		if s.inDist() && len(cs.analysis.Statements) == 1 {
			if st := cs.analysis.Statements[0]; st.Command == router.CmdCommit || st.Command == router.CmdRollback {
				return s.bindTxEnd(portal, st)
			}
		}
		ps, err := parseBindParams(params)
		if err != nil {
			return protocolViolation("Bind", err)
		}
		sc, plan, set, err := s.planFor(sc, cs.query, ps)
		if err != nil {
			return s.reject('B', err)
		}
		if len(set) > 1 || s.viaDist(set) {
			return s.bindScatter(portal, cs, plan, set, n, ps, params)
		}
		if err := s.checkNewKey(sc, plan, ps, set[0]); err != nil {
			return s.reject('B', err)
		}
		n = n.onShard(set[0])
	}
	l, err := s.acquire(n)
	if err != nil {
		return s.reject('B', err)
	}
	s.mu.Lock()
	s.ensurePreparedLocked(l, string(name), cs)
	if op, ok := savepointOf(cs.query); ok {
		s.applySavepointLocked(op)
	}
	if cs.analysis.Write {
		l.wrote = true
		if mayCopyIn(cs.query) {
			l.copyIn = copyExtended
		}
	}
	bound := pending{kind: 'B'}
	if len(name) > 0 {
		bound.serverStmt = cs.server
		s.portalStmts[string(portal)] = cs.server
	}
	l.q.push(bound)
	l.unsynced = true
	s.mu.Unlock()
	if len(name) == 0 {
		wire.WriteFrame(l.w, 'B', body)
	} else {
		wire.WriteHeader(l.w, 'B', len(portal)+1+len(cs.server)+1+len(params))
		l.w.Write(portal)
		l.w.WriteByte(0)
		l.w.WriteString(cs.server)
		l.w.WriteByte(0)
		l.w.Write(params)
	}
	s.done(l)
	return nil
}

// describe handles Describe of a statement (renamed) or a portal.
func (s *session) describe(body []byte) error {
	if s.skipping() {
		return nil
	}
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolViolation("Describe", nil)
	}
	name, _, ok := cutCStringBytes(body[1:])
	if !ok {
		return protocolViolation("Describe", nil)
	}
	if body[0] == 'P' {
		if sp := s.scatterPortalOf(name); sp != nil {
			return s.describeScatter(sp)
		}
	}
	if s.mode == SessionMode || body[0] == 'P' {
		return s.forward(anyServer, pending{kind: 'D', describeStmt: body[0] == 'S'}, 'D', body)
	}
	s.mu.Lock()
	cs, err := s.lookupLocked(string(name))
	if err == nil && len(name) > 0 {
		err = s.staleLocked(cs)
	}
	s.mu.Unlock()
	if err != nil {
		return s.reject('D', err)
	}
	if s.inDist() {
		return s.describeInDist(cs)
	}
	n := needOf(&cs.analysis)
	n.any = s.srv.shardMap() != nil // every shard has the same tables
	l, err := s.acquire(n)
	if err != nil {
		return s.reject('D', err)
	}
	s.mu.Lock()
	s.ensurePreparedLocked(l, string(name), cs)
	described := pending{kind: 'D', describeStmt: true}
	if len(name) > 0 {
		described.serverStmt = cs.server
	}
	l.q.push(described)
	l.unsynced = true
	s.mu.Unlock()
	if len(name) == 0 {
		wire.WriteFrame(l.w, 'D', body)
	} else {
		wire.WriteMessage(l.w, &pgproto3.Describe{ObjectType: 'S', Name: cs.server})
	}
	s.done(l)
	return nil
}

// execute handles Execute, remembering what the portal runs so its effect
// on settings can be tracked.
func (s *session) execute(body []byte) error {
	if s.skipping() {
		return nil
	}
	portal, rest, ok := cutCStringBytes(body)
	if !ok || len(rest) < 4 {
		return protocolViolation("Execute", nil)
	}
	if sp := s.scatterPortalOf(portal); sp != nil {
		return s.executeScatter(sp, binary.BigEndian.Uint32(rest))
	}
	s.mu.Lock()
	a := s.portals[string(portal)]
	server := s.portalStmts[string(portal)]
	s.mu.Unlock()
	l, err := s.acquire(anyServer, pending{kind: 'E', analysis: a, serverStmt: server})
	if err != nil {
		return s.reject('E', err)
	}
	s.mu.Lock()
	l.ran = true
	if a != nil {
		s.noteSentLocked(l, a)
	}
	s.mu.Unlock()
	wire.WriteFrame(l.w, 'E', body)
	s.done(l)
	return nil
}

// close handles Close. In pooled modes a statement is closed only for the
// client: the server copy may serve other clients and leaves by the LRU.
func (s *session) close(body []byte) error {
	if s.skipping() {
		return nil
	}
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return protocolViolation("Close", nil)
	}
	name, _, ok := cutCStringBytes(body[1:])
	if !ok {
		return protocolViolation("Close", nil)
	}
	if body[0] == 'P' && s.forgetScatterPortal(name) {
		return s.reply(closeComplete())
	}
	if s.mode == SessionMode || body[0] == 'P' {
		return s.forward(anyServer, pending{kind: 'C'}, 'C', body)
	}
	s.mu.Lock()
	if len(name) == 0 {
		s.unnamed = nil
	} else {
		delete(s.stmts, string(name))
	}
	s.mu.Unlock()
	return s.reply(closeComplete())
}

func (s *session) skipping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipUntilSync
}

func protocolViolation(what string, err error) *Error {
	return &Error{Code: "08P01", Fatal: true, Message: "invalid " + what + " message", Err: err}
}

func cutCStringBytes(b []byte) (head, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}
