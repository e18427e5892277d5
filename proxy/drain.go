package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/admin"
	"github.com/shardgate/shardgate/proxy/wire"
)

// pauseGate holds new transactions while an operator has paused them:
// all of them, those of a database, or those of a shard. A session waits
// at the gate only when it holds no server, so a paused proxy finishes
// every transaction already running and starts none.
type pauseGate struct {
	any atomic.Bool // fast path: nothing is paused
	mu  sync.Mutex
	all bool
	// names are paused databases and shard names.
	names map[string]bool
	// resumed is closed at the next resume, waking the waiters.
	resumed chan struct{}
}

// held reports whether new transactions of a database on a shard wait.
func (g *pauseGate) held(db, shard string) bool {
	if !g.any.Load() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.all || g.names[db] || g.names[shard]
}

// wait blocks while new transactions of db on shard are held, or until
// abort closes.
func (g *pauseGate) wait(db, shard string, abort, kill <-chan struct{}) bool {
	for {
		if !g.any.Load() {
			return true
		}
		g.mu.Lock()
		if !(g.all || g.names[db] || g.names[shard]) {
			g.mu.Unlock()
			return true
		}
		ch := g.resumed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-abort:
			return false
		case <-kill:
			return false
		}
	}
}

func (g *pauseGate) set(name string, paused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.names == nil {
		g.names = map[string]bool{}
	}
	if g.resumed == nil {
		g.resumed = make(chan struct{})
	}
	switch {
	case name == "" && paused:
		g.all = true
	case name == "":
		g.all = false
		clear(g.names)
	case paused:
		g.names[name] = true
	default:
		delete(g.names, name)
	}
	g.any.Store(g.all || len(g.names) > 0)
	if !paused {
		close(g.resumed)
		g.resumed = make(chan struct{})
	}
}

// gate makes a session that is about to take a server for a new
// transaction wait while it is paused. Sessions inside a transaction
// (holding a server, or several) pass: their transaction must finish for
// PAUSE to complete.
func (s *session) gate(shard int) error {
	g := &s.srv.pause
	if !g.any.Load() {
		return nil
	}
	s.mu.Lock()
	inTx := s.link != nil || s.dtx != nil
	s.mu.Unlock()
	if inTx {
		return nil
	}
	s.waiting.Store(true)
	s.paused.Store(true)
	ok := g.wait(s.db, nameOf(s.srv.shardNames(), shard), s.srv.done, s.killed)
	s.paused.Store(false)
	s.waiting.Store(false)
	if !ok || s.closing.Load() {
		return adminShutdown()
	}
	return nil
}

// adminShutdown is the error of a session ended by the operator or by a
// shutdown, as PostgreSQL words it.
func adminShutdown() *Error {
	return &Error{Code: "57P01", Fatal: true, Message: "terminating connection due to administrator command",
		Hint: "shardgate is shutting down or an operator ended this session; reconnect"}
}

// busy reports whether a session is in the middle of something the
// drain must let finish: a request being handled, a transaction, a
// statement over several shards. Called with ss.mu held.
func (ss *session) busyLocked() bool {
	return ss.inRequest.Load() || ss.midTransactionLocked()
}

// midTransaction reports whether the session is inside a transaction (or
// an extended-protocol batch), whose requests a drain lets through.
func (ss *session) midTransaction() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.midTransactionLocked()
}

func (ss *session) midTransactionLocked() bool {
	if ss.dtx != nil || ss.scattered != nil || ss.begin != nil {
		return true
	}
	return ss.link != nil && !ss.link.quietLocked()
}

// closeIdle ends a session that is between transactions with a FATAL
// 57P01, and reports whether it did. The flag closing and the session's
// inRequest make the decision race-free: a request that starts after it
// is refused, one already started makes closeIdle back off.
func (s *Server) closeIdle(ss *session) bool {
	ss.mu.Lock()
	if ss.busyLocked() {
		ss.mu.Unlock()
		return false
	}
	ss.closing.Store(true)
	if ss.inRequest.Load() {
		ss.closing.Store(false)
		ss.mu.Unlock()
		return false
	}
	ss.mu.Unlock()
	ss.terminate()
	return true
}

// terminate tells the client its session ends and closes its socket; the
// session goroutine then cleans up as after a client's own exit.
func (ss *session) terminate() {
	ss.killOnce.Do(func() { close(ss.killed) })
	ss.outMu.Lock()
	ss.conn.SetWriteDeadline(time.Now().Add(time.Second))
	wire.WriteMessage(ss.out, errorResponse(adminShutdown(), true))
	ss.out.Flush()
	ss.outMu.Unlock()
	ss.conn.Close()
}

// Shutdown drains the server: it stops accepting clients, ends every
// session as soon as it is between transactions (idle clients at once,
// with 57P01 as PostgreSQL's own shutdown does), waits up to timeout for
// the rest, then closes whatever is left. It returns how many sessions
// were still busy at the deadline.
func (s *Server) Shutdown(timeout time.Duration) int {
	s.draining.Store(true)
	s.mu.Lock()
	for _, ln := range s.ln {
		ln.Close()
	}
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	left := 0
	for {
		left = 0
		for _, ss := range s.allSessions() {
			if ss.closing.Load() {
				continue
			}
			if !s.closeIdle(ss) {
				left++
			}
		}
		if left == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if left > 0 {
		s.log.Warn("drain timeout: closing sessions still in a transaction", "sessions", left, "timeout", timeout.String())
	}
	s.Close()
	return left
}

// Draining reports whether a shutdown is under way.
func (s *Server) Draining() bool { return s.draining.Load() }

// pauseWait bounds how long PAUSE waits for running transactions.
const pauseWait = 30 * time.Second

func (s *Server) pauseCmd(name string) error {
	if err := s.checkPoolName(name); err != nil {
		return err
	}
	s.pause.set(name, true)
	s.log.Info("paused by operator", "pool", name)
	deadline := time.Now().Add(pauseWait)
	for {
		busy := 0
		for _, ss := range s.allSessions() {
			if ss.admin {
				continue
			}
			ss.mu.Lock()
			if ss.link != nil || ss.dtx != nil || ss.scattered != nil {
				if s.pauseCovers(ss, name) {
					busy++
				}
			}
			ss.mu.Unlock()
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &admin.Error{Code: "57014", Message: fmt.Sprintf("PAUSE: %d clients still hold a server after %s; new transactions stay paused", busy, pauseWait),
				Hint: "SHOW CLIENTS shows them; they may be idle in a transaction or in session mode (KILL ends one); RESUME undoes the pause"}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pauseCovers reports whether a pause of name holds ss's server. Called
// with ss.mu held.
func (s *Server) pauseCovers(ss *session, name string) bool {
	if name == "" || ss.db == name {
		return true
	}
	if ss.link != nil {
		return nameOf(s.shardNames(), ss.link.shard) == name
	}
	return true // over several shards: one of them may be the one
}

func (s *Server) checkPoolName(name string) error {
	if name == "" {
		return nil
	}
	for _, n := range s.shardNames() {
		if n == name {
			return nil
		}
	}
	for _, ss := range s.allSessions() {
		if ss.db == name {
			return nil
		}
	}
	for _, p := range s.o().Pools.All() {
		if p.Key().Database == name {
			return nil
		}
	}
	return &admin.Error{Code: "42704", Message: fmt.Sprintf("no pool %q: name a shard or a database", name),
		Hint: "SHOW SHARDS and SHOW POOLS list them"}
}

func (s *Server) resumeCmd(name string) error {
	s.pause.set(name, false)
	s.log.Info("resumed by operator", "pool", name)
	return nil
}

func (s *Server) banCmd(ban bool, addr string) error {
	t := s.o().Topology
	if t == nil {
		return &admin.Error{Code: "55000", Message: "BAN needs host monitoring, which this proxy runs without"}
	}
	var err error
	if ban {
		err = t.AdminBan(addr, "BAN from the admin console")
	} else {
		err = t.AdminUnban(addr)
	}
	if err != nil {
		code := "42704" // no such host
		var pe *pool.Error
		if errors.As(err, &pe) {
			code = pe.Code
		}
		return &admin.Error{Code: code, Message: err.Error(), Hint: "SHOW HOSTS lists the hosts"}
	}
	verb := "unbanned"
	if ban {
		verb = "banned"
	}
	s.log.Info("host "+verb+" by operator", "host", addr)
	return nil
}

func (s *Server) killCmd(arg string) error {
	id, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return &admin.Error{Code: "22P02", Message: fmt.Sprintf("KILL: %q is not a client id", arg), Hint: "SHOW CLIENTS lists the ids"}
	}
	ss := s.lookup(uint32(id))
	if ss == nil {
		return &admin.Error{Code: "42704", Message: fmt.Sprintf("KILL: no client %d", id), Hint: "SHOW CLIENTS lists the ids"}
	}
	ss.closing.Store(true)
	ss.log.Info("client killed by operator")
	ss.terminate()
	return nil
}

func (s *Server) shutdownCmd() error {
	f := s.o().Shutdown
	if f == nil {
		return &admin.Error{Code: "55000", Message: "SHUTDOWN is not available in this process"}
	}
	s.log.Info("SHUTDOWN from the admin console")
	go f()
	return nil
}

func (s *Server) reload() ([]string, error) {
	f := s.o().Reload
	if f == nil {
		return nil, &admin.Error{Code: "55000", Message: "RELOAD is not available: shardgate runs without a config file"}
	}
	changed, restart, err := f()
	if err != nil {
		return nil, &admin.Error{Code: "F0000", Message: "RELOAD: the new configuration is invalid; the running one stays in force:\n" + err.Error()}
	}
	var notes []string
	if len(changed) == 0 {
		notes = append(notes, "RELOAD: nothing to apply")
	} else {
		notes = append(notes, "RELOAD: applied "+strings.Join(changed, ", "))
	}
	if len(restart) > 0 {
		notes = append(notes, "RELOAD: these keys changed but need a restart to take effect: "+strings.Join(restart, ", "))
	}
	return notes, nil
}
