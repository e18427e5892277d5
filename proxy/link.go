package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
)

// link is a server connection attached to a session. Its fields are
// guarded by the session's mu; its socket is written by the session
// goroutine and read by the pump goroutine.
type link struct {
	be *pool.Conn
	st *serverState
	w  *bufio.Writer
	q  queue
	// txStatus is the server's transaction status from its last
	// ReadyForQuery.
	txStatus byte
	// unsynced: extended-protocol messages were sent since the last Sync;
	// the server holds state (an implicit transaction, the unnamed portal)
	// until it gets one.
	unsynced bool
	// skipping: the server reported an error in an extended-protocol batch
	// and ignores requests until Sync; so do we.
	skipping bool
	// writers counts session-goroutine writes in progress, cancels the
	// cancel requests in flight: either keeps the link attached, because a
	// released connection must carry nothing of this client to the next.
	writers, cancels int
	pumping          bool
	stopping         bool
	// gotError: the server sent an error for the pending requests; if it
	// then goes away, the client has already been told.
	gotError bool
	// ddl: the current transaction changed the schema.
	ddl bool

	// host is the server's host in the topology (nil without one); rw
	// says it is the shard's primary, reached through a read-write pool.
	host  *pool.Host
	rw    bool
	shard int
	// openTx: the requests sent so far leave a transaction open, as far as
	// their text says (the server's status lags behind a pipeline).
	openTx bool
	// wrote: a request that may change data was sent in the current
	// transaction; its commit position is due for read-your-writes.
	wrote bool
	// lsnDue counts position queries in flight; the pump reads their rows.
	lsnDue atomic.Int32
	// copyIn: a request that may start COPY FROM STDIN was sent; the
	// server takes no query until the copy ends, so the position query
	// waits for CopyDone.
	copyIn copyState
	// retry, while set, can replay the link's first request elsewhere.
	retry *retryLog
	// beginSQL started the link's transaction, when the proxy sent it: a
	// transaction that moves to several shards starts alike on each.
	beginSQL string
	// ran: a statement was executed on the link (not only prepared or
	// described), so its transaction has begun for real.
	ran bool
	// heldZ is the client's ReadyForQuery held back until the position of
	// its commit is known: released earlier, the client could send a read
	// that is routed without it.
	heldZ byte
	// ctr are the counters of the link's pool; acct its tally since the
	// last flush into them.
	ctr  *poolCounters
	acct acct
}

// acquire returns the session's link, attaching a server connection if it
// has none, with the given requests queued; the caller then writes them
// and calls done. Queueing before writing is what lets the pump know that
// responses are still due.
func (s *session) acquire(n need, entries ...pending) (*link, error) {
	s.mu.Lock()
	if s.dtx != nil {
		s.mu.Unlock()
		return nil, &Error{Code: "0A000", Message: "this request cannot run inside a transaction over several shards",
			Hint: "end the transaction first"}
	}
	l := s.link
	if l != nil && !s.fitsLocked(l, n) {
		l = s.letGoLocked(l)
		if l != nil && !n.any && l.shard != s.shardOf(n) {
			if l = s.leaveShardLocked(l); l != nil {
				err := s.crossShardLocked(l, n)
				s.mu.Unlock()
				return nil, err
			}
		}
	}
	if l == nil {
		s.mu.Unlock()
		var err error
		if l, err = s.attach(n); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.link = l
	}
	for _, e := range entries {
		if e.kind == 'P' || e.kind == 'B' || e.kind == 'D' || e.kind == 'E' || e.kind == 'C' {
			l.unsynced = true
		}
		l.q.push(e)
	}
	if len(entries) > 0 {
		s.noteSendLocked(l)
	}
	l.writers++
	if !l.pumping {
		s.startPump(l)
	}
	s.mu.Unlock()
	return l, nil
}

// done ends a write started by acquire, flushing unless the client has
// more requests buffered (they will go out in the same packet).
func (s *session) done(l *link) { s.endWrite(l, s.in.Buffered() == 0) }

// endWrite ends a write in flight on l (counted in l.writers), flushing
// first if asked, and lets the link go back to the pool if it is done.
func (s *session) endWrite(l *link, flush bool) {
	var err error
	if flush {
		err = l.w.Flush()
	}
	s.mu.Lock()
	l.writers--
	release := s.releasableLocked(l)
	s.mu.Unlock()
	if err != nil {
		// The pump sees the dead socket too and tells the client.
		l.be.Net().Close()
	}
	if release {
		l.be.Pool().Put(l.be)
	}
}

// letGoLocked waits, if the server of the link is done with the client's
// last request and about to go back to the pool, until it has; the next
// request is then routed afresh. It returns the link still attached, if
// any. Called with mu held; it may release it meanwhile.
func (s *session) letGoLocked(l *link) *link {
	if l.idleLocked() && l.writers == 0 && l.pumping && !s.pinned && s.mode != SessionMode {
		s.mu.Unlock()
		s.pumpRuns.Wait()
		s.mu.Lock()
	}
	return s.link
}

// attach checks out a server connection and brings it to the client's
// settings (queued as a hidden request, so it costs no round trip).
func (s *session) attach(n need) (*link, error) {
	s.mu.Lock()
	aborted := s.begin != nil && s.begin.failed
	s.mu.Unlock()
	if aborted {
		return nil, errAborted
	}
	if err := s.gate(s.shardOf(n)); err != nil {
		return nil, err
	}
	be, t, err := s.route(s.lookahead(n))
	if err != nil {
		return nil, err
	}
	if s.closing.Load() {
		// Killed while it waited: its client was told the session ended.
		be.Pool().Put(be)
		return nil, adminShutdown()
	}
	st := stateOf(be, s.srv.o().PreparedCacheSize)
	l := &link{be: be, st: st, w: be.Writer(), txStatus: 'I', host: t.host, rw: t.rw, shard: t.shard,
		ctr: s.srv.countersOf(be)}
	s.mu.Lock()
	l.q.items, s.spareQueue = s.spareQueue, nil
	if l.q.items == nil {
		l.q.items = make([]pending, 0, 8)
	}
	if s.retryableLocked(t) {
		l.retry = &retryLog{outcome: make(chan bool, 1)}
		l.recordLocked(s.cur.typ, s.cur.body)
		s.recording = l
	}
	sql := replaySQL(s.settings.values, st.settings)
	begin := s.begin
	s.begin = nil
	s.mu.Unlock()
	if sql != "" {
		l.q.push(pending{kind: 'Q', hidden: true})
		wire.WriteFrame(l.w, 'Q', append([]byte(sql), 0))
	}
	if begin != nil {
		l.q.push(pending{kind: 'Q', hidden: true})
		wire.WriteFrame(l.w, 'Q', append([]byte(begin.sql), 0))
		l.openTx = true
		l.beginSQL = begin.sql
	}
	return l, nil
}

// quietLocked reports whether the server owes the client nothing and no
// transaction or extended-protocol batch is open on it.
func (l *link) quietLocked() bool {
	return l.q.empty() && l.txStatus == 'I' && !l.unsynced && !l.openTx
}

// idleLocked reports whether the server owes the client nothing and holds
// no state of its transaction.
func (l *link) idleLocked() bool {
	return l.q.empty() && !l.unsynced && l.txStatus == 'I' && !l.stopping
}

// releasableLocked reports whether the link can go back to the pool now,
// and if so detaches it. Writes and cancel requests in flight keep it: a
// released connection must carry nothing of this client to the next. In
// session mode a link is only released when the client leaves.
func (s *session) releasableLocked(l *link) bool {
	if s.mode == SessionMode || s.pinned || s.link != l || !l.idleLocked() || l.writers > 0 || l.cancels > 0 || l.pumping {
		return false
	}
	s.link = nil
	// The next link takes over the queue's array: a transaction then
	// allocates no queue. The link keeps none, so that a late push through
	// a stale pointer to it cannot write into its successor's queue.
	s.spareQueue, l.q = l.q.items[:0], queue{}
	return true
}

func rfq(status byte) []byte { return []byte{'Z', 0, 0, 0, 5, status} }

func encodeMsg(msg wire.Encoder) []byte {
	b, _ := msg.Encode(nil)
	return b
}

func parseComplete() []byte { return []byte{'1', 0, 0, 0, 4} }
func closeComplete() []byte { return []byte{'3', 0, 0, 0, 4} }

func commandComplete(tag string) []byte {
	b := make([]byte, 5, 6+len(tag))
	b[0] = 'C'
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(tag)+1))
	b = append(b, tag...)
	return append(b, 0)
}

// fatalError spots an error that ends the server session.
func fatalError(body []byte) bool {
	return bytes.Contains(body, []byte("SFATAL\x00")) || bytes.Contains(body, []byte("SPANIC\x00"))
}

// downgradeFatal turns a server's FATAL error into an ERROR. In pooled
// modes the server session ending does not end the client's session with
// the proxy, and a client reading FATAL would close its connection.
func downgradeFatal(body []byte) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil || (e.Severity != "FATAL" && e.Severity != "PANIC") {
		return body
	}
	e.Severity, e.SeverityUnlocalized = "ERROR", "ERROR"
	b, err := e.Encode(nil)
	if err != nil {
		return body
	}
	return b[5:]
}

// stalePlan spots the errors a server gives for a prepared statement that
// DDL made wrong: its result type changed (at Bind or Execute), or an
// object it was planned against is gone (at Describe or Bind).
func stalePlan(kind byte, body []byte) bool {
	if bytes.Contains(body, []byte("C0A000\x00")) && bytes.Contains(body, []byte("cached plan must not change result type")) {
		return true
	}
	if kind != 'D' && kind != 'B' {
		return false
	}
	for _, code := range [][]byte{[]byte("CXX000\x00"), []byte("C42P01\x00"), []byte("C42704\x00"), []byte("C42883\x00")} {
		if bytes.Contains(body, code) {
			return true
		}
	}
	return false
}

// isDDL reports whether a command tag is a schema change that can make
// a prepared statement wrong. CREATE alone cannot (CREATE OR REPLACE can,
// and the server then reports it), and counting it would make every
// temporary table a schema change.
func isDDL(tag string) bool {
	return strings.HasPrefix(tag, "ALTER ") || strings.HasPrefix(tag, "DROP ")
}
