package pool

import "time"

// waiter is a Get queued for a connection. Whoever serves it sends, with
// the pool's mutex held, a connection, nil (a slot to dial in) or
// closedPool; the channel is buffered so that never blocks.
type waiter struct {
	ch         chan *Conn
	since      time.Time
	prev, next *waiter
	queued     bool
}

// waitQueue is a FIFO of waiters linked through the waiters themselves,
// so queueing allocates nothing beyond the waiter and its channel, and
// the oldest waiter, for Stats.MaxWait, is the head. The pool's mutex
// guards it.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) push(w *waiter) {
	w.prev, w.next, w.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

// pop removes and returns the oldest waiter, or nil.
func (q *waitQueue) pop() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

// remove takes a queued waiter out of the queue.
func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	q.n--
}
