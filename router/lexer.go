package router

import "strings"

// span is one statement of a query string: its text, its first word and
// what the lexer noticed in it.
type span struct {
	text    string
	keyword string // one of the keywords below, "other", or "" when empty
	// sessionLock: the statement calls a session-level advisory lock
	// function, whose lock outlives the transaction.
	sessionLock bool

	verb verb
	// lead counts the '(' before the verb (a parenthesised query); odd:
	// the statement starts with something else than a word or '('.
	lead int
	odd  bool
	// queryLike: the verb starts a query whose words the prefilter needs
	// (flags); for other verbs the words are not looked at.
	queryLike bool
	flags     flags
	// toks are the first tokens (verb included), ntok how many tokens the
	// statement has: enough to recognise short fixed forms like COMMIT AND
	// CHAIN without a parse.
	toks [6]string
	ntok int
}

// flags are tokens after the first word that may turn a read into a write.
type flags uint16

const (
	fFor      flags = 1 << iota // FOR: a locking clause
	fInto                       // INTO: SELECT INTO creates a table
	fDML                        // INSERT, UPDATE, DELETE, MERGE: a data-modifying CTE
	fWriteFn                    // a name that may be a function that writes
	fAnalyze                    // EXPLAIN ANALYZE
	fFrom                       // COPY ... FROM
	fProgram                    // COPY ... TO PROGRAM
	fToFile                     // COPY ... TO something other than STDOUT
	fCopyOut  = fFor | fInto | fDML | fWriteFn | fFrom | fProgram | fToFile
	fSelectRW = fFor | fInto | fDML | fWriteFn
)

// split cuts a query string into statements (used by tests; Analyze uses
// the scanner directly to avoid allocating).
func split(sql string) []span {
	var out []span
	sc := scanner{sql: sql, fns: defaultFuncs}
	for {
		sp, ok := sc.next()
		if !ok {
			return out
		}
		out = append(out, sp)
	}
}

// scanner cuts a query string into statements at top-level semicolons,
// skipping quoted strings, quoted identifiers, dollar-quoted bodies and
// comments, so a ';' inside any of them does not end a statement. The
// final statement is returned even when empty only if it is the only one.
// Routing hints are looked for in the comments it skips, so text without
// comments pays nothing for them.
type scanner struct {
	sql  string
	pos  int
	seen int
	fns  *funcSet
	hint Hint
}

func (sc *scanner) next() (span, bool) {
	sql := sc.sql
	if sc.pos > len(sql) || (sc.pos == len(sql) && sc.seen > 0) {
		return span{}, false
	}
	var sp span
	start, i := sc.pos, sc.pos
	// afterTo: the previous token was TO, so the next one says where COPY
	// writes.
	afterTo := false
	for i < len(sql) {
		c := sql[i]
		tok := i
		leading := sp.ntok == sp.lead
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			// PostgreSQL ends a -- comment at CR as well as LF: what
			// follows a bare CR is SQL, not comment.
			for i < len(sql) && sql[i] != '\n' && sql[i] != '\r' {
				i++
			}
			sc.comment(sql[tok:i])
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
			sc.comment(sql[tok:i])
			continue
		case c == ';':
			if afterTo {
				sp.flags |= fToFile
			}
			sc.pos, sc.seen = i+1, sc.seen+1
			sp.text = sql[start:i]
			return sp, true
		case c == '\'':
			i = skipString(sql, i, false)
		case c == '"':
			i = skipQuoted(sql, i, '"', false)
			// U&"..." spells a name with escapes: it could be any name.
			if tok > 0 && sql[tok-1] == '&' {
				sp.flags |= fWriteFn
			} else if i-tok >= 2 && sql[i-1] == '"' && sc.fns.suspicious(sql[tok+1:i-1]) {
				sp.flags |= fWriteFn
			}
		case c == '$':
			i = skipDollar(sql, i)
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			if j == i+1 && (c == 'e' || c == 'E') && j < len(sql) && sql[j] == '\'' {
				// E'...': an escape string, where backslash escapes the
				// quote. Only a lone E counts: fooE'x' is a word and a
				// plain string, as PostgreSQL reads it.
				i = skipString(sql, j, true)
				break
			}
			word := sql[i:j]
			i = j
			if leading {
				sp.verb = verbOf(word)
				sp.keyword = verbKeyword[sp.verb]
				sp.queryLike = sp.verb.queryLike()
			} else {
				if sp.queryLike {
					sp.flags |= wordFlags(word, afterTo, sc.fns)
				}
				if len(word) >= len("pg_advisory_lock") && (c == 'p' || c == 'P') {
					sp.sessionLock = sp.sessionLock || isSessionLock(word)
				}
				afterTo = eqFold(word, "to")
			}
			sp.add(word)
			continue
		case c >= '0' && c <= '9':
			// Digits only: PostgreSQL before 15 reads 1for as 1 and FOR,
			// so letters after a number start a new word here too.
			for i < len(sql) && sql[i] >= '0' && sql[i] <= '9' {
				i++
			}
		default:
			i++
			if c == '(' && leading {
				sp.lead++
				sp.add("(")
				continue
			}
		}
		// A token that is not a word.
		if leading {
			sp.odd, sp.keyword = true, "other"
		}
		if afterTo {
			sp.flags |= fToFile // TO followed by anything but STDOUT
			afterTo = false
		}
		sp.add(sql[tok:i])
	}
	if afterTo {
		sp.flags |= fToFile
	}
	sc.pos, sc.seen = len(sql)+1, sc.seen+1
	if sp.ntok == 0 && sc.seen > 1 {
		return span{}, false // trailing whitespace or comments after the last ';'
	}
	sp.text = sql[start:]
	return sp, true
}

// add records a token.
func (sp *span) add(tok string) {
	if sp.ntok < len(sp.toks) {
		sp.toks[sp.ntok] = tok
	}
	sp.ntok++
}

// tok is the i-th token, "" past the end or the recorded ones.
func (sp *span) tok(i int) string {
	if i < sp.ntok && i < len(sp.toks) {
		return sp.toks[i]
	}
	return ""
}

// wordFlags classifies a word after the first one. STDOUT right after
// TO is what makes COPY a read; everything else sets a flag.
func wordFlags(w string, afterTo bool, fns *funcSet) flags {
	var f flags
	switch len(w) {
	case 3:
		if eqFold(w, "for") {
			f = fFor
		}
	case 4:
		switch {
		case eqFold(w, "into"):
			f = fInto
		case eqFold(w, "from"):
			f = fFrom
		}
	case 5:
		if eqFold(w, "merge") {
			f = fDML
		}
	case 6:
		switch {
		case eqFold(w, "insert"), eqFold(w, "update"), eqFold(w, "delete"):
			f = fDML
		case eqFold(w, "stdout"):
			afterTo = false
		}
	case 7:
		switch {
		case eqFold(w, "analyze"), eqFold(w, "analyse"):
			f = fAnalyze
		case eqFold(w, "program"):
			f = fProgram
		}
	}
	if afterTo {
		f |= fToFile
	}
	if fns.suspicious(w) {
		f |= fWriteFn
	}
	return f
}

// comment looks for a routing hint in a comment's text.
func (sc *scanner) comment(text string) {
	if h := parseHint(text); h != HintNone && sc.hint != HintPrimary {
		sc.hint = h // primary wins over replica: the safe side
	}
}

// parseHint reads "shardgate:" followed by key=value pairs, separated by
// spaces or commas, anywhere in a comment. Unknown keys and values are
// skipped so that new ones can be added without breaking old proxies.
func parseHint(c string) Hint {
	h := HintNone
	forEachHint(c, wordValue, func(key, val string) {
		if !eqFold(key, "role") {
			return
		}
		switch {
		case eqFold(val, "primary"):
			h = HintPrimary
		case eqFold(val, "replica") && h == HintNone:
			h = HintReplica
		}
	})
	return h
}

// forEachHint calls fn with each key=value pair after every "shardgate:"
// in a comment, reading values with value.
func forEachHint(c string, value func(string) (val, rest string, ok bool), fn func(key, val string)) {
	for {
		k := indexFold(c, "shardgate")
		if k < 0 {
			return
		}
		c = trimSpace(c[k+len("shardgate"):])
		if c == "" || c[0] != ':' {
			continue
		}
		c = c[1:]
		for {
			for c != "" && (c[0] == ',' || isSpace(c[0])) {
				c = c[1:]
			}
			key, rest := hintWord(c)
			rest = trimSpace(rest)
			if key == "" || rest == "" || rest[0] != '=' {
				c = rest
				break
			}
			val, rest, ok := value(trimSpace(rest[1:]))
			c = rest
			if ok {
				fn(key, val)
			}
		}
	}
}

// wordValue reads a hint value that is a single word.
func wordValue(s string) (val, rest string, ok bool) {
	val, rest = hintWord(s)
	return val, rest, true
}

func hintWord(s string) (word, rest string) {
	i := 0
	for i < len(s) && (isIdentPart(s[i]) || s[i] == '.' || s[i] == '-') {
		i++
	}
	return s[:i], s[i:]
}

func trimSpace(s string) string {
	for s != "" && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// sessionLocks are the advisory lock functions whose locks belong to the
// session, not the transaction (the _xact_ variants are harmless).
var sessionLocks = []string{"pg_advisory_lock", "pg_advisory_lock_shared",
	"pg_try_advisory_lock", "pg_try_advisory_lock_shared"}

func isSessionLock(word string) bool {
	for _, f := range sessionLocks {
		if eqFold(word, f) {
			return true
		}
	}
	return false
}

// eqFold compares ASCII case-insensitively. PostgreSQL folds only ASCII
// letters in names and keywords, so Unicode folding (ſ as s, K as k)
// would find keywords the server does not see.
func eqFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold is strings.HasPrefix with eqFold's folding.
func hasPrefixFold(s, lower string) bool {
	return len(s) >= len(lower) && eqFold(s[:len(lower)], lower)
}

// indexFold is strings.Index with eqFold's folding, without allocating.
func indexFold(s, lower string) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		if eqFold(s[i:i+len(lower)], lower) {
			return i
		}
	}
	return -1
}

// skipString returns the index just past the string literal starting at
// i. In an escape string (E'...') a backslash escapes the next byte, and
// a string continued on a later line ('a'<newline>'b') stays one.
func skipString(s string, i int, backslash bool) int {
	for {
		i = skipQuoted(s, i, '\'', backslash)
		if !backslash {
			return i
		}
		j, ok := continuation(s, i)
		if !ok {
			return i
		}
		i = j
	}
}

// continuation reports whether the string that ended just before i goes
// on: only whitespace with a newline (and -- comments) before the next
// quote. It returns the index of that quote.
func continuation(s string, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-' && newline:
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '\'' && newline:
			return i, true
		default:
			return i, false
		}
	}
	return i, false
}

// skipQuoted returns the index just past the quoted token starting at i.
// A doubled quote is an escaped quote; with backslash set (E'...'), a
// backslash escapes the next byte too.
func skipQuoted(s string, i int, q byte, backslash bool) int {
	i++
	for i < len(s) {
		switch s[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// skipBlockComment handles nesting, as PostgreSQL does.
func skipBlockComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch {
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && i+1 < len(s) && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipDollar skips $tag$...$tag$; a '$' that does not open a valid tag
// (a parameter like $1) is a single byte.
func skipDollar(s string, i int) int {
	j := i + 1
	for j < len(s) && s[j] != '$' {
		if !isIdentPart(s[j]) || (j == i+1 && s[j] >= '0' && s[j] <= '9') {
			return i + 1
		}
		j++
	}
	if j >= len(s) {
		return i + 1
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$'
}
