package router

import (
	"fmt"
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

func (a *analyzer) find(i int) int {
	for a.uf[i] != i {
		a.uf[i] = a.uf[a.uf[i]]
		i = a.uf[i]
	}
	return i
}

func (a *analyzer) union(nodes ...[]int) {
	first := -1
	for _, l := range nodes {
		for _, n := range l {
			if first < 0 {
				first = a.find(n)
				continue
			}
			if r := a.find(n); r != first {
				a.uf[r] = first
			}
		}
	}
}

// scopes calls fn for b and each enclosing block whose FROM items b's
// expressions can name, innermost first, until fn returns false. A
// subquery in FROM (not LATERAL) and a WITH query cannot name the FROM
// items of the block they are in, only those of the queries around it.
func scopes(b *block, fn func(s *block) bool) {
	skip := false
	for s := b; s != nil; s = s.up {
		if !skip && !fn(s) {
			return
		}
		skip = s.kind == blockFrom || s.kind == blockCTE
	}
}

// keyNodes returns the nodes whose sharding key the column reference n
// is, and whether it names a FROM item of an outer query. A bare column
// name is looked up only among the FROM items of its own block: we do not
// know the columns of tables, so a name that is not a sharding key there
// may still be a column of any of them, and never reaches an outer query.
func (a *analyzer) keyNodes(b *block, n *pg_query.Node) ([]int, bool) {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 || len(cr.Fields) > 3 {
		return nil, false
	}
	f := make([]string, len(cr.Fields))
	for i, x := range cr.Fields {
		if x.GetString_() == nil {
			return nil, false // t.*
		}
		f[i] = x.GetString_().Sval
	}
	col := f[len(f)-1]
	var (
		found []int
		outer bool
	)
	if len(f) == 1 {
		scopes(b, func(s *block) bool {
			for _, r := range s.rels {
				found = append(found, a.relKey(r, col)...)
			}
			outer = s != b
			return len(s.rels) == 0
		})
		return found, outer && len(found) > 0
	}
	relName := f[len(f)-2]
	scopes(b, func(s *block) bool {
		for _, r := range s.rels {
			if r.alias != relName || (len(f) == 3 && (r.schema != f[0] || r.alias != r.name)) {
				continue
			}
			found, outer = a.relKey(r, col), s != b
			return false
		}
		return true
	})
	return found, outer && len(found) > 0
}

// relKey returns the nodes whose key column col of rel r is.
func (a *analyzer) relKey(r *rel, col string) []int {
	for _, o := range a.relOutputs(r) {
		if o.name == col {
			return o.nodes
		}
	}
	return nil
}

// relOutputs lists the key columns a FROM item offers, by the names the
// query sees.
func (a *analyzer) relOutputs(r *rel) []output {
	if r.table {
		if r.node < 0 {
			return nil
		}
		key := r.info.Key
		if len(r.colnames) > 0 {
			return nil // renamed columns: we do not know the key's position
		}
		return []output{{name: key, nodes: []int{r.node}, pos: -1}}
	}
	if r.derived == nil {
		return nil
	}
	outs := a.outputs(r.derived)
	if len(r.colnames) == 0 {
		return outs
	}
	renamed := make([]output, 0, len(outs))
	for _, o := range outs {
		switch {
		case o.pos >= 0 && o.pos < len(r.colnames):
			o.name = r.colnames[o.pos]
		case o.pos < 0:
			continue // may have been renamed: unknown position
		}
		renamed = append(renamed, o)
	}
	return renamed
}

// outputs lists a block's output columns that carry sharding keys.
func (a *analyzer) outputs(b *block) []output {
	if b.outDone {
		return b.outs
	}
	b.outDone = true
	if len(b.arms) > 0 {
		// Column i of a set operation is a key when it is one in every
		// branch; its name is the first branch's.
		first := a.outputs(b.arms[0])
		for _, o := range first {
			if o.pos < 0 {
				continue
			}
			nodes := o.nodes
			for _, arm := range b.arms[1:] {
				other := outputAt(a.outputs(arm), o.pos)
				if other == nil {
					nodes = nil
					break
				}
				nodes = append(nodes[:len(nodes):len(nodes)], other.nodes...)
			}
			if nodes != nil {
				b.outs = append(b.outs, output{name: o.name, nodes: nodes, pos: o.pos})
			}
		}
		return b.outs
	}
	list := b.returning
	if b.sel != nil {
		list = b.sel.TargetList
	}
	star := false
	for i, t := range list {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			star = true
			var qual string
			if len(cr.Fields) > 1 {
				qual = cr.Fields[len(cr.Fields)-2].GetString_().GetSval()
			}
			for _, r := range b.rels {
				if qual == "" || r.alias == qual {
					for _, o := range a.relOutputs(r) {
						o.pos = -1
						b.outs = append(b.outs, o)
					}
				}
			}
			continue
		}
		nodes, _ := a.keyNodes(b, rt.Val)
		if len(nodes) == 0 {
			continue
		}
		pos := i
		if star {
			pos = -1
		}
		b.outs = append(b.outs, output{name: targetName(rt), nodes: nodes, pos: pos})
	}
	return b.outs
}

func outputAt(outs []output, pos int) *output {
	for i := range outs {
		if outs[i].pos == pos {
			return &outs[i]
		}
	}
	return nil
}

// link joins the nodes that key equalities tie together, and marks the
// blocks that such an equality correlates with an outer query.
func (a *analyzer) link() {
	for _, b := range a.blocks {
		for _, q := range b.quals {
			for _, c := range conjuncts(q.expr, nil) {
				l, r := eqSides(c)
				if l == nil {
					continue
				}
				ln, lo := a.keyNodes(b, l)
				rn, ro := a.keyNodes(b, r)
				if len(ln) > 0 && len(rn) > 0 {
					a.union(ln, rn)
					if lo != ro {
						b.correlated = true
					}
				}
			}
		}
		for _, j := range b.joins {
			for _, col := range j.cols {
				var ln, rn []int
				for _, r := range j.left {
					ln = append(ln, a.relKey(r, col)...)
				}
				for _, r := range j.right {
					rn = append(rn, a.relKey(r, col)...)
				}
				if len(ln) > 0 && len(rn) > 0 {
					a.union(ln, rn)
				}
			}
		}
		for _, l := range b.links {
			tn, _ := a.keyNodes(b, l.test)
			if o := outputAt(a.outputs(l.sub), 0); o != nil && len(tn) > 0 {
				a.union(tn, o.nodes)
			}
		}
	}
}

// conjuncts flattens the AND chain at the top of an expression.
func conjuncts(n *pg_query.Node, out []*pg_query.Node) []*pg_query.Node {
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg_query.BoolExprType_AND_EXPR {
		for _, arg := range be.Args {
			out = conjuncts(arg, out)
		}
		return out
	}
	return append(out, n)
}

// eqSides returns the operands of an equality, or nils.
func eqSides(n *pg_query.Node) (*pg_query.Node, *pg_query.Node) {
	e := n.GetAExpr()
	if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || !isEqOp(e.Name) || len(e.Name) == 0 {
		return nil, nil
	}
	return e.Lexpr, e.Rexpr
}

// partNodes returns the nodes whose rows partition b's rows: each row of
// b is made with exactly one row of each, so the shards together produce
// each row of b once. They are the sharded tables on no nullable side of
// an outer join, directly or through subqueries in FROM.
func (a *analyzer) partNodes(b *block) []int {
	var out []int
	for _, r := range b.rels {
		switch {
		case r.nullable:
		case r.node >= 0:
			out = append(out, r.node)
		case r.derived != nil:
			out = append(out, a.partNodes(r.derived)...)
		}
	}
	return out
}

// shardedRows reports whether b's rows depend on sharded tables in its
// FROM, directly or through subqueries in FROM.
func (a *analyzer) shardedRows(b *block) bool {
	for _, arm := range b.arms {
		if a.shardedRows(arm) {
			return true
		}
	}
	for _, r := range b.rels {
		if r.node >= 0 || (r.derived != nil && a.shardedRows(r.derived)) {
			return true
		}
	}
	return false
}

// groupedByKey reports whether b groups by the sharding key of one of the
// tables that partition its rows: then every group is whole on one shard.
// The key of a table on the nullable side of an outer join does not do:
// its NULL group gathers rows from every shard.
func (a *analyzer) groupedByKey(b *block) bool {
	if b.sel == nil {
		return false
	}
	part := a.partNodes(b)
	for _, g := range b.sel.GroupClause {
		nodes, outer := a.keyNodes(b, g)
		if outer {
			continue
		}
		for _, n := range nodes {
			if slices.Contains(part, n) {
				return true
			}
		}
	}
	return false
}

// routing is where the sharded tables of a statement send it.
type routing struct {
	keys []Value // nil: no key, every shard
	dist string
	// multi: the statement may run on more than one shard.
	multi   bool
	refused *Refusal
}

// route decides from the groups where a statement runs. fixed gives the
// keys of the group of node fixedNode, when the statement says them
// otherwise than by WHERE (INSERT ... VALUES).
func (a *analyzer) route(top *block, fixedNode int, fixed []Value) routing {
	a.link()
	var rt routing
	for i := range a.nodes {
		d := a.nodes[i].info.Distribution
		if i == 0 {
			rt.dist = d
		} else if d != rt.dist {
			rt.refused = joinRefusal(a.nodes[0], a.nodes[i], "they are in different distributions")
			return rt
		}
	}
	// The groups, in order of their first node, with their keys.
	type group struct {
		root  int
		first int
		keys  []Value
		ok    bool
	}
	var groups []group
	for i := range a.nodes {
		r := a.find(i)
		seen := false
		for _, g := range groups {
			seen = seen || g.root == r
		}
		if !seen {
			groups = append(groups, group{root: r, first: i})
		}
	}
	for i := range groups {
		g := &groups[i]
		if fixedNode >= 0 && a.find(fixedNode) == g.root {
			g.keys, g.ok = appendValues(nil, fixed...), fixed != nil
			continue
		}
		g.keys, g.ok = a.keysRestrict(top, g.root)
		if !g.ok {
			if home := a.home(g.root); home != top {
				g.keys, g.ok = a.keysRestrict(home, g.root)
			}
		}
	}
	switch {
	case len(groups) == 1:
		if groups[0].ok {
			rt.keys = groups[0].keys
		}
	default:
		for _, g := range groups[1:] {
			if len(top.arms) > 0 && !single(groups[0].keys, groups[0].ok) {
				rt.refused = notAcross("UNION, INTERSECT or EXCEPT of sharded tables")
				return rt
			}
			if !single(groups[0].keys, groups[0].ok) || !single(g.keys, g.ok) || !sameValue(g.keys[0], groups[0].keys[0]) {
				rt.refused = a.unlinkedRefusal(groups[0].first, g.first)
				return rt
			}
		}
		rt.keys = groups[0].keys
	}
	rt.multi = !single(rt.keys, rt.keys != nil)
	if rt.multi {
		linked := false
		for _, p := range a.partNodes(top) {
			linked = linked || a.find(p) == groups[0].root
		}
		if !linked {
			rt.refused = subqueryRefusal(a.nodes[groups[0].first].name)
			return rt
		}
	}
	rt.refused = a.checkBlocks(top)
	return rt
}

// checkBlocks refuses a statement with a subquery whose result on one
// shard would not be the global result restricted to that shard's rows
// (a LIMIT, an aggregate not grouped by the key, a window function),
// unless it is correlated with the outer query on the key or restricted
// to a single key itself.
func (a *analyzer) checkBlocks(top *block) *Refusal {
	for _, b := range a.blocks {
		if b == top || !a.shardedRows(b) || b.correlated {
			continue
		}
		why := b.unsafe
		if why == "" && b.aggregates && !a.groupedByKey(b) {
			why = "an aggregate or GROUP BY not on the sharding key"
		}
		if why == "" {
			continue
		}
		part := a.partNodes(b)
		if len(part) > 0 && single(a.keysRestrict(b, a.find(part[0]))) {
			continue
		}
		name := a.blockTable(b)
		return &Refusal{
			Message: fmt.Sprintf("a subquery on %s has %s, which cannot be computed shard by shard: each shard would answer it from only its own rows", name, why),
			Hint:    "correlate the subquery with the outer query on the sharding key, restrict it to one key, or route the statement with a /* shardgate: shard=NAME */ or /* shardgate: key=VALUE */ hint",
		}
	}
	return nil
}

// blockTable names a sharded table that b reads, for messages.
func (a *analyzer) blockTable(b *block) string {
	for i := range a.nodes {
		for s := a.nodes[i].b; s != nil; s = s.up {
			if s == b {
				return a.nodes[i].name
			}
		}
	}
	return "a sharded table"
}

// home is the outermost block holding a node of group g.
func (a *analyzer) home(g int) *block {
	var best *block
	bestDepth := 0
	for i := range a.nodes {
		if a.find(i) != g {
			continue
		}
		d := 0
		for s := a.nodes[i].b; s.up != nil; s = s.up {
			d++
		}
		if best == nil || d < bestDepth {
			best, bestDepth = a.nodes[i].b, d
		}
	}
	return best
}

func single(keys []Value, ok bool) bool {
	return ok && len(keys) == 1 && !keys[0].Array
}

func joinRefusal(x, y node, why string) *Refusal {
	return &Refusal{
		Message: fmt.Sprintf("join of %s and %s is not on the sharding key; %s, so the rows to join may be on different shards", x.name, y.name, why),
		Hint: fmt.Sprintf("join them on their sharding keys (%s.%s = %s.%s), or route the statement with a /* shardgate: shard=NAME */ or /* shardgate: key=VALUE */ hint",
			x.name, x.info.Key, y.name, y.info.Key),
	}
}

// unlinkedRefusal explains two groups of sharded tables that no key
// equality ties together.
func (a *analyzer) unlinkedRefusal(i, j int) *Refusal {
	x, y := a.nodes[i], a.nodes[j]
	if x.b == y.b {
		return joinRefusal(x, y, "both are sharded")
	}
	return &Refusal{
		Message: fmt.Sprintf("%s and %s are read in different query blocks that are not tied by the sharding key; both are sharded, so the rows they combine may be on different shards", x.name, y.name),
		Hint: fmt.Sprintf("tie the subquery to the outer query on the sharding keys (%s.%s = %s.%s), restrict both to the same key, or route the statement with a /* shardgate: shard=NAME */ or /* shardgate: key=VALUE */ hint",
			x.name, x.info.Key, y.name, y.info.Key),
	}
}

func subqueryRefusal(name string) *Refusal {
	return &Refusal{
		Message: fmt.Sprintf("sharded table %s is read only in a subquery (or on the nullable side of an outer join) that is not tied to a sharded table of the outer query by the sharding key, so each shard would answer the statement from only its own rows of %s", name, name),
		Hint:    "restrict the statement to one key, or route it with a /* shardgate: shard=NAME */ or /* shardgate: key=VALUE */ hint",
	}
}
