package proxy

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/router"
	"github.com/shardgate/shardgate/shardmap"
)

// PoolMode says how long a client holds a server connection.
type PoolMode uint8

// Pool modes.
const (
	// TransactionMode holds a server connection for one transaction or one
	// statement outside a transaction.
	TransactionMode PoolMode = iota
	// SessionMode holds one for the client's whole session.
	SessionMode
	// StatementMode is TransactionMode that refuses multi-statement
	// transactions.
	StatementMode
)

func (m PoolMode) String() string {
	switch m {
	case SessionMode:
		return "session"
	case StatementMode:
		return "statement"
	}
	return "transaction"
}

// User is a client login and the server role it uses.
type User struct {
	Credential auth.Credential
	// ServerUser and ServerPassword log in to the servers.
	ServerUser     string
	ServerPassword string
}

// Shard is one shard's servers, as the proxy uses them.
type Shard struct {
	Name string
	// Primary is the host:port of the shard's primary.
	Primary string
}

// Options configure a Server. Only Users, Shards and Pools are required.
type Options struct {
	Users  map[string]*User
	Shards []Shard
	// Pools provides the server connection pools.
	Pools *pool.Set
	Mode  PoolMode
	// TLS, when set, is offered to clients that ask for it; RequireTLS
	// refuses those that do not.
	TLS        *tls.Config
	RequireTLS bool
	// PreparedCacheSize bounds the prepared statements kept per server
	// connection in transaction and statement modes (default 512).
	PreparedCacheSize int
	// MaxClients bounds concurrent client connections (0: no bound).
	MaxClients int
	// ResetTimeout bounds cleaning a server connection after its client
	// left (default 5s); past it the connection is closed instead.
	ResetTimeout time.Duration
	// Logger receives connection and error logs (default slog.Default()).
	Logger *slog.Logger
	// Topology, when set, knows each shard's hosts, their roles and lag:
	// writes go to the current primary and reads as Routing says. Without
	// it everything goes to Shards[i].Primary.
	Topology *pool.Topology
	Routing  Routing
	// Router analyses statements (default: router.New with defaults).
	Router *router.Router
	// ShardMap places tables on Shards; nil, or a map without
	// distributions and reference tables, sends everything to the first
	// shard. SetShardMap replaces it while serving.
	ShardMap *shardmap.Map
	// TwoPhase, when set, commits transactions that write on several
	// shards with two-phase commit; without it such transactions are
	// refused before they write on a second shard.
	TwoPhase *TwoPhase
	// Admin says who may use the admin console and under which database
	// name; without users nobody can.
	Admin AdminOptions
	// SlowQuery logs every request that takes longer, with its text
	// (constants replaced by $n unless LogParameters); 0 logs none.
	SlowQuery     time.Duration
	LogParameters bool
	// Observer, when set, receives timings for metrics.
	Observer Observer
	// Config returns the running configuration for SHOW CONFIG, as
	// key/value pairs with secrets already redacted.
	Config func() [][2]string
	// Reload re-reads the configuration for RELOAD (and applies it with
	// Reconfigure); it returns what was changed and what needs a restart.
	Reload func() (changed, restart []string, err error)
	// Acker, when set, acknowledges each shard map installed, once nothing
	// runs against its frozen ranges (online moves, freeze.go).
	Acker MapAcker
	// Shutdown starts the process's graceful shutdown, for the console's
	// SHUTDOWN (the same path as SIGTERM).
	Shutdown func()
	// Version is the build's version, for SHOW VERSION.
	Version string
}

// AdminOptions configure the admin console.
type AdminOptions struct {
	// Database is the virtual database name of the console (default
	// "shardgate").
	Database string
	// Users may run every command; StatsUsers only SHOW.
	Users, StatsUsers []string
}

// Observer receives timings as they happen; metrics implement it. Its
// methods are called on the hot path and must be cheap.
type Observer interface {
	// ObserveQuery is called when a request completes on a shard's
	// primary or replica.
	ObserveQuery(shard int, role string, d time.Duration)
	// ObserveCheckoutWait is called after each server checkout.
	ObserveCheckoutWait(shard int, d time.Duration)
}

// Server accepts client connections and serves each in its own session.
type Server struct {
	// opts is replaced as a whole by Reconfigure; readers load it once
	// per use (o) and never see half of a change.
	opts atomic.Pointer[Options]
	log  *slog.Logger

	nextID   atomic.Uint32
	mu       sync.Mutex
	sessions map[uint32]*session // by the BackendKeyData PID we gave out
	known    knownStmts
	schema   atomic.Pointer[schema]
	// prepared are the transactions this process is committing in two
	// phases.
	prepared inFlight
	// done closes when the server closes, stopping its background work.
	done     chan struct{}
	doneOnce sync.Once
	ln       []net.Listener
	// poolCtr holds each pool's counters (pool.Key -> *poolCounters).
	poolCtr sync.Map
	// accepted and refused count client logins and turned-away clients.
	accepted, refused atomic.Int64
	fanouts           fanOuts
	// pause holds new transactions while an operator paused them.
	pause pauseGate
	// maps wakes writes held for a frozen range when the map changes.
	maps mapWatch
	// draining: a shutdown is under way; new clients are refused.
	draining atomic.Bool
	wg       sync.WaitGroup
	closing  atomic.Bool
}

// NewServer returns a server; Serve starts it.
func NewServer(o Options) *Server {
	if o.PreparedCacheSize <= 0 {
		o.PreparedCacheSize = 512
	}
	if o.ResetTimeout <= 0 {
		o.ResetTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Router == nil {
		o.Router = router.New(router.Options{})
	}
	if o.Admin.Database == "" {
		o.Admin.Database = "shardgate"
	}
	srv := &Server{log: o.Logger, sessions: map[uint32]*session{}, known: knownStmts{max: 100_000}, done: make(chan struct{})}
	srv.opts.Store(&o)
	srv.prepared.epoch = strconv.FormatInt(time.Now().UnixMilli(), 36)
	srv.SetShardMap(o.ShardMap)
	if o.TwoPhase != nil {
		go srv.resolveLoop()
	}
	return srv
}

// o returns the options in force.
func (s *Server) o() *Options { return s.opts.Load() }

// Reconfigure applies the parts of o that can change while serving: users,
// the pool mode of new clients, the client limit, routing, the prepared
// statement cache of new server connections, the admin console's access,
// the slow query log, the reset timeout and the router (when o has one,
// built for a new parse cache size or write functions). The rest of o is ignored: the
// pools, the topology and the shard map have their own ways to change,
// and listeners and TLS need a restart. Connected clients keep their
// session; a user removed from the config can no longer log in, and one
// whose password changed logs in with the new one next time.
func (s *Server) Reconfigure(o Options) {
	cur := *s.o()
	cur.Users = o.Users
	cur.Mode = o.Mode
	cur.MaxClients = o.MaxClients
	cur.Routing = o.Routing
	if o.PreparedCacheSize > 0 {
		cur.PreparedCacheSize = o.PreparedCacheSize
	}
	if o.ResetTimeout > 0 {
		cur.ResetTimeout = o.ResetTimeout
	}
	cur.Admin = o.Admin
	if cur.Admin.Database == "" {
		cur.Admin.Database = "shardgate"
	}
	cur.SlowQuery = o.SlowQuery
	cur.LogParameters = o.LogParameters
	if o.Router != nil {
		cur.Router = o.Router
	}
	s.opts.Store(&cur)
}

// Serve accepts connections on ln until Close. Each connection gets a
// goroutine running its session; it ends when the client leaves, the
// session fails, or Close closes the client's socket.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = append(s.ln, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

// Close stops accepting, closes every client connection and waits for the
// sessions to end.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	for _, ln := range s.ln {
		ln.Close()
	}
	for _, ss := range s.sessions {
		ss.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o().MaxClients > 0 && len(s.sessions) >= s.o().MaxClients {
		return false
	}
	for {
		id := s.nextID.Add(1)
		if _, taken := s.sessions[id]; !taken && id != 0 {
			ss.id = id
			s.sessions[id] = ss
			return true
		}
	}
}

// rekey gives a session the id a server gave its connection, when no
// other session has it: in session mode a client owns one server session,
// and pg_terminate_backend() or pg_stat_activity should find it by the PID
// the client was told.
func (s *Server) rekey(ss *session, id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.sessions[id]; taken || id == 0 {
		return
	}
	delete(s.sessions, ss.id)
	ss.id = id
	s.sessions[id] = ss
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
}

func (s *Server) lookup(id uint32) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// pool returns the pool serving a user's statements on a host; rw pools
// connect only to a server that accepts writes.
func (s *Server) pool(u *User, database string, shard int, addr string, rw bool) *pool.Pool {
	return s.o().Pools.Get(pool.Key{Addr: addr, User: u.ServerUser, Database: database, ReadWrite: rw}, u.ServerPassword)
}
