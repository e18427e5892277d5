package proxy

import (
	"encoding/binary"
	"io"
	"net"
	"time"
)

// cancelTimeout bounds delivering one cancel request to a server.
const cancelTimeout = 5 * time.Second

// cancelQuery forwards a client's cancel request to the server running its
// request, if one is running. The link stays attached until the server has
// taken the request (it closes the cancel connection after signalling the
// backend): a server released earlier could be serving another client by
// the time the signal lands, and cancel that client's query instead.
func (s *session) cancelQuery() {
	s.mu.Lock()
	if sc := s.scattered; sc != nil {
		s.cancelScatterLocked(sc)
		return
	}
	l := s.link
	if l == nil || l.q.empty() {
		s.mu.Unlock()
		return
	}
	l.cancels++
	addr, pid, key := l.be.Addr(), l.be.PID, l.be.SecretKey
	s.mu.Unlock()

	if err := sendCancel(addr, pid, key); err != nil {
		s.log.Warn("cancel request not delivered", "server", addr, "err", err)
	}

	s.mu.Lock()
	l.cancels--
	release := s.releasableLocked(l)
	s.mu.Unlock()
	if release {
		l.be.Pool().Put(l.be)
	}
}

// sendCancel delivers a CancelRequest and waits for the server to close
// the connection, which it does once the backend has been signalled.
func sendCancel(addr string, pid uint32, key []byte) error {
	c, err := net.DialTimeout("tcp", addr, cancelTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(cancelTimeout))
	msg := make([]byte, 12, 12+len(key))
	binary.BigEndian.PutUint32(msg[0:], uint32(12+len(key)))
	binary.BigEndian.PutUint32(msg[4:], codeCancel)
	binary.BigEndian.PutUint32(msg[8:], pid)
	msg = append(msg, key...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}

// cancelScatterLocked cancels a statement running on several shards on
// every one of them. The servers stay checked out by the statement until
// it has read all their responses, so none can be serving someone else.
// Called with mu held; it releases it.
func (s *session) cancelScatterLocked(sc *scatter) {
	type target struct {
		addr string
		pid  uint32
		key  []byte
	}
	var targets []target
	for _, c := range sc.conns {
		targets = append(targets, target{c.be.Addr(), c.be.PID, c.be.SecretKey})
	}
	s.mu.Unlock()
	for _, t := range targets {
		if err := sendCancel(t.addr, t.pid, t.key); err != nil {
			s.log.Warn("cancel request not delivered", "server", t.addr, "err", err)
		}
	}
}
