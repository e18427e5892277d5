package router

import "strings"

// shardHints are the routing hints of a text: /* shardgate: shard=NAME */
// and /* shardgate: key=VALUE */ (or -- comments). The first of each kind
// counts.
type shardHints struct {
	shard  string
	key    string
	hasKey bool
}

// findShardHints scans the comments of sql for shardgate hints, skipping
// strings, quoted names and dollar quotes as the lexer does, so a hint
// inside a string literal is not one. It runs only when a plan is made,
// not on cache hits. The values are copies: sql may be a reused buffer.
func findShardHints(sql string) shardHints {
	var h shardHints
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			j := i
			for j < len(sql) && sql[j] != '\n' && sql[j] != '\r' {
				j++
			}
			h.comment(sql[i:j])
			i = j
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			j := skipBlockComment(sql, i)
			h.comment(sql[i:j])
			i = j
		case c == '\'':
			i = skipString(sql, i, false)
		case c == '"':
			i = skipQuoted(sql, i, '"', false)
		case c == '$':
			i = skipDollar(sql, i)
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			if j == i+1 && (c == 'e' || c == 'E') && j < len(sql) && sql[j] == '\'' {
				j = skipString(sql, j, true)
			}
			i = j
		default:
			i++
		}
	}
	return h
}

// comment reads "shardgate:" followed by key=value pairs, separated by
// spaces or commas, anywhere in a comment; values are words (letters,
// digits, '_', '$', '.', '-') or single-quoted strings. Keys other than
// shard and key (role, unknown ones) are skipped.
func (h *shardHints) comment(c string) {
	forEachHint(c, hintValue, func(key, val string) {
		switch {
		case eqFold(key, "shard") && h.shard == "":
			h.shard = strings.Clone(val)
		case eqFold(key, "key") && !h.hasKey:
			h.key, h.hasKey = strings.Clone(val), true
		}
	})
}

// hintValue reads a hint's value: a word, or a string in single quotes
// where a doubled quote stands for one.
func hintValue(s string) (val, rest string, ok bool) {
	if s == "" || s[0] != '\'' {
		w, rest := hintWord(s)
		return w, rest, w != ""
	}
	end := skipQuoted(s, 0, '\'', false)
	if end > len(s) || s[end-1] != '\'' || end < 2 {
		return "", "", false
	}
	return strings.ReplaceAll(s[1:end-1], "''", "'"), s[end:], true
}
