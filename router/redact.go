package router

import pg_query "github.com/pganalyze/pg_query_go/v5"

// Redact returns sql with its constants replaced by $1, $2, ... so that it
// can be logged without the values it carries (a password in ALTER ROLE,
// personal data in a WHERE clause). Text that does not parse is not
// logged at all: its constants cannot be found.
func Redact(sql string) string {
	out, err := pg_query.Normalize(sql)
	if err != nil {
		return "(statement not shown: it does not parse, and its constants cannot be hidden)"
	}
	return out
}
