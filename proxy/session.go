package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// session is one client connection after startup. Its goroutine reads the
// client and writes to the server; a pump goroutine per attached server
// connection writes the server's responses to the client.
type session struct {
	srv    *Server
	log    *slog.Logger
	id     uint32
	secret []byte
	conn   net.Conn
	in     *wire.Reader
	user   *User
	db     string
	mode   PoolMode

	// outMu serialises writes to the client between the session goroutine
	// and the pump. Lock order: mu, then outMu.
	outMu sync.Mutex
	out   *bufio.Writer

	// mu guards the fields below, shared with the pump and cancel requests.
	mu       sync.Mutex
	link     *link
	settings settings
	// stmts, unnamed and portals are the client's prepared statements and
	// portals (pooled modes), so they can be recreated on any server.
	stmts   map[string]*stmt
	unnamed *stmt
	portals map[string]*router.Analysis
	// portalStmts names the server statement behind each portal, to spot
	// statements that DDL made stale.
	portalStmts map[string]string
	// skipUntilSync: the proxy refused a request of an extended-protocol
	// batch and, as a server would, ignores the rest up to Sync.
	skipUntilSync bool
	// pinned: the client made state that lives in its server session
	// (transaction mode), so it keeps that server until it leaves.
	pinned bool

	// bytesIn counts client bytes read since the last request was sent
	// (session goroutine only); the request's link accounts for them.
	bytesIn int64
	// slowSQL is the last simple query's text, kept only while the slow
	// query log is on (session goroutine; read by the pump under mu).
	slowSQL string
	// admin: this is an admin console session. waiting: the session waits
	// for a server connection (guarded by mu).
	admin   bool
	waiting atomic.Bool
	// paused: the session waits at a PAUSE.
	paused atomic.Bool
	// rights are a console session's permissions.
	rights consoleRights
	// since is when the client connected, from where, as whom.
	since            time.Time
	remote, userName string
	// inRequest: the session goroutine is handling a client request;
	// closing: a drain or KILL decided to end the session. A drain only
	// closes a session between requests (see Server.closeIdle).
	inRequest, closing atomic.Bool
	// txEnds counts the transactions the session ended (guarded by mu),
	// distEnding those over several shards still committing; gone is set
	// when it closed. A cutover waits on them (freeze.go).
	txEnds     uint64
	distEnding int
	gone       bool
	// killed closes when the session is ended by the operator or a
	// drain, waking it if it waits at a PAUSE.
	killed   chan struct{}
	killOnce sync.Once

	// Routing state. begin is a BEGIN answered by the proxy and not yet
	// sent; role is the client's SET shardgate.role; causal holds, per
	// shard, the WAL position of its last commit there (read-your-writes
	// by LSN: positions of different servers do not compare), wroteAt the
	// time of its last write (by time).
	begin *deferredBegin
	role  roleOverride
	// shard is the client's SET shardgate.shard: every statement runs on
	// that shard, as with a shard= hint ("" routes by the map).
	shard   string
	causal  causalLSN
	wroteAt time.Time
	// primaryUntil sends reads to the primary after a write whose commit
	// position could not be learnt.
	primaryUntil time.Time

	// Read retries (session goroutine only): cur is the message being
	// handled, recording the retryable link whose request is being
	// written, retries the attempts of the current read, exclude the
	// replica that failed it, replaying set while it runs again.
	cur       clientMsg
	recording *link
	retries   int
	exclude   *pool.Host
	replaying bool

	// pumps feeds links to the session's pump goroutine; pumpRuns counts
	// the runs handed over and not yet finished. Both belong to the session
	// goroutine.
	pumps    chan *link
	pumpRuns sync.WaitGroup
	// lastParse is the statement of the client's last Parse, analysed by
	// lastRouter (session goroutine only; see stmtFor).
	lastParse  *stmt
	lastRouter *router.Router
	// spareQueue is the queue array of the last link released, empty, for
	// the next one (guarded by mu).
	spareQueue []pending

	// scattered is the run of a statement over several shards in
	// progress, for cancel requests (guarded by mu).
	scattered *scatter
	// scatterPortals are the client's portals over several shards.
	scatterPortals map[string]*scatterPortal
	// dtx is the client's transaction over several shards, if it is in
	// one (guarded by mu); link is nil meanwhile.
	dtx *distTx
	// savepoints are the open savepoints of the client's transaction, in
	// order (guarded by mu).
	savepoints []string
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(startupTimeout))
	st, err := s.readStartup(c)
	if err != nil {
		s.refuse(c, err)
		return
	}
	if st.cancel != nil {
		s.handleCancel(st.cancel)
		return
	}
	ss := &session{
		since:       time.Now(),
		killed:      make(chan struct{}),
		remote:      c.RemoteAddr().String(),
		userName:    st.user,
		srv:         s,
		conn:        st.conn,
		in:          wire.NewReader(st.conn, 16<<10, wire.ClientLimit),
		out:         bufio.NewWriterSize(st.conn, 16<<10),
		db:          st.db,
		mode:        s.o().Mode,
		secret:      make([]byte, 4),
		stmts:       map[string]*stmt{},
		portals:     map[string]*router.Analysis{},
		portalStmts: map[string]string{},
	}
	rand.Read(ss.secret)
	if s.o().RequireTLS && !st.isTLS {
		s.refuse(st.conn, &Error{Code: "28000", Fatal: true, Message: "shardgate requires an encrypted connection (listen.tls.mode=require)",
			Hint: "connect with sslmode=require"})
		return
	}
	if s.draining.Load() {
		s.refused.Add(1)
		s.refuse(st.conn, adminShutdown())
		return
	}
	if !s.register(ss) {
		s.refused.Add(1)
		s.refuse(st.conn, &Error{Code: "53300", Fatal: true, Message: "sorry, too many clients already",
			Hint: "raise pool.max_client_conn in the shardgate config"})
		return
	}
	defer s.unregister(ss)
	defer func() {
		ss.mu.Lock()
		ss.gone = true
		ss.mu.Unlock()
	}()
	ss.log = s.log.With("client", ss.id, "user", st.user, "database", st.db, "remote", c.RemoteAddr().String())
	if st.db == s.o().Admin.Database {
		ss.admin = true
		if err := ss.startConsole(st); err != nil {
			s.refused.Add(1)
			ss.log.Info("console client refused", "err", err)
			ss.sendFatal(err)
			return
		}
		st.conn.SetDeadline(time.Time{})
		s.accepted.Add(1)
		ss.log.Info("console client connected")
		err = ss.serveConsole()
		ss.log.Info("console client disconnected", "err", err)
		return
	}
	if err := ss.start(st); err != nil {
		s.refused.Add(1)
		ss.log.Info("client refused", "err", err)
		ss.sendFatal(err)
		return
	}
	st.conn.SetDeadline(time.Time{})
	s.accepted.Add(1)
	ss.log.Info("client connected")
	err = ss.serve()
	ss.finish()
	if ss.pumps != nil {
		close(ss.pumps)
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !ss.closing.Load() {
		ss.log.Info("client disconnected", "err", err)
	} else {
		ss.log.Info("client disconnected")
	}
}

// refuse tells a client why it cannot go on, before a session exists.
func (s *Server) refuse(c net.Conn, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		return // the client went away or spoke garbage before a reply made sense
	}
	w := bufio.NewWriter(c)
	wire.WriteMessage(w, errorResponse(err, true))
	w.Flush()
}

func (s *session) sendFatal(err error) {
	s.outMu.Lock()
	wire.WriteMessage(s.out, errorResponse(err, true))
	s.out.Flush()
	s.outMu.Unlock()
}

// start authenticates the client, learns the server's parameters with the
// client's settings applied, and tells the client it is ready.
func (s *session) start(st *startup) error {
	if st.minor > 0 || len(st.unknown) > 0 {
		// We speak 3.0 only; the client then does too.
		wire.WriteMessage(s.out, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: st.unknown})
	}
	ac := &authConn{r: s.in, w: s.out}
	u := s.srv.o().Users[st.user]
	if u == nil {
		return auth.AuthenticateUnknown(ac, st.user, auth.MethodSCRAM)
	}
	if err := auth.Authenticate(ac, &u.Credential); err != nil {
		return err
	}
	s.user = u
	s.settings = newSettings(st.params)

	// A server connection now, with the client's settings, both to fail
	// the login if the database cannot be served and to report the
	// parameters the client's own server session would have.
	if err := s.gate(s.srv.defaultShard()); err != nil {
		return err
	}
	be, t, err := s.route(need{write: true})
	if err != nil && s.mode != SessionMode && s.srv.o().Topology != nil {
		// No primary for now (a failover): reads can still be served.
		be, t, err = s.route(need{})
	}
	if err != nil {
		return err
	}
	p := be.Pool()
	sst := stateOf(be, s.srv.o().PreparedCacheSize)
	if sql := replaySQL(s.settings.values, sst.settings); sql != "" {
		if err := roundTrip(be, sst, sql, time.Now().Add(s.srv.o().ResetTimeout)); err != nil {
			// A bad setting in the startup packet fails the login, as the
			// server itself would fail it.
			p.Discard(be)
			return err
		}
	}
	if s.mode == SessionMode {
		s.srv.rekey(s, be.PID)
	}
	wire.WriteMessage(s.out, &pgproto3.AuthenticationOk{})
	for k, v := range be.Params {
		wire.WriteMessage(s.out, &pgproto3.ParameterStatus{Name: k, Value: v})
	}
	wire.WriteMessage(s.out, &pgproto3.BackendKeyData{ProcessID: s.id, SecretKey: s.secret})
	s.out.Write(rfq('I'))
	if err := s.out.Flush(); err != nil {
		p.Put(be)
		return err
	}
	if s.mode != SessionMode {
		p.Put(be)
		return nil
	}
	// The pump runs from the start, so that whatever the server says while
	// the client is idle (notifications, a FATAL before it goes away)
	// reaches the client at once.
	s.mu.Lock()
	s.link = &link{be: be, st: sst, w: be.Writer(), txStatus: 'I', host: t.host, rw: t.rw, ctr: s.srv.countersOf(be)}
	s.startPump(s.link)
	s.mu.Unlock()
	return nil
}

// serve reads client messages until the client leaves or breaks the
// protocol. One type switch hands each message to its handler.
func (s *session) serve() error {
	for {
		typ, n, err := s.in.Header()
		s.bytesIn += int64(n) + 5
		if err != nil {
			if errors.Is(err, wire.ErrMessageTooLarge) {
				s.sendFatal(&Error{Code: "08P01", Message: err.Error()})
			}
			return err
		}
		switch typ {
		case 'd', 'c', 'f':
			err = s.copyData(typ, n)
		case 'X':
			return nil
		case 'Q', 'P', 'B', 'D', 'E', 'C', 'S', 'H', 'F':
			var body []byte
			if body, err = s.in.Body(n); err != nil {
				return err
			}
			err = s.dispatch(typ, body)
		default:
			err = &Error{Code: "08P01", Fatal: true, Message: fmt.Sprintf("invalid frontend message type %d", typ)}
		}
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) && pe.Fatal {
				s.sendFatal(err)
			}
			return err
		}
	}
}

func (s *session) dispatch(typ byte, body []byte) error {
	s.inRequest.Store(true)
	defer s.inRequest.Store(false)
	if s.closing.Load() || (s.srv.draining.Load() && !s.midTransaction()) {
		// Draining: a client between transactions starts no new one.
		return adminShutdown()
	}
	s.record(typ, body)
	s.cur = clientMsg{typ: typ, body: body}
	err := s.handle(typ, body)
	s.cur = clientMsg{}
	if err == nil && (typ == 'Q' || typ == 'S') {
		err = s.awaitOutcome()
	}
	return err
}

func (s *session) handle(typ byte, body []byte) error {
	switch typ {
	case 'Q':
		return s.query(body)
	case 'P':
		return s.parse(body)
	case 'B':
		return s.bind(body)
	case 'D':
		return s.describe(body)
	case 'E':
		return s.execute(body)
	case 'C':
		return s.close(body)
	case 'S':
		return s.sync()
	case 'H':
		return s.flush()
	case 'F':
		return s.functionCall(body)
	}
	return nil
}

// forward sends one message to the server, attaching one if needed.
func (s *session) forward(n need, p pending, typ byte, body []byte) error {
	l, err := s.acquire(n, p)
	if err != nil {
		return s.reject(p.kind, err)
	}
	wire.WriteFrame(l.w, typ, body)
	s.done(l)
	return nil
}

// functionCall forwards a FunctionCall: the function may write.
func (s *session) functionCall(body []byte) error {
	l, err := s.acquire(need{write: true}, pending{kind: 'F'})
	if err != nil {
		return s.reject('F', err)
	}
	s.mu.Lock()
	l.wrote, l.ran = true, true
	capture := !l.openTx && s.captureDueLocked(l)
	s.mu.Unlock()
	wire.WriteFrame(l.w, 'F', body)
	if capture {
		writeCapture(l)
	}
	s.done(l)
	return nil
}

// reject answers a request with an error from the proxy, in its place
// among the responses. A simple query ends with ReadyForQuery; in an
// extended batch the rest up to Sync is ignored, as a server does.
func (s *session) reject(kind byte, err error) error {
	var pe *Error
	if errors.As(err, &pe) && pe.Fatal {
		return err
	}
	msg := encodeMsg(errorResponse(err, false))
	s.mu.Lock()
	l := s.link
	extended := kind != 'Q' && kind != 'F'
	if extended {
		s.skipUntilSync = true
	}
	if l != nil && !l.q.empty() {
		l.q.push(pending{synth: msg})
		if !extended {
			l.q.push(pending{synth: rfq(l.txStatus)})
		}
		s.mu.Unlock()
		return nil
	}
	status := byte('I')
	if l != nil {
		status = l.txStatus
	} else if s.begin != nil {
		// A server would have aborted the transaction.
		s.begin.failed = true
		status = 'E'
	} else if s.dtx != nil {
		s.dtx.failed = true
		status = 'E'
	}
	s.outMu.Lock()
	s.mu.Unlock()
	s.out.Write(msg)
	if !extended {
		s.out.Write(rfq(status))
	}
	err = s.out.Flush()
	s.outMu.Unlock()
	return err
}

// reply sends a reply the proxy makes itself (CloseComplete, ...), in its
// place among the responses.
func (s *session) reply(msg []byte) error { return s.replyAs(pending{synth: msg}) }

// replyAs queues p, a reply made by the proxy, behind the responses still
// due, or writes it at once if none are.
func (s *session) replyAs(p pending) error {
	s.mu.Lock()
	if s.link != nil && !s.link.q.empty() {
		s.link.q.push(p)
		s.mu.Unlock()
		return nil
	}
	s.outMu.Lock()
	s.mu.Unlock()
	s.out.Write(p.synth)
	var err error
	if s.in.Buffered() == 0 {
		err = s.out.Flush()
	}
	s.outMu.Unlock()
	return err
}

// copyData relays COPY FROM STDIN data; outside a COPY there is nobody to
// take it, and a server would ignore it too.
func (s *session) copyData(typ byte, n int) error {
	s.mu.Lock()
	l := s.link
	if l == nil {
		s.mu.Unlock()
		return s.in.Skip(n)
	}
	l.writers++
	l.retry = nil
	s.mu.Unlock()
	err := s.in.CopyTo(l.w, typ, n)
	capture := false
	if typ == 'c' || typ == 'f' {
		s.mu.Lock()
		simple := l.copyIn == copySimple
		l.copyIn = copyNone
		// After a simple-protocol COPY the server takes queries again; an
		// extended one still waits for the client's Sync, which captures.
		capture = simple && s.captureDueLocked(l)
		s.mu.Unlock()
	}
	if capture {
		writeCapture(l)
	}
	s.done(l)
	return err
}

func (s *session) flush() error {
	s.mu.Lock()
	l := s.link
	if l != nil {
		l.retry = nil // the client reads before it ends the request
	}
	s.mu.Unlock()
	if l == nil {
		return s.reply(nil)
	}
	l, err := s.acquire(anyServer)
	if err != nil {
		return nil
	}
	wire.WriteFrame(l.w, 'H', nil)
	err = l.w.Flush()
	s.done(l)
	if err == nil {
		s.outMu.Lock()
		err = s.out.Flush()
		s.outMu.Unlock()
	}
	return err
}

func (s *session) sync() error {
	s.mu.Lock()
	s.skipUntilSync = false
	l := s.link
	s.mu.Unlock()
	if l == nil {
		// No server holds anything of this client: answer ourselves.
		return s.reply(rfq(s.txStatus()))
	}
	l, err := s.acquire(anyServer, pending{kind: 'S'})
	if err != nil {
		return s.reject('Q', err)
	}
	wire.WriteFrame(l.w, 'S', nil)
	s.mu.Lock()
	l.unsynced = false
	capture := s.captureDueLocked(l)
	s.mu.Unlock()
	if capture {
		writeCapture(l)
	}
	s.done(l)
	return nil
}

// aliveCheckAfter is how long a server connection must have been idle in
// the pool before checkout peeks at it for a FATAL error or a close.
const aliveCheckAfter = 50 * time.Millisecond

// checkoutAlive gets a connection and makes sure a pooled one is still
// usable, so a server that died while idle costs a reconnect, not a
// client's error.
func (s *Server) checkoutAlive(p *pool.Pool) (*pool.Conn, error) {
	for range 3 {
		be, err := p.Get(context.Background())
		if err != nil {
			return nil, err
		}
		// A connection back in the pool only moments ago is trusted, as
		// pgbouncer's server_check_delay does: under load the peek would
		// be paid on every transaction for nothing.
		if be.Reader().Buffered() == 0 && (be.IdleFor() < aliveCheckAfter || pool.Alive(be.Net())) {
			return be, nil
		}
		p.Discard(be)
	}
	return p.Get(context.Background())
}
