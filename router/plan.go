package router

import pg_query "github.com/pganalyze/pg_query_go/v5"

// TableKind is how the shard map places a table.
type TableKind uint8

// Table kinds.
const (
	// TableUnsharded tables live on the default shard; so does every
	// table the map does not know.
	TableUnsharded TableKind = iota
	// TableSharded tables have their rows spread by the key column.
	TableSharded
	// TableReference tables have a full copy on every shard.
	TableReference
)

// TableInfo is what the shard map says about one table.
type TableInfo struct {
	Kind TableKind
	// Distribution names the distribution of a TableSharded table:
	// co-located tables share it.
	Distribution string
	// Key is a TableSharded table's sharding key column, folded as
	// PostgreSQL folds names.
	Key string
}

// Schema is the router's view of the shard map.
type Schema interface {
	// Table looks a table up by schema name ("" when the statement does
	// not qualify it) and table name, both folded as PostgreSQL folds
	// identifiers. ok=false means the map does not know the table: it is
	// unsharded.
	Table(schema, name string) (TableInfo, bool)
	// Version changes whenever answers of Table may change; plans are
	// cached per (text, Version).
	Version() uint64
}

// Value is one sharding key value a statement names.
type Value struct {
	// Param is the 1-based number of the bind parameter ($n) holding the
	// value; 0 for a literal.
	Param int
	// Text is a literal in the text form the type's input function reads
	// ("42", "abc", "a0ee...").
	Text string
	Null bool
	// Type is the cast written in the SQL, if any ("int8", "uuid",
	// "text"), else "". For an Array parameter it is the element type.
	Type string
	// Array marks a parameter that holds an array of keys (key =
	// ANY($n)): each element is a key.
	Array bool
}

// Spread is how many shards a statement touches.
type Spread uint8

// Spreads.
const (
	// SpreadDefault: only unsharded tables (perhaps with reference
	// tables, which the default shard has too): the default shard.
	SpreadDefault Spread = iota
	// SpreadKeys: the shards Keys map to, in Distribution.
	SpreadKeys
	// SpreadAll: every shard.
	SpreadAll
	// SpreadAny: any single shard. Reads of reference tables only, or of
	// no table (SELECT 1, SELECT now()), and session statements.
	SpreadAny
	// SpreadShard: the shard a hint names (Plan.Shard).
	SpreadShard
)

// Plan says where a statement runs and how its results combine. Plans are
// shared by every caller of the same text and must not be modified.
type Plan struct {
	Spread Spread
	// Distribution is the distribution of SpreadKeys and SpreadAll plans
	// over sharded tables; "" for a key hint on a statement that names no
	// sharded table, and for plans that are not about one distribution
	// (DDL, reference writes).
	Distribution string
	// Keys are the keys of a SpreadKeys plan: the rows involved live on
	// the union of their shards.
	Keys []Value
	// Shard is the shard a SpreadShard hint names.
	Shard string
	// Write reports that the statement may change data or needs state
	// only a primary has; it is Analysis.Write for the same text.
	Write bool
	// DDL marks a schema change (CREATE, ALTER, DROP, TRUNCATE, COMMENT,
	// GRANT, ...): it runs on every shard (SpreadAll), so that every
	// shard has the same schema.
	DDL bool
	// Reference marks a write to a reference table: it runs on every
	// shard (SpreadAll), and every shard answers alike.
	Reference bool
	// Merge is set when results from more than one shard must be combined
	// and plain concatenation is not enough, or rows must be cut (LIMIT).
	// SpreadKeys plans with several keys have it too, since the keys may
	// map to several shards.
	Merge *Merge
	// Rewritten is the SQL to send to each shard when the merge needs a
	// different statement than the client's (avg split into sum and
	// count, LIMIT pushed down with OFFSET removed, hidden columns
	// appended, HAVING removed); "" means the client's text unchanged.
	// It is in pg_query's spelling, without comments. Bind parameters
	// keep their numbers and their types: it uses every parameter the
	// client's statement uses, so the client's Bind fits it.
	Rewritten string
	// NewKey is the new value of an UPDATE that assigns the sharding key:
	// the proxy refuses it when it maps to another shard than the row's.
	NewKey *Value
	// Assigned: Keys are values assigned to the key column (INSERT), which
	// the server converts by assignment (a numeric literal for an integer
	// key is rounded), not compared with it (where it would match no row).
	// NewKey is always assigned.
	Assigned bool
	// Insert describes the rows of a multi-row INSERT ... VALUES into a
	// sharded table, so the proxy can split it by shard.
	Insert *InsertSplit
	// Copy describes a COPY of a table FROM STDIN or TO STDOUT.
	Copy *CopyInfo
	// Refused, when set, is why the statement cannot be run correctly:
	// the proxy answers with it and runs nothing.
	Refused *Refusal
}

// Refusal explains why a statement cannot be routed. It is an error with
// SQLSTATE 0A000 (feature_not_supported).
type Refusal struct {
	Message string
	Hint    string
}

func (r *Refusal) Error() string { return r.Message }

// SQLState is the error code the proxy answers a refused statement with.
func (r *Refusal) SQLState() string { return "0A000" }

// Merge says how to combine one statement's results from several shards.
// The proxy combines in this order: aggregate rows with equal group
// columns, filter by Having, drop duplicates (Distinct, over the visible
// columns), sort by Order, skip Offset rows, stop after Limit rows, and
// cut the Hidden columns off each row.
type Merge struct {
	// Order is the client's ORDER BY, as shard result columns. Without
	// Aggregate each shard's rows arrive sorted so, ready for a k-way
	// merge; with Aggregate the shards do not sort and the merged groups
	// are sorted.
	Order []SortKey
	// Limit is the LIMIT count (a literal or a parameter); nil: none
	// (LIMIT ALL, LIMIT NULL).
	Limit *Value
	// Offset is the OFFSET; nil: none.
	Offset *Value
	// Distinct is SELECT DISTINCT (the whole visible row).
	Distinct bool
	// Aggregate: the query aggregates (aggregate functions and/or GROUP
	// BY), and rows with equal ColGroup columns combine into one. Without
	// GROUP BY the result is exactly one row.
	Aggregate bool
	// Columns describe, when Aggregate, how each shard row column merges:
	// one per client-visible column in order, then one per hidden column,
	// so len(Columns) is the shard row's width. Hidden GROUP BY
	// expressions are ColGroup columns too.
	Columns []Column
	// Hidden counts the trailing columns of each shard row the client
	// must not see (sort keys not in the select list, avg's count, the
	// aggregates HAVING needs, GROUP BY expressions not in the list, and
	// the bind parameters of clauses the shards do not run, which every
	// shard statement must still use).
	Hidden int
	// Having is HAVING, evaluated after the merge over Columns; nil:
	// none.
	Having *Expr
}

// SortKey is one ORDER BY item. Column >= 0 indexes the shard row from
// its start; < 0 from its end (-1 is the last column), for hidden columns
// appended after a `*` whose width is unknown until the row description
// arrives.
type SortKey struct {
	// Name, when set, is the sort column's name in the shards' row
	// description, and Column is unused: the sort key is a column of the
	// one table a lone * expands to, whose position only the server knows.
	// Reading it there spares every shard a hidden copy of the column.
	Name       string
	Column     int
	Desc       bool
	NullsFirst bool
}

// ColumnKind is how one output column merges.
type ColumnKind uint8

// Column kinds.
const (
	// ColGroup is a GROUP BY column, or a plain column equal across the
	// group: rows with equal ColGroup columns combine.
	ColGroup ColumnKind = iota
	ColCount            // count(*), count(x): add
	ColSum              // sum(x): add, ignoring NULLs (all NULL: NULL)
	ColMin
	ColMax
	// ColAvg is avg(x): the shard column (Column) holds sum(x), and
	// column Count holds count(x); the client sees sum / count.
	ColAvg
	ColBoolAnd
	ColBoolOr
)

// Column is how one shard row column merges.
type Column struct {
	Kind ColumnKind
	// Column is the shard row column; negative values count from the end
	// as in SortKey.
	Column int
	// Count is, for ColAvg, the shard row column holding count(x).
	Count int
}

// Expr is a HAVING condition the merge can evaluate: comparisons of a
// merged column with a constant, joined by AND, OR and NOT. A comparison
// with a NULL operand is NULL, and a NULL condition drops the group, as
// in SQL.
type Expr struct {
	// Op is "and", "or", "not", "=", "<>", "<", "<=", ">" or ">=". A
	// comparison's Args are its two operands, each a leaf.
	Op   string
	Args []*Expr
	// Column is a leaf's merged aggregate or group column.
	Column *Column
	// Value is a leaf's constant.
	Value *Value
}

// InsertSplit describes the rows of a multi-row INSERT so the proxy can
// split it by shard.
type InsertSplit struct {
	// Keys holds each VALUES row's sharding key, in order.
	Keys []Value
	// stmt is the parsed INSERT, which SQLFor copies.
	stmt *pg_query.ParseResult
	// params: the statement has bind parameters.
	params bool
}

// CopyInfo describes a COPY between a table and the client.
type CopyInfo struct {
	// From: COPY ... FROM STDIN; else COPY ... TO STDOUT.
	From  bool
	Table TableInfo
	// Columns is the column list; empty means all the table's columns.
	Columns []string
	// Format is "text", "csv" or "binary".
	Format string
	// Delimiter, Null, Quote and Escape are the format's settings, with
	// PostgreSQL's defaults filled in (Quote and Escape only for csv).
	Delimiter, Null, Quote, Escape string
	// Header: the data starts with a header line (csv).
	Header bool
	// KeyIndex is the position of a sharded table's key in Columns; -1
	// when Columns is empty (the proxy must learn the table's columns)
	// or the table is not sharded.
	KeyIndex int
}
