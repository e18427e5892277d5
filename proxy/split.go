package proxy

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// insertRows says which rows of a multi-row INSERT go to which shard.
// A row without a key (NULL) goes to the first shard, whose constraints
// then judge it as a single server would.
func (s *session) insertRows(p *router.Plan, ps *params, first int) (map[int][]int, error) {
	shards := s.srv.shardMap()
	if shards == nil {
		return nil, &Error{Code: "XX000", Message: "the shard map went away during the statement"}
	}
	d, err := s.distribution(shards.m, p.Distribution)
	if err != nil {
		return nil, err
	}
	rows := map[int][]int{}
	for i, v := range p.Insert.Keys {
		keys, err := keyValues(d, v, ps, true)
		if err != nil {
			return nil, err
		}
		shard := first
		if len(keys) > 0 {
			if shard, err = shards.m.Locate(context.Background(), d, keys[0]); err != nil {
				return nil, err
			}
		}
		rows[shard] = append(rows[shard], i)
	}
	return rows, nil
}

// sendInsertSplit sends each shard of a scatter the rows of a multi-row
// INSERT that belong there, as an INSERT of its own.
func (s *session) sendInsertSplit(sc *scatter, p *router.Plan, ps *params) error {
	rows, err := s.insertRows(p, ps, sc.conns[0].shard)
	if err != nil {
		return err
	}
	queries := make([][]byte, len(sc.conns))
	for i, c := range sc.conns {
		if len(rows[c.shard]) == 0 {
			return &Error{Code: "XX000", Message: fmt.Sprintf("no rows of the INSERT belong on shard %s; the shard map changed during the statement", s.shardNames()[c.shard])}
		}
		sql, err := p.Insert.SQLFor(rows[c.shard])
		if err != nil {
			return &Error{Code: "0A000", Message: err.Error(),
				Hint: "send the rows of each shard in an INSERT of their own"}
		}
		queries[i] = append([]byte(sql), 0)
	}
	return sc.sendEach(func(c *shardConn, i int) { wire.WriteFrame(c.be.Writer(), 'Q', queries[i]) })
}

// portalPart is what one shard runs of a portal split by shard: its own
// statement, parameter types and Bind.
type portalPart struct {
	query string
	oids  []uint32
	bind  []byte
}

// splitInsertPortal prepares, for each shard of a multi-row INSERT with
// bind parameters, the INSERT of that shard's rows with the parameters it
// uses, renumbered, and their values.
func (s *session) splitInsertPortal(sp *scatterPortal, rest []byte) error {
	tail, err := bindTail(rest)
	if err != nil {
		return protocolViolation("Bind", err)
	}
	rows, err := s.insertRows(sp.plan, sp.ps, sp.set[0])
	if err != nil {
		return err
	}
	sp.parts = map[int]*portalPart{}
	for _, shard := range sp.set {
		sql, pick, err := sp.plan.Insert.SQLForParams(rows[shard])
		if err != nil {
			return &Error{Code: "0A000", Message: err.Error(), Hint: "send the rows of each shard in an INSERT of their own"}
		}
		part := &portalPart{query: sql, bind: []byte{0, 0}}
		ps := sp.ps
		switch len(ps.formats) {
		case 0:
			part.bind = append(part.bind, 0, 0)
		case 1:
			part.bind = binary.BigEndian.AppendUint16(part.bind, 1)
			part.bind = binary.BigEndian.AppendUint16(part.bind, uint16(ps.formats[0]))
		default:
			part.bind = binary.BigEndian.AppendUint16(part.bind, uint16(len(pick)))
			for _, old := range pick {
				part.bind = binary.BigEndian.AppendUint16(part.bind, uint16(ps.formats[old-1]))
			}
		}
		part.bind = binary.BigEndian.AppendUint16(part.bind, uint16(len(pick)))
		for _, old := range pick {
			if old > len(ps.values) {
				return &Error{Code: "08P01", Message: fmt.Sprintf("there is no parameter $%d", old)}
			}
			if old-1 < len(sp.oids) {
				part.oids = append(part.oids, sp.oids[old-1])
			} else {
				part.oids = append(part.oids, 0)
			}
			v := ps.values[old-1]
			if v == nil {
				part.bind = binary.BigEndian.AppendUint32(part.bind, 0xFFFFFFFF)
				continue
			}
			part.bind = binary.BigEndian.AppendUint32(part.bind, uint32(len(v)))
			part.bind = append(part.bind, v...)
		}
		part.bind = append(part.bind, tail...)
		sp.parts[shard] = part
	}
	return nil
}

// bindTail returns the result format codes at the end of a Bind body that
// starts at its parameter format codes.
func bindTail(b []byte) ([]byte, error) {
	bad := fmt.Errorf("malformed Bind")
	if len(b) < 2 {
		return nil, bad
	}
	nf := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+2*nf+2 {
		return nil, bad
	}
	b = b[2+2*nf:]
	nv := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for range nv {
		if len(b) < 4 {
			return nil, bad
		}
		size := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if size > 0 {
			if len(b) < size {
				return nil, bad
			}
			b = b[size:]
		}
	}
	return b, nil
}
