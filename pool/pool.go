package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Key identifies a pool: one server, one role, one database.
type Key struct {
	Addr     string
	User     string
	Database string
	// ReadWrite makes the pool refuse servers that are in recovery or
	// read-only: each new connection is checked like libpq's
	// target_session_attrs=read-write, and Get fails with an error
	// matching ErrNotPrimary. Checking at connect time is enough because a
	// server only enters recovery by restarting, which closes the
	// connections it already had, so writes never reach a demoted server.
	ReadWrite bool
}

// String returns user@addr/database, marked "(read-write)" when the pool
// only accepts primaries, for log and error messages.
func (k Key) String() string {
	s := fmt.Sprintf("%s@%s/%s", k.User, k.Addr, k.Database)
	if k.ReadWrite {
		s += " (read-write)"
	}
	return s
}

// Options configure a Pool. The zero value of a duration means "never".
type Options struct {
	// Size is the most connections the pool keeps open.
	Size int
	// MinIdle connections are kept open even when unused.
	MinIdle int
	// CheckoutTimeout bounds how long Get waits for a connection.
	CheckoutTimeout time.Duration
	// IdleTimeout closes a connection unused for this long.
	IdleTimeout time.Duration
	// MaxLifetime closes a connection this old when it is next idle.
	MaxLifetime time.Duration
	// ConnectTimeout bounds opening one connection, authentication included.
	ConnectTimeout time.Duration
	// Password is the role's password on the server ("" for trust).
	Password string
	// TLS is the client TLS configuration for the server; nil for none.
	// With TLSFallback set, a server refusing TLS is used in plain text
	// (libpq's sslmode=prefer).
	TLS         *tls.Config
	TLSFallback bool
	// Dial opens a connection. Nil means connect with pgconn using the
	// fields above; tests of the pool itself may supply their own.
	Dial func(ctx context.Context, k Key) (net.Conn, *Hello, error)
}

// Hello is what a server said while a connection was being opened.
type Hello struct {
	PID       uint32
	SecretKey []byte
	Params    map[string]string
}

// Stats are a pool's counters at one moment, for SHOW POOLS and metrics.
type Stats struct {
	// Open counts connections open or being opened; Idle, Active and
	// Login split it into those in the pool, those checked out and those
	// still connecting. Waiting counts the Gets queued for one.
	Open, Idle, Waiting int
	Active, Login       int
	Checkouts           int64
	Timeouts            int64
	ConnectErrors       int64
	// Waits counts the Gets that had to queue; WaitTotal is the time they
	// spent queued, so WaitTotal/Checkouts is the average wait of all
	// checkouts, those served at once counting as zero.
	Waits     int64
	WaitTotal time.Duration
	// MaxWait is how long the oldest current waiter has waited, 0 when
	// none waits: pgbouncer's maxwait, which shows a pool too small now
	// rather than once. MaxWaitEver is the longest wait the pool has
	// seen.
	MaxWait     time.Duration
	MaxWaitEver time.Duration
}

// Pool is a bounded set of connections to one server as one role.
type Pool struct {
	key Key
	// opts is replaced whole by SetOptions, under mu, so a reader outside
	// mu (a dial) sees one consistent set of options.
	opts atomic.Pointer[Options]

	mu      sync.Mutex
	idle    []*Conn // most recently used last: reuse it first, warm caches
	busy    []*Conn // checked out; each Conn knows its index (busyAt)
	open    int     // len(idle) + len(busy) + connections being opened
	waiters waitQueue
	closed  bool
	stats   Stats

	// inUse counts the connections checked out of every pool of a Set
	// to the same address; nil for a pool made by New.
	inUse *atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// closedPool is handed to waiters by Close instead of a connection, so
// that they fail at once rather than at their checkout timeout.
var closedPool = new(Conn)

// New returns a pool and starts its reaper, which runs until Close.
func New(k Key, o Options) *Pool {
	return newPool(k, o, nil)
}

func newPool(k Key, o Options, inUse *atomic.Int64) *Pool {
	o.Size = max(o.Size, 1)
	p := &Pool{key: k, inUse: inUse, stop: make(chan struct{}), done: make(chan struct{})}
	p.opts.Store(&o)
	go p.reap()
	return p
}

// Key returns the pool's key.
func (p *Pool) Key() Key { return p.key }

// Size returns the most connections the pool opens.
func (p *Pool) Size() int { return p.opts.Load().Size }

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open, s.Idle, s.Waiting = p.open, len(p.idle), p.waiters.n
	s.Active = len(p.busy)
	s.Login = p.open - len(p.idle) - len(p.busy)
	if w := p.waiters.head; w != nil {
		s.MaxWait = time.Since(w.since)
	}
	return s
}

// Get returns a connection, opening one if the pool has room, or waits up
// to CheckoutTimeout for one to be returned.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	c, err := p.get(ctx)
	if err == nil && p.inUse != nil {
		p.inUse.Add(1)
	}
	return c, err
}

func (p *Pool) get(ctx context.Context) (*Conn, error) {
	start := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	o := p.opts.Load()
	p.stats.Checkouts++
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.expired(start, o) {
			p.open--
			go c.net.Close()
			continue
		}
		p.checkOutLocked(c, start)
		p.mu.Unlock()
		return c, nil
	}
	if p.open < o.Size {
		p.open++
		p.mu.Unlock()
		return p.dial(ctx)
	}
	w := &waiter{ch: make(chan *Conn, 1), since: start}
	p.waiters.push(w)
	p.stats.Waits++
	p.mu.Unlock()

	var timeout <-chan time.Time
	if o.CheckoutTimeout > 0 {
		t := time.NewTimer(o.CheckoutTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var c *Conn
	select {
	case c = <-w.ch: // the wait was counted by whoever served it
	case <-timeout:
		if c = p.abandon(w, true); c == nil {
			return nil, checkoutTimeout(p.key, o.Size, time.Since(start))
		}
	case <-ctx.Done():
		if c = p.abandon(w, false); c != nil && c != closedPool {
			p.put(c)
		}
		return nil, ctx.Err()
	}
	switch c {
	case nil:
		return p.dial(ctx) // granted a slot
	case closedPool:
		return nil, ErrClosed
	}
	return c, nil
}

// abandon removes a waiter that stops waiting. If a connection was handed
// to it first, it is returned; a slot handed to it is given back.
func (p *Pool) abandon(w *waiter, timedOut bool) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c *Conn
	if w.queued {
		p.waiters.remove(w)
		p.noteWaitLocked(time.Since(w.since))
	} else if c = <-w.ch; c == nil {
		// Handed over under mu before w left the queue, so never blocks.
		p.open--
		p.grantSlotLocked()
	}
	if c == nil && timedOut {
		p.stats.Timeouts++
	}
	return c
}

// noteWaitLocked records the end of a wait. p.mu is held.
func (p *Pool) noteWaitLocked(d time.Duration) {
	p.stats.WaitTotal += d
	p.stats.MaxWaitEver = max(p.stats.MaxWaitEver, d)
}

// dial opens a connection for a slot already counted in p.open.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	o := p.opts.Load()
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
	}
	var nc net.Conn
	var hello *Hello
	var err error
	if o.Dial != nil {
		nc, hello, err = o.Dial(ctx, p.key)
	} else {
		nc, hello, err = dialPgconn(ctx, p.key, o)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.stats.ConnectErrors++
		p.open--
		p.grantSlotLocked()
		return nil, connectFailed(p.key, err)
	}
	now := time.Now()
	c := &Conn{
		net:       nc,
		r:         bufio.NewReaderSize(nc, 32<<10),
		w:         bufio.NewWriterSize(nc, 32<<10),
		pool:      p,
		born:      now,
		PID:       hello.PID,
		SecretKey: hello.SecretKey,
		Params:    hello.Params,
	}
	p.checkOutLocked(c, now)
	return c, nil
}

// Put returns a healthy connection that is idle on the server (not in a
// transaction, nothing pending). It goes to the longest waiter, if any,
// unless the pool is closed, the connection too old, or the pool holds
// more connections than its size since SetOptions shrank it: then it is
// closed.
func (p *Pool) Put(c *Conn) {
	if p.put(c) && p.inUse != nil {
		p.inUse.Add(-1)
	}
}

// put takes back a checked-out connection. It reports false, changing
// nothing, for one that is not checked out: returned twice, one server
// session would be handed to two clients at once.
func (p *Pool) put(c *Conn) bool {
	now := time.Now()
	p.mu.Lock()
	if !p.busyLocked(c) {
		p.mu.Unlock()
		return false
	}
	o := p.opts.Load()
	if p.closed || p.open > o.Size || c.expired(now, o) {
		p.dropLocked(c)
		p.mu.Unlock()
		c.net.Close()
		return true
	}
	if w := p.waiters.pop(); w != nil {
		c.checkedOut = now
		p.noteWaitLocked(now.Sub(w.since))
		w.ch <- c
		p.mu.Unlock()
		return true
	}
	p.checkInLocked(c)
	c.idled = now
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	return true
}

// Warm opens connections in the background until the pool holds n (at
// most its size), counting those open, being opened and checked out: a
// burst of checkouts expected soon, such as the writes a move's switch
// is about to send to a shard, then finds them ready instead of all
// connecting at once. Dial errors are only counted, as in reap.
func (p *Pool) Warm(n int) {
	p.mu.Lock()
	want := 0
	if !p.closed {
		want = min(n, p.opts.Load().Size) - p.open
	}
	if want > 0 {
		p.open += want
	}
	p.mu.Unlock()
	for range want {
		go func() {
			if c, err := p.dial(context.Background()); err == nil {
				p.put(c)
			}
		}()
	}
}

// Discard closes a connection that cannot be reused (broken, or in an
// unknown state) and frees its slot.
func (p *Pool) Discard(c *Conn) {
	c.net.Close()
	p.mu.Lock()
	out := p.busyLocked(c)
	if out {
		p.dropLocked(c) // once: a second Discard must not free its slot again
	}
	p.mu.Unlock()
	if out && p.inUse != nil {
		p.inUse.Add(-1)
	}
}

// dropLocked forgets a checked-out connection the caller closes, and lets
// the longest waiter dial in its slot. p.mu is held.
func (p *Pool) dropLocked(c *Conn) {
	p.checkInLocked(c)
	p.open--
	p.grantSlotLocked()
}

// grantSlotLocked lets the longest waiters dial while the pool has room:
// one after a connection closed, several after SetOptions grew the pool.
// p.mu is held.
func (p *Pool) grantSlotLocked() {
	if p.closed {
		return
	}
	size := p.opts.Load().Size
	for p.open < size {
		w := p.waiters.pop()
		if w == nil {
			return
		}
		p.open++
		p.noteWaitLocked(time.Since(w.since))
		w.ch <- nil
	}
}

// Close closes idle connections and makes Get fail, waiters included.
// Connections checked out are closed when they are returned.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		p.noteWaitLocked(time.Since(w.since))
		w.ch <- closedPool
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, c := range idle {
		c.net.Close()
	}
}

// reap closes expired idle connections and keeps MinIdle open. It is
// started by New and stopped by Close; dial errors are only counted, as
// the next Get reports them to a client.
func (p *Pool) reap() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var dead []*Conn
		p.mu.Lock()
		o := p.opts.Load()
		kept := p.idle[:0]
		for _, c := range p.idle {
			if c.expired(now, o) {
				dead = append(dead, c)
				p.open--
			} else {
				kept = append(kept, c)
			}
		}
		clear(p.idle[len(kept):])
		p.idle = kept
		want := min(o.MinIdle-len(p.idle), o.Size-p.open)
		if want > 0 {
			p.open += want
		}
		p.mu.Unlock()
		for _, c := range dead {
			c.net.Close()
		}
		for range want {
			c, err := p.dial(context.Background())
			if err == nil {
				p.put(c)
			}
		}
	}
}
