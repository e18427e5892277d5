package router

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// Command is what a statement means for pooling and session state.
type Command uint8

// Commands the proxy treats specially; everything else is CmdOther.
const (
	CmdOther       Command = iota
	CmdEmpty               // only whitespace or comments
	CmdSet                 // SET / RESET / SET TIME ZONE / SET ROLE ...; see Statement.Set
	CmdBegin               // BEGIN, START TRANSACTION
	CmdDiscardAll          // DISCARD ALL
	CmdListen              // LISTEN / UNLISTEN
	CmdPrepare             // SQL-level PREPARE
	CmdExecute             // SQL-level EXECUTE
	CmdDeallocate          // SQL-level DEALLOCATE
	CmdDeclareHold         // DECLARE ... CURSOR WITH HOLD
	CmdCreateTemp          // CREATE TEMP TABLE/VIEW/SEQUENCE ...
	CmdSessionLock         // a call of pg_advisory_lock() and friends
)

// SessionScoped reports whether a command leaves state in the server
// session that outlives the transaction: a pooled client running it needs
// the same server afterwards.
func (c Command) SessionScoped() bool {
	switch c {
	case CmdListen, CmdPrepare, CmdDeclareHold, CmdCreateTemp, CmdSessionLock:
		return true
	}
	return false
}

// SetEffect is a change a SET or RESET makes to the session's settings.
type SetEffect struct {
	// Name is the parameter, lower case; "" with All set.
	Name string
	// Value is the new value in the parameter's input syntax, for
	// set_config(); Reset means back to the default.
	Value string
	Reset bool
	// All is RESET ALL.
	All bool
	// Local effects (SET LOCAL) end with the transaction and need no
	// tracking.
	Local bool
}

// Statement is the analysis of one statement of a query string.
type Statement struct {
	Command Command
	// Set is filled for CmdSet.
	Set *SetEffect
}

// Analysis describes a query string, statement by statement, in order.
type Analysis struct {
	Statements []Statement
}

// HasCommand reports whether any statement is cmd.
func (a *Analysis) HasCommand(cmd Command) bool {
	for i := range a.Statements {
		if a.Statements[i].Command == cmd {
			return true
		}
	}
	return false
}

// Analyze describes the statements of sql. Text the parser rejects is
// described as CmdOther: the server will report the syntax error itself.
func Analyze(sql string) Analysis {
	// Most statements are nothing special: they leave Statements nil and
	// cost no allocation. The list is built only once a special statement
	// appears, with the plain ones before it, because statement i must be
	// the one the i-th CommandComplete reports.
	var a Analysis
	plain, empty := 0, true
	sc := scanner{sql: sql}
	for {
		sp, ok := sc.next()
		if !ok {
			break
		}
		st := analyzeSpan(sp)
		switch {
		case st.Command == CmdEmpty:
			// The server answers empty statements of a longer string
			// with nothing, so they do not count.
		case st.Command == CmdOther && a.Statements == nil:
			plain++
			empty = false
		default:
			if a.Statements == nil {
				a.Statements = make([]Statement, plain, plain+2)
			}
			a.Statements = append(a.Statements, st)
			empty = false
		}
	}
	if empty {
		a.Statements = []Statement{{Command: CmdEmpty}}
	}
	return a
}

// Plain reports whether nothing in the text needs the proxy's attention.
func (a *Analysis) Plain() bool { return len(a.Statements) == 0 }

func analyzeSpan(sp span) Statement {
	if sp.sessionLock {
		return Statement{Command: CmdSessionLock}
	}
	switch sp.keyword {
	case "":
		return Statement{Command: CmdEmpty}
	case "other":
		return Statement{}
	case "begin", "start":
		return Statement{Command: CmdBegin}
	case "listen", "unlisten":
		return Statement{Command: CmdListen}
	case "prepare":
		// PREPARE TRANSACTION is two-phase commit, not a statement.
		if secondKeyword(sp.text) == "transaction" {
			return Statement{}
		}
		return Statement{Command: CmdPrepare}
	case "execute":
		return Statement{Command: CmdExecute}
	case "deallocate":
		return Statement{Command: CmdDeallocate}
	case "discard":
		if secondKeyword(sp.text) == "all" {
			return Statement{Command: CmdDiscardAll}
		}
		return Statement{}
	case "declare":
		if hasHold(sp.text) {
			return Statement{Command: CmdDeclareHold}
		}
		return Statement{}
	case "set", "reset":
		return analyzeSet(sp.text)
	case "create":
		if createsTemp(sp.text) {
			return Statement{Command: CmdCreateTemp}
		}
		return Statement{}
	}
	return Statement{}
}

func secondKeyword(text string) string {
	f := strings.Fields(text)
	if len(f) < 2 {
		return ""
	}
	return strings.ToLower(strings.TrimRight(f[1], ";"))
}

// createsTemp spots CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP[ORARY] ...
// and objects created in the pg_temp schema (UNLOGGED is not temporary).
func createsTemp(text string) bool {
	lower := strings.ToLower(text)
	if strings.Contains(lower, "pg_temp.") {
		return true // CREATE TYPE pg_temp.x, CREATE FUNCTION pg_temp.f ...
	}
	f := strings.Fields(lower)
	for i := 1; i < len(f) && i < 6; i++ {
		switch f[i] {
		case "temp", "temporary":
			return true
		case "or", "replace", "global", "local":
			continue
		}
		return false
	}
	return false
}

func hasHold(text string) bool {
	return strings.Contains(strings.ToLower(text), " with hold")
}

// analyzeSet uses the real parser: SET's value syntax (lists, quoting,
// TIME ZONE, LOCAL, TO DEFAULT) is too varied to guess.
func analyzeSet(text string) Statement {
	res, err := pg_query.Parse(text)
	if err != nil || len(res.Stmts) != 1 {
		return Statement{}
	}
	vs := res.Stmts[0].GetStmt().GetVariableSetStmt()
	if vs == nil {
		// SET TRANSACTION, SET CONSTRAINTS, SET SESSION CHARACTERISTICS...
		// are VariableSetStmt too, but e.g. SET SESSION AUTHORIZATION is
		// parsed differently: anything else is left alone.
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
		// VAR_SET_MULTI (SET TRANSACTION ...) and VAR_SET_CURRENT (FROM
		// CURRENT) only matter inside a transaction or function.
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

// String describes a command for error messages.
func (c Command) String() string {
	switch c {
	case CmdSet:
		return "SET"
	case CmdBegin:
		return "BEGIN"
	case CmdDiscardAll:
		return "DISCARD ALL"
	case CmdListen:
		return "LISTEN"
	case CmdPrepare:
		return "PREPARE"
	case CmdExecute:
		return "EXECUTE"
	case CmdDeallocate:
		return "DEALLOCATE"
	case CmdDeclareHold:
		return "DECLARE ... WITH HOLD"
	case CmdCreateTemp:
		return "CREATE TEMP"
	case CmdSessionLock:
		return "a session-level advisory lock"
	case CmdEmpty:
		return "empty statement"
	}
	return fmt.Sprintf("command(%d)", c)
}
