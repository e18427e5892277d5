package router

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The planner reads a statement as a tree of query blocks (the statement,
// its subqueries, WITH queries and set operation branches), each with the
// relations of its FROM. Every occurrence of a sharded table is a node;
// equalities between sharding keys (a.key = b.key in WHERE or ON, JOIN
// USING (key), key IN (SELECT key ...)) join nodes into groups whose rows
// meet on one shard. shard_groups.go decides from the groups where the
// statement runs; this file builds the tree.

// blockKind is how a query block hangs off the enclosing one.
type blockKind uint8

const (
	blockTop     blockKind = iota
	blockFrom              // a subquery in FROM, not LATERAL
	blockLateral           // a LATERAL subquery in FROM
	blockSubLink           // a subquery in an expression: EXISTS, IN, scalar
	blockCTE               // a WITH query
	blockArm               // a branch of UNION, INTERSECT or EXCEPT
)

// block is one query block.
type block struct {
	kind blockKind
	up   *block
	sel  *pg_query.SelectStmt // nil for INSERT, UPDATE, DELETE
	rels []*rel
	ctes []*cte
	// quals are the WHERE and ON conditions; restricting ones filter the
	// block's rows (WHERE, the ON of an inner join).
	quals []qual
	joins []usingJoin
	links []inLink
	arms  []*block // a set operation's branches
	// returning is a data-modifying block's RETURNING list.
	returning []*pg_query.Node
	// target is an INSERT, UPDATE or DELETE's table.
	target *rel
	insert bool

	outs    []output
	outDone bool

	// correlated: a key equality ties this block's rows to an outer
	// query's row, so each evaluation reads one key's rows.
	correlated bool
	// unsafe names what makes the block's result on one shard differ
	// from the global result restricted to that shard's rows ("LIMIT",
	// "an aggregate", ...); "" when nothing does.
	unsafe     string
	aggregates bool // aggregate calls or GROUP BY in the block's own clauses
	window     bool // window functions in the block's own clauses
}

// rel is one FROM item of a block.
type rel struct {
	alias    string // the name the query refers to it by
	schema   string // a table's schema as written
	name     string // a table's name
	table    bool
	info     TableInfo
	node     int    // a sharded table's node, else -1
	derived  *block // a subquery in FROM or a WITH query
	colnames []string
	nullable bool // on the nullable side of an outer join
	// restrict: the rel is inner-joined, so a derived rel's own WHERE
	// restricts the block's rows.
	restrict bool
}

type cte struct {
	name     string
	b        *block // nil while a recursive query is being read
	colnames []string
}

type qual struct {
	expr        *pg_query.Node
	restricting bool
}

// usingJoin is a JOIN ... USING (cols) between the rels of its two sides.
type usingJoin struct {
	cols        []string
	left, right []*rel
}

// inLink is test IN (SELECT ...) or test = ANY (SELECT ...).
type inLink struct {
	test *pg_query.Node
	sub  *block
}

// output is a block's output column, as far as keys go: its name and the
// nodes whose key it is. pos is its position, -1 when a * before it
// hides that.
type output struct {
	name  string
	nodes []int
	pos   int
}

// node is one occurrence of a sharded table.
type node struct {
	name string
	info TableInfo
	b    *block
}

// analyzer reads one statement.
type analyzer struct {
	s      Schema
	blocks []*block
	nodes  []node
	uf     []int
	subOf  map[*pg_query.SubLink]*block
	// unsharded and reference name the first tables of those kinds, for
	// messages; empty when there are none.
	unsharded, reference string
	// curOf: UPDATE/DELETE ... WHERE CURRENT OF.
	curOf bool
}

func newAnalyzer(s Schema) *analyzer {
	return &analyzer{s: s, subOf: map[*pg_query.SubLink]*block{}}
}

func (a *analyzer) newBlock(kind blockKind, up *block, sel *pg_query.SelectStmt) *block {
	b := &block{kind: kind, up: up, sel: sel}
	a.blocks = append(a.blocks, b)
	return b
}

// selectBlock reads a SELECT (or VALUES, or a set operation).
func (a *analyzer) selectBlock(sel *pg_query.SelectStmt, up *block, kind blockKind) *block {
	b := a.newBlock(kind, up, sel)
	if sel == nil {
		return b
	}
	if sel.WithClause != nil {
		a.with(b, sel.WithClause)
	}
	if sel.Op != pg_query.SetOperation_SETOP_NONE {
		b.arms = []*block{a.selectBlock(sel.Larg, b, blockArm), a.selectBlock(sel.Rarg, b, blockArm)}
		a.exprList(b, sel.SortClause)
		a.expr(b, sel.LimitCount)
		a.expr(b, sel.LimitOffset)
		b.unsafe = limitUnsafe(sel)
		for _, arm := range b.arms {
			if b.unsafe == "" {
				b.unsafe = arm.unsafe
			}
		}
		return b
	}
	for _, f := range sel.FromClause {
		a.fromItem(b, f, false, true)
	}
	a.where(b, sel.WhereClause)
	for _, l := range [][]*pg_query.Node{sel.TargetList, sel.GroupClause, sel.SortClause,
		sel.DistinctClause, sel.ValuesLists, sel.WindowClause} {
		a.exprList(b, l)
	}
	a.expr(b, sel.HavingClause)
	a.expr(b, sel.LimitCount)
	a.expr(b, sel.LimitOffset)
	b.aggregates = b.aggregates || len(sel.GroupClause) > 0 || sel.HavingClause != nil
	b.window = b.window || len(sel.WindowClause) > 0
	switch {
	case limitUnsafe(sel) != "":
		b.unsafe = limitUnsafe(sel)
	case b.window:
		b.unsafe = "a window function"
	case len(sel.DistinctClause) > 0 && sel.DistinctClause[0].GetNode() != nil:
		b.unsafe = "DISTINCT ON"
	}
	return b
}

func limitUnsafe(sel *pg_query.SelectStmt) string {
	switch {
	case sel.LimitCount != nil && !sel.LimitCount.GetAConst().GetIsnull():
		return "LIMIT"
	case sel.LimitOffset != nil:
		return "OFFSET"
	}
	return ""
}

// with reads a WITH clause into b's scope.
func (a *analyzer) with(b *block, w *pg_query.WithClause) {
	for _, n := range w.Ctes {
		c := n.GetCommonTableExpr()
		if c == nil {
			continue
		}
		def := &cte{name: c.Ctename, colnames: strs(c.Aliascolnames)}
		if w.Recursive {
			b.ctes = append(b.ctes, def)
		}
		def.b = a.query(c.Ctequery, b, blockCTE)
		if w.Recursive {
			def.b.unsafe = "WITH RECURSIVE"
		} else {
			b.ctes = append(b.ctes, def)
		}
	}
}

// query reads a nested statement: a SELECT, or a data-modifying one in
// WITH.
func (a *analyzer) query(n *pg_query.Node, up *block, kind blockKind) *block {
	switch {
	case n.GetInsertStmt() != nil:
		return a.insertBlock(n.GetInsertStmt(), up, kind)
	case n.GetUpdateStmt() != nil:
		return a.updateBlock(n.GetUpdateStmt(), up, kind)
	case n.GetDeleteStmt() != nil:
		return a.deleteBlock(n.GetDeleteStmt(), up, kind)
	}
	return a.selectBlock(n.GetSelectStmt(), up, kind)
}

func (a *analyzer) insertBlock(ins *pg_query.InsertStmt, up *block, kind blockKind) *block {
	b := a.newBlock(kind, up, nil)
	b.insert = true
	if ins.WithClause != nil {
		a.with(b, ins.WithClause)
	}
	if sel := ins.SelectStmt.GetSelectStmt(); sel != nil {
		if isValues(sel) {
			a.exprList(b, sel.ValuesLists)
		} else {
			a.selectBlock(sel, b, blockFrom)
		}
	}
	b.target = a.rangeVar(b, ins.Relation, false)
	if oc := ins.OnConflictClause; oc != nil {
		a.exprList(b, oc.TargetList)
		a.expr(b, oc.WhereClause)
	}
	a.exprList(b, ins.ReturningList)
	b.returning = ins.ReturningList
	return b
}

// isValues reports whether sel is a plain VALUES list.
func isValues(sel *pg_query.SelectStmt) bool {
	return len(sel.ValuesLists) > 0 && sel.Op == pg_query.SetOperation_SETOP_NONE && sel.WithClause == nil
}

func (a *analyzer) updateBlock(up *pg_query.UpdateStmt, outer *block, kind blockKind) *block {
	b := a.newBlock(kind, outer, nil)
	if up.WithClause != nil {
		a.with(b, up.WithClause)
	}
	b.target = a.rangeVar(b, up.Relation, false)
	for _, f := range up.FromClause {
		a.fromItem(b, f, false, true)
	}
	a.where(b, up.WhereClause)
	a.exprList(b, up.TargetList)
	a.exprList(b, up.ReturningList)
	b.returning = up.ReturningList
	return b
}

func (a *analyzer) deleteBlock(del *pg_query.DeleteStmt, outer *block, kind blockKind) *block {
	b := a.newBlock(kind, outer, nil)
	if del.WithClause != nil {
		a.with(b, del.WithClause)
	}
	b.target = a.rangeVar(b, del.Relation, false)
	for _, f := range del.UsingClause {
		a.fromItem(b, f, false, true)
	}
	a.where(b, del.WhereClause)
	a.exprList(b, del.ReturningList)
	b.returning = del.ReturningList
	return b
}

// fromItem reads one FROM item into b and returns the rels it added.
func (a *analyzer) fromItem(b *block, n *pg_query.Node, nullable, restrict bool) []*rel {
	switch {
	case n.GetRangeVar() != nil:
		r := a.rangeVar(b, n.GetRangeVar(), nullable)
		r.restrict = restrict
		return []*rel{r}
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		jt := j.Jointype
		lNull := nullable || jt == pg_query.JoinType_JOIN_RIGHT || jt == pg_query.JoinType_JOIN_FULL
		rNull := nullable || jt == pg_query.JoinType_JOIN_LEFT || jt == pg_query.JoinType_JOIN_FULL
		left := a.fromItem(b, j.Larg, lNull, restrict && !lNull)
		right := a.fromItem(b, j.Rarg, rNull, restrict && !rNull)
		if j.Quals != nil {
			b.quals = append(b.quals, qual{j.Quals, restrict && jt == pg_query.JoinType_JOIN_INNER})
			a.expr(b, j.Quals)
		}
		if len(j.UsingClause) > 0 {
			b.joins = append(b.joins, usingJoin{strs(j.UsingClause), left, right})
		}
		return append(left, right...)
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		kind := blockFrom
		if rs.Lateral {
			kind = blockLateral
		}
		r := &rel{node: -1, nullable: nullable, restrict: restrict}
		r.derived = a.selectBlock(rs.Subquery.GetSelectStmt(), b, kind)
		if rs.Alias != nil {
			r.alias, r.colnames = rs.Alias.Aliasname, strs(rs.Alias.Colnames)
		}
		b.rels = append(b.rels, r)
		return []*rel{r}
	case n.GetRangeTableSample() != nil:
		ts := n.GetRangeTableSample()
		a.exprList(b, ts.Args)
		a.expr(b, ts.Repeatable)
		return a.fromItem(b, ts.Relation, nullable, restrict)
	}
	// Functions in FROM, XMLTABLE, JSON_TABLE: no table, but their
	// arguments may hold subqueries. They still name a rel, which makes
	// bare column names ambiguous to us.
	a.expr(b, n)
	r := &rel{node: -1, nullable: nullable}
	if rf := n.GetRangeFunction(); rf != nil && rf.Alias != nil {
		r.alias = rf.Alias.Aliasname
	}
	b.rels = append(b.rels, r)
	return []*rel{r}
}

// rangeVar resolves a table reference: a WITH query of an enclosing
// block, or a table the shard map places.
func (a *analyzer) rangeVar(b *block, rv *pg_query.RangeVar, nullable bool) *rel {
	r := &rel{node: -1, nullable: nullable}
	b.rels = append(b.rels, r)
	if rv == nil {
		return r
	}
	r.alias, r.name, r.schema = rv.Relname, rv.Relname, rv.Schemaname
	if rv.Alias != nil {
		r.alias, r.colnames = rv.Alias.Aliasname, strs(rv.Alias.Colnames)
	}
	if rv.Schemaname == "" && rv.Catalogname == "" {
		for s := b; s != nil; s = s.up {
			for _, c := range s.ctes {
				if c.name == rv.Relname {
					r.derived = c.b // nil inside a recursive query's own body
					if len(r.colnames) == 0 {
						r.colnames = c.colnames
					}
					return r
				}
			}
		}
	}
	r.table = true
	info, ok := a.s.Table(rv.Schemaname, rv.Relname)
	if !ok {
		info = TableInfo{}
	}
	r.info = info
	switch info.Kind {
	case TableSharded:
		r.node = len(a.nodes)
		a.nodes = append(a.nodes, node{name: rv.Relname, info: info, b: b})
		a.uf = append(a.uf, r.node)
	case TableReference:
		if a.reference == "" {
			a.reference = rv.Relname
		}
	default:
		if a.unsharded == "" {
			a.unsharded = rv.Relname
		}
	}
	return r
}

func (a *analyzer) where(b *block, n *pg_query.Node) {
	if n == nil {
		return
	}
	b.quals = append(b.quals, qual{n, true})
	a.expr(b, n)
}

func (a *analyzer) exprList(b *block, l []*pg_query.Node) {
	for _, n := range l {
		a.expr(b, n)
	}
}

// expr reads an expression of block b: its subqueries become blocks, and
// aggregate and window calls are noted.
func (a *analyzer) expr(b *block, n *pg_query.Node) {
	if n == nil {
		return
	}
	inspect(n, func(x *pg_query.Node) bool {
		switch v := x.Node.(type) {
		case *pg_query.Node_SubLink:
			sl := v.SubLink
			a.expr(b, sl.Testexpr)
			sub := a.query(sl.Subselect, b, blockSubLink)
			a.subOf[sl] = sub
			if sl.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK && sl.Testexpr != nil && isEqOp(sl.OperName) {
				b.links = append(b.links, inLink{sl.Testexpr, sub})
			}
			return false
		case *pg_query.Node_SelectStmt:
			a.selectBlock(v.SelectStmt, b, blockSubLink)
			return false
		case *pg_query.Node_FuncCall:
			if v.FuncCall.Over != nil {
				b.window = true
			} else if isAggregate(v.FuncCall) {
				b.aggregates = true
			}
		case *pg_query.Node_CurrentOfExpr:
			a.curOf = true
		}
		return true
	})
}

// isEqOp reports whether an operator name list is "=" (or empty: IN).
func isEqOp(name []*pg_query.Node) bool {
	switch len(name) {
	case 0:
		return true
	case 1:
		return name[0].GetString_().GetSval() == "="
	}
	return false
}

// inspect calls fn for every Node under n, n included, depth first; fn
// returns false to skip a node's children. It walks the protobuf messages
// by reflection: planning is rare next to cache hits, and a walker that
// knows every node type would be thousands of lines.
func inspect(n proto.Message, fn func(*pg_query.Node) bool) {
	visitMessage(n.ProtoReflect(), fn)
}

func visitMessage(m protoreflect.Message, fn func(*pg_query.Node) bool) {
	if n, ok := m.Interface().(*pg_query.Node); ok && !fn(n) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visitMessage(l.Get(i).Message(), fn)
			}
			return true
		}
		visitMessage(v.Message(), fn)
		return true
	})
}

// strs reads a list of String nodes (column names).
func strs(l []*pg_query.Node) []string {
	if len(l) == 0 {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, n := range l {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}
