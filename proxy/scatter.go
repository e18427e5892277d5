package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// shardConn is one server of a statement that runs on several shards. It
// is driven by the session goroutine alone, outside the link machinery:
// the statement owns it from checkout to release.
type shardConn struct {
	be    *pool.Conn
	st    *serverState
	shard int
	// broken: the connection failed mid-exchange; it is discarded.
	broken bool
	// ready: its ReadyForQuery has been read; status is the transaction
	// status it gave.
	ready  bool
	status byte
	// wrote: a statement that may write ran on it in the client's
	// transaction over several shards.
	wrote bool
}

// read returns the server's next message; body is valid until the next
// read.
func (c *shardConn) read() (byte, []byte, error) {
	typ, n, err := c.st.r.Header()
	if err == nil {
		var body []byte
		if body, err = c.st.r.Body(n); err == nil {
			if typ == 'Z' {
				c.ready = true
				if len(body) == 1 {
					c.status = body[0]
				}
			}
			return typ, body, nil
		}
	}
	c.broken = true
	return 0, nil, err
}

// scatter is one run of a statement on several shards.
type scatter struct {
	s     *session
	conns []*shardConn
	// ddl names the failing shard in errors: a schema change may have
	// been applied on the others.
	ddl bool
	// firstErr is the first error a shard reported, sent to the client.
	firstErr []byte
	// dist is the client's transaction over several shards the statement
	// runs in: its connections stay with it.
	dist *distTx
	// reference: the statement writes a reference table, which every
	// shard holds whole; the client hears one shard's answer.
	reference bool
	// copy describes a COPY TO STDOUT of the statement, if it is one.
	copy *router.CopyInfo
}

// openShards checks out a server on each shard of set for a request with
// need n, bringing each to the client's settings. On error, what was
// checked out goes back.
func (s *session) openShards(set shardSet, n need) (*scatter, error) {
	for _, shard := range set {
		// All gates first: a paused shard must not keep another's server.
		if err := s.gate(shard); err != nil {
			return nil, err
		}
	}
	sc := &scatter{s: s}
	for _, shard := range set {
		be, _, err := s.route(n.onShard(shard))
		if err != nil {
			sc.release()
			return nil, err
		}
		c := &shardConn{be: be, st: stateOf(be, s.srv.o().PreparedCacheSize), shard: shard}
		sc.conns = append(sc.conns, c)
		s.mu.Lock()
		replay := replaySQL(s.settings.values, c.st.settings)
		s.mu.Unlock()
		if replay != "" {
			if err := roundTrip(be, c.st, replay, time.Now().Add(s.srv.o().ResetTimeout)); err != nil {
				c.broken = true
				sc.release()
				return nil, err
			}
		}
	}
	s.mu.Lock()
	s.scattered = sc
	s.mu.Unlock()
	return sc, nil
}

// release returns the servers to their pools once each has answered
// everything (a server that has not is drained first, and discarded if
// that fails).
func (sc *scatter) release() {
	sc.s.mu.Lock()
	if sc.s.scattered == sc {
		sc.s.scattered = nil
	}
	sc.s.mu.Unlock()
	for _, c := range sc.conns {
		if !c.broken && !c.ready {
			sc.drain(c)
		}
		if sc.dist != nil {
			continue // the transaction's end hands them back
		}
		if c.broken {
			c.be.Pool().Discard(c.be)
		} else {
			c.be.Pool().Put(c.be)
		}
	}
	sc.conns = nil
}

// drain reads a server's responses up to ReadyForQuery.
func (sc *scatter) drain(c *shardConn) {
	c.be.Net().SetReadDeadline(time.Now().Add(sc.s.srv.o().ResetTimeout))
	defer c.be.Net().SetReadDeadline(time.Time{})
	for !c.ready && !c.broken {
		typ, body, err := c.read()
		if err != nil {
			return
		}
		if typ == 'E' && sc.firstErr == nil {
			sc.firstErr = sc.shardError(c, body)
		}
	}
}

// send writes the same request to every server and flushes.
func (sc *scatter) send(write func(w *pool.Conn)) error {
	for _, c := range sc.conns {
		write(c.be)
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", sc.s.shardNames()[c.shard], err)}
		}
	}
	return nil
}

// sendEach writes each server its own request and flushes.
func (sc *scatter) sendEach(write func(c *shardConn, i int)) error {
	for i, c := range sc.conns {
		write(c, i)
		c.ready = false
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", sc.s.shardNames()[c.shard], err)}
		}
	}
	return nil
}

// head reads a server's next response that starts a result (or ends the
// request), relaying notices and keeping parameter reports.
func (sc *scatter) head(c *shardConn) (byte, []byte, error) {
	for {
		typ, body, err := c.read()
		if err != nil {
			return 0, nil, err
		}
		switch typ {
		case '1', '2': // ParseComplete, BindComplete of our own requests
		case 'N', 'A':
			if c == sc.conns[0] || typ == 'A' {
				sc.s.writeOut(typ, body)
			}
		case 'S':
			var ps pgproto3.ParameterStatus
			if ps.Decode(body) == nil {
				c.be.Params[ps.Name] = ps.Value
			}
		default:
			return typ, body, nil
		}
	}
}

// shardError copies a server's ErrorResponse, naming the shard in it when
// the statement changed the schema.
func (sc *scatter) shardError(c *shardConn, body []byte) []byte {
	if !sc.ddl {
		return encodeFrame('E', body)
	}
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil {
		return encodeFrame('E', body)
	}
	e.Message = fmt.Sprintf("on shard %s: %s", sc.s.shardNames()[c.shard], e.Message)
	e.Detail = strings.TrimSpace(e.Detail + " The statement was sent to every shard; shards other than this one may have applied it.")
	return encodeMsg(&e)
}

// results relays the responses of one request run on every shard: each
// result set combined (merged by m when it is set), command tags added up.
// sendFields says whether the client gets the RowDescription (a simple
// query; in the extended protocol only its Describe does). It returns
// after every server's ReadyForQuery.
func (sc *scatter) results(m *mergeRun, sendFields bool) error {
	heads := make([]byte, len(sc.conns))
	bodies := make([][]byte, len(sc.conns))
	for {
		done, failed := 0, -1
		for i, c := range sc.conns {
			typ, body, err := sc.head(c)
			if err != nil {
				return sc.lost(c, err)
			}
			heads[i], bodies[i] = typ, body
			switch typ {
			case 'Z':
				done++
			case 'E':
				if failed < 0 {
					failed = i
					sc.firstErr = sc.shardError(c, body)
				}
			}
		}
		switch {
		case failed >= 0:
			return sc.fail()
		case done == len(sc.conns):
			return nil
		case done > 0:
			return sc.fail(&Error{Code: "XX000", Message: "shards answered one statement with different numbers of results"})
		}
		var err error
		switch heads[0] {
		case 'T':
			err = sc.rows(bodies[0], m, sendFields)
		case 'n': // NoData: a statement without rows in the extended protocol
			err = sc.tags()
		case 'C':
			tags := bodiesAsTags(bodies)
			if sc.reference {
				tags = tags[:1]
			}
			sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
		case 'I':
			sc.s.writeOut('I', nil)
		case 'H':
			err = sc.copyOut(bodies[0])
		default:
			err = sc.fail(&Error{Code: "0A000", Message: fmt.Sprintf("a statement over several shards answered with message %q, which shardgate cannot combine", heads[0]),
				Hint: "route the statement to one shard with a key or /* shardgate: shard=NAME */"})
		}
		if err != nil {
			return err
		}
	}
}

func bodiesAsTags(bodies [][]byte) []string {
	tags := make([]string, len(bodies))
	for i, b := range bodies {
		tags[i] = strings.TrimSuffix(string(b), "\x00")
	}
	return tags
}

// tags reads each server's CommandComplete and sends the combined one.
func (sc *scatter) tags() error {
	tags := make([]string, len(sc.conns))
	for i, c := range sc.conns {
		typ, body, err := sc.head(c)
		if err != nil {
			return sc.lost(c, err)
		}
		if typ == 'E' {
			sc.firstErr = sc.shardError(c, body)
			return sc.fail()
		}
		tags[i] = strings.TrimSuffix(string(body), "\x00")
	}
	if sc.reference {
		tags = tags[:1]
	}
	sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
	return nil
}

// combineTags adds up the row counts of the shards' command tags: "SELECT
// 3" and "SELECT 4" make "SELECT 7"; a tag without a count is the first
// shard's.
func combineTags(tags []string) string {
	i := strings.LastIndexByte(tags[0], ' ')
	if i < 0 {
		return tags[0]
	}
	var total int64
	for _, t := range tags {
		j := strings.LastIndexByte(t, ' ')
		n, err := strconv.ParseInt(t[j+1:], 10, 64)
		if j < 0 || err != nil || t[:j] != tags[0][:i] {
			return tags[0]
		}
		total += n
	}
	return tags[0][:i+1] + strconv.FormatInt(total, 10)
}

// rows relays a result set from every server: concatenated, or merged.
func (sc *scatter) rows(fields []byte, m *mergeRun, sendFields bool) error {
	if m != nil {
		return m.run(sc, fields, sendFields)
	}
	if sendFields {
		sc.s.writeOut('T', fields)
	}
	tags := make([]string, 0, len(sc.conns))
	for i, c := range sc.conns {
		for {
			typ, body, err := c.read()
			if err != nil {
				return sc.lost(c, err)
			}
			if typ == 'D' {
				if i == 0 || !sc.reference {
					sc.s.writeOut('D', body)
				}
				continue
			}
			if typ == 'C' {
				// The tag says what ran (SELECT, or UPDATE ... RETURNING).
				tags = append(tags, strings.TrimSuffix(string(body), "\x00"))
				break
			}
			if typ == 'E' {
				sc.firstErr = sc.shardError(c, body)
				return sc.fail()
			}
			if typ == 'N' {
				sc.s.writeOut(typ, body)
			}
		}
	}
	if sc.reference {
		tags = tags[:1]
	}
	sc.s.writeOut('C', []byte(combineTags(tags)+"\x00"))
	return nil
}

// copyOut relays COPY TO STDOUT from every server, one after the other,
// as one copy.
//
// The copy must read as one server's: a header line (HEADER) comes from
// the first shard only, and in binary format the signature from the
// first shard and the trailer from the last. A binary header travels in
// the same message as the first row, the trailer in a message of its own.
func (sc *scatter) copyOut(response []byte) error {
	sc.s.writeOut('H', response)
	var total int64
	header := sc.copy != nil && sc.copy.Header && sc.copy.Format != "binary"
	binary := sc.copy != nil && sc.copy.Format == "binary"
	for i, c := range sc.conns {
		first, last := i == 0, i == len(sc.conns)-1
		var held []byte // binary: the last message, which may be the trailer
		seen := false
	copying: // each server's CopyOutResponse was read as its head

		for {
			typ, body, err := c.read()
			if err != nil {
				return sc.lost(c, err)
			}
			switch typ {
			case 'd':
				startOfData := !seen
				seen = true
				switch {
				case header && startOfData && !first:
					// another shard's header line
				case binary:
					if startOfData && !first {
						body = skipBinaryHeader(body)
					}
					if held != nil {
						sc.s.writeOut('d', held)
					}
					held = append(held[:0:0], body...)
				default:
					sc.s.writeOut('d', body)
				}
			case 'c':
				if held != nil && !last && len(held) >= 2 && held[len(held)-2] == 0xFF && held[len(held)-1] == 0xFF {
					held = held[:len(held)-2] // not the last shard: no trailer yet
				}
				if len(held) > 0 {
					sc.s.writeOut('d', held)
				}
			case 'C':
				tag := strings.TrimSuffix(string(body), "\x00")
				if n, err := strconv.ParseInt(strings.TrimPrefix(tag, "COPY "), 10, 64); err == nil {
					total += n
				}
				break copying
			case 'E':
				sc.firstErr = sc.shardError(c, body)
				return sc.fail()
			}
		}
	}
	sc.s.writeOut('c', nil)
	sc.s.writeOut('C', []byte("COPY "+strconv.FormatInt(total, 10)+"\x00"))
	return nil
}

// skipBinaryHeader drops the binary COPY header (signature, flags,
// extension) from the start of a shard's first data message.
func skipBinaryHeader(b []byte) []byte {
	const fixed = 11 + 4 + 4
	if len(b) < fixed {
		return b
	}
	ext := int(binary.BigEndian.Uint32(b[15:19]))
	if len(b) < fixed+ext {
		return b
	}
	return b[fixed+ext:]
}

// lost handles a server connection that failed mid-statement.
func (sc *scatter) lost(c *shardConn, err error) error {
	if sc.firstErr == nil {
		e := &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s during a statement over several shards: %v", sc.s.shardNames()[c.shard], err)}
		sc.firstErr = encodeMsg(errorResponse(e, false))
	}
	return sc.fail()
}

// fail sends the client the first error (or err), after draining every
// server so that none goes back to its pool with responses pending.
func (sc *scatter) fail(errs ...error) error {
	for _, c := range sc.conns {
		sc.drain(c)
	}
	if sc.firstErr == nil && len(errs) > 0 {
		sc.firstErr = encodeMsg(errorResponse(errs[0], false))
	}
	return errShardFailed
}

// errShardFailed reports that a shard's error is in scatter.firstErr.
var errShardFailed = errors.New("a shard failed the statement")

// writeOut sends one message to the client (buffered; the caller flushes).
func (s *session) writeOut(typ byte, body []byte) {
	s.outMu.Lock()
	wire.WriteFrame(s.out, typ, body)
	s.outMu.Unlock()
}

func encodeFrame(typ byte, body []byte) []byte {
	b := make([]byte, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	copy(b[5:], body)
	return b
}

// finish ends a scatter: the servers go back, and the client gets the
// first error if there was one, then ReadyForQuery for a simple query.
func (sc *scatter) finish(err error, simple bool) error {
	sc.release()
	s := sc.s
	if err != nil && !errors.Is(err, errShardFailed) {
		sc.firstErr = encodeMsg(errorResponse(err, false))
	}
	if d := sc.dist; d != nil {
		if sc.firstErr != nil {
			s.failDist()
		}
		if d.implicit {
			// A statement outside a transaction commits as it ends.
			if _, cerr := s.endDist(sc.firstErr == nil); cerr != nil && sc.firstErr == nil {
				sc.firstErr = encodeMsg(errorResponse(cerr, false))
			}
		}
	}
	status := s.txStatus()
	s.outMu.Lock()
	if sc.firstErr != nil {
		s.out.Write(sc.firstErr)
	}
	if simple {
		s.out.Write(rfq(status))
	}
	var ferr error
	if s.in.Buffered() == 0 || simple {
		ferr = s.out.Flush()
	}
	s.outMu.Unlock()
	if sc.firstErr != nil && !simple {
		s.mu.Lock()
		s.skipUntilSync = true
		s.mu.Unlock()
	}
	return ferr
}

// rowsOf splits a DataRow body into its values (nil for NULL), reusing
// dst.
func rowsOf(body []byte, dst [][]byte) ([][]byte, error) {
	if len(body) < 2 {
		return nil, io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	dst = dst[:0]
	for range n {
		if len(body) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		size := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if size < 0 {
			dst = append(dst, nil)
			continue
		}
		if len(body) < size {
			return nil, io.ErrUnexpectedEOF
		}
		dst = append(dst, body[:size:size])
		body = body[size:]
	}
	return dst, nil
}
