//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrWouldBlock is a Read's answer while the loop owns the socket's reads
// and nothing has arrived: the handler runs again when something does.
var ErrWouldBlock = errors.New("evloop: no data yet")

// Conn is a TCP socket watched by a Loop. It is a net.Conn for goroutines;
// the loop's handlers use it without ever waiting.
type Conn struct {
	loop         *Loop
	fd           int
	gen          uint32
	laddr, raddr net.Addr

	// mu guards refs and closing. A descriptor is closed only when no
	// call uses it, so a call can never reach another socket that reused
	// its number.
	mu      sync.Mutex
	refs    int
	closing bool
	closed  chan struct{}
	// rdl and wdl are the deadlines in Unix nanoseconds, 0 for none.
	rdl, wdl atomic.Int64

	// rtok and wtok hold the loop's last readiness report, a token each,
	// for a goroutine waiting to read or write.
	rtok, wtok             chan struct{}
	rdlChanged, wdlChanged chan struct{}

	// handler, while set, owns the reads: the loop runs it when the
	// socket is ready, and Read never waits.
	handler atomic.Pointer[func(events uint32)]

	// wmu serialises writes. nb (guarded by wmu's holder) makes a write
	// never wait: what the socket does not take is kept in pending and
	// goes out before anything written after it.
	wmu     sync.Mutex
	nb      bool
	pending []byte
}

// SetHandler gives the socket's reads to h, run on the loop when the
// socket is ready (events 0: when kicked). nil gives them back.
func (c *Conn) SetHandler(h func(events uint32)) {
	if h == nil {
		c.handler.Store(nil)
		return
	}
	c.handler.Store(&h)
}

// Kick runs the handler on the loop soon.
func (c *Conn) Kick() { c.loop.Kick(c) }

// ready is the loop reporting events for c.
func (c *Conn) ready(events uint32) {
	const in = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
	const out = syscall.EPOLLOUT | syscall.EPOLLHUP | syscall.EPOLLERR
	if events&in != 0 {
		token(c.rtok)
	}
	if events&out != 0 {
		token(c.wtok)
	}
	if h := c.handler.Load(); h != nil {
		(*h)(events)
	}
}

func token(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Conn) incref() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.refs++
	return true
}

func (c *Conn) decref() {
	c.mu.Lock()
	c.refs--
	last := c.closing && c.refs == 0
	c.mu.Unlock()
	if last {
		syscall.Close(c.fd)
	}
}

// Read reads what has arrived, waiting for something unless the loop owns
// the reads.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	for {
		if expired(&c.rdl) {
			// As with Go's own sockets, a passed deadline fails the call
			// before it reads anything.
			return 0, os.ErrDeadlineExceeded
		}
		n, e := rawRW(syscall.SYS_READ, c.fd, p)
		switch {
		case e == 0 && n > 0:
			return n, nil
		case e == 0:
			return 0, io.EOF
		case e == syscall.EINTR:
			continue
		case e != syscall.EAGAIN:
			return 0, c.opError("read", e)
		}
		if c.handler.Load() != nil {
			return 0, ErrWouldBlock
		}
		if err := c.wait(c.rtok, c.rdlChanged, true); err != nil {
			return 0, err
		}
	}
}

// SetNonblocking makes writes never wait (b true) or wait as usual. The
// caller must hold whatever serialises writes to c, as long as it writes.
func (c *Conn) SetNonblocking(b bool) {
	c.wmu.Lock()
	c.nb = b
	c.wmu.Unlock()
}

// Pending reports how many written bytes the socket has not taken yet.
func (c *Conn) Pending() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.pending)
}

// Write writes p, or with SetNonblocking, writes what the socket takes
// now and keeps the rest for later; it then reports all of p written.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nb {
		if err := c.writeSome(); err != nil {
			return 0, err
		}
		if len(c.pending) > 0 {
			c.pending = append(c.pending, p...)
			return len(p), nil
		}
		n, e := rawRW(syscall.SYS_WRITE, c.fd, p)
		if e != 0 && e != syscall.EAGAIN && e != syscall.EINTR {
			return 0, c.opError("write", e)
		}
		c.pending = append(c.pending, p[n:]...)
		return len(p), nil
	}
	if len(c.pending) > 0 {
		if err := c.writeAll(c.pending); err != nil {
			return 0, err
		}
		c.pending = c.pending[:0]
	}
	if err := c.writeAll(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// FlushPending writes what it can of the pending bytes without waiting
// and reports how many are left.
func (c *Conn) FlushPending() (int, error) {
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.writeSome()
	return len(c.pending), err
}

// writeSome writes pending bytes until the socket is full. Called with
// wmu held.
func (c *Conn) writeSome() error {
	for len(c.pending) > 0 {
		n, e := rawRW(syscall.SYS_WRITE, c.fd, c.pending)
		switch e {
		case 0:
			c.pending = c.pending[:copy(c.pending, c.pending[n:])]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return nil
		}
		return c.opError("write", e)
	}
	if cap(c.pending) > 1<<20 {
		c.pending = nil // a burst for a slow client: do not keep its buffer
	}
	return nil
}

// writeAll writes p, waiting while the socket is full. Called with wmu
// held.
func (c *Conn) writeAll(p []byte) error {
	for len(p) > 0 {
		if expired(&c.wdl) {
			return os.ErrDeadlineExceeded
		}
		n, e := rawRW(syscall.SYS_WRITE, c.fd, p)
		switch e {
		case 0:
			p = p[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if err := c.wait(c.wtok, c.wdlChanged, false); err != nil {
				return err
			}
			continue
		}
		return c.opError("write", e)
	}
	return nil
}

// wait waits for the loop's next readiness report on tok, a deadline, or
// the close.
func (c *Conn) wait(tok, changed chan struct{}, read bool) error {
	for {
		dl := c.wdl.Load()
		if read {
			dl = c.rdl.Load()
		}
		var expire <-chan time.Time
		if dl != 0 {
			d := time.Until(time.Unix(0, dl))
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-tok:
			return nil
		case <-c.closed:
			return net.ErrClosed
		case <-changed:
		case <-expire:
			return os.ErrDeadlineExceeded
		}
	}
}

func (c *Conn) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.NewSyscallError(op, e)}
}

// Close closes the socket once no call uses it; calls waiting return
// net.ErrClosed, and a handler runs once more to see it.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	close(c.closed)
	last := c.refs == 0
	c.mu.Unlock()
	c.loop.forget(c)
	if last {
		syscall.Close(c.fd)
	}
	return nil
}

// Alive peeks at the socket without consuming or waiting: false if the
// peer closed it or sent something unasked (a FATAL error of a server
// shutting down).
func (c *Conn) Alive() bool {
	if !c.incref() {
		return false
	}
	defer c.decref()
	var b [1]byte
	n, _, e := syscall.Recvfrom(c.fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	_ = n
	return e == syscall.EAGAIN
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline; a Read waiting sees it at once.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Store(nanos(t))
	token(c.rdlChanged)
	return nil
}

// SetWriteDeadline sets the write deadline; a Write waiting sees it at
// once.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Store(nanos(t))
	token(c.wdlChanged)
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

func expired(dl *atomic.Int64) bool {
	d := dl.Load()
	return d != 0 && time.Now().UnixNano() >= d
}
