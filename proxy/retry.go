package proxy

import (
	"errors"
	"time"
)

// retryPatience is how long the session waits for a retryable read's
// first reply before it lets the read go on without a retry.
const retryPatience = 500 * time.Millisecond

// maxReadRetries bounds how often one read moves to another server after
// the one serving it failed.
const maxReadRetries = 2

// retryLog keeps the client messages of a read sent to a replica until the
// first byte of its answer reaches the client. Should the replica fail
// before that, the read runs again elsewhere and the client never knows.
type retryLog struct {
	msgs []clientMsg
	size int
	// complete: the request ended (Query or Sync) and the session
	// goroutine waits on outcome: true once something reached the client,
	// false when the server failed before.
	complete bool
	outcome  chan bool
}

type clientMsg struct {
	typ  byte
	body []byte
}

// retryLimit bounds the bytes kept for a retry; a bigger request is not
// retried.
const retryLimit = 64 << 10

// recordLocked keeps a copy of a client message for a retry, or gives the
// retry up if the request grew too big.
func (l *link) recordLocked(typ byte, body []byte) {
	r := l.retry
	if r == nil {
		return
	}
	if r.size+len(body) > retryLimit {
		l.retry = nil
		return
	}
	r.size += len(body)
	r.msgs = append(r.msgs, clientMsg{typ: typ, body: append([]byte(nil), body...)})
}

// settleLocked reports the outcome to a waiting session goroutine and ends
// the retry window.
func (l *link) settleLocked(ok bool) {
	if r := l.retry; r != nil {
		l.retry = nil
		r.outcome <- ok
	}
}

// record keeps a message of a request that may be retried. Only while a
// retryable link is being written (s.recording) does it take the lock: it
// runs for every client message.
func (s *session) record(typ byte, body []byte) {
	l := s.recording
	if l == nil {
		return
	}
	s.mu.Lock()
	if s.link == l && l.retry != nil {
		l.recordLocked(typ, body)
	} else {
		s.recording = nil
	}
	s.mu.Unlock()
}

// awaitOutcome waits, at the end of a retryable read, until the replica
// has answered or failed; a failure runs the read again elsewhere.
func (s *session) awaitOutcome() error {
	s.recording = nil // the request is complete
	s.mu.Lock()
	l := s.link
	if l == nil || l.retry == nil {
		s.mu.Unlock()
		return nil
	}
	r := l.retry
	r.complete = true
	// The request may sit in the buffer if the client sent more behind
	// it; the server must have it to answer. Counted as a write, so the
	// link cannot go back to the pool under the flush.
	l.writers++
	s.mu.Unlock()
	s.endWrite(l, true)
	var ok bool
	timer := time.NewTimer(retryPatience)
	select {
	case ok = <-r.outcome:
		timer.Stop()
	case <-timer.C:
		s.mu.Lock()
		if l.retry == r {
			// A slow read: give up the chance of a retry rather than hold
			// the client's session, and push the request out again in
			// case it is still buffered.
			l.retry = nil
			l.writers++
			s.mu.Unlock()
			s.log.Debug("read slow to answer; it will not be retried elsewhere", "server", l.be.Addr())
			s.endWrite(l, true)
			return nil
		}
		s.mu.Unlock()
		ok = <-r.outcome // settled meanwhile: the value is there
	}
	if ok {
		return nil
	}
	if topo := s.srv.o().Topology; topo != nil && l.host != nil {
		topo.Ban(l.host, errors.New("connection lost while serving a read"))
	}
	s.log.Info("read failed on a replica before any reply; retrying it elsewhere", "server", l.be.Addr())
	s.retries++
	s.exclude = l.host
	defer func() { s.retries, s.exclude, s.replaying = 0, nil, false }()
	s.replaying = true
	for _, m := range r.msgs {
		if err := s.dispatch(m.typ, m.body); err != nil {
			return err
		}
	}
	return nil
}

// retryableLocked reports whether a new link for a read may have its
// request replayed elsewhere if its server fails.
func (s *session) retryableLocked(t target) bool {
	return s.mode == TransactionMode && !s.srv.o().Routing.NoReadRetry && !s.pinned && t.host != nil && !t.rw && s.begin == nil && s.retries < maxReadRetries
}

// failedRetryLocked handles a lost server whose client has had nothing yet
// and waits for the outcome: the request runs again elsewhere instead of
// failing. It reports whether it took over.
func (s *session) failedRetryLocked(l *link) bool {
	if l.retry == nil || !l.retry.complete {
		l.retry = nil
		return false
	}
	for !l.q.empty() {
		l.q.pop()
	}
	if s.link == l {
		s.link = nil
	}
	l.settleLocked(false)
	return true
}
