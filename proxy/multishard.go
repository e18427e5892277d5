package proxy

// How a statement that needs several shards runs: scattered on fresh
// connections, or inside a transaction over several shards; the engine
// that runs it is in scatter.go.

import (
	"fmt"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

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
	if len(set) > 1 {
		// Counted once it goes out: a statement refused before is not
		// a fan-out.
		s.srv.fanouts.count(p)
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
