package router

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
)

// merger builds the Merge of a SELECT that may run on several shards, and
// the statement each shard runs when the merge needs another one than
// the client's.
type merger struct {
	a   *analyzer
	b   *block
	sel *pg_query.SelectStmt // the shard statement: a copy, rewritten in place
	// nvis counts the client-visible select-list items; firstStar and
	// lastStar are the positions of the first and last * item, -1 when
	// there is none: the columns between them have unknown positions.
	nvis                int
	firstStar, lastStar int
	cols                []shardCol // visible items, then hidden columns
	hidden              int
	order               []sortRef
	m                   Merge
	changed             bool
}

// shardCol is one select-list item of the shard statement.
type shardCol struct {
	expr *pg_query.Node // the client's expression (avg, not its sum), normalised
	name string         // the visible item's output name
	agg  bool
	col  Column
}

// sortRef is an ORDER BY item: a select-list item (idx), or a position
// the client wrote (abs >= 0).
type sortRef struct {
	idx, abs         int
	desc, nullsFirst bool
	// name: a column of the table a lone * expands to, found by name in
	// the shards' row description (no hidden column needed).
	name string
}

const mergeHint = "add a condition on the sharding key so the statement runs on one shard, or route it with a /* shardgate: shard=NAME */ or /* shardgate: key=VALUE */ hint"

func notAcross(what string) *Refusal {
	return &Refusal{
		Message: what + " over several shards is not supported: each shard would compute it from only its own rows",
		Hint:    mergeHint,
	}
}

// mergePlan returns the Merge of top, the statement of res, and the
// rewritten SQL ("" when the client's text serves).
func mergePlan(a *analyzer, top *block, res *pg_query.ParseResult) (*Merge, string, *Refusal) {
	clone := proto.Clone(res).(*pg_query.ParseResult)
	sel := clone.Stmts[0].GetStmt().GetSelectStmt()
	mg := &merger{a: a, b: top, sel: sel, firstStar: -1, lastStar: -1}
	if why := mg.refusal(); why != nil {
		return nil, "", why
	}
	for i, n := range sel.TargetList {
		rt := n.GetResTarget()
		if isStar(rt.GetVal()) {
			if mg.firstStar < 0 {
				mg.firstStar = i
			}
			mg.lastStar = i
		}
		mg.cols = append(mg.cols, shardCol{expr: norm(rt.GetVal()), name: targetName(rt)})
	}
	mg.nvis = len(mg.cols)
	var why *Refusal
	if top.aggregates && !a.groupedByKey(top) {
		why = mg.aggregate()
	} else {
		why = mg.plain()
	}
	if why != nil {
		return nil, "", why
	}
	m := mg.finish()
	if m == nil {
		return nil, "", nil
	}
	if !mg.changed {
		return m, "", nil
	}
	clone.Stmts[0].StmtLocation, clone.Stmts[0].StmtLen = 0, 0
	sql, err := pg_query.Deparse(clone)
	if err == nil {
		// The deparser misspells some odd trees ((0).f as 0.f): a text
		// that does not parse again would fail on every shard.
		_, err = pg_query.Parse(sql)
	}
	if err != nil {
		return nil, "", &Refusal{Message: "the statement could not be rewritten for several shards: " + err.Error(), Hint: mergeHint}
	}
	return m, sql, nil
}

// refusal names what no merge can combine.
func (mg *merger) refusal() *Refusal {
	sel := mg.sel
	switch {
	case sel.Op != pg_query.SetOperation_SETOP_NONE:
		return notAcross("UNION, INTERSECT or EXCEPT of sharded tables")
	case mg.b.window:
		return notAcross("a window function")
	case len(sel.DistinctClause) > 0 && sel.DistinctClause[0].GetNode() != nil:
		return notAcross("DISTINCT ON")
	case sel.LimitOption == pg_query.LimitOption_LIMIT_OPTION_WITH_TIES:
		return notAcross("FETCH ... WITH TIES")
	}
	for _, g := range sel.GroupClause {
		if g.GetGroupingSet() != nil {
			return notAcross("GROUPING SETS, ROLLUP or CUBE")
		}
	}
	for _, n := range sel.SortClause {
		if n.GetSortBy().GetSortbyDir() == pg_query.SortByDir_SORTBY_USING {
			return notAcross("ORDER BY ... USING")
		}
	}
	return nil
}

// plain merges a query that does not aggregate across shards: the
// shards sort and cut, the merge interleaves and cuts again.
func (mg *merger) plain() *Refusal {
	distinct := len(mg.sel.DistinctClause) > 0
	for _, n := range mg.sel.SortClause {
		sb := n.GetSortBy()
		ref, ok := mg.findSort(sb.Node, false)
		if !ok {
			if distinct {
				return &Refusal{Message: "for SELECT DISTINCT, ORDER BY expressions must appear in the select list", Hint: mergeHint}
			}
			if name, ok := mg.starColumn(sb.Node); ok {
				ref = sortRef{idx: -1, abs: -1, name: name}
			} else {
				ref = sortRef{idx: mg.addHidden(sb.Node, sb.Node, Column{}), abs: -1}
			}
		}
		mg.order = append(mg.order, sortDir(ref, sb))
	}
	if why := mg.limits(); why != nil {
		return why
	}
	if off := mg.sel.LimitOffset; off != nil {
		// Each shard returns the first limit+offset rows; the merge skips
		// the offset over all of them.
		mg.changed = true
		mg.sel.LimitOffset = nil
		if mg.m.Limit != nil {
			mg.sel.LimitCount = addLimits(mg.sel.LimitCount, off)
		} else {
			mg.keepParams(mg.sel.LimitCount, true, ColMax)
			mg.keepParams(off, true, ColMax)
			mg.sel.LimitCount = nil
			mg.sel.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
		}
	}
	mg.m.Distinct = distinct && !mg.selectsKey()
	return nil
}

// aggregate merges a query that aggregates: shards compute partial
// aggregates per group, the merge combines them, then filters, sorts and
// cuts. The shard statement loses HAVING, ORDER BY, LIMIT, OFFSET and
// DISTINCT, which only the whole groups can answer.
func (mg *merger) aggregate() *Refusal {
	if mg.firstStar >= 0 {
		return notAcross("SELECT * with aggregates")
	}
	mg.m.Aggregate = true
	sel := mg.sel
	for i := 0; i < mg.nvis; i++ {
		rt := sel.TargetList[i].GetResTarget()
		fc := rt.Val.GetFuncCall()
		if fc == nil || !isAggregate(fc) {
			if containsAggregate(rt.Val) {
				return notAcross("an aggregate inside an expression (" + exprText(rt.Val) + ")")
			}
			mg.cols[i].col = Column{Kind: ColGroup, Column: i}
			continue
		}
		kind, why := aggKind(fc)
		if why != nil {
			return why
		}
		mg.cols[i].agg = true
		mg.cols[i].col = Column{Kind: kind, Column: i}
		if kind == ColAvg {
			// avg(x) becomes sum(x) in place, keeping the column's name,
			// and count(x) is appended.
			if rt.Name == "" {
				rt.Name = "avg"
			}
			rt.Val = aggCall("sum", fc)
			mg.cols[i].col.Count = mg.addHidden(aggCall("count", fc), nil, Column{Kind: ColCount})
			mg.changed = true
		}
	}
	for _, g := range sel.GroupClause {
		if !mg.findGroup(g) {
			mg.addHidden(g, g, Column{Kind: ColGroup})
		}
	}
	if sel.HavingClause != nil {
		e, why := mg.having(sel.HavingClause)
		if why != nil {
			return why
		}
		mg.m.Having = e
		mg.keepParams(sel.HavingClause, false, ColBoolOr)
		sel.HavingClause, mg.changed = nil, true
	}
	for _, n := range sel.SortClause {
		sb := n.GetSortBy()
		ref, ok := mg.findSort(sb.Node, true)
		if !ok {
			idx, why := mg.groupOrAggregate(sb.Node)
			if why != nil {
				return why
			}
			ref = sortRef{idx: idx, abs: -1}
		}
		mg.order = append(mg.order, sortDir(ref, sb))
	}
	if why := mg.limits(); why != nil {
		return why
	}
	mg.m.Distinct = len(sel.DistinctClause) > 0
	if len(sel.SortClause) > 0 || sel.LimitCount != nil || sel.LimitOffset != nil || mg.m.Distinct {
		mg.keepParams(sel.LimitCount, true, ColMax)
		mg.keepParams(sel.LimitOffset, true, ColMax)
		sel.SortClause, sel.LimitCount, sel.LimitOffset, sel.DistinctClause = nil, nil, nil, nil
		sel.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
		mg.changed = true
	}
	return nil
}

// limits reads LIMIT and OFFSET into the merge: literals or parameters.
func (mg *merger) limits() *Refusal {
	var ok bool
	if mg.m.Limit, ok = limitValue(mg.sel.LimitCount); !ok {
		return notAcross("LIMIT with an expression (only a number or a parameter)")
	}
	if mg.m.Offset, ok = limitValue(mg.sel.LimitOffset); !ok {
		return notAcross("OFFSET with an expression (only a number or a parameter)")
	}
	return nil
}

func limitValue(n *pg_query.Node) (*Value, bool) {
	if n == nil || n.GetAConst().GetIsnull() {
		return nil, true
	}
	v, ok := valueOf(n)
	if !ok {
		return nil, false
	}
	return &v, true
}

// addLimits returns limit + offset: folded when both are integer
// literals, else an expression the server adds. Parameters are cast to
// bigint, so the server gives them the type LIMIT and OFFSET give them in
// the client's statement, not a type guessed from +.
func addLimits(limit, offset *pg_query.Node) *pg_query.Node {
	l, lok := intConst(limit)
	o, ook := intConst(offset)
	if lok && ook {
		sum := l + o
		if sum <= math.MaxInt32 {
			return pg_query.MakeAConstIntNode(sum, -1)
		}
		return &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{
			Val: &pg_query.A_Const_Fval{Fval: &pg_query.Float{Fval: strconv.FormatInt(sum, 10)}}}}}
	}
	return pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, []*pg_query.Node{pg_query.MakeStrNode("+")},
		asBigint(limit), asBigint(offset), -1)
}

// asBigint casts an expression to bigint unless it is a numeric literal
// or a cast already, whose type the server then takes. A quoted literal
// is cast: '2' + '1' is ambiguous to the server.
func asBigint(n *pg_query.Node) *pg_query.Node {
	if (n.GetAConst() != nil && n.GetAConst().GetSval() == nil) || n.GetTypeCast() != nil {
		return n
	}
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: n,
		TypeName: &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode("int8")}, Typemod: -1}}}}
}

// keepParams keeps the bind parameters of an expression the shard
// statement drops (HAVING, LIMIT, OFFSET) in a hidden column that holds
// it: a Bind gives every parameter, so the shard statement must still use
// each, in a place that gives it the same type as the client's statement
// (bigint for LIMIT and OFFSET). kind merges the column harmlessly.
func (mg *merger) keepParams(n *pg_query.Node, bigint bool, kind ColumnKind) {
	if n == nil || !hasParams(n) {
		return
	}
	if bigint {
		n = asBigint(n)
	}
	mg.addHidden(n, nil, Column{Kind: kind})
}

func intConst(n *pg_query.Node) (int64, bool) {
	c := n.GetAConst()
	switch {
	case c.GetIval() != nil:
		return int64(c.GetIval().Ival), true
	case c.GetFval() != nil:
		v, err := strconv.ParseInt(c.GetFval().Fval, 10, 64)
		return v, err == nil && v < 1<<53
	case c.GetSval() != nil:
		// LIMIT '2': a quoted number, which the server reads as bigint
		// (drivers that interpolate arguments send them so).
		v, err := strconv.ParseInt(strings.TrimSpace(c.GetSval().Sval), 10, 64)
		return v, err == nil && v >= 0 && v < 1<<53
	}
	return 0, false
}

// addHidden appends val to the shard statement's select list as a hidden
// column; match is the client's expression it stands for (nil: none).
func (mg *merger) addHidden(val, match *pg_query.Node, col Column) int {
	mg.hidden++
	idx := len(mg.cols)
	col.Column = idx
	rt := &pg_query.ResTarget{Name: fmt.Sprintf("_sg%d", mg.hidden), Val: proto.Clone(val).(*pg_query.Node)}
	mg.sel.TargetList = append(mg.sel.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: rt}})
	sc := shardCol{col: col, agg: col.Kind != ColGroup}
	if match != nil {
		sc.expr = norm(match)
	}
	mg.cols = append(mg.cols, sc)
	mg.changed = true
	return idx
}

// known reports whether visible item i has a known position.
func (mg *merger) known(i int) bool {
	return mg.firstStar < 0 || i < mg.firstStar || i > mg.lastStar
}

// findSort finds the select-list item an ORDER BY expression names: by
// position, by output name, or by being the same expression. With
// hidden set, hidden columns count too.
func (mg *merger) findSort(n *pg_query.Node, hidden bool) (sortRef, bool) {
	if p, ok := intConst(n); ok && n.GetAConst().GetIval() != nil {
		if p >= 1 {
			return sortRef{idx: -1, abs: int(p - 1)}, true
		}
		return sortRef{}, false
	}
	if name, ok := bareName(n); ok {
		for i := 0; i < mg.nvis; i++ {
			if mg.cols[i].name == name {
				if !mg.known(i) {
					return sortRef{}, false
				}
				return sortRef{idx: i, abs: -1}, true
			}
		}
	}
	e := norm(n)
	limit := mg.nvis
	if hidden {
		limit = len(mg.cols)
	}
	for i := 0; i < limit; i++ {
		if mg.cols[i].expr != nil && proto.Equal(mg.cols[i].expr, e) && (i >= mg.nvis || mg.known(i)) {
			return sortRef{idx: i, abs: -1}, true
		}
	}
	return sortRef{}, false
}

func sortDir(ref sortRef, sb *pg_query.SortBy) sortRef {
	ref.desc = sb.SortbyDir == pg_query.SortByDir_SORTBY_DESC
	switch sb.SortbyNulls {
	case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
		ref.nullsFirst = true
	case pg_query.SortByNulls_SORTBY_NULLS_LAST:
	default:
		ref.nullsFirst = ref.desc // PostgreSQL: NULLs sort as larger than any value
	}
	return ref
}

// finish fills the merge's sort keys and hidden count; nil when plain
// concatenation is right.
func (mg *merger) finish() *Merge {
	m := &mg.m
	for _, ref := range mg.order {
		if ref.name != "" {
			m.Order = append(m.Order, SortKey{Name: ref.name, Desc: ref.desc, NullsFirst: ref.nullsFirst})
			continue
		}
		m.Order = append(m.Order, SortKey{Column: mg.position(ref), Desc: ref.desc, NullsFirst: ref.nullsFirst})
	}
	m.Hidden = mg.hidden
	if m.Aggregate {
		for _, c := range mg.cols {
			m.Columns = append(m.Columns, c.col)
		}
	}
	if len(m.Order) == 0 && m.Limit == nil && m.Offset == nil && !m.Distinct && !m.Aggregate && m.Hidden == 0 {
		return nil
	}
	return m
}

// position is a sort reference's shard row column: from the start when
// no * hides it, else from the end.
func (mg *merger) position(ref sortRef) int {
	switch {
	case ref.abs >= 0:
		return ref.abs
	case mg.firstStar < 0 || ref.idx < mg.firstStar:
		return ref.idx
	case ref.idx < mg.nvis:
		return -(mg.nvis - ref.idx) - mg.hidden
	}
	return -(len(mg.cols) - ref.idx)
}

// selectsKey reports whether every row carries the sharding key of a
// table partitioning the rows (not nullable): rows of different shards
// then differ, and DISTINCT needs no merge.
func (mg *merger) selectsKey() bool {
	for _, r := range mg.b.rels {
		if r.node < 0 || r.nullable {
			continue
		}
		for _, n := range mg.sel.TargetList[:mg.nvis] {
			v := n.GetResTarget().GetVal()
			if cr := v.GetColumnRef(); cr != nil && isStar(v) {
				if len(cr.Fields) == 1 || cr.Fields[len(cr.Fields)-2].GetString_().GetSval() == r.alias {
					return true
				}
				continue
			}
			nodes, outer := mg.a.keyNodes(mg.b, v)
			for _, x := range nodes {
				if x == r.node && !outer {
					return true
				}
			}
		}
	}
	return false
}

func isStar(n *pg_query.Node) bool {
	cr := n.GetColumnRef()
	return cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// bareName returns the name of an unqualified column reference.
func bareName(n *pg_query.Node) (string, bool) {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 || cr.Fields[0].GetString_() == nil {
		return "", false
	}
	return cr.Fields[0].GetString_().Sval, true
}

// starColumn reports whether a sort expression is a plain column of the
// one table a select list of just * reads from, and returns its name.
// The row description then carries the column under that name, once: a
// table's column names are unique and nothing else is selected.
func (mg *merger) starColumn(n *pg_query.Node) (string, bool) {
	if mg.nvis != 1 || mg.firstStar != 0 || len(mg.b.rels) != 1 || !mg.b.rels[0].table {
		return "", false
	}
	star := mg.sel.TargetList[0].GetResTarget()
	if star.GetName() != "" || !isStar(star.GetVal()) {
		return "", false
	}
	cr := n.GetColumnRef()
	if cr == nil {
		return "", false
	}
	r := mg.b.rels[0]
	switch len(cr.Fields) {
	case 1:
	case 2:
		if cr.Fields[0].GetString_().GetSval() != r.alias {
			return "", false
		}
	default:
		return "", false
	}
	name := cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
	return name, name != ""
}
