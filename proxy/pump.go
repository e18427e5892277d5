package proxy

// The pump: the goroutine that reads a link's server and passes its
// responses to the client, in the order of the link's queue.

import (
	"errors"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/wire"
)

// startPump hands a link to the session's pump goroutine, starting that
// goroutine on first use. One goroutine serves every link the session
// attaches, in turn: cheaper than a goroutine per transaction, and a link's
// pump cannot start before the previous one has finished writing.
func (s *session) startPump(l *link) {
	l.pumping = true
	if s.pumps == nil {
		s.pumps = make(chan *link, 1)
		go s.pumpLoop(s.pumps)
	}
	s.pumpRuns.Add(1)
	s.pumps <- l
}

// pumpLoop runs the pump for each link handed over by startPump. It ends
// when session.finish closes the channel, after the last run has ended.
func (s *session) pumpLoop(links <-chan *link) {
	for l := range links {
		s.pump(l)
		s.pumpRuns.Done()
	}
}

// pump copies a server's responses to the client. It is started by
// acquire when a link has no pump, and ends when the link is released to
// the pool, when the session stops it (stopping, with a read deadline to
// wake it), or when the server connection fails, which it reports to the
// client itself.
func (s *session) pump(l *link) {
	r := l.st.r
	for {
		typ, n, err := r.Header()
		if err != nil {
			s.pumpFailed(l, err)
			return
		}
		var body []byte
		needBody := typ == 'Z' || typ == 'C' || typ == 'S' || typ == 'E' || (typ == 'D' && l.lsnDue.Load() > 0)
		if needBody {
			if body, err = r.Body(n); err != nil {
				s.pumpFailed(l, err)
				return
			}
		}
		s.mu.Lock()
		forward, synth := s.onServerMessage(l, typ, body)
		if forward {
			l.acct.bytesOut += int64(n) + 5
		}
		if forward || len(synth) > 0 {
			l.settleLocked(true)
		}
		exit := s.mode != SessionMode && !s.pinned && l.idleLocked()
		// Take the client writer before letting go of mu, so replies reach
		// the client in the order they were decided.
		if typ == 'E' && forward && s.mode != SessionMode && l.txStatus == 'I' {
			body = downgradeFatal(body)
		}
		if forward || len(synth) > 0 {
			s.outMu.Lock()
		}
		s.mu.Unlock()
		if forward || len(synth) > 0 {
			if forward {
				if needBody {
					wire.WriteFrame(s.out, typ, body)
				} else {
					err = r.CopyTo(s.out, typ, n)
				}
			} else if !needBody {
				err = r.Skip(n)
			}
			s.out.Write(synth)
			if r.Buffered() == 0 || exit {
				s.out.Flush() // a dead client shows up in the session goroutine
			}
			s.outMu.Unlock()
		} else if !needBody {
			err = r.Skip(n)
		}
		if err != nil {
			s.pumpFailed(l, err)
			return
		}
		if exit && s.endPump(l) {
			return
		}
	}
}

// endPump ends a pump run once the server owes the client nothing, now
// that it is done with the server's reader (bodies borrow its buffer, so
// nobody may take the connection before). It releases the link, or leaves
// that to the write or cancel still in flight (done, cancelQuery). If the
// client sent more in the meantime, the pump goes on.
func (s *session) endPump(l *link) bool {
	s.mu.Lock()
	if !l.idleLocked() {
		s.mu.Unlock()
		return false
	}
	l.pumping = false
	l.settleLocked(true)
	release := s.releasableLocked(l)
	s.mu.Unlock()
	if release {
		l.be.Pool().Put(l.be)
	}
	return true
}

// onServerMessage updates the link for one server message and says whether
// to pass it to the client, plus any proxy replies that follow it. Called
// with mu held.
func (s *session) onServerMessage(l *link, typ byte, body []byte) (forward bool, synth []byte) {
	if typ == 'Z' && l.skipping {
		// The server skipped, after an error, the extended-protocol
		// messages up to the Sync this answers. Those the session queued
		// after the pump saw the error are still here: without replies,
		// they would make every later reply answer the wrong request.
		for h := l.q.front(); h != nil && (h.isExtended() || h.kind == 0); h = l.q.front() {
			s.forgetStmtLocked(l, h)
			l.q.pop()
		}
	}
	h := l.q.front()
	hidden := h != nil && h.hidden
	switch typ {
	case 'D':
		if hidden && h.position {
			s.notePositionLocked(l.shard, body)
		}
		return !hidden, nil
	case 'd', 't', 'G', 'H', 'W', 'c', 'V', 'N', 'A':
		return !hidden, nil
	case 'S':
		var ps pgproto3.ParameterStatus
		if ps.Decode(body) == nil {
			if !hidden && h != nil && l.be.Params[ps.Name] != ps.Value {
				s.settings.noteReported(ps.Name, ps.Value)
			}
			l.be.Params[ps.Name] = ps.Value
		}
		return !hidden, nil
	}
	if h == nil {
		// A reply to nothing: an asynchronous FATAL as the server shuts
		// down, or a confused server. Pass it on; a read error follows.
		return true, nil
	}
	forward = !hidden
	switch typ {
	case 'Z':
		if len(body) > 0 {
			l.txStatus = body[0]
		}
		if !hidden {
			s.flushLocked(l)
		}
		l.skipping, l.gotError = false, false
		position := h.position
		s.popLocked(l)
		if l.ddl && l.txStatus == 'I' {
			s.srv.known.schemaChanged()
			l.ddl = false
		}
		if l.txStatus == 'I' {
			s.txEnds++
			s.savepoints = s.savepoints[:0]
			s.settings.endTransaction(l.st.settings)
			if l.wrote && s.srv.o().Routing.RYW == RYWTime {
				s.wroteAt, l.wrote = time.Now(), false
			}
			if l.copyIn != copyNone && l.wrote && !hidden {
				// It was not a COPY after all, and its commit position was
				// never asked for: the client reads from the primary for
				// a while instead.
				s.primaryUntil = time.Now().Add(s.srv.o().Routing.RYWWindow)
				l.copyIn, l.wrote = copyNone, false
			}
		}
		switch {
		case position:
			l.lsnDue.Add(-1)
			if l.heldZ != 0 {
				held := rfq(l.heldZ)
				l.heldZ = 0
				return false, append(held, s.drainSynthLocked(l)...)
			}
		case !hidden:
			if next := l.q.front(); next != nil && next.position && len(body) > 0 {
				l.heldZ = body[0]
				return false, nil
			}
		}
	case 'E':
		if l.retry != nil && fatalError(body) {
			// The server is going away (a crash, a shutdown): the read
			// may yet run elsewhere, so the client need not hear of it.
			return false, nil
		}
		if h.position {
			// The commit failed, or never ran (an error earlier in its
			// query string): there is no position to learn.
			return false, nil
		}
		s.settings.failed = true
		l.gotError = true
		if !hidden {
			l.acct.queries++
			l.acct.errors++
		}
		if hidden {
			// A failed settings replay or re-prepare: the client must see
			// it, or its next step fails mysteriously.
			forward = true
		}
		if h.serverStmt != "" && stalePlan(h.kind, body) {
			// DDL changed what the statement returns: every server's copy
			// is stale, so all are prepared again at their next use. The
			// client still gets the error, as from a server, and its
			// driver prepares again.
			s.srv.known.invalidate(h.serverStmt)
		}
		if h.isExtended() {
			if h.kind == 'P' {
				s.forgetStmtLocked(l, h)
				if h.serverStmt == "" {
					l.st.unnamed = nil
				}
			}
			l.skipping = true
			s.popLocked(l)
		}
	case '1':
		if h.serverStmt != "" && !l.skipping {
			s.srv.known.add(h.serverStmt)
		}
		s.popLocked(l)
	case '2', '3', 's':
		s.popLocked(l)
	case 'T', 'n':
		if h.kind == 'D' {
			s.popLocked(l)
		}
	case 'C':
		if !hidden {
			l.acct.queries++
			if h.kind == 'E' {
				l.acct.lastStmt = h.serverStmt
			}
		}
		tag := string(body[:max(len(body)-1, 0)])
		if tag == "ROLLBACK" {
			s.settings.failed = true
		}
		if isDDL(tag) {
			// New Parses must be checked against the new schema: now, and
			// once more when the transaction ends (another client may
			// prepare against the old schema until it commits).
			s.srv.known.schemaChanged()
			l.ddl = true
		}
		if h.analysis != nil && h.done < len(h.analysis.Statements) {
			s.settings.note(&h.analysis.Statements[h.done], tag)
		}
		h.done++
		if h.kind == 'E' {
			s.popLocked(l)
		}
	case 'I':
		h.done++
		if h.kind == 'E' {
			s.popLocked(l)
		}
	}
	return forward, s.drainSynthLocked(l)
}

// popLocked completes the head request, and while the server skips to
// Sync, drops what it will skip.
func (s *session) popLocked(l *link) {
	l.q.pop()
	if l.skipping {
		for h := l.q.front(); h != nil && h.kind != 'S'; h = l.q.front() {
			s.forgetStmtLocked(l, h)
			l.q.pop()
		}
	}
}

// drainSynthLocked pops the proxy's own replies now at the head.
func (s *session) drainSynthLocked(l *link) []byte {
	var out []byte
	for h := l.q.front(); h != nil && h.kind == 0; h = l.q.front() {
		if l.skipping {
			s.forgetStmtLocked(l, h)
		} else {
			out = append(out, h.synth...)
		}
		l.q.pop()
	}
	return out
}

// forgetStmtLocked undoes the bookkeeping of a Parse that did not happen.
func (s *session) forgetStmtLocked(l *link, p *pending) {
	if p.kind != 'P' && p.kind != 0 {
		return // Bind and Execute name a statement; they do not create it
	}
	if p.serverStmt != "" {
		l.st.prepared.remove(p.serverStmt)
	}
	if p.clientStmt != "" {
		delete(s.stmts, p.clientStmt)
	}
}

// pumpFailed handles a server read error: a stop the session asked for, or
// a lost server. The client whose requests were on it gets an error;
// if a transaction was open, its session ends, since the transaction is
// gone and it cannot be told so otherwise.
func (s *session) pumpFailed(l *link, err error) {
	s.mu.Lock()
	l.pumping = false
	if l.stopping && errors.Is(err, os.ErrDeadlineExceeded) {
		s.mu.Unlock()
		return
	}
	if s.failedRetryLocked(l) {
		s.mu.Unlock()
		l.be.Pool().Discard(l.be)
		return
	}
	busy := !l.q.empty() || l.unsynced
	inTx := l.txStatus != 'I'
	needRFQ := false
	for h := l.q.front(); h != nil; h = l.q.front() {
		if h.kind == 'S' || h.kind == 'Q' || h.kind == 'F' {
			needRFQ = true
		}
		l.q.pop()
	}
	if l.unsynced && !needRFQ {
		s.skipUntilSync = true
	}
	if s.link == l {
		s.link = nil
	}
	stopping, told := l.stopping, l.gotError
	s.mu.Unlock()
	l.be.Pool().Discard(l.be)
	if stopping {
		return
	}
	s.log.Warn("server connection lost", "server", l.be.Addr(), "err", err)
	if !busy && !inTx && s.mode != SessionMode {
		return // an idle pooled server went away; nobody needs to know
	}
	fatal := inTx || s.mode == SessionMode
	s.outMu.Lock()
	if !told || fatal {
		wire.WriteMessage(s.out, errorResponse(&Error{Code: "08006", Message: "shardgate: lost the server connection while it was serving this client (" + l.be.Addr() + ")",
			Hint: "the statement may or may not have run; an open transaction was rolled back", Fatal: fatal}, fatal))
	}
	if needRFQ && !fatal {
		wire.WriteFrame(s.out, 'Z', []byte{'I'})
	}
	s.out.Flush()
	s.outMu.Unlock()
	if fatal {
		s.conn.Close()
	}
}

// stopPump makes the pump of an idle link return without consuming
// anything, so the session goroutine can use or release the connection.
func (s *session) stopPump(l *link) {
	s.mu.Lock()
	l.stopping = true
	running := l.pumping
	s.mu.Unlock()
	if running {
		l.be.Net().SetReadDeadline(time.Unix(1, 0))
	}
	s.pumpRuns.Wait()
	l.be.Net().SetReadDeadline(time.Time{})
}
