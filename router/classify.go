package router

import "strings"

// verb is the first word of a statement, as far as classification cares.
type verb uint8

const (
	verbNone verb = iota // no word, or one that is none of the below
	verbSelect
	verbWith
	verbValues
	verbTable
	verbExplain
	verbCopy
	verbShow
	verbBegin
	verbStart
	verbCommit
	verbEnd
	verbRollback
	verbAbort
	verbSavepoint
	verbRelease
	verbSet
	verbReset
	verbDiscard
	verbDeallocate
	verbClose
	verbFetch
	verbMove
	verbListen
	verbUnlisten
	verbPrepare
	verbExecute
	verbDeclare
	verbCreate
	numVerbs
)

// verbWords spells the verbs, in order.
var verbWords = [numVerbs]string{"", "select", "with", "values", "table", "explain", "copy",
	"show", "begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release",
	"set", "reset", "discard", "deallocate", "close", "fetch", "move", "listen", "unlisten",
	"prepare", "execute", "declare", "create"}

// verbKeyword is span.keyword for each verb: the first words the session
// bookkeeping has always cared about, "other" for the rest.
var verbKeyword = func() (k [numVerbs]string) {
	for v := range k {
		k[v] = "other"
	}
	for _, v := range []verb{verbBegin, verbStart, verbListen, verbUnlisten, verbPrepare,
		verbExecute, verbDeallocate, verbDiscard, verbDeclare, verbSet, verbReset, verbCreate} {
		k[v] = verbWords[v]
	}
	return k
}()

// queryLike reports whether the prefilter looks at the words after v.
func (v verb) queryLike() bool {
	switch v {
	case verbSelect, verbWith, verbValues, verbTable, verbCopy, verbExplain:
		return true
	}
	return false
}

func verbOf(word string) verb {
	if len(word) < 3 || len(word) > len("deallocate") {
		return verbNone
	}
	for v := verbSelect; v < numVerbs; v++ {
		if eqFold(word, verbWords[v]) {
			return v
		}
	}
	return verbNone
}

// builtinWriteFuncs are functions a SELECT may call that change data or
// state a replica does not have (sequences, locks, notifications, large
// objects, server control). currval and lastval only read, but read
// session state that nextval left on the primary.
var builtinWriteFuncs = []string{
	"nextval", "setval", "currval", "lastval",
	"pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
	"pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
	"pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
	"pg_advisory_unlock_shared", "pg_advisory_unlock_all",
	"set_config", "txid_current", "txid_current_if_assigned", "pg_current_xact_id",
	"pg_current_xact_id_if_assigned", "pg_notify", "pg_switch_wal", "pg_create_restore_point",
	"pg_logical_emit_message", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
	"pg_rotate_logfile", "dblink_exec",
	"lo_create", "lo_creat", "lo_import", "lo_export", "lo_unlink", "lo_put", "lo_from_bytea",
	"lowrite", "lo_open", "lo_truncate", "lo_truncate64", "lo_close", "loread", "lo_lseek",
	"lo_lseek64", "lo_tell", "lo_tell64",
}

// maxIdent is the longest name PostgreSQL keeps (NAMEDATALEN-1): longer
// names are cut, so a long word can still call a function of this length.
const maxIdent = 63

// funcSet is a set of function names whose calls make a statement a
// write.
type funcSet struct {
	names map[string]struct{} // lower case, at most maxIdent bytes
	// lens has bit n of entry c set when a name of n bytes starts with
	// byte c: most words are rejected without hashing.
	lens [256]uint64
}

var defaultFuncs = newFuncSet(nil)

func newFuncSet(extra []string) *funcSet {
	f := &funcSet{names: map[string]struct{}{}}
	for _, list := range [][]string{builtinWriteFuncs, extra} {
		for _, n := range list {
			n = strings.ToLower(strings.TrimSpace(n))
			if dot := strings.LastIndexByte(n, '.'); dot >= 0 {
				n = n[dot+1:] // calls are matched by their unqualified name
			}
			if len(n) > maxIdent {
				n = n[:maxIdent]
			}
			if n == "" {
				continue
			}
			f.names[n] = struct{}{}
			f.lens[n[0]] |= 1 << len(n)
		}
	}
	return f
}

// has reports whether name (any case) is in the set.
func (f *funcSet) has(name string) bool {
	if len(name) > maxIdent {
		name = name[:maxIdent]
	}
	if name == "" {
		return false
	}
	c := name[0]
	if c >= 'A' && c <= 'Z' {
		c += 'a' - 'A'
	}
	if f.lens[c]&(1<<len(name)) == 0 {
		return false
	}
	var buf [maxIdent]byte
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		buf[i] = b
	}
	_, ok := f.names[string(buf[:len(name)])] // no allocation: a map index
	return ok
}

// suspicious reports whether a word may name a function that writes: one
// in the set, or any large-object or advisory-lock function (lo_get is a
// read, so the parser decides those).
func (f *funcSet) suspicious(word string) bool {
	return hasPrefixFold(word, "lo_") || hasPrefixFold(word, "pg_advisory") || f.has(word)
}

// verdict is what the lexer alone tells about a statement: its Statement
// (Command, Write, Chain; never Set or Show), or that the parser must
// decide.
type verdict struct {
	st    Statement
	parse bool
	// typed: the parser's answer comes from the statement's node itself
	// (SET, SHOW, transaction options), not from walking the tree.
	typed bool
}

var (
	readOf  = verdict{}
	writeOf = verdict{st: Statement{Write: true}}
	parseOf = verdict{parse: true}
	typedOf = verdict{parse: true, typed: true}
)

func cmdOf(c Command, write bool) verdict {
	return verdict{st: Statement{Command: c, Write: write}}
}

// prefilter classifies a statement from its tokens. It never calls a
// statement that may write a read: anything it cannot be sure of goes to
// the parser.
func prefilter(sp *span) verdict {
	switch {
	case sp.ntok == 0:
		return cmdOf(CmdEmpty, false)
	case sp.odd:
		return writeOf
	case sp.lead > 0:
		switch sp.verb {
		case verbSelect, verbWith, verbValues, verbTable:
			return selectVerdict(sp, fSelectRW)
		}
		return writeOf
	}
	switch sp.verb {
	case verbSelect, verbWith, verbValues, verbTable:
		return selectVerdict(sp, fSelectRW)
	case verbCopy:
		return selectVerdict(sp, fCopyOut)
	case verbExplain:
		// Without ANALYZE the statement is only planned, never run.
		if sp.flags&fAnalyze != 0 {
			return parseOf
		}
		return readOf
	}
	if sp.sessionLock {
		// Whatever the statement is, it may take a lock that outlives it
		// (INSERT ... SELECT pg_advisory_lock(1)).
		return cmdOf(CmdSessionLock, true)
	}
	switch sp.verb {
	case verbShow, verbSet, verbReset:
		return typedOf
	case verbBegin, verbStart, verbCommit, verbEnd, verbRollback, verbAbort:
		return txVerdict(sp)
	case verbSavepoint, verbRelease, verbClose, verbFetch, verbMove:
		return readOf
	case verbDiscard:
		if eqFold(sp.tok(1), "all") {
			return cmdOf(CmdDiscardAll, false)
		}
		return readOf
	case verbDeallocate:
		return cmdOf(CmdDeallocate, false)
	case verbListen, verbUnlisten:
		return cmdOf(CmdListen, true)
	case verbPrepare:
		// PREPARE TRANSACTION is two-phase commit, not a statement.
		if eqFold(sp.tok(1), "transaction") {
			return writeOf
		}
		return cmdOf(CmdPrepare, true)
	case verbExecute:
		return cmdOf(CmdExecute, true)
	case verbDeclare:
		if indexFold(sp.text, " with hold") >= 0 {
			return cmdOf(CmdDeclareHold, true)
		}
		return writeOf
	case verbCreate:
		if createsTemp(sp) {
			return cmdOf(CmdCreateTemp, true)
		}
		return writeOf
	}
	return writeOf
}

// selectVerdict: a query is a read unless a token in suspect appears.
func selectVerdict(sp *span, suspect flags) verdict {
	if sp.flags&suspect != 0 {
		return parseOf
	}
	return readOf
}

// txVerdict recognises the bare forms of transaction control, the ones
// every transaction uses; options (BEGIN READ ONLY, ...) need the parser.
func txVerdict(sp *span) verdict {
	i := 1
	if w := sp.tok(i); eqFold(w, "work") || eqFold(w, "transaction") {
		i++
	}
	switch sp.verb {
	case verbBegin, verbStart:
		if sp.ntok == i && (sp.verb == verbBegin || i == 2) {
			return cmdOf(CmdBegin, false)
		}
		return typedOf
	}
	if i == 1 && eqFold(sp.tok(1), "prepared") {
		return writeOf // COMMIT PREPARED / ROLLBACK PREPARED: two-phase commit
	}
	if sp.verb == verbRollback && eqFold(sp.tok(i), "to") {
		return readOf // ROLLBACK TO SAVEPOINT
	}
	cmd, chain := CmdCommit, false
	if sp.verb == verbRollback || sp.verb == verbAbort {
		cmd = CmdRollback
	}
	switch {
	case sp.ntok == i:
	case sp.ntok == i+2 && eqFold(sp.tok(i), "and") && eqFold(sp.tok(i+1), "chain"):
		chain = true
	case sp.ntok == i+3 && eqFold(sp.tok(i), "and") && eqFold(sp.tok(i+1), "no") &&
		eqFold(sp.tok(i+2), "chain"):
	default:
		return typedOf
	}
	return verdict{st: Statement{Command: cmd, Chain: chain}}
}

// createsTemp spots CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP[ORARY] ...
// and objects created in the pg_temp schema (UNLOGGED is not temporary).
func createsTemp(sp *span) bool {
	if indexFold(sp.text, "pg_temp.") >= 0 {
		return true // CREATE TYPE pg_temp.x, CREATE FUNCTION pg_temp.f ...
	}
	for i := 1; i < len(sp.toks); i++ {
		switch w := sp.tok(i); {
		case eqFold(w, "temp"), eqFold(w, "temporary"):
			return true
		case eqFold(w, "or"), eqFold(w, "replace"), eqFold(w, "global"), eqFold(w, "local"):
			continue
		}
		return false
	}
	return false
}
