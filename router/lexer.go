package router

import "strings"

// span is one statement of a query string: its text and first keyword.
type span struct {
	text    string
	keyword string // lower case; "" for an empty statement
}

// split cuts a query string into statements at top-level semicolons,
// skipping quoted strings, quoted identifiers, dollar-quoted bodies and
// comments, so a ';' inside any of them does not end a statement.
func split(sql string) []span {
	var out []span
	start := 0
	kw := ""
	i := 0
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
			out = append(out, span{text: sql[start:i], keyword: kw})
			i++
			start, kw = i, ""
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			if kw == "" {
				kw = strings.ToLower(sql[i:j])
			}
			i = j
		default:
			i++
		}
	}
	if kw != "" || len(out) == 0 {
		out = append(out, span{text: sql[start:], keyword: kw})
	}
	return out
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
