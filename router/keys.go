package router

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// keysRestrict returns the sharding keys that b's restricting conditions
// allow group g's rows: its WHERE, the ON of its inner joins, the WHERE
// of subqueries it inner-joins in FROM, and (through keysOf) of its
// EXISTS and IN subqueries. ok=false means any key.
func (a *analyzer) keysRestrict(b *block, g int) ([]Value, bool) {
	if len(b.arms) > 0 {
		var all []Value
		for _, arm := range b.arms {
			ks, ok := a.keysRestrict(arm, g)
			if !ok {
				return nil, false
			}
			all = appendValues(all, ks...)
		}
		return all, true
	}
	var best []Value
	found := false
	take := func(ks []Value, ok bool) {
		// Conditions joined by AND each allow a superset of the rows'
		// keys: the smallest set is the tightest.
		if ok && (!found || len(ks) < len(best)) {
			best, found = ks, true
		}
	}
	for _, q := range b.quals {
		if q.restricting {
			take(a.keysOf(b, q.expr, g))
		}
	}
	for _, r := range b.rels {
		if r.derived != nil && r.restrict && !r.nullable {
			take(a.keysRestrict(r.derived, g))
		}
	}
	return best, found
}

// keysOf returns the keys a condition of block b allows group g's rows:
// key = v, v = key, key IN (v, ...), key = ANY($n), key = ANY(ARRAY[...]),
// AND and OR of those, and EXISTS or IN subqueries whose own conditions
// say. v is a literal, a parameter or NULL, perhaps cast.
func (a *analyzer) keysOf(b *block, n *pg_query.Node, g int) ([]Value, bool) {
	switch {
	case n.GetBoolExpr() != nil:
		be := n.GetBoolExpr()
		switch be.Boolop {
		case pg_query.BoolExprType_AND_EXPR:
			var best []Value
			found := false
			for _, arg := range be.Args {
				if ks, ok := a.keysOf(b, arg, g); ok && (!found || len(ks) < len(best)) {
					best, found = ks, true
				}
			}
			return best, found
		case pg_query.BoolExprType_OR_EXPR:
			// Every branch must say: one that does not lets any key in.
			var all []Value
			for _, arg := range be.Args {
				ks, ok := a.keysOf(b, arg, g)
				if !ok {
					return nil, false
				}
				all = appendValues(all, ks...)
			}
			return all, true
		}
		return nil, false
	case n.GetAExpr() != nil:
		return a.keysOfAExpr(b, n.GetAExpr(), g)
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		sub := a.subOf[sl]
		if sub == nil {
			return nil, false
		}
		if sl.SubLinkType == pg_query.SubLinkType_EXISTS_SUBLINK ||
			(sl.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK && isEqOp(sl.OperName)) {
			return a.keysRestrict(sub, g)
		}
	}
	return nil, false
}

func (a *analyzer) keysOfAExpr(b *block, e *pg_query.A_Expr, g int) ([]Value, bool) {
	if !isEqOp(e.Name) || len(e.Name) == 0 {
		return nil, false
	}
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		for _, side := range [2][2]*pg_query.Node{{e.Lexpr, e.Rexpr}, {e.Rexpr, e.Lexpr}} {
			if a.inGroup(b, side[0], g) {
				if v, ok := valueOf(side[1]); ok {
					return []Value{v}, true
				}
			}
		}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		if !a.inGroup(b, e.Lexpr, g) {
			return nil, false
		}
		return valueList(e.Rexpr.GetList().GetItems())
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY:
		if !a.inGroup(b, e.Lexpr, g) {
			return nil, false
		}
		arg, typ := uncast(e.Rexpr)
		if p := arg.GetParamRef(); p != nil {
			return []Value{{Param: int(p.Number), Type: typ, Array: true}}, true
		}
		if arr := arg.GetAArrayExpr(); arr != nil {
			return valueList(arr.Elements)
		}
	}
	return nil, false
}

// inGroup reports whether n is the sharding key of a node of group g.
func (a *analyzer) inGroup(b *block, n *pg_query.Node, g int) bool {
	nodes, _ := a.keyNodes(b, n)
	for _, x := range nodes {
		if a.find(x) == g {
			return true
		}
	}
	return false
}

func valueList(items []*pg_query.Node) ([]Value, bool) {
	if len(items) == 0 {
		return nil, false
	}
	var out []Value
	for _, it := range items {
		v, ok := valueOf(it)
		if !ok {
			return nil, false
		}
		out = appendValues(out, v)
	}
	return out, true
}

// valueOf reads a key value: a literal, a parameter or NULL, with the
// outermost cast written around it, which is the type the comparison
// sees.
func valueOf(n *pg_query.Node) (Value, bool) {
	arg, typ := uncast(n)
	if p := arg.GetParamRef(); p != nil {
		return Value{Param: int(p.Number), Type: typ}, p.Number > 0
	}
	c := arg.GetAConst()
	if c == nil {
		return Value{}, false
	}
	v := Value{Type: typ}
	switch {
	case c.Isnull:
		v.Null = true
	case c.GetIval() != nil:
		v.Text = strconv.FormatInt(int64(c.GetIval().Ival), 10)
	case c.GetFval() != nil:
		v.Text = c.GetFval().Fval
	case c.GetSval() != nil:
		v.Text = c.GetSval().Sval
	case c.GetBoolval() != nil:
		v.Text = strconv.FormatBool(c.GetBoolval().Boolval)
	default:
		return Value{}, false // bit strings
	}
	return v, true
}

// uncast strips casts from n and returns the outermost cast's type name
// (its last part: int8, uuid, text), "" when there is none. An array
// type's name is its element type's.
func uncast(n *pg_query.Node) (*pg_query.Node, string) {
	typ := ""
	for tc := n.GetTypeCast(); tc != nil; tc = n.GetTypeCast() {
		if typ == "" && tc.TypeName != nil && len(tc.TypeName.Names) > 0 {
			typ = tc.TypeName.Names[len(tc.TypeName.Names)-1].GetString_().GetSval()
		}
		n = tc.Arg
	}
	return n, typ
}

// appendValues appends the values not already in list.
func appendValues(list []Value, vs ...Value) []Value {
	for _, v := range vs {
		dup := false
		for _, w := range list {
			dup = dup || sameValue(v, w)
		}
		if !dup {
			list = append(list, v)
		}
	}
	return list
}

func sameValue(x, y Value) bool { return x == y }
