package merge

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// Order is one ORDER BY key.
type Order struct {
	// Column is counted from the row start when >= 0 and from its end
	// when < 0 (-1 is the last column). Without Aggregate it indexes the
	// shard row, hidden columns included; with Aggregate it indexes the
	// merged row: Spec.Outputs followed by Spec.HiddenOutputs.
	Column int
	// Name, when set, replaces Column (without Aggregate): the visible
	// column of that name in the row description, which must have
	// exactly one.
	Name string
	// Desc sorts descending.
	Desc bool
	// NullsFirst is the effective NULLS FIRST, already resolved by the
	// caller (PostgreSQL's default is NULLS FIRST exactly for DESC).
	NullsFirst bool
}

// Kind is how an aggregated column combines the shards' values.
type Kind uint8

const (
	// Group is a GROUP BY column: rows with equal Group columns merge.
	Group Kind = iota
	// Count adds the shards' counts.
	Count
	// Sum adds the shards' sums, exactly for integers and numeric.
	Sum
	// Min keeps the smallest value.
	Min
	// Max keeps the largest value.
	Max
	// Avg divides the summed Column by the summed Count column, which the
	// shards returned in place of avg(x) as sum(x) and count(x).
	Avg
	// BoolAnd is bool_and (every) over the shards' results.
	BoolAnd
	// BoolOr is bool_or over the shards' results.
	BoolOr
)

var kindNames = [...]string{"group", "count", "sum", "min", "max", "avg", "bool_and", "bool_or"}

// String names the kind as SQL's aggregate does, for messages.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Output is one column of an aggregated row.
type Output struct {
	// Kind says how the shards' values combine.
	Kind Kind
	// Column is the shard column read, indexed as Order.Column indexes a
	// shard row. For Avg it holds the shards' sums.
	Column int
	// Count is, for Avg, the shard column holding the shards' counts.
	Count int
	// Name, when set, is the column name the client sees; otherwise the
	// shard's name, or "avg" for Avg.
	Name string
}

// Expr is a HAVING condition over merged groups, with SQL's three-valued
// logic: a group passes when the condition is true, not NULL.
type Expr struct {
	// Op is "and", "or", "not", a comparison ("=", "<>", "<", "<=", ">",
	// ">="), or "" for a leaf. Comparisons take two leaves.
	Op string
	// Args are the operands of Op.
	Args []*Expr
	// Output makes a leaf the merged row's column *Output (the same index
	// space as Order.Column under Aggregate).
	Output *int
	// Hidden makes a leaf an aggregate the client does not see, such as
	// HAVING sum(x) > 0 where sum(x) is not selected.
	Hidden *Output
	// Const makes a leaf a constant in text form, read as the type of the
	// other side of its comparison.
	Const *string
	// ConstNull makes a leaf the NULL constant.
	ConstNull bool
}

// Spec says how one statement's shard results combine.
type Spec struct {
	// Order sorts the result. Without Aggregate each source must already
	// be sorted by the same keys.
	Order []Order
	// Limit caps the rows returned; -1 means no limit.
	Limit int64
	// Offset skips rows before Limit counts.
	Offset int64
	// Distinct drops duplicate client-visible rows.
	Distinct bool
	// Aggregate combines rows with equal Group outputs into one.
	Aggregate bool
	// Outputs are the client-visible columns under Aggregate, one each.
	Outputs []Output
	// HiddenOutputs are aggregated like Outputs but not sent: a Group
	// entry groups by a column that is not selected, other kinds serve
	// Order and Having.
	HiddenOutputs []Output
	// Hidden is the number of trailing shard columns the client does not
	// see. Without Aggregate they are dropped from each row; under
	// Aggregate the client sees exactly Outputs, and Hidden only has to
	// fit the shard row.
	Hidden int
	// Having filters merged groups.
	Having *Expr
}

// resolve turns a possibly negative column index into an absolute one.
func resolve(i, n int, what string) (int, error) {
	j := i
	if j < 0 {
		j += n
	}
	if j < 0 || j >= n {
		return 0, badSpec("%s column %d out of range for %d columns", what, i, n)
	}
	return j, nil
}

// Integer, float and numeric type families, which compare and combine
// across widths.
func isIntOID(oid uint32) bool {
	return oid == pgtype.Int2OID || oid == pgtype.Int4OID || oid == pgtype.Int8OID
}

func isFloatOID(oid uint32) bool {
	return oid == pgtype.Float4OID || oid == pgtype.Float8OID
}

// result is the type of an aggregated column as the single server would
// report it for the client's original query.
type result struct {
	oid  uint32
	size int16 // RowDescription's type size
}

var (
	resInt8    = result{pgtype.Int8OID, 8}
	resNumeric = result{pgtype.NumericOID, -1}
	resFloat4  = result{pgtype.Float4OID, 4}
	resFloat8  = result{pgtype.Float8OID, 8}
	resBool    = result{pgtype.BoolOID, 1}
)

// resultOf returns the result type of o, whose input column has oid (and
// count column countOID for Avg), or the reason it cannot be merged.
func resultOf(o Output, oid, countOID uint32, size int16) (result, error) {
	switch o.Kind {
	case Group:
		return result{oid, size}, nil
	case Count:
		if isIntOID(oid) {
			return resInt8, nil
		}
	case Sum:
		switch {
		case isIntOID(oid):
			return resInt8, nil
		case oid == pgtype.NumericOID:
			return resNumeric, nil
		case oid == pgtype.Float4OID:
			return resFloat4, nil
		case oid == pgtype.Float8OID:
			return resFloat8, nil
		}
	case Min, Max:
		if types[oid] != nil {
			return result{oid, size}, nil
		}
	case Avg:
		if !isIntOID(countOID) {
			return result{}, unsupported("avg needs an integer count column, got type OID %d", countOID)
		}
		switch {
		case isIntOID(oid), oid == pgtype.NumericOID:
			return resNumeric, nil
		case isFloatOID(oid):
			return resFloat8, nil
		}
	case BoolAnd, BoolOr:
		if oid == pgtype.BoolOID {
			return resBool, nil
		}
	default:
		return result{}, badSpec("unknown output kind %d", o.Kind)
	}
	name := "type with OID " + strconv.FormatUint(uint64(oid), 10)
	if t := types[oid]; t != nil {
		name = t.name
	}
	return result{}, unsupported("cannot merge %s of %s across shards", o.Kind, name)
}
