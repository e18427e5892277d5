//go:build !linux

package evloop

import (
	"errors"
	"net"
)

// Supported reports whether this platform has the event loop.
const Supported = false

// ErrWouldBlock is never returned off Linux.
var ErrWouldBlock = errors.New("evloop: no data yet")

// ErrNotTCP: off Linux nothing can be taken over.
var ErrNotTCP = errors.New("evloop: needs Linux's epoll")

// Loop is unavailable off Linux.
type Loop struct{}

// New fails off Linux: sockets stay on Go's netpoller.
func New() (*Loop, error) { return nil, ErrNotTCP }

// Close does nothing.
func (l *Loop) Close() {}

// Wrap fails off Linux.
func (l *Loop) Wrap(net.Conn) (*Conn, error) { return nil, ErrNotTCP }

// Conn is never made off Linux; its methods exist so callers compile.
type Conn struct{ net.Conn }

// SetHandler does nothing.
func (c *Conn) SetHandler(func(uint32)) {}

// Kick does nothing.
func (c *Conn) Kick() {}

// SetNonblocking does nothing.
func (c *Conn) SetNonblocking(bool) {}

// Pending is always 0.
func (c *Conn) Pending() int { return 0 }

// FlushPending does nothing.
func (c *Conn) FlushPending() (int, error) { return 0, nil }

// Alive is always true.
func (c *Conn) Alive() bool { return true }
