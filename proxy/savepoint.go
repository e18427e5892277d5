package proxy

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// savepointOp is a SAVEPOINT, RELEASE SAVEPOINT or ROLLBACK TO SAVEPOINT.
type savepointOp struct {
	kind pg_query.TransactionStmtKind
	name string
}

// savepointOf recognises a savepoint statement. The prefix check keeps
// the parser off the hot path: only texts that start like one are parsed.
func savepointOf(sql string) (savepointOp, bool) {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	if i >= len(sql) {
		return savepointOp{}, false
	}
	// Every query passes here (SELECT starts with an s too): no
	// allocation before a keyword matches.
	rest := sql[i:]
	if !startsWithWord(rest, "savepoint") && !startsWithWord(rest, "release") && !startsWithWord(rest, "rollback") {
		return savepointOp{}, false
	}
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return savepointOp{}, false
	}
	ts := tree.Stmts[0].GetStmt().GetTransactionStmt()
	if ts == nil {
		return savepointOp{}, false
	}
	switch ts.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE,
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return savepointOp{kind: ts.Kind, name: ts.SavepointName}, true
	}
	return savepointOp{}, false
}

// startsWithWord reports whether s starts with word, in any case, as a
// whole word.
func startsWithWord(s, word string) bool {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return false
	}
	if len(s) == len(word) {
		return true
	}
	c := s[len(word)] | 0x20
	return !(c >= 'a' && c <= 'z' || s[len(word)] >= '0' && s[len(word)] <= '9' || s[len(word)] == '_')
}

// applySavepointLocked keeps the client's savepoints in step with what it
// sends, so that a shard joining the transaction later gets them too:
// rolling it back to a savepoint made before it joined then undoes all of
// its work, as on one server.
func (s *session) applySavepointLocked(op savepointOp) {
	last := -1
	for i, n := range s.savepoints {
		if n == op.name {
			last = i
		}
	}
	switch op.kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		s.savepoints = append(s.savepoints, op.name)
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		if last >= 0 {
			s.savepoints = slices.Delete(s.savepoints, last, len(s.savepoints))
		}
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		if last >= 0 {
			s.savepoints = s.savepoints[:last+1]
		}
	}
}
