package proxy

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
)

// finish returns the session's server connection, if it holds one, to the
// pool in a clean state: a transaction the client left open is rolled
// back first, and in session mode the server session is reset with
// DISCARD ALL. A connection still running a request, or that does not
// come clean in time, is closed instead: nobody else may inherit it.
func (s *session) finish() {
	s.mu.Lock()
	d := s.dtx
	s.dtx = nil
	l := s.link
	s.mu.Unlock()
	if d != nil {
		// Nothing of a transaction its client abandoned may commit.
		s.rollbackDist(d)
		s.releaseDist(d)
	}
	if l == nil {
		return
	}
	s.stopPump(l)
	s.mu.Lock()
	if s.link != l {
		// The pump let it go meanwhile: back in the pool, or discarded
		// after a failure. It is not ours to return again.
		s.mu.Unlock()
		return
	}
	s.link = nil
	busy := !l.q.empty()
	session := s.mode == SessionMode || s.pinned
	s.mu.Unlock()
	p := l.be.Pool()
	if busy {
		s.log.Info("client left with a request running; cancelling it and closing its server connection", "server", l.be.Addr())
		// A query may run on for a long time after its client left.
		if err := sendCancel(l.be.Addr(), l.be.PID, l.be.SecretKey); err != nil {
			s.log.Warn("cancel of abandoned query failed", "server", l.be.Addr(), "err", err)
		}
		p.Discard(l.be)
		return
	}
	if s.mode == SessionMode && l.txStatus != 'I' {
		// The client knows this server by its real PID: a client leaving
		// mid-transaction has been cut off, and whoever connects next must
		// not find the same server session, just as with a direct
		// connection. Closing it also rolls the transaction back.
		p.Discard(l.be)
		return
	}
	// Separate Query messages: in one string, DISCARD ALL would run in the
	// implicit transaction block of the string, where it is refused.
	var stmts []string
	if l.txStatus != 'I' {
		stmts = append(stmts, "ROLLBACK")
	}
	if session {
		stmts = append(stmts, "DISCARD ALL")
	}
	if len(stmts) > 0 || l.unsynced {
		if err := resetServer(l, stmts, time.Now().Add(s.srv.o().ResetTimeout)); err != nil {
			s.log.Warn("server connection not reusable after client left; closing it", "server", l.be.Addr(), "err", err)
			p.Discard(l.be)
			return
		}
		if session {
			clear(l.st.settings)
			l.st.prepared.clear()
			l.st.unnamed = nil
		}
	}
	p.Put(l.be)
}

// resetServer ends an extended-protocol batch left open, runs each
// statement, and checks the server ends idle.
func resetServer(l *link, stmts []string, deadline time.Time) error {
	expect := 0
	if l.unsynced {
		wire.WriteFrame(l.w, 'S', nil)
		expect++
	}
	for _, sql := range stmts {
		wire.WriteFrame(l.w, 'Q', append([]byte(sql), 0))
		expect++
	}
	return exchange(l.be, l.st, expect, deadline)
}

// roundTrip runs sql on a server outside any session's pump and reports
// the first error.
func roundTrip(be *pool.Conn, st *serverState, sql string, deadline time.Time) error {
	wire.WriteFrame(be.Writer(), 'Q', append([]byte(sql), 0))
	return exchange(be, st, 1, deadline)
}

// exchange flushes what is buffered for the server and reads until the
// expected number of ReadyForQuery, keeping ParameterStatus values.
func exchange(be *pool.Conn, st *serverState, expect int, deadline time.Time) error {
	be.Net().SetDeadline(deadline)
	defer be.Net().SetDeadline(time.Time{})
	if err := be.Writer().Flush(); err != nil {
		return err
	}
	var firstErr error
	for expect > 0 {
		typ, n, err := st.r.Header()
		if err != nil {
			return err
		}
		body, err := st.r.Body(n)
		if err != nil {
			return err
		}
		switch typ {
		case 'Z':
			expect--
			if expect == 0 && (len(body) != 1 || body[0] != 'I') {
				return fmt.Errorf("server not idle after reset (status %q)", body)
			}
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return err
			}
			if firstErr == nil {
				firstErr = pgconn.ErrorResponseToPgError(&e)
			}
		case 'S':
			var ps pgproto3.ParameterStatus
			if ps.Decode(body) == nil {
				be.Params[ps.Name] = ps.Value
			}
		}
	}
	return firstErr
}
