package router

import "unicode/utf8"

// The rules by which shape.read replaces a literal with a parameter. A
// number (42, 1.5, 1e3, -7) or a standard string ('abc', 'it''s') is
// replaced wherever the parser then makes the same tree with a parameter
// node where the constant node was, which is everywhere an expression
// goes, and also in typed literals (DATE '2024-01-01', INTERVAL '1'
// DAY, int4 '5', varchar(3) 'abc') and EXTRACT('epoch' FROM t), where
// pg_query's grammar accepts a parameter so that normalised texts parse.
//
// Signs. A '-' before a number is folded into it where the parser folds
// it (id = -5 has the constant -5): after an operator, '(', ',', '[' or
// a reserved word that an expression follows (WHERE, AND, SELECT, ...).
// After a name, a literal, ')' or ']' it is a subtraction and stays
// (balance - 100). Before '::' it stays: -5::int is -(5::int). After
// anything else (a keyword that may be a name, like BY or VALUE, or
// another '-', as in - -5) and around parentheses (-(5), which the
// parser folds too) the text is not shaped.
//
// Literals that stay as they are:
//   - ordinals: a literal item of ORDER BY, GROUP BY or DISTINCT ON
//     (ORDER BY 2 is the second column, not a constant);
//   - the whole argument of ANY, SOME or ALL, perhaps cast or in
//     parentheses: id = ANY('{1,2}') matches no key, id = ANY($1) one
//     per element;
//   - NULL, TRUE and FALSE, which are keywords.
//
// Kept literals the plan may read as key values (ANY's argument, TRUE,
// FALSE) must not equal a replaced value: the planner would find them
// equal and the key's plan not, so such a text is not shaped.
//
// Texts not shaped: E'...', U&'...', B'...', X'...', N'...' and
// dollar-quoted strings; strings continued on a later line or followed
// by another string; a literal followed by '[' or '.', which a
// parameter takes as a subscript or field; numbers with letters stuck to
// them, hexadecimal, octal and binary numbers and numbers with '_'; a
// number where pg_query would take a parameter but not the number (DATE
// 5, EXTRACT(5 FROM t): see numberFits); strings that are not UTF-8,
// which pg_query rejects.

// literal handles a number or string token: replaced, kept, or the text
// is not shaped (false).
func (sh *shape) literal(t shapeTok) bool {
	lit := sh.text(t)
	next := sh.peek(t.end)
	switch {
	case next.kind == tkLBrack, next.kind == tkDot, next.kind == tkString:
		return false
	case t.kind == tkString && (!utf8.ValidString(lit) || (t.start > 0 && sh.sql[t.start-1] == '&')):
		return false // U&'...', or bytes the parser cannot carry
	}
	// before is the index in hist of the token before the literal, its
	// folded sign included.
	start, neg, before := t.start, false, 0
	if prev := sh.tok(0); t.kind == tkNumber && prev.kind == tkOp && sh.text(prev) == "-" && next.kind != tkCast {
		switch sh.sign() {
		case signUnknown:
			return false
		case signUnary:
			if !allSpace(sh.sql[prev.end:t.start]) {
				return false // a comment between: its hint would be cut out
			}
			start, neg, before = prev.start, true, 1
		}
	}
	switch {
	case t.kind == tkNumber && !sh.numberFits(before):
		return false
	case sh.ordinal(before, next):
		return true
	case sh.anyArgument(before, t.kind == tkString):
		sh.keepValue(t, neg)
		return true
	}
	if len(sh.occ) >= maxLiterals {
		return false
	}
	off := len(sh.canon)
	sh.appendValue(t, neg)
	sh.replace(start, t.end, sh.param(off))
	return true
}

// keepValue notes a literal left in the text.
func (sh *shape) keepValue(t shapeTok, neg bool) {
	off := len(sh.canon)
	sh.appendValue(t, neg)
	sh.keep(off)
}

func (sh *shape) appendValue(t shapeTok, neg bool) {
	if t.kind == tkString {
		sh.canon = appendString(sh.canon, sh.text(t))
	} else {
		sh.canon = appendNumber(sh.canon, sh.text(t), neg)
	}
}

// ordinal reports whether the literal after hist[before] and before next
// is an item of an ORDER BY, GROUP BY or DISTINCT ON list: it then stays
// as it is.
func (sh *shape) ordinal(before int, next shapeTok) bool {
	prev := sh.tok(before)
	item := sh.lists&(1<<sh.depth) != 0 && (prev.kind == tkComma || prev.kind == tkLParen) ||
		sh.isWord(prev, "by") && (sh.isWord(sh.tok(before+1), "order") || sh.isWord(sh.tok(before+1), "group"))
	if !item {
		return false
	}
	switch next.kind {
	case tkComma, tkRParen, tkSemi, tkNone:
		return true
	case tkWord:
		switch keywordClass(sh.text(next)) {
		case kwStart, kwOther:
			// ASC, DESC, NULLS, USING, LIMIT, OFFSET, FETCH, FOR,
			// HAVING, WINDOW, UNION, ORDER, RETURNING, ON, ...: not an
			// operator that would continue the expression.
			return !continuesExpr(sh.text(next))
		}
	}
	return false
}

// continuesExpr reports whether a keyword after a value continues an
// expression (1 AND x, 1 IS NULL, 1 COLLATE "C").
func continuesExpr(w string) bool {
	for _, k := range [...]string{"and", "or", "is", "isnull", "notnull", "not", "in", "like",
		"ilike", "similar", "between", "collate", "at", "overlaps", "escape"} {
		if eqFold(w, k) {
			return true
		}
	}
	return false
}

// anyArgument reports whether the literal after hist[before] is the
// whole argument of ANY, SOME or ALL: after '(' and CAST tokens that
// follow one of them, and for a string perhaps a type name (a typed
// literal: ANY(int4 '5')). A typed literal with type modifiers is not
// recognised; fill refuses the array parameter it would become.
func (sh *shape) anyArgument(before int, str bool) bool {
	if str {
		for sh.tok(before).kind == tkWord && sh.class(before) != kwStart {
			before++
		}
	}
	parens := 0
	for i := before; i < sh.nhist; i++ {
		t := sh.tok(i)
		switch {
		case t.kind == tkLParen:
			parens++
		case sh.isWord(t, "cast"):
		default:
			return parens > 0 && (sh.isWord(t, "any") || sh.isWord(t, "some") || sh.isWord(t, "all"))
		}
	}
	return parens > 0 // the history ran out: keep, to be safe
}

// numberFits reports whether a number may stand after hist[before],
// the token before it, where the parser reads an expression. pg_query's
// grammar takes a parameter in some places only a string may be, so that
// it can parse the texts its own normaliser writes: DATE $1 and
// EXTRACT($1 FROM t) parse, DATE 5 and EXTRACT(5 FROM t) do not. A
// number after a name, a keyword that may be a type name, ')' or ']' is
// not shaped, unless the keyword is one that a number follows in SQL
// (FETCH FIRST 5, ORDER BY 5 + x, x BETWEEN 1 AND 5, ...). -(5) is not
// shaped either: the parser folds the sign into the constant.
func (sh *shape) numberFits(before int) bool {
	p, q := sh.tok(before), sh.tok(before+1)
	switch p.kind {
	case tkLParen:
		return !sh.isWord(q, "extract") && !sh.signBeforeParens(before)
	case tkWord:
	case tkRParen, tkRBrack, tkQuoted, tkNumber, tkString, tkNone:
		return false
	default:
		return true
	}
	w := sh.text(p)
	switch sh.class(before) {
	case kwStart, kwEnd:
		return true
	case kwNone:
		return false
	}
	switch {
	case eqFold(w, "first"), eqFold(w, "next"):
		return sh.isWord(q, "fetch")
	case eqFold(w, "by"):
		return sh.isWord(q, "order") || sh.isWord(q, "group") || sh.isWord(q, "partition")
	}
	for _, k := range [...]string{"between", "like", "ilike", "escape", "overlaps", "rows", "range", "groups"} {
		if eqFold(w, k) {
			// An operator after a value, not a type name.
			return sh.endsValue(before + 1)
		}
	}
	return false
}

// endsValue reports whether hist[i] certainly ends a value: a literal, a
// name that is no keyword, NULL, TRUE, ..., ')' or ']'.
func (sh *shape) endsValue(i int) bool {
	switch sh.tok(i).kind {
	case tkQuoted, tkNumber, tkString, tkRParen, tkRBrack:
		return true
	case tkWord:
		c := sh.class(i)
		return c == kwNone || c == kwEnd
	}
	return false
}

// class classifies the word hist[i]. After a '.' any word is a name
// (t.limit is a column), so kwNone.
func (sh *shape) class(i int) kwClass {
	if sh.tok(i+1).kind == tkDot {
		return kwNone
	}
	return keywordClass(sh.text(sh.tok(i)))
}

type signKind uint8

const (
	signUnknown signKind = iota
	signUnary
	signBinary
)

// sign tells whether the '-' before a number (the last token) is a sign
// or a subtraction, from the token before it.
func (sh *shape) sign() signKind {
	q := sh.tok(1)
	switch q.kind {
	case tkOp:
		if sh.text(q) == "-" {
			return signUnknown // - -5: the parser folds both signs
		}
		return signUnary
	case tkLParen, tkComma, tkLBrack, tkColon:
		return signUnary
	case tkQuoted, tkNumber, tkString, tkRParen, tkRBrack:
		return signBinary
	case tkWord:
		switch sh.class(1) {
		case kwStart:
			return signUnary
		case kwEnd, kwNone:
			return signBinary
		}
		if sh.tok(2).kind == tkCast {
			return signBinary // x::int - 1: a type name
		}
	}
	return signUnknown
}

// signBeforeParens reports whether the '(' at hist[before] may follow a
// '-' the parser would fold into the number after it: -(5) is the
// constant -5.
func (sh *shape) signBeforeParens(before int) bool {
	for i := before; i < sh.nhist; i++ {
		if t := sh.tok(i); t.kind != tkLParen {
			return t.kind == tkOp && sh.text(t) == "-"
		}
	}
	return true
}

// word tracks the words that open and close ordinal lists.
func (sh *shape) word(t shapeTok) {
	w := sh.text(t)
	switch {
	case eqFold(w, "by") && (sh.isWord(sh.tok(0), "order") || sh.isWord(sh.tok(0), "group")):
		sh.lists |= 1 << sh.depth
	case eqFold(w, "true") || eqFold(w, "false"):
		// A boolean constant is the value "true" or "false" to the
		// planner: it must not meet a string with that value.
		off := len(sh.canon)
		for i := 0; i < len(w); i++ {
			sh.canon = append(sh.canon, w[i]|0x20)
		}
		sh.keep(off)
	case sh.lists != 0 && keywordClass(w) == kwStart && !eqFold(w, "asc") && !eqFold(w, "desc") && !eqFold(w, "using"):
		// LIMIT, HAVING, RETURNING, ON, WHERE, ...: the list is over.
		sh.lists &^= 1 << sh.depth
	}
}

// peek returns the token after position i, skipping spaces and comments;
// tkNone at the end of the text.
func (sh *shape) peek(i int) shapeTok {
	sql := sh.sql
	for i < len(sql) {
		switch c := sql[i]; {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = lineEnd(sql, i)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i, _ = commentEnd(sql, i)
		default:
			if c == '\'' {
				return shapeTok{kind: tkString, start: i, end: i + 1}
			}
			t, ok := sh.next(i)
			if !ok {
				return shapeTok{kind: tkOp, start: i, end: i + 1} // something the caller does not expect
			}
			return t
		}
	}
	return shapeTok{start: i, end: i}
}

func allSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}
