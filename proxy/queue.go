package proxy

import "github.com/shardgate/shardgate/router"

// pending is one request sent to a server (or answered by the proxy) whose
// response the client has not had yet. Responses come back in request
// order, so a FIFO of these tells the pump what each server message
// answers, which responses to swallow (requests the proxy made on its own)
// and where to slip in replies the proxy makes itself.
type pending struct {
	// kind is the frontend message type answered: 'P' 'B' 'D' 'E' 'C' 'S'
	// 'Q' 'F', or 0 for a reply made by the proxy (synth).
	kind byte
	// hidden requests were made by the proxy: their responses are not the
	// client's business.
	hidden bool
	// synth is the reply to write when this entry reaches the head.
	synth []byte
	// describeStmt: a statement Describe ends with RowDescription or
	// NoData after its ParameterDescription.
	describeStmt bool
	// clientStmt and serverStmt name the statement a Parse creates, so a
	// failed or skipped Parse can be forgotten.
	clientStmt string
	serverStmt string
	// analysis describes the statements an 'E' or 'Q' runs; done counts
	// those completed.
	analysis *router.Analysis
	done     int
	// position marks the hidden query that learns a commit's WAL position.
	position bool
}

// queue is a FIFO of pending requests.
type queue struct {
	items []pending
	head  int
}

func (q *queue) empty() bool { return q.head == len(q.items) }

func (q *queue) front() *pending {
	if q.empty() {
		return nil
	}
	return &q.items[q.head]
}

func (q *queue) push(p pending) { q.items = append(q.items, p) }

func (q *queue) pop() {
	q.items[q.head] = pending{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

func (q *queue) reset() {
	clear(q.items)
	q.items, q.head = q.items[:0], 0
}

// isExtended reports whether an error answering this request makes the
// server skip everything up to the next Sync.
func (p *pending) isExtended() bool {
	switch p.kind {
	case 'P', 'B', 'D', 'E', 'C':
		return true
	}
	return false
}
