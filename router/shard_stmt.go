package router

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// planStatement plans the one statement of res. It returns the
// distribution of the first sharded table the statement names, for key
// hints.
func planStatement(res *pg_query.ParseResult, s Schema) (*Plan, string) {
	n := res.Stmts[0].GetStmt()
	switch st := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return planSelect(res, st.SelectStmt, s)
	case *pg_query.Node_InsertStmt:
		return planInsert(res, st.InsertStmt, s)
	case *pg_query.Node_UpdateStmt:
		return planUpdate(st.UpdateStmt, s)
	case *pg_query.Node_DeleteStmt:
		a := newAnalyzer(s)
		top := a.deleteBlock(st.DeleteStmt, nil, blockTop)
		p, _ := a.decide(top, -1, nil)
		return p, a.dist()
	case *pg_query.Node_CopyStmt:
		return planCopy(res, st.CopyStmt, s)
	case *pg_query.Node_ExplainStmt:
		return planExplain(res, st.ExplainStmt, s)

	// Session and transaction statements: the proxy tracks them and any
	// backend can run them.
	case *pg_query.Node_TransactionStmt, *pg_query.Node_VariableSetStmt,
		*pg_query.Node_VariableShowStmt, *pg_query.Node_DiscardStmt,
		*pg_query.Node_ConstraintsSetStmt, *pg_query.Node_LoadStmt,
		// FETCH, MOVE and CLOSE go to the backend of the transaction
		// that declared the cursor; DECLARE decides where that is.
		*pg_query.Node_FetchStmt, *pg_query.Node_ClosePortalStmt:
		return &Plan{Spread: SpreadAny}, ""

	// Notifications meet on one server; SQL-level prepared statements
	// live where EXECUTE finds them; DO and CALL run code we cannot see.
	// All of them go to the default shard.
	case *pg_query.Node_ListenStmt, *pg_query.Node_UnlistenStmt, *pg_query.Node_NotifyStmt,
		*pg_query.Node_ExecuteStmt, *pg_query.Node_DeallocateStmt,
		*pg_query.Node_DoStmt, *pg_query.Node_CallStmt:
		return &Plan{Spread: SpreadDefault}, ""
	case *pg_query.Node_PrepareStmt:
		return planPrepare(res, st.PrepareStmt, s)
	case *pg_query.Node_DeclareCursorStmt:
		return planDeclare(res, st.DeclareCursorStmt, s)

	// Maintenance runs on every shard, each for its own rows.
	case *pg_query.Node_VacuumStmt, *pg_query.Node_ClusterStmt, *pg_query.Node_ReindexStmt,
		*pg_query.Node_CheckPointStmt, *pg_query.Node_RefreshMatViewStmt:
		return &Plan{Spread: SpreadAll}, ""
	case *pg_query.Node_LockStmt:
		return planTables(st.LockStmt.Relations, s, false)
	case *pg_query.Node_TruncateStmt:
		return planTables(st.TruncateStmt.Relations, s, true)
	case *pg_query.Node_CreateTableAsStmt:
		return planCreateAs(st.CreateTableAsStmt.Query, s)
	case *pg_query.Node_MergeStmt:
		return planMergeStmt(st.MergeStmt, s)
	}
	// Everything else changes the schema (CREATE, ALTER, DROP, COMMENT,
	// GRANT, ...): every shard gets the same schema, unsharded tables'
	// included, so that any table can later become sharded or move.
	return &Plan{Spread: SpreadAll, DDL: true}, ""
}

// planSelect plans a query: kinds and keys first, then, when it may run
// on several shards, how to merge.
func planSelect(res *pg_query.ParseResult, sel *pg_query.SelectStmt, s Schema) (*Plan, string) {
	if sel.IntoClause != nil {
		return planCreateAs(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}, s)
	}
	a := newAnalyzer(s)
	top := a.selectBlock(sel, nil, blockTop)
	p, rt := a.decide(top, -1, nil)
	if p.Refused != nil || (p.Spread != SpreadAll && p.Spread != SpreadKeys) {
		return p, a.dist()
	}
	if rt.multi {
		if badParam(sel) {
			// $0: the server rejects the statement, and the deparser
			// would spell the parameter ?, which does not parse.
			return &Plan{Spread: SpreadDefault}, a.dist()
		}
		m, sql, why := mergePlan(a, top, res)
		if why != nil {
			return &Plan{Refused: why}, a.dist()
		}
		p.Merge, p.Rewritten = m, sql
		if len(sel.LockingClause) > 0 && p.Spread == SpreadAll {
			return refused("FOR UPDATE/FOR SHARE over every shard is not supported",
				"add a condition on the sharding key so the rows are locked on their shard"), a.dist()
		}
	}
	return p, a.dist()
}

// nested wraps a statement nested in res's (EXPLAIN's, COPY's, ...) as a
// parse result of its own.
func nested(res *pg_query.ParseResult, n *pg_query.Node) *pg_query.ParseResult {
	return &pg_query.ParseResult{Version: res.Version, Stmts: []*pg_query.RawStmt{{Stmt: n}}}
}

// dist is the distribution of the first sharded table read.
func (a *analyzer) dist() string {
	if len(a.nodes) > 0 {
		return a.nodes[0].info.Distribution
	}
	return ""
}

// decide turns an analysed statement into a plan without merge: which
// kinds of tables it reads and writes, then for sharded ones the key
// groups. fixedNode and fixed are as in route.
func (a *analyzer) decide(top *block, fixedNode int, fixed []Value) (*Plan, routing) {
	var refWrite string
	for _, b := range a.blocks {
		if b != top && b.insert && b.target.node >= 0 {
			return refused(fmt.Sprintf("an INSERT into sharded table %s inside WITH is not supported", b.target.name),
				"insert in a statement of its own"), routing{}
		}
		if t := b.target; t != nil && t.table && t.info.Kind == TableReference {
			refWrite = t.name
		}
	}
	sharded := len(a.nodes) > 0
	switch {
	case a.curOf && (sharded || refWrite != ""):
		return refused("WHERE CURRENT OF on a sharded or reference table cannot be routed: the cursor is on one shard",
			"fetch the row's key and update by key instead"), routing{}
	case a.unsharded != "" && sharded:
		return refused(fmt.Sprintf("%s is not sharded, so it lives only on the default shard, while %s is sharded: their rows cannot be combined on one shard", a.unsharded, a.nodes[0].name),
			"route the statement with a /* shardgate: shard=NAME */ hint, or make "+a.unsharded+" a reference table"), routing{}
	case refWrite != "" && (sharded || a.unsharded != ""):
		other := a.unsharded
		if sharded {
			other = a.nodes[0].name
		}
		return refused(fmt.Sprintf("the write to reference table %s also involves %s, which is not on every shard; reference tables are written on every shard", refWrite, other),
			"write the reference table in a statement of its own"), routing{}
	case refWrite != "":
		return &Plan{Spread: SpreadAll, Reference: true}, routing{}
	case a.unsharded != "":
		return &Plan{Spread: SpreadDefault}, routing{}
	case !sharded:
		return &Plan{Spread: SpreadAny}, routing{}
	}
	rt := a.route(top, fixedNode, fixed)
	if rt.refused != nil {
		return &Plan{Refused: rt.refused}, rt
	}
	if rt.keys == nil {
		return &Plan{Spread: SpreadAll, Distribution: rt.dist}, rt
	}
	return &Plan{Spread: SpreadKeys, Keys: rt.keys, Distribution: rt.dist}, rt
}

func refused(msg, hint string) *Plan {
	return &Plan{Refused: &Refusal{Message: msg, Hint: hint}}
}

// planTables plans LOCK and TRUNCATE: on the default shard when every
// table is unsharded, else on every shard (TRUNCATE as a schema change).
func planTables(rels []*pg_query.Node, s Schema, ddl bool) (*Plan, string) {
	dist := ""
	all := false
	for _, n := range rels {
		rv := n.GetRangeVar()
		if rv == nil {
			continue
		}
		if info, ok := s.Table(rv.Schemaname, rv.Relname); ok && info.Kind != TableUnsharded {
			all = true
			if dist == "" {
				dist = info.Distribution
			}
		}
	}
	if !all {
		return &Plan{Spread: SpreadDefault}, ""
	}
	return &Plan{Spread: SpreadAll, DDL: ddl}, dist
}

// planCreateAs plans CREATE TABLE AS, CREATE MATERIALIZED VIEW and SELECT
// INTO. The new table is unsharded to the map, so it is made on the
// default shard, from a query that must then read only what the default
// shard has.
func planCreateAs(q *pg_query.Node, s Schema) (*Plan, string) {
	a := newAnalyzer(s)
	top := a.query(q, nil, blockTop)
	p, _ := a.decide(top, -1, nil)
	const hint = "create the table, then fill it with INSERT ... SELECT on the shard that has the rows, or route the statement with a /* shardgate: shard=NAME */ hint"
	switch {
	case len(a.nodes) > 0:
		return refused(fmt.Sprintf("CREATE TABLE AS, CREATE MATERIALIZED VIEW and SELECT INTO make an unsharded table on the default shard, and cannot fill it from sharded table %s", a.nodes[0].name), hint), a.dist()
	case p.Refused != nil:
		return p, ""
	case p.Spread != SpreadDefault && p.Spread != SpreadAny:
		return refused("CREATE TABLE AS, CREATE MATERIALIZED VIEW and SELECT INTO make an unsharded table on the default shard, and their query must run there too", hint), ""
	}
	return &Plan{Spread: SpreadDefault}, ""
}

// planMergeStmt plans MERGE, which is supported only on unsharded tables for
// now: its join of target and source would need the join rules of a
// SELECT and the key checks of INSERT and UPDATE at once.
func planMergeStmt(m *pg_query.MergeStmt, s Schema) (*Plan, string) {
	dist := ""
	bad := ""
	inspect(m, func(n *pg_query.Node) bool {
		if rv := n.GetRangeVar(); rv != nil {
			if info, ok := s.Table(rv.Schemaname, rv.Relname); ok && info.Kind != TableUnsharded && bad == "" {
				bad, dist = rv.Relname, info.Distribution
			}
		}
		return true
	})
	if m.Relation != nil {
		if info, ok := s.Table(m.Relation.Schemaname, m.Relation.Relname); ok && info.Kind != TableUnsharded {
			bad, dist = m.Relation.Relname, info.Distribution
		}
	}
	if bad != "" {
		return refused(fmt.Sprintf("MERGE involving %s, which is sharded or a reference table, is not supported", bad),
			"use INSERT ... ON CONFLICT, UPDATE and DELETE with conditions on the sharding key, or route the statement with a /* shardgate: shard=NAME */ hint"), dist
	}
	return &Plan{Spread: SpreadDefault}, ""
}

// planExplain plans EXPLAIN as the statement it explains, without merge:
// each shard explains its own part, and the plans are concatenated. With
// ANALYZE the statement runs, so a multi-row INSERT, which would run
// whole on every shard it touches, is refused.
func planExplain(res *pg_query.ParseResult, e *pg_query.ExplainStmt, s Schema) (*Plan, string) {
	inner, dist := planStatement(nested(res, e.Query), s)
	p := *inner
	p.Merge, p.Rewritten, p.Insert, p.Copy = nil, "", nil, nil
	if inner.Insert != nil && explainAnalyze(e) {
		return refused("EXPLAIN ANALYZE of a multi-row INSERT into a sharded table would insert every row on every shard it touches",
			"explain an INSERT of one row, or of rows with keys on one shard with a /* shardgate: shard=NAME */ hint"), dist
	}
	if !explainAnalyze(e) {
		p.NewKey = nil
	}
	return &p, dist
}

func explainAnalyze(e *pg_query.ExplainStmt) bool {
	for _, o := range e.Options {
		d := o.GetDefElem()
		if d.GetDefname() == "analyze" {
			return !isFalse(defArg(d))
		}
	}
	return false
}

// defArg renders a DefElem's argument as the JSON isFalse reads.
func defArg(d *pg_query.DefElem) string {
	switch a := d.GetArg(); {
	case a == nil:
		return ""
	case a.GetInteger() != nil:
		return fmt.Sprintf(`{"Integer":{"ival":%d}}`, a.GetInteger().Ival)
	case a.GetString_() != nil:
		return `{"String":{"sval":"` + a.GetString_().Sval + `"}}`
	case a.GetBoolean() != nil:
		if !a.GetBoolean().Boolval {
			return `{"Integer":{}}`
		}
	}
	return ""
}

// planPrepare plans SQL-level PREPARE. Its statement runs at EXECUTE,
// whose text does not say where: both go to the default shard, so only
// statements that run there can be prepared.
func planPrepare(res *pg_query.ParseResult, ps *pg_query.PrepareStmt, s Schema) (*Plan, string) {
	inner, dist := planStatement(nested(res, ps.Query), s)
	switch {
	case inner.Refused != nil:
		return inner, dist
	case inner.Spread != SpreadDefault && inner.Spread != SpreadAny:
		return refused("SQL-level PREPARE of a statement on sharded or reference tables is not supported: EXECUTE does not say where to run it",
			"use the extended protocol's prepared statements (drivers do), or route both with a /* shardgate: shard=NAME */ hint"), dist
	}
	return &Plan{Spread: SpreadDefault}, dist
}

// planDeclare plans DECLARE CURSOR as its query; a cursor lives on one
// backend, so the query must run on one shard.
func planDeclare(res *pg_query.ParseResult, dc *pg_query.DeclareCursorStmt, s Schema) (*Plan, string) {
	inner, dist := planStatement(nested(res, dc.Query), s)
	if inner.Refused != nil {
		return inner, dist
	}
	if inner.Spread == SpreadAll || (inner.Spread == SpreadKeys && !single(inner.Keys, true)) {
		return refused("a cursor over several shards is not supported",
			"add a condition on the sharding key, or route the statement with a /* shardgate: shard=NAME */ hint"), dist
	}
	p := *inner
	p.Merge, p.Rewritten = nil, ""
	return &p, dist
}
