package router

import "strings"

// span is one statement of a query string: its text and first keyword.
type span struct {
	text    string
	keyword string // one of the keywords below, "other", or "" when empty
	// sessionLock: the statement calls a session-level advisory lock
	// function, whose lock outlives the transaction.
	sessionLock bool
}

// split cuts a query string into statements (used by tests; Analyze uses
// the scanner directly to avoid allocating).
func split(sql string) []span {
	var out []span
	sc := scanner{sql: sql}
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
type scanner struct {
	sql  string
	pos  int
	seen int
}

func (sc *scanner) next() (span, bool) {
	sql := sc.sql
	if sc.pos > len(sql) || (sc.pos == len(sql) && sc.seen > 0) {
		return span{}, false
	}
	start, i := sc.pos, sc.pos
	kw, lock := "", false
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == '\'':
			i = skipQuoted(sql, i, '\'', i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e'))
		case c == '"':
			i = skipQuoted(sql, i, '"', false)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
		case c == '$':
			i = skipDollar(sql, i)
		case c == ';':
			sc.pos, sc.seen = i+1, sc.seen+1
			return span{text: sql[start:i], keyword: kw, sessionLock: lock}, true
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			if kw == "" {
				kw = keywordOf(sql[i:j])
			} else if j-i >= len("pg_advisory_lock") && (sql[i] == 'p' || sql[i] == 'P') {
				lock = lock || isSessionLock(sql[i:j])
			}
			i = j
		default:
			i++
		}
	}
	sc.pos, sc.seen = len(sql)+1, sc.seen+1
	if kw == "" && sc.seen > 1 {
		return span{}, false // trailing whitespace or comments after the last ';'
	}
	return span{text: sql[start:], keyword: kw, sessionLock: lock}, true
}

// sessionLocks are the advisory lock functions whose locks belong to the
// session, not the transaction (the _xact_ variants are harmless).
var sessionLocks = []string{"pg_advisory_lock", "pg_advisory_lock_shared",
	"pg_try_advisory_lock", "pg_try_advisory_lock_shared"}

func isSessionLock(word string) bool {
	for _, f := range sessionLocks {
		if len(f) == len(word) && strings.EqualFold(f, word) {
			return true
		}
	}
	return false
}

// keywords are the first words that matter; every other word is "other".
// Matching them case-insensitively against constants keeps the scan free
// of allocations.
var keywords = []string{"begin", "start", "listen", "unlisten", "prepare", "execute",
	"deallocate", "discard", "declare", "set", "reset", "create"}

func keywordOf(word string) string {
	for _, k := range keywords {
		if len(k) == len(word) && strings.EqualFold(k, word) {
			return k
		}
	}
	return "other"
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
	return i
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
