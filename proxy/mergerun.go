package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/merge"
	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// mergeRun combines one result set from several shards as the plan's
// Merge says.
type mergeRun struct {
	spec merge.Spec
}

// mergeFor prepares the merge a plan needs, with LIMIT, OFFSET and HAVING
// constants read from the bind parameters; nil means plain concatenation
// is right.
func (s *session) mergeFor(p *router.Plan, ps *params) (*mergeRun, error) {
	m := p.Merge
	if m == nil {
		return nil, nil
	}
	spec := merge.Spec{Limit: -1, Distinct: m.Distinct, Aggregate: m.Aggregate, Hidden: m.Hidden}
	for _, o := range m.Order {
		spec.Order = append(spec.Order, merge.Order{Column: o.Column, Name: o.Name, Desc: o.Desc, NullsFirst: o.NullsFirst})
	}
	// Columns has one entry per shard row column, visible ones first, so
	// a shard column's index is its index in the merged row too.
	visible := len(m.Columns) - m.Hidden
	for i, c := range m.Columns {
		if i < visible {
			spec.Outputs = append(spec.Outputs, mergeOutput(c))
		} else {
			spec.HiddenOutputs = append(spec.HiddenOutputs, mergeOutput(c))
		}
	}
	var err error
	if m.Limit != nil {
		if spec.Limit, err = intValue(*m.Limit, ps, "LIMIT"); err != nil {
			return nil, err
		}
	}
	if m.Offset != nil {
		if spec.Offset, err = intValue(*m.Offset, ps, "OFFSET"); err != nil {
			return nil, err
		}
		spec.Offset = max(spec.Offset, 0)
	}
	if m.Having != nil {
		if spec.Having, err = havingExpr(m, m.Having, ps); err != nil {
			return nil, err
		}
	}
	return &mergeRun{spec: spec}, nil
}

// mergeKinds maps the router's column kinds to the merge's.
var mergeKinds = [...]merge.Kind{
	router.ColGroup: merge.Group, router.ColCount: merge.Count, router.ColSum: merge.Sum,
	router.ColMin: merge.Min, router.ColMax: merge.Max, router.ColAvg: merge.Avg,
	router.ColBoolAnd: merge.BoolAnd, router.ColBoolOr: merge.BoolOr,
}

func mergeOutput(c router.Column) merge.Output {
	return merge.Output{Kind: mergeKinds[c.Kind], Column: c.Column, Count: c.Count}
}

// havingExpr turns the router's HAVING condition into the merge's, its
// constants read from literals or parameters.
func havingExpr(m *router.Merge, e *router.Expr, ps *params) (*merge.Expr, error) {
	out := &merge.Expr{Op: e.Op}
	for _, a := range e.Args {
		x, err := havingExpr(m, a, ps)
		if err != nil {
			return nil, err
		}
		out.Args = append(out.Args, x)
	}
	if e.Column != nil {
		for i, c := range m.Columns {
			if c == *e.Column {
				out.Output = &i
				break
			}
		}
		if out.Output == nil {
			o := mergeOutput(*e.Column)
			out.Hidden = &o
		}
	}
	if e.Value != nil {
		text, null, err := textValue(*e.Value, ps)
		if err != nil {
			return nil, err
		}
		if null {
			out.ConstNull = true
		} else {
			out.Const = &text
		}
	}
	return out, nil
}

// textValue reads a constant in text form from a literal or a parameter.
// A binary parameter is read as an integer or a float by its length,
// which covers the constants of LIMIT, OFFSET and HAVING comparisons.
func textValue(v router.Value, ps *params) (string, bool, error) {
	if v.Param == 0 {
		return v.Text, v.Null, nil
	}
	if ps == nil || v.Param > len(ps.values) {
		return "", false, &Error{Code: "08P01", Message: fmt.Sprintf("there is no parameter $%d", v.Param)}
	}
	raw := ps.values[v.Param-1]
	if raw == nil {
		return "", true, nil
	}
	if !ps.binary(v.Param - 1) {
		return string(raw), false, nil
	}
	switch len(raw) {
	case 2:
		return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(raw))), 10), false, nil
	case 4:
		return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(raw))), 10), false, nil
	case 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(raw)), 10), false, nil
	}
	return "", false, &Error{Code: "0A000", Message: fmt.Sprintf("parameter $%d of a statement over several shards is in a binary format shardgate cannot read", v.Param),
		Hint: "send it in text format"}
}

func intValue(v router.Value, ps *params, what string) (int64, error) {
	text, null, err := textValue(v, ps)
	if err != nil {
		return 0, err
	}
	if null {
		return -1, nil // LIMIT NULL is no limit; OFFSET NULL is 0
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, &Error{Code: "22P02", Message: fmt.Sprintf("invalid input syntax for type bigint: %q (%s)", text, what)}
	}
	return n, nil
}

// fields reads the shards' row description and returns the client's.
func (m *mergeRun) fields(body []byte) ([]pgproto3.FieldDescription, []pgproto3.FieldDescription, error) {
	var rd pgproto3.RowDescription
	if err := rd.Decode(body); err != nil {
		return nil, nil, err
	}
	shard := rd.Fields
	client, err := merge.Fields(&m.spec, shard)
	if err != nil {
		return nil, nil, &Error{Code: "0A000", Message: "cannot merge this result from several shards: " + err.Error(),
			Hint: "add a condition on the sharding key, or route with /* shardgate: shard=NAME */"}
	}
	return shard, client, nil
}

// describe sends the client the row description of the merged result.
func (m *mergeRun) describe(s *session, body []byte) error {
	_, client, err := m.fields(body)
	if err != nil {
		return err
	}
	s.writeMsg(&pgproto3.RowDescription{Fields: client})
	return nil
}

// run merges the rows of every shard after their row description.
func (m *mergeRun) run(sc *scatter, body []byte, sendFields bool) error {
	shard, client, err := m.fields(body)
	if err != nil {
		return sc.fail(err)
	}
	if sendFields {
		sc.s.writeMsg(&pgproto3.RowDescription{Fields: client})
	}
	sources := make([]merge.Source, len(sc.conns))
	rs := make([]*rowSource, len(sc.conns))
	for i, c := range sc.conns {
		rs[i] = &rowSource{sc: sc, c: c}
		sources[i] = rs[i]
	}
	var n int64
	var row []byte
	err = merge.Run(&m.spec, shard, sources, func(vals [][]byte) error {
		row = appendDataRow(row[:0], vals)
		sc.s.writeOut('D', row)
		n++
		return nil
	})
	if err != nil {
		if !errors.Is(err, errShardFailed) {
			return sc.fail(&Error{Code: "0A000", Message: "cannot merge this result from several shards: " + err.Error(),
				Hint: "add a condition on the sharding key, or route with /* shardgate: shard=NAME */"})
		}
		return sc.fail()
	}
	// The merge may stop early (LIMIT): the rest of each result is read
	// and dropped, up to its CommandComplete.
	for _, r := range rs {
		for !r.done {
			if _, err := r.Next(); err != nil && !errors.Is(err, io.EOF) {
				return sc.fail()
			}
		}
	}
	sc.s.writeOut('C', []byte("SELECT "+strconv.FormatInt(n, 10)+"\x00"))
	return nil
}

// rowSource reads one shard's rows for the merge.
type rowSource struct {
	sc   *scatter
	c    *shardConn
	vals [][]byte
	done bool
}

// Next implements merge.Source.
func (r *rowSource) Next() ([][]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	for {
		typ, body, err := r.c.read()
		if err != nil {
			r.done = true
			r.sc.lost(r.c, err)
			return nil, errShardFailed
		}
		switch typ {
		case 'D':
			r.vals, err = rowsOf(body, r.vals)
			return r.vals, err
		case 'C':
			r.done = true
			return nil, io.EOF
		case 'E':
			r.done = true
			if r.sc.firstErr == nil {
				r.sc.firstErr = r.sc.shardError(r.c, body)
			}
			return nil, errShardFailed
		case 'N':
			if r.c == r.sc.conns[0] {
				r.sc.s.writeOut(typ, body)
			}
		}
	}
}

// appendDataRow encodes a DataRow body.
func appendDataRow(b []byte, vals [][]byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// writeMsg sends one message to the client (buffered).
func (s *session) writeMsg(msg wire.Encoder) {
	b := encodeMsg(msg)
	s.outMu.Lock()
	s.out.Write(b)
	s.outMu.Unlock()
}
