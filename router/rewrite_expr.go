package router

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// mergeable are the aggregates whose partial results per shard combine
// into the global one.
var mergeable = map[string]ColumnKind{
	"count": ColCount, "sum": ColSum, "min": ColMin, "max": ColMax, "avg": ColAvg,
	"bool_and": ColBoolAnd, "every": ColBoolAnd, "bool_or": ColBoolOr,
}

// otherAggregates are PostgreSQL's other aggregates, which no merge can
// combine. A user-defined aggregate looks like any function to us; it is
// a known gap.
var otherAggregates = map[string]bool{
	"array_agg": true, "string_agg": true, "json_agg": true, "jsonb_agg": true,
	"json_agg_strict": true, "jsonb_agg_strict": true, "json_object_agg": true,
	"jsonb_object_agg": true, "json_object_agg_strict": true, "jsonb_object_agg_strict": true,
	"json_object_agg_unique": true, "jsonb_object_agg_unique": true,
	"json_object_agg_unique_strict": true, "jsonb_object_agg_unique_strict": true,
	"json_objectagg": true, "json_arrayagg": true, "xmlagg": true,
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true,
	"var_pop": true, "var_samp": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"regr_avgx": true, "regr_avgy": true, "regr_count": true, "regr_intercept": true,
	"regr_r2": true, "regr_slope": true, "regr_sxx": true, "regr_sxy": true, "regr_syy": true,
	"bit_and": true, "bit_or": true, "bit_xor": true, "any_value": true,
	"range_agg": true, "range_intersect_agg": true, "percentile_cont": true,
	"percentile_disc": true, "mode": true,
}

func funcName(fc *pg_query.FuncCall) string {
	if len(fc.Funcname) == 0 {
		return ""
	}
	return fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
}

// isAggregate reports whether a call (not a window call) aggregates:
// a known aggregate, or a call only aggregates can be (count(*),
// DISTINCT, ORDER BY or FILTER inside, WITHIN GROUP).
func isAggregate(fc *pg_query.FuncCall) bool {
	if fc.Over != nil {
		return false
	}
	name := funcName(fc)
	_, ok := mergeable[name]
	return ok || otherAggregates[name] || fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 ||
		fc.AggFilter != nil || fc.AggWithinGroup
}

// aggKind says how an aggregate call merges, or why it cannot.
func aggKind(fc *pg_query.FuncCall) (ColumnKind, *Refusal) {
	name := funcName(fc)
	kind, ok := mergeable[name]
	switch {
	case fc.AggWithinGroup:
		return 0, notAcross(name + "(...) WITHIN GROUP (...)")
	case fc.AggDistinct:
		return 0, notAcross(name + "(DISTINCT ...)")
	case len(fc.AggOrder) > 0:
		return 0, notAcross(name + "(... ORDER BY ...)")
	case fc.AggFilter != nil:
		return 0, notAcross(name + "(...) FILTER (...)")
	case !ok:
		return 0, notAcross(name + "()")
	case fc.FuncVariadic || (len(fc.Args) != 1 && !(kind == ColCount && fc.AggStar)):
		return 0, notAcross(name + "() with these arguments")
	}
	return kind, nil
}

// aggCall returns the aggregate name over fc's arguments.
func aggCall(name string, fc *pg_query.FuncCall) *pg_query.Node {
	args := make([]*pg_query.Node, len(fc.Args))
	for i, a := range fc.Args {
		args[i] = proto.Clone(a).(*pg_query.Node)
	}
	return pg_query.MakeFuncCallNode([]*pg_query.Node{pg_query.MakeStrNode(name)}, args, -1)
}

// containsAggregate reports whether an aggregate call is in n, outside
// its subqueries.
func containsAggregate(n *pg_query.Node) bool {
	found := false
	inspect(n, func(x *pg_query.Node) bool {
		if x.GetSubLink() != nil || found {
			return false
		}
		if fc := x.GetFuncCall(); fc != nil && isAggregate(fc) {
			found = true
		}
		return !found
	})
	return found
}

// norm returns a copy of n without source locations, so equal
// expressions compare equal with proto.Equal.
func norm(n *pg_query.Node) *pg_query.Node {
	if n == nil {
		return nil
	}
	c := proto.Clone(n).(*pg_query.Node)
	clearLocations(c.ProtoReflect())
	return c
}

func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location" && fd.Kind() == protoreflect.Int32Kind:
			m.Clear(fd)
		case fd.Kind() != protoreflect.MessageKind || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				clearLocations(l.Get(i).Message())
			}
		default:
			clearLocations(v.Message())
		}
		return true
	})
}

// exprText renders an expression for messages.
func exprText(n *pg_query.Node) string {
	res := &pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{
		SelectStmt: &pg_query.SelectStmt{TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(n, -1)}}}}}}}
	s, err := pg_query.Deparse(res)
	if err != nil {
		return "an expression"
	}
	return strings.TrimPrefix(s, "SELECT ")
}

// targetName is a select-list item's output name, as PostgreSQL's
// FigureColname gives it for the common expressions.
func targetName(rt *pg_query.ResTarget) string {
	if rt.Name != "" {
		return rt.Name
	}
	return figureName(rt.Val)
}

func figureName(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		if f := v.ColumnRef.Fields; len(f) > 0 && f[len(f)-1].GetString_() != nil {
			return f[len(f)-1].GetString_().Sval
		}
	case *pg_query.Node_FuncCall:
		return funcName(v.FuncCall)
	case *pg_query.Node_TypeCast:
		if name := figureName(v.TypeCast.Arg); name != "?column?" {
			return name
		}
		if tn := v.TypeCast.TypeName; tn != nil && len(tn.Names) > 0 {
			return tn.Names[len(tn.Names)-1].GetString_().GetSval()
		}
	case *pg_query.Node_AIndirection:
		for i := len(v.AIndirection.Indirection) - 1; i >= 0; i-- {
			if s := v.AIndirection.Indirection[i].GetString_(); s != nil {
				return s.Sval
			}
		}
		return figureName(v.AIndirection.Arg)
	case *pg_query.Node_CaseExpr:
		return "case"
	case *pg_query.Node_CoalesceExpr:
		return "coalesce"
	case *pg_query.Node_MinMaxExpr:
		if v.MinMaxExpr.Op == pg_query.MinMaxOp_IS_GREATEST {
			return "greatest"
		}
		return "least"
	case *pg_query.Node_AArrayExpr:
		return "array"
	case *pg_query.Node_RowExpr:
		return "row"
	case *pg_query.Node_SubLink:
		switch v.SubLink.SubLinkType {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists"
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array"
		case pg_query.SubLinkType_EXPR_SUBLINK:
			if sel := v.SubLink.Subselect.GetSelectStmt(); sel != nil && len(sel.TargetList) > 0 {
				return targetName(sel.TargetList[0].GetResTarget())
			}
		}
	}
	return "?column?"
}

// findGroup reports whether a GROUP BY item is a visible column (by
// position, by an output alias, or by being the same expression) or an
// already hidden group column.
func (mg *merger) findGroup(g *pg_query.Node) bool {
	if p, ok := intConst(g); ok && g.GetAConst().GetIval() != nil {
		return p >= 1 && int(p) <= mg.nvis
	}
	if name, ok := bareName(g); ok {
		for i := 0; i < mg.nvis; i++ {
			rt := mg.sel.TargetList[i].GetResTarget()
			if rt.Name == name && !mg.cols[i].agg {
				return true
			}
		}
	}
	e := norm(g)
	for _, c := range mg.cols {
		if !c.agg && c.expr != nil && proto.Equal(c.expr, e) {
			return true
		}
	}
	return false
}

// groupOrAggregate returns the shard column of an expression HAVING or
// ORDER BY needs: an aggregate, or a group expression, appended hidden
// when the select list lacks it.
func (mg *merger) groupOrAggregate(n *pg_query.Node) (int, *Refusal) {
	e := norm(n)
	for i, c := range mg.cols {
		if c.expr != nil && proto.Equal(c.expr, e) {
			return i, nil
		}
	}
	fc := n.GetFuncCall()
	if fc == nil || !isAggregate(fc) {
		if containsAggregate(n) {
			return 0, notAcross("an aggregate inside an expression (" + exprText(n) + ")")
		}
		return mg.addHidden(n, n, Column{Kind: ColGroup}), nil
	}
	kind, why := aggKind(fc)
	if why != nil {
		return 0, why
	}
	if kind != ColAvg {
		return mg.addHidden(n, n, Column{Kind: kind}), nil
	}
	sum := mg.addHidden(aggCall("sum", fc), n, Column{Kind: ColAvg})
	mg.cols[sum].col.Count = mg.addHidden(aggCall("count", fc), nil, Column{Kind: ColCount})
	return sum, nil
}

// comparisons maps HAVING's comparison operators to the operator with the
// operands swapped.
var comparisons = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// having turns a HAVING clause into an Expr over merged columns.
func (mg *merger) having(n *pg_query.Node) (*Expr, *Refusal) {
	if be := n.GetBoolExpr(); be != nil {
		e := &Expr{Op: map[pg_query.BoolExprType]string{pg_query.BoolExprType_AND_EXPR: "and",
			pg_query.BoolExprType_OR_EXPR: "or", pg_query.BoolExprType_NOT_EXPR: "not"}[be.Boolop]}
		for _, arg := range be.Args {
			sub, why := mg.having(arg)
			if why != nil {
				return nil, why
			}
			e.Args = append(e.Args, sub)
		}
		return e, nil
	}
	ae := n.GetAExpr()
	if ae == nil || ae.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(ae.Name) != 1 {
		return nil, havingRefusal(n)
	}
	op := ae.Name[0].GetString_().GetSval()
	swapped, ok := comparisons[op]
	if !ok {
		return nil, havingRefusal(n)
	}
	if op == "!=" {
		op = "<>"
	}
	col, val := ae.Lexpr, ae.Rexpr
	if _, isVal := valueOf(col); isVal {
		col, val, op = val, col, swapped
	}
	v, ok := valueOf(val)
	if !ok {
		return nil, havingRefusal(n)
	}
	if _, isVal := valueOf(col); isVal {
		return nil, havingRefusal(n)
	}
	idx, why := mg.groupOrAggregate(col)
	if why != nil {
		return nil, why
	}
	c := mg.cols[idx].col
	return &Expr{Op: op, Args: []*Expr{{Column: &c}, {Value: &v}}}, nil
}

func havingRefusal(n *pg_query.Node) *Refusal {
	return &Refusal{
		Message: "HAVING " + exprText(n) + " cannot be evaluated after merging the shards' groups: only comparisons of an aggregate or GROUP BY expression with a constant, joined by AND, OR and NOT, can",
		Hint:    mergeHint,
	}
}
