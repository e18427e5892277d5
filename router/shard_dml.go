package router

import (
	"errors"
	"fmt"
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// planInsert plans INSERT. Into a sharded table, the statement must name
// the key column and give it as a literal or parameter in each VALUES
// row (or in a SELECT without FROM): one row runs on its key's shard,
// several are split by shard (Plan.Insert).
func planInsert(res *pg_query.ParseResult, ins *pg_query.InsertStmt, s Schema) (*Plan, string) {
	a := newAnalyzer(s)
	top := a.insertBlock(ins, nil, blockTop)
	t := top.target
	if t.node < 0 {
		p, _ := a.decide(top, -1, nil)
		return p, a.dist()
	}
	keys, why := insertKeys(ins, t)
	if why != nil {
		return &Plan{Refused: why}, a.dist()
	}
	p, _ := a.decide(top, t.node, keys)
	p.Assigned = p.Spread == SpreadKeys
	if p.Refused == nil && len(keys) > 1 {
		p.Insert = &InsertSplit{Keys: keys, stmt: res, params: hasParams(ins)}
	}
	return p, a.dist()
}

// insertKeys reads the key of each row an INSERT into sharded table t
// writes.
func insertKeys(ins *pg_query.InsertStmt, t *rel) ([]Value, *Refusal) {
	key := t.info.Key
	how := fmt.Sprintf("list the columns and give the sharding key %s of each row as a literal or a parameter, or route the statement with a /* shardgate: shard=NAME */ hint", key)
	if len(ins.Cols) == 0 {
		return nil, &Refusal{Message: fmt.Sprintf("INSERT into sharded table %s needs a column list: without one the position of the sharding key %s is unknown", t.name, key), Hint: how}
	}
	ki := -1
	for i, c := range ins.Cols {
		if rt := c.GetResTarget(); rt != nil && rt.Name == key && len(rt.Indirection) == 0 {
			ki = i
		}
	}
	if ki < 0 {
		return nil, &Refusal{Message: fmt.Sprintf("INSERT into sharded table %s does not give its sharding key %s, so the shard of the new rows is unknown", t.name, key), Hint: how}
	}
	if oc := ins.OnConflictClause; oc != nil {
		for _, n := range oc.TargetList {
			if rt := n.GetResTarget(); rt != nil && rt.Name == key {
				return nil, &Refusal{Message: fmt.Sprintf("ON CONFLICT DO UPDATE must not change the sharding key %s of %s: the row would belong on another shard", key, t.name),
					Hint: "delete the row and insert it with its new key instead"}
			}
		}
	}
	sel := ins.SelectStmt.GetSelectStmt()
	var rows [][]*pg_query.Node
	switch {
	case sel == nil:
	case isValues(sel):
		for _, l := range sel.ValuesLists {
			rows = append(rows, l.GetList().GetItems())
		}
	case sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.FromClause) == 0 && sel.WhereClause == nil &&
		sel.WithClause == nil && len(sel.GroupClause) == 0 && sel.HavingClause == nil && sel.LimitCount == nil:
		// INSERT ... SELECT $1, $2: one row, as ORMs write it.
		var row []*pg_query.Node
		for _, n := range sel.TargetList {
			row = append(row, n.GetResTarget().GetVal())
		}
		rows = append(rows, row)
	default:
		return nil, &Refusal{Message: fmt.Sprintf("INSERT ... SELECT into sharded table %s is not supported: the rows' shards are known only once the SELECT has run", t.name),
			Hint: "insert the rows with VALUES, or route the statement with a /* shardgate: shard=NAME */ hint"}
	}
	var keys []Value
	for i, row := range rows {
		if ki >= len(row) {
			return nil, &Refusal{Message: fmt.Sprintf("row %d of the INSERT into %s has no value for the sharding key %s", i+1, t.name, key), Hint: how}
		}
		v, ok := valueOf(row[ki])
		if !ok {
			return nil, &Refusal{Message: fmt.Sprintf("the sharding key %s of row %d of the INSERT into %s is not a literal or a parameter", key, i+1, t.name), Hint: how}
		}
		keys = append(keys, v)
	}
	if len(keys) == 0 {
		return nil, &Refusal{Message: fmt.Sprintf("INSERT into sharded table %s gives no rows with a sharding key", t.name), Hint: how}
	}
	return keys, nil
}

// planUpdate plans UPDATE; one that assigns the sharding key a literal or
// parameter carries it in NewKey, and any other assignment of the key is
// refused.
func planUpdate(up *pg_query.UpdateStmt, s Schema) (*Plan, string) {
	a := newAnalyzer(s)
	top := a.updateBlock(up, nil, blockTop)
	var newKey *Value
	if t := top.target; t.node >= 0 {
		for _, n := range up.TargetList {
			rt := n.GetResTarget()
			if rt == nil || rt.Name != t.info.Key {
				continue
			}
			val := rt.Val
			if ma := val.GetMultiAssignRef(); ma != nil {
				val = nil
				if row := ma.Source.GetRowExpr(); row != nil && int(ma.Colno) >= 1 && int(ma.Colno) <= len(row.Args) {
					val = row.Args[ma.Colno-1]
				}
			}
			if nodes, _ := a.keyNodes(top, val); len(rt.Indirection) == 0 && len(nodes) == 1 && nodes[0] == t.node {
				continue // SET key = key
			}
			v, ok := valueOf(val)
			if !ok || len(rt.Indirection) > 0 {
				return refused(fmt.Sprintf("UPDATE of the sharding key %s of %s to an expression is not supported: the row may belong on another shard", t.info.Key, t.name),
					"set the key to a literal or a parameter, or delete the row and insert it with its new key"), a.dist()
			}
			newKey = &v
		}
	}
	p, _ := a.decide(top, -1, nil)
	if p.Refused == nil {
		p.NewKey = newKey
	}
	return p, a.dist()
}

func hasParams(m proto.Message) bool {
	found := false
	inspect(m, func(n *pg_query.Node) bool {
		found = found || n.GetParamRef() != nil
		return !found
	})
	return found
}

// badParam reports whether m uses a parameter number below 1.
func badParam(m proto.Message) bool {
	found := false
	inspect(m, func(n *pg_query.Node) bool {
		found = found || (n.GetParamRef() != nil && n.GetParamRef().Number < 1)
		return !found
	})
	return found
}

// ErrInsertParams is SQLFor's answer for an INSERT with bind parameters,
// whose split would need the parameters renumbered.
var ErrInsertParams = errors.New("splitting a multi-row INSERT with bind parameters by shard is not supported")

// SQLFor returns the INSERT with only the given VALUES rows (indexes into
// Keys, ascending), everything else (columns, ON CONFLICT, RETURNING)
// unchanged. It is for the simple protocol: an INSERT with bind
// parameters gets ErrInsertParams.
func (s *InsertSplit) SQLFor(rows []int) (string, error) {
	if s.params {
		return "", ErrInsertParams
	}
	res, err := s.keep(rows)
	if err != nil {
		return "", err
	}
	return pg_query.Deparse(res)
}

// SQLForParams is SQLFor for an INSERT with bind parameters. The kept
// statement's parameters are renumbered $1, $2, ... in ascending order of
// their old numbers; params[i] is the old number (1-based) of new
// parameter i+1, so the caller binds the client's values in that order.
func (s *InsertSplit) SQLForParams(rows []int) (sql string, params []int, err error) {
	res, err := s.keep(rows)
	if err != nil {
		return "", nil, err
	}
	used := map[int32]bool{}
	inspect(res, func(n *pg_query.Node) bool {
		if p := n.GetParamRef(); p != nil {
			used[p.Number] = true
		}
		return true
	})
	renumber := make(map[int32]int32, len(used))
	for old := range used {
		params = append(params, int(old))
	}
	slices.Sort(params)
	for i, old := range params {
		renumber[int32(old)] = int32(i + 1)
	}
	inspect(res, func(n *pg_query.Node) bool {
		if p := n.GetParamRef(); p != nil {
			p.Number = renumber[p.Number]
		}
		return true
	})
	sql, err = pg_query.Deparse(res)
	return sql, params, err
}

// keep returns a copy of the INSERT with only the given VALUES rows.
func (s *InsertSplit) keep(rows []int) (*pg_query.ParseResult, error) {
	res := proto.Clone(s.stmt).(*pg_query.ParseResult)
	ins := res.Stmts[0].GetStmt().GetInsertStmt()
	sel := ins.GetSelectStmt().GetSelectStmt()
	if sel == nil || len(sel.ValuesLists) != len(s.Keys) {
		return nil, errors.New("the INSERT has no VALUES list to split")
	}
	kept := make([]*pg_query.Node, 0, len(rows))
	last := -1
	for _, i := range rows {
		if i <= last || i >= len(sel.ValuesLists) {
			return nil, fmt.Errorf("row indexes must be ascending and below %d", len(sel.ValuesLists))
		}
		kept, last = append(kept, sel.ValuesLists[i]), i
	}
	if len(kept) == 0 {
		return nil, errors.New("no rows to insert")
	}
	sel.ValuesLists = kept
	res.Stmts[0].StmtLocation, res.Stmts[0].StmtLen = 0, 0
	return res, nil
}
