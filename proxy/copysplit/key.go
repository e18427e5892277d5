package copysplit

import pg_query "github.com/pganalyze/pg_query_go/v5"

// Key says where the sharding key is among a row's fields.
type Key struct {
	// Name is the key column's name, for messages.
	Name string
	// Index is the key's 0-based position among the row's fields.
	Index int
	// Columns are the names of the row's fields in order, when known. They
	// name the missing column in errors, and in binary format a tuple
	// must have exactly len(Columns) fields, as the server requires. Nil
	// means unknown: rows need only reach the key.
	Columns []string
}

// FindKey returns the Key for column key in a row made of columns. It
// fails with SQLSTATE 0A000 when key is not among them: a row without
// its key cannot be routed.
func FindKey(columns []string, key string) (Key, error) {
	for i, c := range columns {
		if c == key {
			return Key{Name: key, Index: i, Columns: columns}, nil
		}
	}
	return Key{}, optionError(codeUnsupported, `COPY column list must include the sharding key column "%s"`, key)
}

// KeyFromStmt returns the Key for column key in the rows of a COPY
// statement: its rows hold the statement's column list or, when it has
// none, tableColumns, which must then be the table's columns as COPY uses
// them (in attnum order, without dropped or generated columns).
//
// When the statement has a column list and tableColumns is not nil, the
// list is checked against the table as the server checks it. Names are
// compared exactly: the parser has already folded unquoted identifiers to
// lower case.
func KeyFromStmt(stmt *pg_query.CopyStmt, tableColumns []string, key string) (Key, error) {
	if len(stmt.GetAttlist()) == 0 {
		return FindKey(tableColumns, key)
	}
	cols := make([]string, 0, len(stmt.Attlist))
	for _, n := range stmt.Attlist {
		s := n.GetString_()
		if s == nil {
			return Key{}, optionError(codeSyntax, "COPY column list holds something other than a column name")
		}
		cols = append(cols, s.Sval)
	}
	for i, c := range cols {
		if tableColumns != nil && !contains(tableColumns, c) {
			return Key{}, optionError(codeUndefinedColumn, `column "%s" of relation "%s" does not exist`,
				c, stmt.GetRelation().GetRelname())
		}
		if contains(cols[:i], c) {
			return Key{}, optionError(codeDuplicateColumn, `column "%s" specified more than once`, c)
		}
	}
	return FindKey(cols, key)
}

func contains(list []string, s string) bool {
	for _, c := range list {
		if c == s {
			return true
		}
	}
	return false
}
