package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// shardConn is one server of a statement that runs on several shards. It
// is driven by the session goroutine alone, outside the link machinery:
// the statement owns it from checkout to release.
type shardConn struct {
	be    *pool.Conn
	st    *serverState
	shard int
	// broken: the connection failed mid-exchange; it is discarded.
	broken bool
	// ready: its ReadyForQuery has been read; status is the transaction
	// status it gave.
	ready  bool
	status byte
	// wrote: a statement that may write ran on it in the client's
	// transaction over several shards.
	wrote bool
}

// read returns the server's next message; body is valid until the next
// read.
func (c *shardConn) read() (byte, []byte, error) {
	typ, n, err := c.st.r.Header()
	if err == nil {
		var body []byte
		if body, err = c.st.r.Body(n); err == nil {
			if typ == 'Z' {
				c.ready = true
				if len(body) == 1 {
					c.status = body[0]
				}
			}
			return typ, body, nil
		}
	}
	c.broken = true
	return 0, nil, err
}

// scatter is one run of a statement on several shards.
type scatter struct {
	s     *session
	conns []*shardConn
	// ddl names the failing shard in errors: a schema change may have
	// been applied on the others.
	ddl bool
	// firstErr is the first error a shard reported, sent to the client.
	firstErr []byte
	// dist is the client's transaction over several shards the statement
	// runs in: its connections stay with it.
	dist *distTx
	// reference: the statement writes a reference table, which every
	// shard holds whole; the client hears one shard's answer.
	reference bool
	// copy describes a COPY TO STDOUT of the statement, if it is one.
	copy *router.CopyInfo
}

// openShards checks out a server on each shard of set for a request with
// need n, bringing each to the client's settings. On error, what was
// checked out goes back.
func (s *session) openShards(set shardSet, n need) (*scatter, error) {
	for _, shard := range set {
		// All gates first: a paused shard must not keep another's server.
		if err := s.gate(shard); err != nil {
			return nil, err
		}
	}
	sc := &scatter{s: s}
	for _, shard := range set {
		be, _, err := s.route(n.onShard(shard))
		if err != nil {
			sc.release()
			return nil, err
		}
		c := &shardConn{be: be, st: stateOf(be, s.srv.o().PreparedCacheSize), shard: shard}
		sc.conns = append(sc.conns, c)
		s.mu.Lock()
		replay := replaySQL(s.settings.values, c.st.settings)
		s.mu.Unlock()
		if replay != "" {
			if err := roundTrip(be, c.st, replay, time.Now().Add(s.srv.o().ResetTimeout)); err != nil {
				c.broken = true
				sc.release()
				return nil, err
			}
		}
	}
	s.mu.Lock()
	s.scattered = sc
	s.mu.Unlock()
	return sc, nil
}

// release returns the servers to their pools once each has answered
// everything (a server that has not is drained first, and discarded if
// that fails).
func (sc *scatter) release() {
	sc.s.mu.Lock()
	if sc.s.scattered == sc {
		sc.s.scattered = nil
	}
	sc.s.mu.Unlock()
	for _, c := range sc.conns {
		if !c.broken && !c.ready {
			sc.drain(c)
		}
		if sc.dist != nil {
			continue // the transaction's end hands them back
		}
		if c.broken {
			c.be.Pool().Discard(c.be)
		} else {
			c.be.Pool().Put(c.be)
		}
	}
	sc.conns = nil
}

// drain reads a server's responses up to ReadyForQuery.
func (sc *scatter) drain(c *shardConn) {
	c.be.Net().SetReadDeadline(time.Now().Add(sc.s.srv.o().ResetTimeout))
	defer c.be.Net().SetReadDeadline(time.Time{})
	for !c.ready && !c.broken {
		typ, body, err := c.read()
		if err != nil {
			return
		}
		if typ == 'E' && sc.firstErr == nil {
			sc.firstErr = sc.shardError(c, body)
		}
	}
}

// send writes the same request to every server and flushes.
func (sc *scatter) send(write func(w *pool.Conn)) error {
	for _, c := range sc.conns {
		write(c.be)
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", sc.s.shardNames()[c.shard], err)}
		}
	}
	return nil
}

// sendEach writes each server its own request and flushes.
func (sc *scatter) sendEach(write func(c *shardConn, i int)) error {
	for i, c := range sc.conns {
		write(c, i)
		c.ready = false
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", sc.s.shardNames()[c.shard], err)}
		}
	}
	return nil
}

// head reads a server's next response that starts a result (or ends the
// request), relaying notices and keeping parameter reports.
func (sc *scatter) head(c *shardConn) (byte, []byte, error) {
	for {
		typ, body, err := c.read()
		if err != nil {
			return 0, nil, err
		}
		switch typ {
		case '1', '2': // ParseComplete, BindComplete of our own requests
		case 'N', 'A':
			if c == sc.conns[0] || typ == 'A' {
				sc.s.writeOut(typ, body)
			}
		case 'S':
			var ps pgproto3.ParameterStatus
			if ps.Decode(body) == nil {
				c.be.Params[ps.Name] = ps.Value
			}
		default:
			return typ, body, nil
		}
	}
}

// shardError copies a server's ErrorResponse, naming the shard in it when
// the statement changed the schema.
func (sc *scatter) shardError(c *shardConn, body []byte) []byte {
	if !sc.ddl {
		return encodeFrame('E', body)
	}
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil {
		return encodeFrame('E', body)
	}
	e.Message = fmt.Sprintf("on shard %s: %s", sc.s.shardNames()[c.shard], e.Message)
	e.Detail = strings.TrimSpace(e.Detail + " The statement was sent to every shard; shards other than this one may have applied it.")
	return encodeMsg(&e)
}

// results relays the responses of one request run on every shard: each
// result set combined (merged by m when it is set), command tags added up.
// sendFields says whether the client gets the RowDescription (a simple
// query; in the extended protocol only its Describe does). It returns
// after every server's ReadyForQuery.
func (sc *scatter) results(m *mergeRun, sendFields bool) error {
	heads := make([]byte, len(sc.conns))
	bodies := make([][]byte, len(sc.conns))
	for {
		done, failed := 0, -1
		for i, c := range sc.conns {
			typ, body, err := sc.head(c)
			if err != nil {
				return sc.lost(c, err)
			}
			heads[i], bodies[i] = typ, body
			switch typ {
			case 'Z':
				done++
			case 'E':
				if failed < 0 {
					failed = i
					sc.firstErr = sc.shardError(c, body)
				}
			}
		}
		switch {
		case failed >= 0:
			return sc.fail()
		case done == len(sc.conns):
			return nil
		case done > 0:
			return sc.fail(&Error{Code: "XX000", Message: "shards answered one statement with different numbers of results"})
		}
		var err error
		switch heads[0] {
		case 'T':
			err = sc.rows(bodies[0], m, sendFields)
		case 'n': // NoData: a statement without rows in the extended protocol
			err = sc.tags()
		case 'C':
			tags := bodiesAsTags(bodies)
			if sc.reference {
				tags = tags[:1]
			}
			sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
		case 'I':
			sc.s.writeOut('I', nil)
		case 'H':
			err = sc.copyOut(bodies[0])
		default:
			err = sc.fail(&Error{Code: "0A000", Message: fmt.Sprintf("a statement over several shards answered with message %q, which shardgate cannot combine", heads[0]),
				Hint: "route the statement to one shard with a key or /* shardgate: shard=NAME */"})
		}
		if err != nil {
			return err
		}
	}
}

func bodiesAsTags(bodies [][]byte) []string {
	tags := make([]string, len(bodies))
	for i, b := range bodies {
		tags[i] = strings.TrimSuffix(string(b), "\x00")
	}
	return tags
}

// tags reads each server's CommandComplete and sends the combined one.
func (sc *scatter) tags() error {
	tags := make([]string, len(sc.conns))
	for i, c := range sc.conns {
		typ, body, err := sc.head(c)
		if err != nil {
			return sc.lost(c, err)
		}
		if typ == 'E' {
			sc.firstErr = sc.shardError(c, body)
			return sc.fail()
		}
		tags[i] = strings.TrimSuffix(string(body), "\x00")
	}
	if sc.reference {
		tags = tags[:1]
	}
	sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
	return nil
}

// combineTags adds up the row counts of the shards' command tags: "SELECT
// 3" and "SELECT 4" make "SELECT 7"; a tag without a count is the first
// shard's.
func combineTags(tags []string) string {
	i := strings.LastIndexByte(tags[0], ' ')
	if i < 0 {
		return tags[0]
	}
	var total int64
	for _, t := range tags {
		j := strings.LastIndexByte(t, ' ')
		n, err := strconv.ParseInt(t[j+1:], 10, 64)
		if j < 0 || err != nil || t[:j] != tags[0][:i] {
			return tags[0]
		}
		total += n
	}
	return tags[0][:i+1] + strconv.FormatInt(total, 10)
}

// rows relays a result set from every server: concatenated, or merged.
func (sc *scatter) rows(fields []byte, m *mergeRun, sendFields bool) error {
	if m != nil {
		return m.run(sc, fields, sendFields)
	}
	if sendFields {
		sc.s.writeOut('T', fields)
	}
	tags := make([]string, 0, len(sc.conns))
	for i, c := range sc.conns {
		for {
			typ, body, err := c.read()
			if err != nil {
				return sc.lost(c, err)
			}
			if typ == 'D' {
				if i == 0 || !sc.reference {
					sc.s.writeOut('D', body)
				}
				continue
			}
			if typ == 'C' {
				// The tag says what ran (SELECT, or UPDATE ... RETURNING).
				tags = append(tags, strings.TrimSuffix(string(body), "\x00"))
				break
			}
			if typ == 'E' {
				sc.firstErr = sc.shardError(c, body)
				return sc.fail()
			}
			if typ == 'N' {
				sc.s.writeOut(typ, body)
			}
		}
	}
	if sc.reference {
		tags = tags[:1]
	}
	sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
	return nil
}

// copyOut relays COPY TO STDOUT from every server, one after the other,
// as one copy.
//
// The copy must read as one server's: a header line (HEADER) comes from
// the first shard only, and in binary format the signature from the
// first shard and the trailer from the last. A binary header travels in
// the same message as the first row, the trailer in a message of its own.
func (sc *scatter) copyOut(response []byte) error {
	sc.s.writeOut('H', response)
	var total int64
	header := sc.copy != nil && sc.copy.Header && sc.copy.Format != "binary"
	binary := sc.copy != nil && sc.copy.Format == "binary"
	for i, c := range sc.conns {
		first, last := i == 0, i == len(sc.conns)-1
		var held []byte // binary: the last message, which may be the trailer
		seen := false
	copying: // each server's CopyOutResponse was read as its head

		for {
			typ, body, err := c.read()
			if err != nil {
				return sc.lost(c, err)
			}
			switch typ {
			case 'd':
				startOfData := !seen
				seen = true
				switch {
				case header && startOfData && !first:
					// another shard's header line
				case binary:
					if startOfData && !first {
						body = skipBinaryHeader(body)
					}
					if held != nil {
						sc.s.writeOut('d', held)
					}
					held = append(held[:0:0], body...)
				default:
					sc.s.writeOut('d', body)
				}
			case 'c':
				if held != nil && !last && len(held) >= 2 && held[len(held)-2] == 0xFF && held[len(held)-1] == 0xFF {
					held = held[:len(held)-2] // not the last shard: no trailer yet
				}
				if len(held) > 0 {
					sc.s.writeOut('d', held)
				}
			case 'C':
				tag := strings.TrimSuffix(string(body), "\x00")
				if n, err := strconv.ParseInt(strings.TrimPrefix(tag, "COPY "), 10, 64); err == nil {
					total += n
				}
				break copying
			case 'E':
				sc.firstErr = sc.shardError(c, body)
				return sc.fail()
			}
		}
	}
	sc.s.writeOut('c', nil)
	sc.s.writeOut('C', []byte("COPY "+strconv.FormatInt(total, 10)+"\x00"))
	return nil
}

// skipBinaryHeader drops the binary COPY header (signature, flags,
// extension) from the start of a shard's first data message.
func skipBinaryHeader(b []byte) []byte {
	const fixed = 11 + 4 + 4
	if len(b) < fixed {
		return b
	}
	ext := int(binary.BigEndian.Uint32(b[15:19]))
	if len(b) < fixed+ext {
		return b
	}
	return b[fixed+ext:]
}

// lost handles a server connection that failed mid-statement.
func (sc *scatter) lost(c *shardConn, err error) error {
	if sc.firstErr == nil {
		e := &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s during a statement over several shards: %v", sc.s.shardNames()[c.shard], err)}
		sc.firstErr = encodeMsg(errorResponse(e, false))
	}
	return sc.fail()
}

// fail sends the client the first error (or err), after draining every
// server so that none goes back to its pool with responses pending.
func (sc *scatter) fail(errs ...error) error {
	for _, c := range sc.conns {
		sc.drain(c)
	}
	if sc.firstErr == nil && len(errs) > 0 {
		sc.firstErr = encodeMsg(errorResponse(errs[0], false))
	}
	return errShardFailed
}

// errShardFailed reports that a shard's error is in scatter.firstErr.
var errShardFailed = errors.New("a shard failed the statement")

// writeOut sends one message to the client (buffered; the caller flushes).
func (s *session) writeOut(typ byte, body []byte) {
	s.outMu.Lock()
	wire.WriteFrame(s.out, typ, body)
	s.outMu.Unlock()
}

func encodeFrame(typ byte, body []byte) []byte {
	b := make([]byte, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	copy(b[5:], body)
	return b
}

// finish ends a scatter: the servers go back, and the client gets the
// first error if there was one, then ReadyForQuery for a simple query.
func (sc *scatter) finish(err error, simple bool) error {
	sc.release()
	s := sc.s
	if err != nil && !errors.Is(err, errShardFailed) {
		sc.firstErr = encodeMsg(errorResponse(err, false))
	}
	if d := sc.dist; d != nil {
		if sc.firstErr != nil {
			s.failDist()
		}
		if d.implicit {
			// A statement outside a transaction commits as it ends.
			if _, cerr := s.endDist(sc.firstErr == nil); cerr != nil && sc.firstErr == nil {
				sc.firstErr = encodeMsg(errorResponse(cerr, false))
			}
		}
	}
	status := s.txStatus()
	s.outMu.Lock()
	if sc.firstErr != nil {
		s.out.Write(sc.firstErr)
	}
	if simple {
		s.out.Write(rfq(status))
	}
	var ferr error
	if s.in.Buffered() == 0 || simple {
		ferr = s.out.Flush()
	}
	s.outMu.Unlock()
	if sc.firstErr != nil && !simple {
		s.mu.Lock()
		s.skipUntilSync = true
		s.mu.Unlock()
	}
	return ferr
}

// scatterQuery runs a simple query on the shards of set, or on one shard
// inside a transaction over several shards.
func (s *session) scatterQuery(a *router.Analysis, p *router.Plan, set shardSet, n need, body []byte) error {
	text := string(body[:len(body)-1])
	if op, ok := savepointOf(text); ok && s.inDist() {
		return s.distSavepoint(op, body, true)
	}
	how, err := s.multiShard(a, text, p, set)
	if err != nil {
		return s.reject('Q', err)
	}
	var m *mergeRun
	if len(set) > 1 {
		if m, err = s.mergeFor(p, nil); err != nil {
			return s.reject('Q', err)
		}
	}
	var sc *scatter
	if how == runInDist {
		sc, err = s.openInDist(set, p.Write)
	} else {
		sc, err = s.openShards(set, n)
	}
	if err != nil {
		return s.reject('Q', err)
	}
	sc.ddl = p.DDL
	sc.reference = p.Reference && p.Write
	sc.copy = p.Copy
	query := body
	if p.Rewritten != "" && m != nil {
		query = append([]byte(p.Rewritten), 0)
	}
	switch {
	case p.Copy != nil && p.Copy.From:
		err = s.copyFrom(sc, p, text)
		return sc.finish(err, true)
	case p.Insert != nil && len(set) > 1:
		err = s.sendInsertSplit(sc, p, nil)
	default:
		err = sc.send(func(be *pool.Conn) { wire.WriteFrame(be.Writer(), 'Q', query) })
	}
	if err == nil {
		err = sc.results(m, true)
	}
	return sc.finish(err, true)
}

// openInDist runs a statement in the client's transaction over several
// shards, opening it if need be, after checking that its writes can
// commit atomically.
func (s *session) openInDist(set shardSet, write bool) (*scatter, error) {
	d, err := s.openDist()
	if err != nil {
		return nil, err
	}
	if d.failed {
		return nil, errAborted
	}
	if err := s.checkWriters(d, set, write); err != nil {
		if d.implicit {
			s.endDist(false)
		}
		return nil, err
	}
	sc, err := s.distScatter(d, set)
	if err != nil {
		if d.implicit {
			s.endDist(false)
		} else {
			s.failDist()
		}
		return nil, err
	}
	markWrote(sc, write)
	return sc, nil
}

// distSavepoint runs a savepoint statement on every shard of the
// client's transaction over several shards, as a simple query (simple:
// the client sent one; else an Execute, which gets no ReadyForQuery). A
// ROLLBACK TO that succeeds everywhere ends the aborted state, as on one
// server.
func (s *session) distSavepoint(op savepointOp, query []byte, simple bool) error {
	kind := byte('E')
	if simple {
		kind = 'Q'
	}
	s.mu.Lock()
	d := s.dtx
	s.mu.Unlock()
	if d.failed && op.kind != pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO {
		return s.reject(kind, errAborted)
	}
	sc := &scatter{s: s, dist: d}
	for _, c := range d.conns {
		c.ready = false
		sc.conns = append(sc.conns, c)
	}
	s.mu.Lock()
	s.scattered = sc
	s.mu.Unlock()
	err := sc.send(func(be *pool.Conn) { wire.WriteFrame(be.Writer(), 'Q', query) })
	if err == nil {
		err = sc.results(nil, simple)
	}
	if err == nil && sc.firstErr == nil {
		s.mu.Lock()
		s.applySavepointLocked(op)
		if op.kind == pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO {
			d.failed = false
		}
		s.mu.Unlock()
	}
	return sc.finish(err, simple)
}

// runHow is how a statement that needs several shards, or another shard
// than the client's transaction holds, runs.
type runHow uint8

const (
	// runScatter: on fresh connections, each its own transaction (reads
	// outside a transaction, DDL).
	runScatter runHow = iota
	// runInDist: in the client's transaction over several shards, or in
	// one opened for the statement (writes over several shards).
	runInDist
)

// multiShard decides how a statement on the shards of set runs, or why
// it cannot.
func (s *session) multiShard(a *router.Analysis, sql string, p *router.Plan, set shardSet) (runHow, error) {
	if len(set) > 1 {
		s.srv.fanouts.count(p)
	}
	if what := distUnsupported(a, sql); what != "" && (s.inDist() || s.txOpen()) {
		return 0, &Error{Code: "0A000",
			Message: fmt.Sprintf("%s is not supported in a transaction over several shards", what),
			Hint:    "keep the transaction on the keys of one shard, or issue the statement before BEGIN"}
	}
	s.mu.Lock()
	if s.dtx != nil {
		s.mu.Unlock()
		return runInDist, nil
	}
	if l := s.link; l != nil && (s.mode == SessionMode || s.pinned) {
		if l = s.leaveShardLocked(l); l != nil {
			s.mu.Unlock()
			return 0, &Error{Code: "0A000",
				Message: "this client holds one server connection for its session, so a statement cannot run on other shards",
				Hint:    "use pool.mode: transaction for clients that use several shards, or route with /* shardgate: shard=NAME */"}
		}
	}
	if l := s.link; l != nil && l.unsynced && !l.openTx {
		s.mu.Unlock()
		return 0, &Error{Code: "0A000",
			Message: "an extended-protocol batch cannot move to other shards before its Sync",
			Hint:    "send Sync before a statement that needs other shards"}
	}
	open := s.txOpenLocked()
	s.mu.Unlock()
	switch {
	case open:
		return runInDist, nil
	case !p.Write || p.DDL:
		return runScatter, nil
	case s.srv.o().TwoPhase == nil:
		return 0, s.checkWriters(&distTx{}, set, true)
	}
	return runInDist, nil
}

// distUnsupported names what a statement does that a transaction over
// several shards cannot: session settings would have to stay alike on
// every shard, and a client's own PREPARE TRANSACTION would bypass the
// proxy's commit.
func distUnsupported(a *router.Analysis, sql string) string {
	for _, st := range a.Statements {
		if st.Command == router.CmdSet {
			return "SET"
		}
	}
	w := strings.Fields(strings.ToLower(strings.TrimLeft(sql, " \t\r\n(")))
	if len(w) > 1 && w[0] == "prepare" && strings.HasPrefix(w[1], "transaction") {
		return "PREPARE TRANSACTION"
	}
	return ""
}

// txOpen reports whether the client has a transaction open.
func (s *session) txOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txOpenLocked()
}

// viaDist reports whether a statement on one shard must run in a
// transaction over several shards: the client is in one, or its
// transaction holds a server on another shard.
func (s *session) viaDist(set shardSet) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtx != nil {
		return true
	}
	l := s.link
	if len(set) != 1 || l == nil || l.shard == set[0] || s.mode == SessionMode || s.pinned {
		return false
	}
	if !s.txOpenLocked() {
		return false
	}
	return !s.relocateLocked()
}

// relocateLocked moves a transaction that has run nothing yet to another
// shard: its server only prepared or described statements since the
// proxy's BEGIN (drivers describe a statement before they bind it, on
// whatever server is at hand). That server's transaction is rolled back
// and the BEGIN deferred again, so the transaction starts on the shard of
// its first statement instead of spanning two. Called with mu held; it
// releases it meanwhile.
func (s *session) relocateLocked() bool {
	l := s.link
	if l == nil || l.beginSQL == "" || l.ran || !l.q.empty() || l.unsynced || l.writers > 0 || l.copyIn != copyNone || l.txStatus != 'T' {
		return false
	}
	if l.pumping {
		s.mu.Unlock()
		s.stopPump(l)
		s.mu.Lock()
		if s.link != l {
			return false
		}
	}
	s.link = nil
	s.mu.Unlock()
	err := roundTrip(l.be, l.st, "ROLLBACK", time.Now().Add(s.srv.o().ResetTimeout))
	if err != nil {
		l.be.Pool().Discard(l.be)
	} else {
		l.be.Pool().Put(l.be)
	}
	access := router.TxDefault
	if a := s.srv.o().Router.Analyze(l.beginSQL); len(a.Statements) == 1 {
		access = a.Statements[0].TxAccess
	}
	s.mu.Lock()
	s.begin = &deferredBegin{sql: l.beginSQL, access: access}
	return true
}

// rowsOf splits a DataRow body into its values (nil for NULL), reusing
// dst.
func rowsOf(body []byte, dst [][]byte) ([][]byte, error) {
	if len(body) < 2 {
		return nil, io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	dst = dst[:0]
	for range n {
		if len(body) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		size := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if size < 0 {
			dst = append(dst, nil)
			continue
		}
		if len(body) < size {
			return nil, io.ErrUnexpectedEOF
		}
		dst = append(dst, body[:size:size])
		body = body[size:]
	}
	return dst, nil
}
