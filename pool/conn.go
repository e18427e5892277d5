package pool

import (
	"bufio"
	"net"
	"time"
)

// Conn is one authenticated connection to a PostgreSQL server, ready for
// queries. It is used by one goroutine at a time between Get and Put.
type Conn struct {
	net   net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	pool  *Pool
	born  time.Time
	idled time.Time

	// checkedOut is when the current checkout began; busyAt is the
	// connection's index in its pool's busy list. Both are guarded by the
	// pool's mutex.
	checkedOut time.Time
	busyAt     int

	// PID and SecretKey are the server's BackendKeyData, for cancelling a
	// query running on this connection.
	PID       uint32
	SecretKey []byte
	// Params holds the server's ParameterStatus values. The user keeps it
	// current as further ParameterStatus messages pass through.
	Params map[string]string
	// State belongs to the pool's user: whatever it must remember about this
	// server session across checkouts (prepared statements, settings).
	State any
}

// Net returns the underlying socket, for deadlines and closing.
func (c *Conn) Net() net.Conn { return c.net }

// Reader returns the buffered reader of the socket.
func (c *Conn) Reader() *bufio.Reader { return c.r }

// Writer returns the buffered writer of the socket.
func (c *Conn) Writer() *bufio.Writer { return c.w }

// Pool returns the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

// Addr returns the server's host:port.
func (c *Conn) Addr() string { return c.pool.key.Addr }

func (c *Conn) expired(now time.Time, o *Options) bool {
	if o.MaxLifetime > 0 && now.Sub(c.born) > o.MaxLifetime {
		return true
	}
	return o.IdleTimeout > 0 && !c.idled.IsZero() && now.Sub(c.idled) > o.IdleTimeout
}

// IdleFor returns how long the connection sat idle in the pool before its
// current checkout; zero for a new connection.
func (c *Conn) IdleFor() time.Duration {
	if c.idled.IsZero() {
		return 0
	}
	return time.Since(c.idled)
}
