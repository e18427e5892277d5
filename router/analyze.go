package router

import "fmt"

// Command is what a statement means for pooling and session state.
type Command uint8

// Commands the proxy treats specially; everything else is CmdOther.
const (
	CmdOther       Command = iota
	CmdEmpty               // only whitespace or comments
	CmdSet                 // SET / RESET / SET TIME ZONE / SET ROLE ...; see Statement.Set
	CmdBegin               // BEGIN, START TRANSACTION; see Statement.TxAccess
	CmdDiscardAll          // DISCARD ALL
	CmdListen              // LISTEN / UNLISTEN
	CmdPrepare             // SQL-level PREPARE
	CmdExecute             // SQL-level EXECUTE
	CmdDeallocate          // SQL-level DEALLOCATE
	CmdDeclareHold         // DECLARE ... CURSOR WITH HOLD
	CmdCreateTemp          // CREATE TEMP TABLE/VIEW/SEQUENCE ...
	CmdSessionLock         // a call of pg_advisory_lock() and friends
	// CmdCommit is COMMIT or END (not COMMIT PREPARED); see Statement.Chain.
	CmdCommit
	// CmdRollback is ROLLBACK or ABORT (not ROLLBACK TO SAVEPOINT, nor
	// ROLLBACK PREPARED); see Statement.Chain.
	CmdRollback
	// CmdSetTransaction is SET TRANSACTION ...; see Statement.TxAccess.
	CmdSetTransaction
	// CmdShow is SHOW; see Statement.Show.
	CmdShow
	numCommands
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

// TxAccess is the access mode a BEGIN or SET TRANSACTION asks for.
type TxAccess uint8

// Access modes.
const (
	// TxDefault: the statement does not say; the session's
	// default_transaction_read_only applies.
	TxDefault TxAccess = iota
	// TxReadOnly is READ ONLY.
	TxReadOnly
	// TxReadWrite is READ WRITE.
	TxReadWrite
)

// Hint is a routing override written in a comment.
type Hint uint8

// Hints, from /* shardgate: role=primary */ or -- shardgate: role=replica.
const (
	// HintNone: no hint in the text.
	HintNone Hint = iota
	// HintPrimary asks for the primary; it wins when a text has both.
	HintPrimary
	// HintReplica asks for a replica.
	HintReplica
)

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
	// Show is the parameter a CmdShow reads, as the server names it:
	// unquoted names lower-cased, quoted ones as written, "all" for SHOW
	// ALL, "timezone" for SHOW TIME ZONE.
	Show string
	// TxAccess is the access mode of a CmdBegin or CmdSetTransaction.
	TxAccess TxAccess
	// Chain is set for COMMIT AND CHAIN and ROLLBACK AND CHAIN, which
	// start a new transaction at once: the session stays in one.
	Chain bool
	// Write reports that the statement may change data, or needs state
	// only the primary has: it must not run on a replica.
	Write bool
}

// Analysis describes a query string, statement by statement, in order.
// Results are shared (the parse cache hands out one Analysis to every
// caller of the same text): treat Statements and what it points to as
// read-only.
type Analysis struct {
	Statements []Statement
	// Write reports that some statement may change data; it is set even
	// when Statements is nil.
	Write bool
	// Hint is the routing override found in the text's comments.
	Hint Hint
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

// Plain reports whether nothing in the text needs the proxy's attention.
func (a *Analysis) Plain() bool { return len(a.Statements) == 0 }

// Options configure a Router.
type Options struct {
	// CacheSize bounds the parse cache, the plan cache and the cache of
	// plans by shape (entries each); default 10000. A negative size turns
	// them off.
	CacheSize int
	// WriteFunctions are extra function names (lower case, unqualified)
	// whose calls make a statement a write.
	WriteFunctions []string
}

// DefaultCacheSize is the parse cache's size when Options leave it 0.
const DefaultCacheSize = 10000

// Router analyses query strings. It is safe for concurrent use.
type Router struct {
	fns   *funcSet
	cache *cache[Analysis] // nil when off
	plans *planCache       // Plan's cache; nil when off
	// shapes caches plans by shape (shape_plan.go); nil when off.
	shapes *cache[shapeEntry]
	// hits and misses count texts served without and with the parser.
	hits, misses counter
}

// New returns a Router configured by o.
func New(o Options) *Router {
	r := &Router{fns: defaultFuncs}
	if len(o.WriteFunctions) > 0 {
		r.fns = newFuncSet(o.WriteFunctions)
	}
	size := o.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		r.cache = newCache[Analysis](size)
		r.plans = newPlanCache(size)
		r.shapes = newCache[shapeEntry](size)
	}
	return r
}

var defaultRouter = New(Options{})

// Analyze describes the statements of sql with a Router that has the
// default Options.
func Analyze(sql string) Analysis { return defaultRouter.Analyze(sql) }

// Analyze describes the statements of sql. Text the parser rejects is
// described as CmdOther and a write: the server will report the syntax
// error itself. The result keeps no reference to sql, so sql may be a
// view of a buffer that is reused afterwards.
func (r *Router) Analyze(sql string) Analysis {
	// A first pass with the lexer alone decides most texts without
	// allocating: plain statements leave Statements nil, and only texts
	// with a statement the lexer cannot settle go to the cache, and on a
	// miss to the parser.
	var write, special, parse bool
	n := 0
	sc := scanner{sql: sql, fns: r.fns}
	for {
		sp, ok := sc.next()
		if !ok {
			break
		}
		v := prefilter(&sp)
		if v.st.Command == CmdEmpty {
			// The server answers empty statements of a longer string
			// with nothing, so they do not count.
			continue
		}
		n++
		write = write || v.st.Write
		special = special || v.st.Command != CmdOther
		parse = parse || v.parse
	}
	switch {
	case parse:
		if r.cache != nil {
			if a, ok := r.cache.get(sql); ok {
				r.hits.add(len(sql))
				return a
			}
		}
		r.misses.add(len(sql))
	case n == 0:
		return Analysis{Statements: shared(Statement{Command: CmdEmpty}), Hint: sc.hint}
	case !special:
		return Analysis{Write: write, Hint: sc.hint}
	}
	a := r.build(sql, n)
	a.Hint = sc.hint
	if parse && r.cache != nil {
		r.cache.put(sql, a)
	}
	return a
}

// build analyses the n statements of sql fully, parsing where needed.
// Statements stays nil unless one of them is special; otherwise it lists
// them all, plain ones included, because statement i must be the one the
// i-th CommandComplete reports.
func (r *Router) build(sql string, n int) Analysis {
	var (
		a       Analysis
		first   Statement // the only one when n == 1: no list to allocate
		list    []Statement
		special bool
	)
	sc := scanner{sql: sql, fns: r.fns}
	for {
		sp, ok := sc.next()
		if !ok {
			break
		}
		v := prefilter(&sp)
		st := v.st
		if v.parse {
			st = parseSpan(&sp, v.typed, r.fns)
		}
		if st.Command == CmdEmpty {
			continue
		}
		a.Write = a.Write || st.Write
		special = special || st.Command != CmdOther
		if n == 1 {
			first = st
			continue
		}
		if list == nil {
			list = make([]Statement, 0, n)
		}
		list = append(list, st)
	}
	switch {
	case !special:
	case n == 1:
		a.Statements = shared(first)
	default:
		a.Statements = list
	}
	return a
}

// sharedStatements holds a one-statement list for each combination of the
// fields a statement without Set or Show has, so that BEGIN, COMMIT and
// the like allocate nothing.
var sharedStatements = func() []Statement {
	s := make([]Statement, int(numCommands)*3*2*2)
	for c := Command(0); c < numCommands; c++ {
		for acc := TxDefault; acc <= TxReadWrite; acc++ {
			for _, chain := range []bool{false, true} {
				for _, write := range []bool{false, true} {
					st := Statement{Command: c, TxAccess: acc, Chain: chain, Write: write}
					s[sharedIndex(st)] = st
				}
			}
		}
	}
	return s
}()

func sharedIndex(st Statement) int {
	i := int(st.Command)*3 + int(st.TxAccess)
	i *= 2
	if st.Chain {
		i++
	}
	i *= 2
	if st.Write {
		i++
	}
	return i
}

// shared returns a list holding st alone, without allocating when st is
// one of the common statements.
func shared(st Statement) []Statement {
	if st.Set != nil || st.Show != "" || st.Command >= numCommands || st.TxAccess > TxReadWrite {
		return []Statement{st}
	}
	i := sharedIndex(st)
	return sharedStatements[i : i+1 : i+1]
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
	case CmdCommit:
		return "COMMIT"
	case CmdRollback:
		return "ROLLBACK"
	case CmdSetTransaction:
		return "SET TRANSACTION"
	case CmdShow:
		return "SHOW"
	}
	return fmt.Sprintf("command(%d)", c)
}
