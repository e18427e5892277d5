package proxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/copysplit"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
	"github.com/shardgate/shardgate/shardmap"
)

// copyRouter sends each row of a COPY FROM STDIN to its shard: every row
// to every shard for a reference table, else by the row's key.
type copyRouter struct {
	s     *session
	sc    *scatter
	split *copysplit.Splitter // nil: every shard gets every row
	m     *shardmap.Map
	dist  *shardmap.Distribution
	// byShard is the scatter's connection for each shard index.
	byShard map[int]*shardConn
	// headed: the shard's connection has had the header.
	headed map[*shardConn]bool
	binary bool
}

// copyFrom runs COPY ... FROM STDIN on the shards of a scatter: it starts
// the copy on each, takes the client's data, sends each row where it
// belongs, and ends the copy everywhere. The scatter's connections are in
// one transaction over the shards, so the rows commit together or not at
// all.
func (s *session) copyFrom(sc *scatter, p *router.Plan, sql string) error {
	cr, err := s.newCopyRouter(sc, p, sql)
	if err != nil {
		return err
	}
	if err := sc.send(func(be *pool.Conn) { wire.WriteFrame(be.Writer(), 'Q', append([]byte(sql), 0)) }); err != nil {
		return err
	}
	var response []byte
	for _, c := range sc.conns {
		typ, body, err := sc.head(c)
		if err != nil {
			return sc.lost(c, err)
		}
		switch typ {
		case 'G':
			response = append(response[:0], body...)
		case 'E':
			if sc.firstErr == nil {
				sc.firstErr = sc.shardError(c, body)
			}
		default:
			return sc.fail(&Error{Code: "08P01", Message: fmt.Sprintf("a shard answered COPY FROM STDIN with message %q", typ)})
		}
	}
	if sc.firstErr != nil {
		// Shards that did start the copy end it.
		cr.abort("a shard refused the COPY")
		s.skipCopyData()
		return sc.fail()
	}
	s.writeOut('G', response)
	s.outMu.Lock()
	err = s.out.Flush()
	s.outMu.Unlock()
	if err != nil {
		cr.abort("the client went away")
		return sc.fail(err)
	}
	if failure := cr.relay(); failure != nil {
		cr.abort(failure.Error())
		// The client hears why, not the shards' echo of the CopyFail.
		sc.firstErr = encodeMsg(errorResponse(failure, false))
		return sc.fail()
	}
	return sc.results(nil, true)
}

func (s *session) newCopyRouter(sc *scatter, p *router.Plan, sql string) (*copyRouter, error) {
	cr := &copyRouter{s: s, sc: sc, byShard: map[int]*shardConn{}, headed: map[*shardConn]bool{}}
	for _, c := range sc.conns {
		cr.byShard[c.shard] = c
	}
	if p.Reference {
		return cr, nil
	}
	shards := s.srv.shardMap()
	if shards == nil {
		return nil, &Error{Code: "XX000", Message: "the shard map went away during the statement"}
	}
	cr.m = shards.m
	d, err := s.distribution(cr.m, p.Distribution)
	if err != nil {
		return nil, err
	}
	cr.dist = d
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].GetStmt().GetCopyStmt() == nil {
		return nil, &Error{Code: "0A000", Message: "shardgate could not read the COPY statement to split its rows"}
	}
	stmt := tree.Stmts[0].GetStmt().GetCopyStmt()
	if enc := s.clientEncoding(); !copysplit.SafeEncoding(enc) {
		return nil, &Error{Code: "0A000", Message: fmt.Sprintf("COPY into a sharded table cannot be split by shard in client encoding %s", enc),
			Hint: "use client_encoding UTF8 for the COPY"}
	}
	opts, err := copysplit.OptionsFromStmt(stmt)
	if err != nil {
		return nil, err
	}
	var columns []string
	if len(stmt.Attlist) == 0 {
		if columns, err = s.tableColumns(sc.conns[0], stmt.Relation); err != nil {
			return nil, err
		}
	}
	key, err := copysplit.KeyFromStmt(stmt, columns, p.Copy.Table.Key)
	if err != nil {
		return nil, err
	}
	if cr.split, err = copysplit.New(opts, key); err != nil {
		return nil, err
	}
	cr.binary = opts.Format == copysplit.Binary
	return cr, nil
}

// clientEncoding is the encoding the client's data is in.
func (s *session) clientEncoding() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.settings.values["client_encoding"]; v != "" {
		return v
	}
	return "UTF8"
}

// tableColumns reads the columns COPY fills when it names none: the
// table's, in order, without dropped and generated ones.
func (s *session) tableColumns(c *shardConn, rv *pg_query.RangeVar) ([]string, error) {
	name := quoteIdent(rv.Relname)
	if rv.Schemaname != "" {
		name = quoteIdent(rv.Schemaname) + "." + name
	}
	rows, err := c.rows("SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = " + quoteLiteral(name) +
		"::pg_catalog.regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum")
	if err != nil {
		return nil, s.shardErr(c, err)
	}
	cols := make([]string, len(rows))
	for i, r := range rows {
		cols[i] = r[0]
	}
	return cols, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// relay takes the client's copy data up to CopyDone or CopyFail and sends
// it on, then ends the copy on every shard. It returns why the copy
// failed, if it did; the client's data is consumed either way.
func (cr *copyRouter) relay() error {
	s := cr.s
	for {
		typ, n, err := s.in.Header()
		if err != nil {
			return &Error{Code: "08006", Message: "the client went away during COPY", Err: err, Fatal: true}
		}
		body, err := s.in.Body(n)
		if err != nil {
			return &Error{Code: "08006", Message: "the client went away during COPY", Err: err, Fatal: true}
		}
		switch typ {
		case 'd':
			if err := cr.data(body); err != nil {
				s.skipCopyData()
				return err
			}
		case 'c':
			return cr.done()
		case 'f':
			msg := strings.TrimSuffix(string(body), "\x00")
			return &Error{Code: "57014", Message: "COPY from stdin failed: " + msg}
		case 'H', 'S':
			// Ignored during COPY, as by the server.
		default:
			return &Error{Code: "08P01", Message: fmt.Sprintf("unexpected message type 0x%02X during COPY from stdin", typ)}
		}
	}
}

// data routes the rows of one CopyData message.
func (cr *copyRouter) data(b []byte) error {
	if cr.split == nil {
		for _, c := range cr.sc.conns {
			wire.WriteFrame(c.be.Writer(), 'd', b)
		}
		return nil
	}
	cr.split.Feed(b)
	for {
		row, ok, err := cr.split.Next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := cr.route(row); err != nil {
			return err
		}
	}
}

// route sends one row to its shard. A row with a NULL key goes to the
// first shard, whose NOT NULL constraint refuses it as one server would.
func (cr *copyRouter) route(row copysplit.Row) error {
	c := cr.sc.conns[0]
	if !row.Null {
		var k shardmap.Key
		var err error
		if cr.binary {
			k, err = shardmap.BinaryKey(cr.dist.Kind, row.Key)
		} else {
			k, err = shardmap.ParseKey(cr.dist.Kind, string(row.Key))
		}
		if err != nil {
			return &Error{Code: "22P02", Message: fmt.Sprintf("COPY line %d: sharding key of distribution %s: %v", row.Line, cr.dist.Name, err)}
		}
		i, err := cr.m.Locate(context.Background(), cr.dist, k)
		if err != nil {
			return err
		}
		if c = cr.byShard[i]; c == nil {
			return &Error{Code: "XX000", Message: "the shard map changed during the COPY"}
		}
	}
	cr.header(c)
	wire.WriteFrame(c.be.Writer(), 'd', row.Data)
	return nil
}

// header sends a shard the data's header (binary signature, HEADER
// line) before its first row: each shard's COPY expects one.
func (cr *copyRouter) header(c *shardConn) {
	if cr.headed[c] {
		return
	}
	cr.headed[c] = true
	if h := cr.split.Header(); len(h) > 0 {
		wire.WriteFrame(c.be.Writer(), 'd', h)
	}
}

// done ends the copy on every shard after the client's CopyDone.
func (cr *copyRouter) done() error {
	if cr.split != nil {
		row, ok, err := cr.split.Finish()
		if err != nil {
			return err
		}
		if ok {
			if err := cr.route(row); err != nil {
				return err
			}
		}
		for _, c := range cr.sc.conns {
			cr.header(c)
			if t := cr.split.Trailer(); len(t) > 0 {
				wire.WriteFrame(c.be.Writer(), 'd', t)
			}
		}
	}
	for _, c := range cr.sc.conns {
		wire.WriteFrame(c.be.Writer(), 'c', nil)
		c.ready = false
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s during COPY: %v", cr.s.shardNames()[c.shard], err)}
		}
	}
	return nil
}

// abort ends the copy on every shard with CopyFail; what they copied is
// rolled back.
func (cr *copyRouter) abort(why string) {
	for _, c := range cr.sc.conns {
		if c.broken || c.ready {
			continue
		}
		wire.WriteMessage(c.be.Writer(), &pgproto3.CopyFail{Message: "shardgate: " + why})
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
		}
	}
}

// skipCopyData consumes the client's copy data up to its end, after the
// copy failed: the client sends it all before it reads the error.
func (s *session) skipCopyData() {
	for {
		typ, n, err := s.in.Header()
		if err != nil {
			return
		}
		if err := s.in.Skip(n); err != nil {
			return
		}
		if typ == 'c' || typ == 'f' {
			return
		}
	}
}
