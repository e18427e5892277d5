package pool

import (
	"bufio"
	"container/list"
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

// Stats are a pool's counters at one moment.
type Stats struct {
	Open, Idle, Waiting int
	Checkouts           int64
	Timeouts            int64
	ConnectErrors       int64
	MaxWait             time.Duration
}

// Pool is a bounded set of connections to one server as one role.
type Pool struct {
	key  Key
	opts Options

	mu      sync.Mutex
	idle    []*Conn    // most recently used last: reuse it first, warm caches
	open    int        // connections open or being opened
	waiters *list.List // of chan *Conn; a nil *Conn grants a slot to dial
	closed  bool
	stats   Stats

	// inUse counts the connections checked out of every pool of a Set
	// to the same address; nil for a pool made by New.
	inUse *atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// New returns a pool and starts its reaper, which runs until Close.
func New(k Key, o Options) *Pool {
	return newPool(k, o, nil)
}

func newPool(k Key, o Options, inUse *atomic.Int64) *Pool {
	if o.Size < 1 {
		o.Size = 1
	}
	p := &Pool{key: k, opts: o, inUse: inUse, waiters: list.New(), stop: make(chan struct{}), done: make(chan struct{})}
	go p.reap()
	return p
}

// Key returns the pool's key.
func (p *Pool) Key() Key { return p.key }

// Size returns the most connections the pool opens.
func (p *Pool) Size() int { return p.opts.Size }

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open, s.Idle, s.Waiting = p.open, len(p.idle), p.waiters.Len()
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
	p.stats.Checkouts++
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.expired(start, &p.opts) {
			p.open--
			go c.net.Close()
			continue
		}
		p.mu.Unlock()
		return c, nil
	}
	if p.open < p.opts.Size {
		p.open++
		p.mu.Unlock()
		return p.dial(ctx)
	}
	ch := make(chan *Conn, 1)
	el := p.waiters.PushBack(ch)
	p.mu.Unlock()

	var timeout <-chan time.Time
	if p.opts.CheckoutTimeout > 0 {
		t := time.NewTimer(p.opts.CheckoutTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case c := <-ch:
		p.noteWait(time.Since(start))
		if c == nil {
			return p.dial(ctx)
		}
		return c, nil
	case <-timeout:
		if c, ok := p.abandon(el, ch); ok {
			return c, nil
		}
		p.mu.Lock()
		p.stats.Timeouts++
		p.mu.Unlock()
		return nil, checkoutTimeout(p.key, p.opts.Size, time.Since(start))
	case <-ctx.Done():
		if c, ok := p.abandon(el, ch); ok {
			p.put(c)
		}
		return nil, ctx.Err()
	}
}

// abandon removes a waiter. If a connection or a slot was handed to it in
// the meantime, it is returned (a slot is given back).
func (p *Pool) abandon(el *list.Element, ch chan *Conn) (*Conn, bool) {
	p.mu.Lock()
	p.waiters.Remove(el)
	p.mu.Unlock()
	select {
	case c := <-ch:
		if c == nil {
			p.release()
			return nil, false
		}
		return c, true
	default:
		return nil, false
	}
}

func (p *Pool) noteWait(d time.Duration) {
	p.mu.Lock()
	if d > p.stats.MaxWait {
		p.stats.MaxWait = d
	}
	p.mu.Unlock()
}

// dial opens a connection for a slot already counted in p.open.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	if p.opts.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.ConnectTimeout)
		defer cancel()
	}
	dial := p.opts.Dial
	if dial == nil {
		dial = p.dialPgconn
	}
	nc, hello, err := dial(ctx, p.key)
	if err != nil {
		p.mu.Lock()
		p.stats.ConnectErrors++
		p.mu.Unlock()
		p.release()
		return nil, connectFailed(p.key, err)
	}
	now := time.Now()
	return &Conn{
		net:       nc,
		r:         bufio.NewReaderSize(nc, 32<<10),
		w:         bufio.NewWriterSize(nc, 32<<10),
		pool:      p,
		born:      now,
		PID:       hello.PID,
		SecretKey: hello.SecretKey,
		Params:    hello.Params,
	}, nil
}

// Put returns a healthy connection that is idle on the server (not in a
// transaction, nothing pending). It goes to the longest waiter, if any.
func (p *Pool) Put(c *Conn) {
	if p.inUse != nil {
		p.inUse.Add(-1)
	}
	p.put(c)
}

func (p *Pool) put(c *Conn) {
	now := time.Now()
	p.mu.Lock()
	if p.closed || c.expired(now, &p.opts) {
		p.open--
		p.grantSlotLocked()
		p.mu.Unlock()
		c.net.Close()
		return
	}
	if el := p.waiters.Front(); el != nil {
		p.waiters.Remove(el)
		p.mu.Unlock()
		el.Value.(chan *Conn) <- c
		return
	}
	c.idled = now
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// Discard closes a connection that cannot be reused (broken, or in an
// unknown state) and frees its slot.
func (p *Pool) Discard(c *Conn) {
	if p.inUse != nil {
		p.inUse.Add(-1)
	}
	c.net.Close()
	p.release()
}

// release frees one slot and lets the longest waiter dial in it.
func (p *Pool) release() {
	p.mu.Lock()
	p.open--
	p.grantSlotLocked()
	p.mu.Unlock()
}

func (p *Pool) grantSlotLocked() {
	if p.closed {
		return
	}
	if el := p.waiters.Front(); el != nil && p.open < p.opts.Size {
		p.waiters.Remove(el)
		p.open++
		el.Value.(chan *Conn) <- nil
	}
}

// Close closes idle connections and makes Get fail. Connections checked
// out are closed when they are returned.
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
		kept := p.idle[:0]
		for _, c := range p.idle {
			if c.expired(now, &p.opts) {
				dead = append(dead, c)
				p.open--
			} else {
				kept = append(kept, c)
			}
		}
		clear(p.idle[len(kept):])
		p.idle = kept
		want := min(p.opts.MinIdle-len(p.idle), p.opts.Size-p.open)
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
