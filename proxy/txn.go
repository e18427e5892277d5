package proxy

import (
	"encoding/binary"
	"strings"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// errAborted is what a server says to a statement in a failed transaction.
var errAborted = &Error{Code: "25P02", Message: "current transaction is aborted, commands ignored until end of transaction block"}

// txControl answers a lone BEGIN without a server, in transaction mode:
// the transaction's first statement then decides where it runs (a
// read-only transaction can go to a replica), and BEGIN travels with that
// statement, which saves the client a round trip to the server. COMMIT or
// ROLLBACK of such a transaction that never reached a server is answered
// here too. done reports whether the query was answered.
func (s *session) txControl(a *router.Analysis, sql []byte) (done bool, err error) {
	if s.mode != TransactionMode || len(a.Statements) != 1 {
		return false, nil
	}
	st := a.Statements[0]
	if (st.Command == router.CmdCommit || st.Command == router.CmdRollback) && s.inDist() {
		return true, s.endDistQuery(st.Command == router.CmdCommit, st.Chain)
	}
	s.mu.Lock()
	if s.link != nil {
		s.letGoLocked(s.link)
	}
	if s.link != nil || s.pinned {
		s.mu.Unlock()
		return false, nil
	}
	switch {
	case st.Command == router.CmdBegin && s.begin == nil:
		s.begin = &deferredBegin{sql: string(sql), access: st.TxAccess}
		s.mu.Unlock()
		tag := "BEGIN"
		if f := firstWord(sql); f == "start" {
			tag = "START TRANSACTION"
		}
		return true, s.reply(append(commandComplete(tag), rfq('T')...))
	case (st.Command == router.CmdCommit || st.Command == router.CmdRollback) && s.begin != nil:
		tag := "COMMIT"
		if st.Command == router.CmdRollback || s.begin.failed {
			tag = "ROLLBACK"
		}
		status := byte('I')
		if st.Chain {
			s.begin.failed = false
			status = 'T'
		} else {
			s.begin = nil
		}
		s.mu.Unlock()
		return true, s.reply(append(commandComplete(tag), rfq(status)...))
	}
	s.mu.Unlock()
	return false, nil
}

// endDistQuery answers COMMIT or ROLLBACK of a transaction over several
// shards (simple protocol).
func (s *session) endDistQuery(commit, chain bool) error {
	msg, status := s.endDistReply(commit, chain)
	return s.reply(append(msg, rfq(status)...))
}

// endDistReply ends a transaction over several shards and makes the
// reply: its command tag, or the error that made the commit fail. With
// chain, a new transaction starts at once (as COMMIT AND CHAIN does),
// to run on whichever shards its statements need.
func (s *session) endDistReply(commit, chain bool) ([]byte, byte) {
	s.mu.Lock()
	failed := s.dtx.failed
	begin := s.dtx.begin
	s.mu.Unlock()
	tag, err := s.endDist(commit)
	if err != nil {
		return encodeMsg(errorResponse(err, false)), 'I'
	}
	if failed {
		tag = "ROLLBACK"
	}
	if !chain {
		return commandComplete(tag), 'I'
	}
	s.mu.Lock()
	s.begin = &deferredBegin{sql: begin}
	s.mu.Unlock()
	return commandComplete(tag), 'T'
}

// firstWord returns the first word of a statement in lower case, skipping
// white space (only used on statements the router already recognised).
func firstWord(sql []byte) string {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	j := i
	for j < len(sql) && (sql[j]|0x20 >= 'a' && sql[j]|0x20 <= 'z') {
		j++
	}
	b := make([]byte, j-i)
	for k := range b {
		b[k] = sql[i+k] | 0x20
	}
	return string(b)
}

// noteSentLocked updates what the link's requests imply: whether they may
// have written, and whether they leave a transaction open.
func (s *session) noteSentLocked(l *link, a *router.Analysis) {
	l.ran = true
	if a.Write {
		l.wrote = true
	}
	for i := range a.Statements {
		switch st := &a.Statements[i]; st.Command {
		case router.CmdBegin:
			l.openTx = true
		case router.CmdCommit, router.CmdRollback:
			l.openTx = st.Chain
		}
	}
}

// positionQuery asks for the primary's WAL position after a commit. The
// insert position, not the write position: with synchronous_commit off
// the commit record may not be written yet, and it is at most that.
const positionQuery = "SELECT pg_catalog.pg_current_wal_insert_lsn()"

// captureDueLocked reports whether the requests just queued end a
// transaction that wrote on the primary, and if so queues the hidden query
// that learns its WAL position: the client's causal LSN, which its later
// reads must find on a replica. It travels in the same packet as the
// commit, so it costs the client no round trip.
func (s *session) captureDueLocked(l *link) bool {
	if !l.wrote || l.copyIn != copyNone || l.openTx || !l.rw || s.mode == SessionMode || s.srv.o().Topology == nil || s.srv.o().Routing.RYW != RYWLSN {
		return false
	}
	l.wrote = false
	l.q.push(pending{kind: 'Q', hidden: true, position: true})
	l.lsnDue.Add(1)
	return true
}

func writeCapture(l *link) {
	wire.WriteFrame(l.w, 'Q', append([]byte(positionQuery), 0))
}

// notePositionLocked takes the causal LSN from the position query's row.
func (s *session) notePositionLocked(shard int, body []byte) {
	// One column: int16 count, int32 length, the text.
	if len(body) < 6 || binary.BigEndian.Uint16(body) != 1 {
		return
	}
	n := int32(binary.BigEndian.Uint32(body[2:]))
	if n < 0 || int(n) > len(body)-6 {
		return
	}
	if lsn, err := pool.ParseLSN(string(body[6 : 6+n])); err == nil {
		s.causal.raise(shard, lsn)
	}
}

// copyState tracks a COPY FROM STDIN that may be under way.
type copyState uint8

const (
	copyNone copyState = iota
	copySimple
	copyExtended
)

// mayCopyIn reports whether a write may start COPY FROM STDIN: a statement
// that starts with COPY, or a multi-statement string that mentions it.
func mayCopyIn(sql string) bool {
	t := strings.TrimLeft(sql, " \t\r\n(")
	if len(t) >= 4 && strings.EqualFold(t[:4], "copy") {
		return true
	}
	return strings.Contains(sql, ";") && strings.Contains(strings.ToLower(sql), "copy")
}
