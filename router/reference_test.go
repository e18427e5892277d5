package router

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// refWrite classifies a parsed statement a second way, over the protobuf
// tree with reflection: slow, but independent of walkTree's reading of
// the JSON form, which the fuzz test checks it against.
func refWrite(res *pg_query.ParseResult, fns *funcSet) bool {
	if len(res.Stmts) != 1 {
		return true
	}
	n := res.Stmts[0].GetStmt()
	switch {
	case n.GetSelectStmt() != nil:
		return refModifies(n.ProtoReflect(), fns)
	case n.GetExplainStmt() != nil:
		for _, o := range n.GetExplainStmt().Options {
			d := o.GetDefElem()
			if d.GetDefname() != "analyze" {
				continue
			}
			on := true
			switch a := d.GetArg(); {
			case a.GetInteger() != nil:
				on = a.GetInteger().Ival != 0
			case a.GetString_() != nil:
				s := strings.ToLower(a.GetString_().Sval)
				on = s != "false" && s != "off"
			}
			if on {
				return true
			}
		}
		return false
	case n.GetCopyStmt() != nil:
		c := n.GetCopyStmt()
		return c.IsFrom || c.IsProgram || c.Filename != "" ||
			(c.Query != nil && refModifies(c.Query.ProtoReflect(), fns))
	case n.GetTransactionStmt() != nil:
		switch n.GetTransactionStmt().Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE,
			pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return true
		}
		return false
	case n.GetVariableSetStmt() != nil, n.GetVariableShowStmt() != nil, n.GetConstraintsSetStmt() != nil,
		n.GetDiscardStmt() != nil, n.GetDeallocateStmt() != nil, n.GetClosePortalStmt() != nil,
		n.GetFetchStmt() != nil:
		return false
	}
	return true
}

// refModifies looks everywhere under m for a data-modifying statement, a
// locking clause, INTO or a call of a function in fns.
func refModifies(m protoreflect.Message, fns *funcSet) bool {
	switch x := m.Interface().(type) {
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
		*pg_query.LockingClause, *pg_query.IntoClause:
		return true
	case *pg_query.FuncCall:
		if k := len(x.Funcname); k > 0 && fns.has(x.Funcname[k-1].GetString_().GetSval()) {
			return true
		}
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			for i := 0; i < v.List().Len() && !found; i++ {
				found = refModifies(v.List().Get(i).Message(), fns)
			}
		default:
			found = refModifies(v.Message(), fns)
		}
		return !found
	})
	return found
}
