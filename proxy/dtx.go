package proxy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
)

// distTx is a client transaction that runs on several shards: a server
// connection per shard it touched, each in a transaction of its own, ended
// together (with two-phase commit when more than one wrote). The session
// goroutine drives its connections directly, as it drives a scatter's;
// the single-server link machinery (pump, retries) sits it out.
type distTx struct {
	// begin is the statement that starts the transaction on each shard
	// that joins.
	begin string
	// conns are the shards' connections, ascending by shard.
	conns []*shardConn
	// failed: a statement failed, so the transaction is aborted, as a
	// server's would be: only its end is accepted.
	failed bool
	// implicit: the proxy opened it for one statement outside any client
	// transaction; it ends with that statement.
	implicit bool
}

func (d *distTx) conn(shard int) *shardConn {
	for _, c := range d.conns {
		if c.shard == shard {
			return c
		}
	}
	return nil
}

// writers lists the shards that wrote, ascending.
func (d *distTx) writers() []int {
	var w []int
	for _, c := range d.conns {
		if c.wrote {
			w = append(w, c.shard)
		}
	}
	return w
}

// inDist reports whether the client is in a transaction over several
// shards.
func (s *session) inDist() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dtx != nil
}

// txOpenLocked reports whether the client has a transaction open that the
// next statement must join: a deferred BEGIN, a server transaction on its
// link, or one over several shards. A link whose idle server is on its way
// back to the pool is waited for. A link with responses still due counts
// as open: what they leave behind is not known yet.
func (s *session) txOpenLocked() bool {
	if s.dtx != nil || s.begin != nil {
		return true
	}
	l := s.link
	if l == nil {
		return false
	}
	if l = s.letGoLocked(l); l == nil {
		return false
	}
	return l.openTx || l.txStatus != 'I' || !l.q.empty() || l.unsynced
}

// openDist turns the client's transaction into one over several shards,
// or opens an implicit one for a single statement outside a transaction.
// A transaction running on a link keeps that server as its first shard.
func (s *session) openDist() (*distTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtx != nil {
		return s.dtx, nil
	}
	if s.mode == SessionMode || s.pinned {
		return nil, &Error{Code: "0A000",
			Message: "this client holds one server connection for its session, so it cannot run a transaction over several shards",
			Hint:    "use pool.mode: transaction for clients that use several shards, or route with /* shardgate: shard=NAME */"}
	}
	open := s.txOpenLocked()
	if l := s.link; l != nil && open && l.q.empty() && !l.unsynced && l.writers == 0 && l.pumping {
		// The pump waits on the server for what an idle transaction may
		// still hear (notices); the session takes the connection over.
		s.mu.Unlock()
		s.stopPump(l)
		s.mu.Lock()
		if s.link != l || s.dtx != nil {
			return nil, &Error{Code: "08006", Message: "lost the server connection of the transaction"}
		}
	}
	d := &distTx{begin: "BEGIN", implicit: !open}
	switch l := s.link; {
	case s.begin != nil:
		if s.begin.failed {
			return nil, errAborted
		}
		d.begin = s.begin.sql
		s.begin = nil
	case l != nil && open:
		if l.unsynced || !l.q.empty() || l.writers > 0 || l.copyIn != copyNone || l.pumping {
			return nil, &Error{Code: "0A000",
				Message: "an extended-protocol batch cannot move to another shard inside a transaction",
				Hint:    "send Sync before a statement that needs another shard"}
		}
		if l.txStatus == 'E' {
			return nil, errAborted
		}
		if l.beginSQL != "" {
			d.begin = l.beginSQL
		}
		// The link's server becomes the transaction's first shard.
		c := &shardConn{be: l.be, st: l.st, shard: l.shard, ready: true, wrote: l.wrote}
		d.conns = append(d.conns, c)
		l.retry = nil
		if s.recording == l {
			s.recording = nil
		}
		s.link = nil
	case l != nil:
		// An idle link (a pinned client would not be here): let it go.
		s.link = nil
		l.be.Pool().Put(l.be)
	}
	s.dtx = d
	return d, nil
}

// join returns the transaction's connection on a shard, starting the
// transaction there first if the shard is new to it. Shards join on their
// primary: a transaction over several shards is the primaries' business.
func (s *session) join(d *distTx, shard int) (*shardConn, error) {
	if c := d.conn(shard); c != nil {
		return c, nil
	}
	be, _, err := s.route(need{write: true}.onShard(shard))
	if err != nil {
		return nil, err
	}
	c := &shardConn{be: be, st: stateOf(be, s.srv.o().PreparedCacheSize), shard: shard}
	s.mu.Lock()
	replay := replaySQL(s.settings.values, c.st.settings)
	s.mu.Unlock()
	deadline := time.Now().Add(s.srv.o().ResetTimeout)
	if replay != "" {
		if err := roundTrip(be, c.st, replay, deadline); err != nil {
			be.Pool().Discard(be)
			return nil, err
		}
	}
	s.mu.Lock()
	start := d.begin
	for _, sp := range s.savepoints {
		// The savepoints the client made before this shard joined: a
		// rollback to one of them undoes all the shard's work.
		start += "; SAVEPOINT " + quoteIdent(sp)
	}
	s.mu.Unlock()
	if status, err := c.exec(start, deadline); err != nil || status != 'T' {
		be.Pool().Discard(be)
		if err == nil {
			err = fmt.Errorf("the server's status after %q is %q", start, status)
		}
		return nil, &Error{Code: "08006", Message: fmt.Sprintf("could not start the transaction on shard %s: %v", s.shardNames()[shard], err)}
	}
	c.ready = true
	i, _ := slices.BinarySearchFunc(d.conns, shard, func(c *shardConn, shard int) int { return c.shard - shard })
	d.conns = slices.Insert(d.conns, i, c)
	return c, nil
}

// distScatter returns a scatter over the transaction's connections on the
// shards of set, joining the shards that are new to it.
func (s *session) distScatter(d *distTx, set shardSet) (*scatter, error) {
	sc := &scatter{s: s, dist: d}
	for _, shard := range set {
		c, err := s.join(d, shard)
		if err != nil {
			return nil, err
		}
		c.ready = false
		sc.conns = append(sc.conns, c)
	}
	s.mu.Lock()
	s.scattered = sc
	s.mu.Unlock()
	return sc, nil
}

// checkWriters refuses a write that would make the transaction write on
// a second shard when two-phase commit is off: it could not commit
// atomically.
func (s *session) checkWriters(d *distTx, set shardSet, write bool) error {
	if !write || s.srv.o().TwoPhase != nil {
		return nil
	}
	on := d.writers()
	for _, i := range set {
		if !slices.Contains(on, i) {
			on = append(on, i)
		}
	}
	if len(on) <= 1 {
		return nil
	}
	slices.Sort(on)
	names := s.shardNames()
	var list []string
	for _, i := range on {
		list = append(list, names[i])
	}
	what := "the statement writes"
	if len(d.writers()) > 0 {
		what = "the transaction writes"
	}
	return &Error{Code: "0A000",
		Message: fmt.Sprintf("%s on shards %s, and writes over several shards need two-phase commit, which is not enabled", what, strings.Join(list, ", ")),
		Hint:    "set sharding.two_phase_commit: true, or add a condition on the sharding key so the writes stay on one shard"}
}

// markWrote records which shards a statement may have written on.
func markWrote(sc *scatter, write bool) {
	if write {
		for _, c := range sc.conns {
			c.wrote = true
		}
	}
}

// failDist marks the client's transaction over several shards aborted.
func (s *session) failDist() {
	s.mu.Lock()
	if s.dtx != nil {
		s.dtx.failed = true
	}
	s.mu.Unlock()
}

// endDist ends the client's transaction over several shards: committed
// (two-phase when several shards wrote) or rolled back. It returns the
// command tag for the client, or the error that made the commit fail, in
// which case nothing was committed.
func (s *session) endDist(commit bool) (string, error) {
	s.mu.Lock()
	d := s.dtx
	s.dtx = nil
	s.savepoints = s.savepoints[:0]
	if d != nil {
		// Still a transaction for a cutover until its commit is done.
		s.distEnding++
	}
	s.mu.Unlock()
	if d == nil {
		return "ROLLBACK", nil
	}
	defer func() {
		s.mu.Lock()
		s.distEnding--
		s.txEnds++
		s.mu.Unlock()
	}()
	defer s.releaseDist(d)
	for _, c := range d.conns {
		if c.broken {
			commit = false
			if !d.failed {
				s.rollbackDist(d)
				return "", &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s during the transaction; it was rolled back", s.shardNames()[c.shard])}
			}
		}
	}
	if !commit || d.failed {
		s.rollbackDist(d)
		return "ROLLBACK", nil
	}
	writers := d.writers()
	if len(writers) > 1 {
		if err := s.commitTwoPhase(d); err != nil {
			return "", err
		}
		return "COMMIT", nil
	}
	// One shard wrote at most: the others only read, and commit first, so
	// that the writer's commit is the one that decides.
	for _, c := range d.conns {
		if !c.wrote {
			if _, err := c.exec("COMMIT", s.deadline()); err != nil {
				c.broken = true
			}
		}
	}
	for _, c := range d.conns {
		if c.wrote {
			if _, err := c.exec("COMMIT", s.deadline()); err != nil {
				if _, ok := err.(*pgconn.PgError); !ok {
					c.broken = true
				}
				return "", s.shardErr(c, err)
			}
			s.notePosition(c)
		}
	}
	return "COMMIT", nil
}

// rollbackDist rolls back every shard of the transaction.
func (s *session) rollbackDist(d *distTx) {
	for _, c := range d.conns {
		if !c.broken {
			if _, err := c.exec("ROLLBACK", s.deadline()); err != nil {
				c.broken = true
			}
		}
	}
}

// releaseDist hands the transaction's connections back: idle ones to
// their pools, any other closed.
func (s *session) releaseDist(d *distTx) {
	for _, c := range d.conns {
		if c.broken || !c.ready || c.status != 'I' {
			c.be.Pool().Discard(c.be)
		} else {
			c.be.Pool().Put(c.be)
		}
	}
	d.conns = nil
}

func (s *session) deadline() time.Time { return time.Now().Add(s.srv.o().ResetTimeout) }

// shardErr names the shard in an error from one of its servers.
func (s *session) shardErr(c *shardConn, err error) error {
	name := s.shardNames()[c.shard]
	if pe, ok := err.(*pgconn.PgError); ok {
		named := *pe
		named.Message = fmt.Sprintf("on shard %s: %s", name, pe.Message)
		return &named
	}
	return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", name, err)}
}

// notePosition learns a shard's WAL position after a commit there: the
// client's later reads of that shard must find it replayed.
func (s *session) notePosition(c *shardConn) {
	rt := &s.srv.o().Routing
	if s.srv.o().Topology == nil || rt.RYW == RYWOff {
		return
	}
	s.mu.Lock()
	s.wroteAt = time.Now()
	s.mu.Unlock()
	if rt.RYW != RYWLSN {
		return
	}
	v, _, err := c.query(positionQuery, s.deadline())
	if err != nil {
		s.mu.Lock()
		s.primaryUntil = time.Now().Add(rt.RYWWait)
		s.mu.Unlock()
		return
	}
	if lsn, err := pool.ParseLSN(v); err == nil {
		s.mu.Lock()
		s.causal.raise(c.shard, lsn)
		s.mu.Unlock()
	}
}

// exec runs one simple query on a connection the session owns and
// returns the server's transaction status after it, or the server's
// error.
func (c *shardConn) exec(sql string, deadline time.Time) (byte, error) {
	_, status, err := c.query(sql, deadline)
	return status, err
}

// query runs one simple query and reads its answer to ReadyForQuery: the
// first column of its first row, the transaction status and the first
// error. A failure to talk to the server marks the connection broken.
func (c *shardConn) query(sql string, deadline time.Time) (string, byte, error) {
	var value string
	status, err := c.each(sql, deadline, func(vals [][]byte) {
		if value == "" && len(vals) > 0 {
			value = string(vals[0])
		}
	})
	return value, status, err
}

// rows runs a query and returns its rows as text (NULL as "").
func (c *shardConn) rows(sql string) ([][]string, error) {
	var out [][]string
	_, err := c.each(sql, time.Now().Add(30*time.Second), func(vals [][]byte) {
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = string(v)
		}
		out = append(out, row)
	})
	return out, err
}

// each runs one simple query, calling row for each row, and returns the
// transaction status after it or the first error.
func (c *shardConn) each(sql string, deadline time.Time, row func([][]byte)) (byte, error) {
	be := c.be
	wire.WriteFrame(be.Writer(), 'Q', append([]byte(sql), 0))
	be.Net().SetDeadline(deadline)
	defer be.Net().SetDeadline(time.Time{})
	c.ready = false
	if err := be.Writer().Flush(); err != nil {
		c.broken = true
		return 0, err
	}
	var firstErr error
	var vals [][]byte
	for {
		typ, body, err := c.read()
		if err != nil {
			return 0, err
		}
		switch typ {
		case 'Z':
			return c.status, firstErr
		case 'D':
			if vals, err = rowsOf(body, vals); err == nil {
				row(vals)
			}
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err == nil && firstErr == nil {
				firstErr = pgconn.ErrorResponseToPgError(&e)
			}
		case 'S':
			var ps pgproto3.ParameterStatus
			if ps.Decode(body) == nil {
				be.Params[ps.Name] = ps.Value
			}
		}
	}
}
