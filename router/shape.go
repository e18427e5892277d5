package router

import (
	"math"
	"strconv"
	"strings"
)

// A shape is a query text with its constants cut out: key is the text
// with each replaceable literal written as a parameter $n, the same $n
// for literals the planner would find equal, and with comments that hold
// no shardgate hint blanked out. Texts of one shape differ only in the
// values of their $n, so the plan of the key, with its parameters
// replaced by the values, is the plan of each text; shape_plan.go uses
// that to plan such texts without the parser.
//
// read replaces only where a parameter means to the parser exactly what
// the literal meant, up to the constant node becoming a parameter node,
// and gives up on the text otherwise (the text is then planned as it
// is). shape_rules.go decides, literal by literal.
type shape struct {
	sql string
	key []byte
	// last: sql[:last] is already in key.
	last int
	// canon holds the values of the replaced literals (vals) and of the
	// kept ones the planner may read as values (kept), as it spells them
	// (Value.Text).
	canon []byte
	vals  []valSpan // the value of parameter i+1
	kept  []valSpan
	occ   []occurrence // the replaced literals, in order
	// hist holds the latest significant tokens in a ring: the last one
	// at head.
	hist  [histLen]shapeTok
	head  int
	nhist int
	depth int
	// lists has bit d set while an ORDER BY, GROUP BY or DISTINCT ON list
	// is open at parenthesis depth d: a literal item there is an ordinal.
	lists uint64
	ended bool // a ';' ended the statement
}

// valSpan is a value in canon: canon[off:end].
type valSpan struct{ off, end int }

// occurrence is one replaced literal: sql[start:end] (a folded sign
// included) became parameter param.
type occurrence struct{ start, end, param int }

const (
	histLen = 8 // a power of two
	// maxLiterals bounds the replaced literals of a text: more go to the
	// parser (long VALUES and IN lists make plans this path does not
	// serve anyway).
	maxLiterals = 128
	maxDepth    = 63
)

type tokKind uint8

const (
	tkNone   tokKind = iota // before the text, or at its end
	tkWord                  // a name or keyword, unquoted
	tkQuoted                // "a name"
	tkNumber
	tkString
	tkOp // an operator, as PostgreSQL's lexer cuts it
	tkLParen
	tkRParen
	tkLBrack
	tkRBrack
	tkComma
	tkSemi
	tkDot
	tkColon
	tkCast // ::
)

type shapeTok struct {
	kind       tokKind
	start, end int
}

// tok returns the i-th latest token, tkNone past the history.
func (sh *shape) tok(i int) shapeTok {
	if i >= sh.nhist {
		return shapeTok{}
	}
	return sh.hist[(sh.head-i)&(histLen-1)]
}

func (sh *shape) text(t shapeTok) string { return sh.sql[t.start:t.end] }

// isWord reports whether t is the word w (lower case).
func (sh *shape) isWord(t shapeTok, w string) bool {
	return t.kind == tkWord && eqFold(sh.text(t), w)
}

func (sh *shape) push(t shapeTok) {
	sh.head = (sh.head + 1) & (histLen - 1)
	sh.hist[sh.head] = t
	if sh.nhist < histLen {
		sh.nhist++
	}
}

func (sh *shape) reset(sql string) {
	*sh = shape{sql: sql, key: sh.key[:0], canon: sh.canon[:0], vals: sh.vals[:0],
		kept: sh.kept[:0], occ: sh.occ[:0]}
}

// read shapes sql. It reports false for a text it does not handle: not a
// single SELECT, INSERT, UPDATE, DELETE or WITH statement, bind
// parameters already in it, a literal whose replacement could change
// what the parser makes of the text, or more than maxLiterals literals.
func (sh *shape) read(sql string) bool {
	sh.reset(sql)
	if len(sql) > maxCachedQuery || strings.IndexByte(sql, 0) >= 0 {
		return false // a NUL ends the text for the C parser
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			j := lineEnd(sql, i)
			if j+1 < len(sql) && sql[j] == '\r' && sql[j+1] != '\n' {
				// PostgreSQL ends the comment at the CR, the hint reader
				// at the next LF.
				return false
			}
			sh.comment(i, j)
			i = j
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			j, ok := commentEnd(sql, i)
			if !ok {
				return false
			}
			sh.comment(i, j)
			i = j
			continue
		}
		if sh.ended || (sh.nhist == 0 && !isIdentStart(c)) {
			return false
		}
		t, ok := sh.next(i)
		if !ok {
			return false
		}
		if sh.nhist == 0 && !shapedVerb(sh.text(t)) {
			return false
		}
		switch t.kind {
		case tkNumber, tkString:
			if !sh.literal(t) {
				return false
			}
		case tkWord:
			sh.word(t)
		case tkLParen:
			if sh.depth == maxDepth {
				return false
			}
			sh.depth++
			sh.lists &^= 1 << sh.depth
			if sh.isWord(sh.tok(0), "on") && sh.isWord(sh.tok(1), "distinct") {
				sh.lists |= 1 << sh.depth
			}
		case tkRParen:
			if sh.depth == 0 {
				return false
			}
			sh.lists &^= 1 << sh.depth
			sh.depth--
		case tkSemi:
			if sh.depth != 0 {
				return false
			}
			sh.ended = true
		}
		sh.push(t)
		i = t.end
	}
	sh.key = append(sh.key, sql[sh.last:]...)
	return sh.nhist > 0 && !sh.collides()
}

// shapedVerb reports whether a statement starting with w may be shaped.
func shapedVerb(w string) bool {
	switch len(w) {
	case 4:
		return eqFold(w, "with")
	case 6:
		return eqFold(w, "select") || eqFold(w, "insert") || eqFold(w, "update") || eqFold(w, "delete")
	}
	return false
}

// next reads the token at i, which is not a space or a comment.
func (sh *shape) next(i int) (shapeTok, bool) {
	sql := sh.sql
	c := sql[i]
	t := shapeTok{start: i, end: i + 1}
	switch {
	case c == '\'':
		j, ok := stringEnd(sql, i)
		t.kind, t.end = tkString, j
		return t, ok
	case c == '"':
		j, ok := stringEnd(sql, i)
		t.kind, t.end = tkQuoted, j
		return t, ok && j-i > 2
	case isIdentStart(c):
		j := i + 1
		for j < len(sql) && isIdentPart(sql[j]) {
			j++
		}
		if j < len(sql) && sql[j] == '\'' && j == i+1 && strings.IndexByte("eEbBxXnN", c) >= 0 {
			return t, false // E'...', B'...', X'...', N'...': special strings
		}
		t.kind, t.end = tkWord, j
		return t, true
	case c >= '0' && c <= '9', c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
		j, ok := numberEnd(sql, i)
		t.kind, t.end = tkNumber, j
		return t, ok
	case c == ':':
		t.kind = tkColon
		if i+1 < len(sql) && sql[i+1] == ':' {
			t.kind, t.end = tkCast, i+2
		}
		return t, true
	case isOpChar(c):
		t.kind, t.end = tkOp, opEnd(sql, i)
		return t, true
	}
	switch c {
	case '(':
		t.kind = tkLParen
	case ')':
		t.kind = tkRParen
	case '[':
		t.kind = tkLBrack
	case ']':
		t.kind = tkRBrack
	case ',':
		t.kind = tkComma
	case ';':
		t.kind = tkSemi
	case '.':
		t.kind = tkDot
	default:
		return t, false // '$' (parameters, dollar quotes) and stray bytes are not handled
	}
	return t, true
}

// comment blanks out sql[i:j] unless it holds a shardgate hint, which the
// plan of the key must see.
func (sh *shape) comment(i, j int) {
	if indexFold(sh.sql[i:j], "shardgate") >= 0 {
		return
	}
	sh.key = append(sh.key, sh.sql[sh.last:i]...)
	sh.key = append(sh.key, ' ')
	sh.last = j
}

// replace writes parameter $n for sql[start:end] and records the
// occurrence.
func (sh *shape) replace(start, end, n int) {
	sh.key = append(sh.key, sh.sql[sh.last:start]...)
	if k := len(sh.key); k > 0 && isIdentPart(sh.key[k-1]) {
		sh.key = append(sh.key, ' ')
	}
	sh.key = append(sh.key, '$')
	sh.key = strconv.AppendInt(sh.key, int64(n), 10)
	if end < len(sh.sql) && isIdentPart(sh.sql[end]) {
		sh.key = append(sh.key, ' ')
	}
	sh.last = end
	sh.occ = append(sh.occ, occurrence{start: start, end: end, param: n})
}

// param returns the parameter number for the value just appended to
// canon at off: the one of an equal value already seen, or a new one.
func (sh *shape) param(off int) int {
	v := sh.canon[off:]
	for i, s := range sh.vals {
		if string(sh.canon[s.off:s.end]) == string(v) {
			sh.canon = sh.canon[:off]
			return i + 1
		}
	}
	sh.vals = append(sh.vals, valSpan{off, len(sh.canon)})
	return len(sh.vals)
}

// keep notes the value just appended to canon at off as a literal left in
// the text.
func (sh *shape) keep(off int) {
	sh.kept = append(sh.kept, valSpan{off, len(sh.canon)})
}

// collides reports whether a kept literal has the value of a replaced
// one: the planner would find them equal, the plan of the key not.
func (sh *shape) collides() bool {
	for _, k := range sh.kept {
		for _, v := range sh.vals {
			if string(sh.canon[k.off:k.end]) == string(sh.canon[v.off:v.end]) {
				return true
			}
		}
	}
	return false
}

// value returns the i-th parameter's value (1-based).
func (sh *shape) value(i int) []byte {
	v := sh.vals[i-1]
	return sh.canon[v.off:v.end]
}

// appendString appends the value of the standard string literal lit
// ('...', doubled quotes standing for one).
func appendString(dst []byte, lit string) []byte {
	body := lit[1 : len(lit)-1]
	for {
		k := strings.Index(body, "''")
		if k < 0 {
			return append(dst, body...)
		}
		dst = append(dst, body[:k+1]...)
		body = body[k+2:]
	}
}

// appendNumber appends a numeric literal's value as the parser makes it:
// an integer that fits in 32 bits is rewritten in decimal (007 is 7),
// anything else is kept as written; neg is a sign folded into it.
func appendNumber(dst []byte, lit string, neg bool) []byte {
	if v, ok := int32Value(lit); ok {
		if neg {
			v = -v
		}
		return strconv.AppendInt(dst, v, 10)
	}
	if neg {
		dst = append(dst, '-')
	}
	return append(dst, lit...)
}

// int32Value reads a number of decimal digits that fits in 32 bits, as
// pg_strtoint32 does (strconv.ParseInt would allocate its error for the
// others).
func int32Value(lit string) (int64, bool) {
	var v int64
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v = v*10 + int64(c-'0'); v > math.MaxInt32 {
			return 0, false
		}
	}
	return v, len(lit) > 0
}

// lineEnd returns the end of the -- comment at i: its CR or LF, as
// PostgreSQL's lexer ends it, or the end of s.
func lineEnd(s string, i int) int {
	for i < len(s) && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}

// stringEnd returns the index past the quoted token at i ('...' or
// "..."), with ok=false when it is not closed.
func stringEnd(s string, i int) (int, bool) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			j++
			continue
		}
		return j + 1, true
	}
	return len(s), false
}

// commentEnd returns the index past the (nested) block comment at i, with
// ok=false when it is not closed.
func commentEnd(s string, i int) (int, bool) {
	depth := 0
	for i+1 < len(s) {
		switch {
		case s[i] == '/' && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return len(s), false
}

// numberEnd returns the index past the number at i: digits, a fraction,
// an exponent. ok=false for what PostgreSQL 16 reads otherwise or
// rejects: 0x1F, 1_000, 1..2, 1e, and a number with letters stuck to it.
func numberEnd(s string, i int) (int, bool) {
	j := digitsEnd(s, i)
	if j < len(s) && s[j] == '.' {
		if j+1 < len(s) && s[j+1] == '.' {
			return j, false
		}
		j = digitsEnd(s, j+1)
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k == len(s) || s[k] < '0' || s[k] > '9' {
			return j, false
		}
		j = digitsEnd(s, k)
	}
	if j < len(s) && (isIdentStart(s[j]) || s[j] == '.') {
		return j, false
	}
	return j, true
}

func digitsEnd(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func isOpChar(c byte) bool { return opChars[c] }

var opChars = func() (t [256]bool) {
	for _, c := range []byte("~!@#^&|`?+-*/%<>=") {
		t[c] = true
	}
	return t
}()

// opEnd returns the end of the operator at i as PostgreSQL's lexer cuts
// it: the longest run of operator characters, stopped before a comment
// start, less trailing '+' and '-' unless the run holds a character that
// only user-defined operators have (so =- is = then -, but @- is one).
func opEnd(s string, i int) int {
	j := i + 1
	for j < len(s) && isOpChar(s[j]) {
		if j+1 < len(s) && (s[j:j+2] == "--" || s[j:j+2] == "/*") {
			break
		}
		j++
	}
	if j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') && strings.IndexAny(s[i:j-1], "~!@#^&|`?%") < 0 {
		for j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') {
			j--
		}
	}
	return j
}
