package router

import (
	"encoding/json"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// parseSpan classifies a statement the prefilter could not, with the real
// parser. Text it rejects is a write: it then goes to the primary, which
// reports the error.
func parseSpan(sp *span, typed bool, fns *funcSet) Statement {
	if typed {
		return parseTyped(sp.text)
	}
	t := walkTree(sp.text, fns)
	st := Statement{Write: t.write()}
	if t.lockFn && t.kind != "ExplainStmt" {
		st.Command = CmdSessionLock
	}
	return st
}

// parseTyped handles the statements whose meaning is in their own node:
// SET, RESET, SHOW and transaction control. They are short, so the
// protobuf form of the tree costs little.
func parseTyped(text string) Statement {
	res, err := pg_query.Parse(text)
	if err != nil || len(res.Stmts) != 1 {
		if st, ok := controlSet(text); ok {
			return st
		}
		return Statement{Write: true}
	}
	n := res.Stmts[0].GetStmt()
	switch {
	case n.GetVariableSetStmt() != nil:
		return setStatement(n.GetVariableSetStmt())
	case n.GetVariableShowStmt() != nil:
		// The parser lower-cases unquoted names and keeps quoted ones.
		return Statement{Command: CmdShow, Show: n.GetVariableShowStmt().Name}
	case n.GetTransactionStmt() != nil:
		return txStatement(n.GetTransactionStmt())
	case n.GetConstraintsSetStmt() != nil:
		return Statement{}
	}
	return Statement{Write: true}
}

func txStatement(ts *pg_query.TransactionStmt) Statement {
	switch ts.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		return Statement{Command: CmdBegin, TxAccess: txAccess(ts.Options)}
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return Statement{Command: CmdCommit, Chain: ts.Chain}
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return Statement{Command: CmdRollback, Chain: ts.Chain}
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE,
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return Statement{}
	}
	// PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED: two-phase
	// commit happens on the primary.
	return Statement{Write: true}
}

// txAccess reads READ ONLY / READ WRITE from transaction options; the
// last one wins, as in PostgreSQL.
func txAccess(opts []*pg_query.Node) TxAccess {
	acc := TxDefault
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != "transaction_read_only" {
			continue
		}
		c := d.Arg.GetAConst()
		switch {
		case c.GetIval() != nil:
			acc = TxReadWrite
			if c.GetIval().Ival != 0 {
				acc = TxReadOnly
			}
		case c.GetBoolval() != nil:
			acc = TxReadWrite
			if c.GetBoolval().Boolval {
				acc = TxReadOnly
			}
		}
	}
	return acc
}

// setStatement describes SET and RESET: SET's value syntax (lists,
// quoting, TIME ZONE, LOCAL, TO DEFAULT) is too varied to guess.
func setStatement(vs *pg_query.VariableSetStmt) Statement {
	if vs.Kind == pg_query.VariableSetKind_VAR_SET_MULTI {
		// SET TRANSACTION [SNAPSHOT] only lasts the transaction; SET
		// SESSION CHARACTERISTICS AS TRANSACTION changes defaults the
		// proxy does not track.
		if strings.HasPrefix(vs.Name, "TRANSACTION") {
			return Statement{Command: CmdSetTransaction, TxAccess: txAccess(vs.Args)}
		}
		return Statement{}
	}
	eff := &SetEffect{Name: strings.ToLower(vs.Name), Local: vs.IsLocal}
	switch vs.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		v, ok := settingValue(eff.Name, vs.Args)
		if !ok {
			return Statement{}
		}
		eff.Value = v
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
		eff.Reset = true
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		eff.All, eff.Reset, eff.Name = true, true, ""
	default:
		// VAR_SET_CURRENT (FROM CURRENT) only matters inside a function.
		return Statement{}
	}
	return Statement{Command: CmdSet, Set: eff}
}

// listSettings are the settings whose value is a list of identifiers:
// set_config() splits their input on commas and folds case, so elements
// that need it are quoted again.
var listSettings = map[string]bool{
	"search_path": true, "temp_tablespaces": true,
	"local_preload_libraries": true, "session_preload_libraries": true,
}

// settingValue renders SET arguments the way set_config() expects them:
// list elements joined by ", ", strings unquoted.
func settingValue(name string, args []*pg_query.Node) (string, bool) {
	parts := make([]string, 0, len(args))
	for _, n := range args {
		switch {
		case n.GetAConst() != nil:
			c := n.GetAConst()
			switch {
			case c.GetSval() != nil:
				s := c.GetSval().Sval
				if listSettings[name] && needsIdentQuote(s) {
					s = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
				}
				parts = append(parts, s)
			case c.GetIval() != nil:
				parts = append(parts, strconv.FormatInt(int64(c.GetIval().Ival), 10))
			case c.GetFval() != nil:
				parts = append(parts, c.GetFval().Fval)
			case c.GetBoolval() != nil:
				parts = append(parts, strconv.FormatBool(c.GetBoolval().Boolval))
			default:
				return "", false
			}
		case n.GetTypeCast() != nil:
			// SET TIME ZONE INTERVAL '...' HOUR TO MINUTE: too rare to model.
			return "", false
		default:
			return "", false
		}
	}
	return strings.Join(parts, ", "), len(parts) > 0
}

func needsIdentQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '$') {
			return true
		}
	}
	return false
}

// tree is what walkTree found in a parse tree. The tree is read in the
// parser's JSON form, not its protobuf form: libpg_query builds the JSON
// several times faster, and one pass over its text with no decoding
// finds every node of interest wherever it is nested (subqueries, CTEs,
// LATERAL, functions in FROM, window clauses, ...).
type tree struct {
	s    string
	i    int
	fns  *funcSet
	fail bool

	stmts    int    // statements in the text
	kind     string // node type of the (first) statement
	txKind   string // TransactionStmt kind
	modifies bool   // an INSERT/UPDATE/DELETE/MERGE node, a locking clause, INTO
	writeFn  bool   // a call of a function that writes
	lockFn   bool   // a call of a session-level advisory lock function
	analyze  bool   // an EXPLAIN option ANALYZE that is not false
	copyOut  bool   // a COPY to a file or program, or from anywhere

	// Inside a FuncCall's funcname, the last name part seen.
	inFuncName bool
	funcName   string
	// Inside a DefElem: its name and the JSON text of its argument.
	defName string
	defArg  string
}

// walkTree parses text and walks its tree.
func walkTree(text string, fns *funcSet) *tree {
	t := &tree{fns: fns}
	js, err := pg_query.ParseToJSON(text)
	if err != nil {
		t.fail = true
		return t
	}
	t.s = js
	t.value("", 0)
	return t
}

// write reports whether the statement may change data. Reads are the
// statement kinds listed here; every other kind writes.
func (t *tree) write() bool {
	if t.fail || t.stmts != 1 {
		return true
	}
	switch t.kind {
	case "SelectStmt":
		return t.modifies || t.writeFn
	case "ExplainStmt":
		return t.analyze // the explained statement only runs with ANALYZE
	case "CopyStmt":
		return t.copyOut || t.modifies || t.writeFn
	case "TransactionStmt":
		switch t.txKind {
		case "TRANS_STMT_PREPARE", "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED":
			return true
		}
		return false
	case "VariableSetStmt", "VariableShowStmt", "ConstraintsSetStmt", "DiscardStmt",
		"DeallocateStmt", "ClosePortalStmt", "FetchStmt":
		return false
	}
	return true
}

// value walks the JSON value at t.i, the value of key in an object at
// depth.
func (t *tree) value(key string, depth int) {
	t.space()
	if t.fail || t.i >= len(t.s) {
		t.fail = true
		return
	}
	switch t.s[t.i] {
	case '{':
		t.object(key, depth+1)
	case '[':
		t.i++
		for !t.fail {
			t.space()
			if t.i < len(t.s) && t.s[t.i] == ']' {
				t.i++
				return
			}
			t.value(key, depth+1)
			t.space()
			if t.i < len(t.s) && t.s[t.i] == ',' {
				t.i++
			}
		}
	case '"':
		s := t.str()
		switch {
		case key == "sval" && t.inFuncName:
			t.funcName = s
		case key == "defname":
			t.defName = s
		case key == "kind" && t.kind == "TransactionStmt" && t.txKind == "":
			t.txKind = s
		}
	default:
		start := t.i
		for t.i < len(t.s) && !strings.ContainsRune(",}] \n\t\r", rune(t.s[t.i])) {
			t.i++
		}
		if t.i == start {
			t.fail = true
		}
	}
}

// object walks an object, the value of key; its own keys are node types
// (FuncCall, InsertStmt, ...) or fields (funcname, lockingClause, ...).
func (t *tree) object(key string, depth int) {
	t.i++ // '{'
	first := true
	for !t.fail {
		t.space()
		if t.i < len(t.s) && t.s[t.i] == '}' {
			t.i++
			break
		}
		k := t.str()
		t.space()
		if t.i >= len(t.s) || t.s[t.i] != ':' {
			t.fail = true
			return
		}
		t.i++
		// {"version":..,"stmts":[{"stmt":{"SelectStmt":{...}}}]}: the
		// statement's node type is the first key at depth 4.
		if key == "stmt" && depth == 4 && first {
			t.stmts++
			if t.stmts == 1 {
				t.kind = k
			}
		}
		first = false
		switch k {
		case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "lockingClause", "intoClause":
			t.modifies = true
		case "is_from", "is_program", "filename":
			if key == "CopyStmt" {
				t.copyOut = true // present only when true or set
			}
		}
		switch {
		case k == "funcname":
			t.inFuncName, t.funcName = true, ""
			t.value(k, depth)
			t.inFuncName = false
			t.call(t.funcName)
		case k == "arg" && key == "DefElem":
			start := t.i
			t.value(k, depth)
			t.defArg = t.s[start:t.i]
		case k == "DefElem":
			t.defName, t.defArg = "", ""
			t.value(k, depth)
			if t.defName == "analyze" && t.kind == "ExplainStmt" && !isFalse(t.defArg) {
				t.analyze = true
			}
		default:
			t.value(k, depth)
		}
		t.space()
		if t.i < len(t.s) && t.s[t.i] == ',' {
			t.i++
		}
	}
}

// call notes a call of the function name (the last part of a possibly
// schema-qualified name). Names are compared without regard to case: a
// quoted "NextVal" is another function, but erring towards write is safe.
func (t *tree) call(name string) {
	if t.fns.has(name) {
		t.writeFn = true
	}
	if isSessionLock(name) {
		t.lockFn = true
	}
}

// isFalse reports whether a DefElem argument (JSON) turns a boolean
// option off, as PostgreSQL's defGetBoolean reads it. Anything it would
// reject counts as on: the server reports the error.
func isFalse(arg string) bool {
	switch arg {
	case `{"Integer":{}}`, `{"Integer":{"ival":0}}`:
		return true
	}
	const pre, post = `{"String":{"sval":"`, `"}}`
	if strings.HasPrefix(arg, pre) && strings.HasSuffix(arg, post) {
		v := arg[len(pre) : len(arg)-len(post)]
		return eqFold(v, "false") || eqFold(v, "off")
	}
	return false
}

func (t *tree) space() {
	for t.i < len(t.s) && isSpace(t.s[t.i]) {
		t.i++
	}
}

// str reads a JSON string at t.i. Escapes are rare (names and keys have
// none), so only strings with a backslash are decoded.
func (t *tree) str() string {
	if t.i >= len(t.s) || t.s[t.i] != '"' {
		t.fail = true
		return ""
	}
	start, esc := t.i, false
	t.i++
	for t.i < len(t.s) {
		switch t.s[t.i] {
		case '\\':
			esc = true
			t.i += 2
			continue
		case '"':
			t.i++
			raw := t.s[start:t.i]
			if !esc {
				return raw[1 : len(raw)-1]
			}
			var s string
			if json.Unmarshal([]byte(raw), &s) != nil {
				t.fail = true
			}
			return s
		}
		t.i++
	}
	t.fail = true
	return ""
}

// controlSet reads SET shardgate.role = primary, which PostgreSQL's
// grammar rejects (PRIMARY is a reserved word) but which is how users
// write it: shardgate's own settings take a bare word.
func controlSet(text string) (Statement, bool) {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(text), "; \t\n"))
	if len(f) > 1 && (strings.EqualFold(f[1], "session") || strings.EqualFold(f[1], "local")) {
		f = append(f[:1], f[2:]...)
	}
	if len(f) == 4 && strings.EqualFold(f[0], "set") && (f[2] == "=" || strings.EqualFold(f[2], "to")) {
		name := strings.ToLower(f[1])
		if strings.HasPrefix(name, "shardgate.") && isWord(f[3]) {
			return Statement{Command: CmdSet, Set: &SetEffect{Name: name, Value: strings.ToLower(f[3])}}, true
		}
	}
	return Statement{}, false
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] == '_') {
			return false
		}
	}
	return s != ""
}
