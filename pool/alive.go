package pool

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// Alive reports whether an idle connection still looks usable: nothing
// has arrived on it and it is not closed. An idle server that sends
// something has sent a FATAL error before closing (shutdown, terminated
// by an administrator). The check is one non-blocking recv with MSG_PEEK:
// cheap next to a round trip, and it spares a client an error.
//
// It runs under RawConn.Control, not RawConn.Read: Read would queue behind
// a reader blocked on the socket (pgconn's background reader can stay so
// on an idle connection) and hang until the server next says something.
// Beside such a reader the peek may miss bytes it has already taken; the
// connection then looks alive, and its owner reads the news itself.
func Alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = raw.Control(func(fd uintptr) {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN):
		case rerr != nil || n >= 0:
			alive = false // data, EOF (n == 0) or an error
		}
	})
	return err == nil && alive
}
