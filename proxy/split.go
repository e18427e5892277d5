package proxy

import (
	"context"
	"fmt"

	"github.com/shardgate/shardgate/proxy/wire"
	"github.com/shardgate/shardgate/router"
)

// sendInsertSplit sends each shard of a scatter the rows of a multi-row
// INSERT that belong there, as an INSERT of its own.
func (s *session) sendInsertSplit(sc *scatter, p *router.Plan, ps *params) error {
	shards := s.srv.shardMap()
	if shards == nil {
		return &Error{Code: "XX000", Message: "the shard map went away during the statement"}
	}
	d, err := s.distribution(shards.m, p.Distribution)
	if err != nil {
		return err
	}
	rows := map[int][]int{}
	for i, v := range p.Insert.Keys {
		keys, err := keyValues(d, v, ps)
		if err != nil {
			return err
		}
		// A row without a key (NULL) goes to the first shard, whose
		// constraints then judge it as a single server would.
		shard := sc.conns[0].shard
		if len(keys) > 0 {
			if shard, err = shards.m.Locate(context.Background(), d, keys[0]); err != nil {
				return err
			}
		}
		rows[shard] = append(rows[shard], i)
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
	for i, c := range sc.conns {
		wire.WriteFrame(c.be.Writer(), 'Q', queries[i])
		c.ready = false
		if err := c.be.Writer().Flush(); err != nil {
			c.broken = true
			return &Error{Code: "08006", Message: fmt.Sprintf("lost the connection to shard %s: %v", s.shardNames()[c.shard], err)}
		}
	}
	return nil
}
