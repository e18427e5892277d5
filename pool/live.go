package pool

import "time"

// SetOptions applies new options to a running pool, for a configuration
// reload. Everything is replaced except Password, which belongs to the
// role the pool logs in as rather than to the pool settings (Set.Get
// supplies it). A Size below 1 means 1.
//
// Growing the pool lets waiters dial at once. Shrinking it closes idle
// connections beyond the new size at once, least recently used first, and
// closes connections in use as they come back while the pool holds more
// than Size: a connection in use is never closed under its user. The other
// settings apply from the next checkout, dial or reaper pass; a Get
// already waiting keeps the checkout timeout it started with.
func (p *Pool) SetOptions(o Options) {
	p.mu.Lock()
	o.Password = p.opts.Load().Password
	o.Size = max(o.Size, 1)
	p.opts.Store(&o)
	var excess []*Conn
	if n := min(p.open-o.Size, len(p.idle)); n > 0 {
		excess = append(excess, p.idle[:n]...)
		m := copy(p.idle, p.idle[n:])
		clear(p.idle[m:])
		p.idle = p.idle[:m]
		p.open -= n
	}
	p.grantSlotLocked()
	p.mu.Unlock()
	for _, c := range excess {
		c.net.Close()
	}
}

// ConnInfo describes one open server connection, for SHOW SERVERS.
type ConnInfo struct {
	// Addr is the server's host:port.
	Addr string
	// PID is the server process serving the connection, to match it with
	// pg_stat_activity on the server.
	PID uint32
	// State is "active" (checked out) or "idle" (in the pool).
	State string
	// Born is when the connection was opened.
	Born time.Time
	// LastUsed is when the current checkout began for an active
	// connection, when it went idle for an idle one: how long a client has
	// held it, or how long it has gone unused.
	LastUsed time.Time
}

// Conns lists the pool's open connections, checked-out ones first.
// Connections still being opened are only counted, in Stats.Login: they
// have no server process to show yet.
func (p *Pool) Conns() []ConnInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConnInfo, 0, len(p.busy)+len(p.idle))
	for _, c := range p.busy {
		out = append(out, ConnInfo{Addr: p.key.Addr, PID: c.PID, State: "active", Born: c.born, LastUsed: c.checkedOut})
	}
	for i := len(p.idle) - 1; i >= 0; i-- {
		c := p.idle[i]
		out = append(out, ConnInfo{Addr: p.key.Addr, PID: c.PID, State: "idle", Born: c.born, LastUsed: c.idled})
	}
	return out
}

// checkOutLocked records c as checked out from now: it is then listed by
// Conns and counted in Stats.Active. p.mu is held.
func (p *Pool) checkOutLocked(c *Conn, now time.Time) {
	c.checkedOut = now
	c.busyAt = len(p.busy)
	p.busy = append(p.busy, c)
}

// busyLocked reports whether c is checked out. p.mu is held.
func (p *Pool) busyLocked(c *Conn) bool {
	i := c.busyAt
	return i >= 0 && i < len(p.busy) && p.busy[i] == c
}

// checkInLocked forgets c as checked out, moving the last busy connection
// into its place. A connection that is not checked out (returned twice) is
// left alone rather than corrupting the list. p.mu is held.
func (p *Pool) checkInLocked(c *Conn) {
	if !p.busyLocked(c) {
		return
	}
	i := c.busyAt
	last := p.busy[len(p.busy)-1]
	p.busy[i], last.busyAt = last, i
	p.busy[len(p.busy)-1] = nil
	p.busy = p.busy[:len(p.busy)-1]
	c.busyAt = -1
}
