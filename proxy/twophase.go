package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TwoPhase configures two-phase commit of transactions that write on
// several shards.
type TwoPhase struct {
	// Log records commit decisions where they outlive the proxy (the
	// catalog database).
	Log DecisionLog
	// Node names this proxy in the ids of the transactions it prepares,
	// so that after a restart it resolves its own in-doubt ones and no
	// other proxy's. It must differ between proxies of one fleet.
	Node string
	// ResolveEvery is how often prepared transactions left behind (by a
	// commit that lost its connection) are resolved; default 30s.
	ResolveEvery time.Duration
	// ListDatabase is the database the resolver connects to in order to
	// list prepared transactions (default postgres).
	ListDatabase string
	// AfterPrepare, when set, runs after every shard prepared and before
	// the decision is recorded; tests use it to stop there.
	AfterPrepare func(gid string)
}

// DecisionLog records the outcome of transactions prepared on several
// shards, where it outlives the proxy (the catalog).
type DecisionLog interface {
	// Decide records commit or rollback for gid unless an outcome is
	// recorded already, and returns the recorded one: the first to ask
	// wins, atomically. The committing proxy asks to commit; a resolver
	// that finds the transaction in doubt asks to roll back. So a commit
	// decision still on its way from a dying proxy cannot land after a
	// resolver rolled a shard back.
	Decide(ctx context.Context, gid string, commit bool) (bool, error)
	// ForgetDecision drops gid's outcome once every shard has it.
	ForgetDecision(ctx context.Context, gid string) error
}

// inFlight names the transactions this process is committing right now:
// the resolver leaves them alone.
type inFlight struct {
	mu   sync.Mutex
	gids map[string]bool
	seq  atomic.Uint64
	// epoch tells apart the ids of two runs of one node.
	epoch string
}

func (f *inFlight) add(gid string) {
	f.mu.Lock()
	if f.gids == nil {
		f.gids = map[string]bool{}
	}
	f.gids[gid] = true
	f.mu.Unlock()
}

func (f *inFlight) remove(gid string) {
	f.mu.Lock()
	delete(f.gids, gid)
	f.mu.Unlock()
}

func (f *inFlight) has(gid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gids[gid]
}

// gidPrefix starts the id of every transaction this node prepares.
func (tp *TwoPhase) gidPrefix() string { return "shardgate:" + tp.Node + ":" }

// newGID makes a global transaction id: the node, the process's start and
// a sequence number.
func (s *Server) newGID() string {
	f := &s.prepared
	return s.o().TwoPhase.gidPrefix() + f.epoch + ":" + strconv.FormatUint(f.seq.Add(1), 10)
}

// commitTwoPhase commits a transaction that wrote on several shards:
// every writer prepares; then the decision is recorded; then each commits
// its prepared transaction. Until the decision is recorded, any failure
// rolls everything back; after it, the transaction is committed, and a
// shard that could not be told yet is told by the resolver.
func (s *session) commitTwoPhase(d *distTx) error {
	tp := s.srv.o().TwoPhase
	gid := s.srv.newGID()
	s.srv.prepared.add(gid)
	defer s.srv.prepared.remove(gid)
	names := s.shardNames()
	// Shards that only read commit first: nothing of theirs needs to be
	// atomic with the writes.
	for _, c := range d.conns {
		if !c.wrote {
			if _, err := c.exec("COMMIT", s.deadline()); err != nil {
				c.broken = c.broken || !isServerError(err)
			}
		}
	}
	var prepared []*shardConn
	var failure error
	for _, c := range d.conns {
		if !c.wrote {
			continue
		}
		if _, err := c.exec("PREPARE TRANSACTION "+quoteLiteral(gid), s.deadline()); err != nil {
			failure = s.shardErr(c, err)
			break
		}
		prepared = append(prepared, c)
	}
	if failure == nil && tp.AfterPrepare != nil {
		tp.AfterPrepare(gid)
	}
	if failure == nil {
		commit, err := s.decide(gid)
		switch {
		case err != nil:
			// Whether the decision was recorded is unknown: the prepared
			// transactions stay for the resolver, which reads it.
			return &Error{Code: "40003", Message: "the outcome of this transaction over several shards is not known yet: its commit decision could not be confirmed in the catalog",
				Hint: "shardgate finishes it once the catalog answers, committed if the decision was recorded and rolled back if not; check before retrying", Err: err}
		case !commit:
			failure = &Error{Code: "40000", Message: "a transaction over several shards was rolled back by shardgate's in-doubt resolver before its commit was recorded"}
		}
	}
	if failure != nil {
		s.rollbackDist(d) // the shards not prepared yet
		for _, c := range prepared {
			if _, err := c.exec("ROLLBACK PREPARED "+quoteLiteral(gid), s.deadline()); err != nil {
				// The resolver rolls it back: no decision is recorded.
				s.log.Warn("could not roll back a prepared transaction; the resolver will", "gid", gid, "shard", names[c.shard], "err", err)
			}
		}
		return failure
	}
	done := true
	for _, c := range prepared {
		if _, err := c.exec("COMMIT PREPARED "+quoteLiteral(gid), s.deadline()); err != nil {
			done = false
			s.log.Warn("commit of a prepared transaction failed; the resolver will finish it", "gid", gid, "shard", names[c.shard], "err", err)
			continue
		}
		s.notePosition(c)
	}
	if done {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.o().ResetTimeout)
		if err := tp.Log.ForgetDecision(ctx, gid); err != nil {
			s.log.Debug("could not forget a commit decision", "gid", gid, "err", err)
		}
		cancel()
	}
	return nil
}

// decide records the commit decision, trying again while the catalog's
// answer is lost (the call is idempotent).
func (s *session) decide(gid string) (bool, error) {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.o().ResetTimeout)
		var commit bool
		commit, err = s.srv.o().TwoPhase.Log.Decide(ctx, gid, true)
		cancel()
		if err == nil {
			return commit, nil
		}
		s.log.Warn("could not record a commit decision; trying again", "gid", gid, "err", err)
	}
	return false, err
}

func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// ResolveInDoubt finishes the transactions this node prepared and did not
// finish: committed where the decision was recorded, rolled back where it
// was not. Serve runs it at start and then every TwoPhase.ResolveEvery.
func (s *Server) ResolveInDoubt(ctx context.Context) (committed, rolledBack int, err error) {
	tp := s.o().TwoPhase
	if tp == nil {
		return 0, 0, nil
	}
	var errs []string
	for shard := range s.o().Shards {
		c, r, err := s.resolveShard(ctx, shard)
		committed += c
		rolledBack += r
		if err != nil {
			errs = append(errs, fmt.Sprintf("shard %s: %v", s.o().Shards[shard].Name, err))
		}
	}
	if len(errs) > 0 {
		err = fmt.Errorf("resolving in-doubt transactions: %s", strings.Join(errs, "; "))
	}
	return committed, rolledBack, err
}

// resolveShard resolves this node's in-doubt transactions on one shard's
// primary. Prepared transactions belong to a database and can be finished
// only from it, by their owner or a superuser: each is finished through
// the pool of its owner's login where the config has one.
func (s *Server) resolveShard(ctx context.Context, shard int) (committed, rolledBack int, err error) {
	tp := s.o().TwoPhase
	addr := s.o().Shards[shard].Primary
	if topo := s.o().Topology; topo != nil {
		h, err := topo.Primary(shard)
		if err != nil {
			return 0, 0, err
		}
		addr = h.Addr()
	}
	users := s.usersByServerName()
	if len(users) == 0 {
		return 0, 0, errors.New("no users configured")
	}
	listDB := tp.ListDatabase
	if listDB == "" {
		listDB = "postgres"
	}
	type xact struct{ gid, db, owner string }
	var found []xact
	var lerr error
	for _, u := range users {
		c, err := s.resolverConn(u, listDB, shard, addr)
		if err != nil {
			lerr = err
			continue
		}
		rows, err := c.rows("SELECT gid, database, owner FROM pg_catalog.pg_prepared_xacts WHERE starts_with(gid, " + quoteLiteral(tp.gidPrefix()) + ")")
		s.putResolverConn(c)
		if err != nil {
			lerr = err
			continue
		}
		for _, r := range rows {
			found = append(found, xact{r[0], r[1], r[2]})
		}
		lerr = nil
		break
	}
	if lerr != nil {
		return 0, 0, lerr
	}
	for _, x := range found {
		if s.prepared.has(x.gid) {
			continue // being committed right now
		}
		// In doubt: roll back unless the commit was recorded first.
		decided, err := tp.Log.Decide(ctx, x.gid, false)
		if err != nil {
			return committed, rolledBack, err
		}
		u := users[0]
		for _, cand := range users {
			if cand.ServerUser == x.owner {
				u = cand
			}
		}
		c, err := s.resolverConn(u, x.db, shard, addr)
		if err != nil {
			return committed, rolledBack, err
		}
		verb := "ROLLBACK PREPARED "
		if decided {
			verb = "COMMIT PREPARED "
		}
		_, err = c.exec(verb+quoteLiteral(x.gid), time.Now().Add(s.o().ResetTimeout))
		s.putResolverConn(c)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42704" {
				continue // finished meanwhile by its own commit
			}
			return committed, rolledBack, err
		}
		s.log.Info("resolved an in-doubt transaction", "gid", x.gid, "shard", s.o().Shards[shard].Name, "committed", decided)
		if decided {
			committed++
		} else {
			rolledBack++
		}
	}
	return committed, rolledBack, nil
}

// usersByServerName lists the configured users in a stable order.
func (s *Server) usersByServerName() []*User {
	names := make([]string, 0, len(s.o().Users))
	for n := range s.o().Users {
		names = append(names, n)
	}
	slices.Sort(names)
	users := make([]*User, len(names))
	for i, n := range names {
		users[i] = s.o().Users[n]
	}
	return users
}

func (s *Server) resolverConn(u *User, db string, shard int, addr string) (*shardConn, error) {
	be, err := s.checkoutAlive(s.pool(u, db, shard, addr, true))
	if err != nil {
		return nil, err
	}
	return &shardConn{be: be, st: stateOf(be, s.o().PreparedCacheSize), shard: shard}, nil
}

func (s *Server) putResolverConn(c *shardConn) {
	if c.broken || c.status != 'I' {
		c.be.Pool().Discard(c.be)
		return
	}
	c.be.Pool().Put(c.be)
}

// resolveLoop runs ResolveInDoubt at start and then periodically, until
// the server closes.
func (s *Server) resolveLoop() {
	every := s.o().TwoPhase.ResolveEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	// A failed pass (no primary known yet at start, a shard down) is
	// tried again soon, backing off to the normal period.
	retry := 500 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, r, err := s.ResolveInDoubt(ctx)
		cancel()
		wait := every
		switch {
		case err != nil:
			// At start the hosts' roles are not known for a moment: only
			// a failure that lasts is worth a warning.
			level := slog.LevelDebug
			if retry >= 2*time.Second {
				level = slog.LevelWarn
			}
			s.log.Log(context.Background(), level, "in-doubt transactions not resolved yet", "err", err, "retry_in", min(retry, every).String())
			wait = min(retry, every)
			retry *= 2
		case c+r > 0:
			s.log.Info("in-doubt transactions resolved", "committed", c, "rolled_back", r)
			fallthrough
		default:
			retry = 500 * time.Millisecond
		}
		select {
		case <-s.done:
			return
		case <-time.After(wait):
		}
	}
}
