package rebalance

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/shardmap"
)

// Range is the slice of one distribution that moves.
type Range struct {
	Method shardmap.Method `json:"method"`
	// KeyType is as in shardmap.DistributionSpec.KeyType.
	KeyType string `json:"key_type"`
	// Lo and Hi bound [Lo, Hi): int64 decimal text of the hash space for
	// hash, key values in SQL text form for range; "" is open.
	Lo string `json:"lo,omitempty"`
	Hi string `json:"hi,omitempty"`
	// Keys are the moving keys of a directory distribution, in SQL text
	// form.
	Keys []string `json:"keys,omitempty"`
}

// Table is one table of the moving distribution. Schema "" is public.
type Table struct {
	Schema string `json:"schema,omitempty"`
	Name   string `json:"name"`
	Key    string `json:"key"`
}

// keyType is what SQL a key type needs: its family, the type literals
// are cast to, and the hash function over a column of it.
type keyType struct {
	kind shardmap.KeyKind
	cast string // a fixed SQL type name, never taken from input
	hash string // printf format over the column, for hash methods
}

// keyTypes mirrors shardmap's accepted key type names. Integer bounds and
// keys are cast to bigint whatever the column's width, so that a bound
// outside an int4 column's range still compares (as shardmap does in
// int64) instead of failing.
var keyTypes = map[string]keyType{}

func init() {
	ints := keyType{shardmap.KindInt, "bigint", "hashint8extended((%s)::bigint, 0)"}
	texts := keyType{shardmap.KindText, "text", "hashtextextended((%s)::text, 0)"}
	for _, n := range []string{"smallint", "int2", "integer", "int", "int4", "bigint", "int8"} {
		keyTypes[n] = ints
	}
	for _, n := range []string{"text", "varchar", "character varying"} {
		keyTypes[n] = texts
	}
	keyTypes["uuid"] = keyType{shardmap.KindUUID, "uuid", "uuid_hash_extended(%s, 0)"}
	keyTypes["date"] = keyType{kind: shardmap.KindTime, cast: "date"}
	for _, n := range []string{"timestamp", "timestamp without time zone"} {
		keyTypes[n] = keyType{kind: shardmap.KindTime, cast: "timestamp"}
	}
	for _, n := range []string{"timestamptz", "timestamp with time zone"} {
		keyTypes[n] = keyType{kind: shardmap.KindTime, cast: "timestamptz"}
	}
}

// Check reports what makes r unusable: an unknown method or key type, a
// bound or key its type cannot read, lo >= hi, or fields of another
// method. Filter quotes whatever it gets, so an unchecked Range cannot
// inject SQL, but the server would refuse it later and less clearly.
func (r Range) Check() error {
	kt, ok := keyTypes[strings.ToLower(r.KeyType)]
	if !ok {
		return fmt.Errorf("rebalance: unknown key type %q", r.KeyType)
	}
	switch r.Method {
	case shardmap.MethodHash:
		if len(r.Keys) > 0 {
			return fmt.Errorf("rebalance: a hash range has bounds, not keys")
		}
		if kt.hash == "" {
			return fmt.Errorf("rebalance: %s keys cannot be hashed; use a range distribution", r.KeyType)
		}
		lo, hi, err := hashBounds(r)
		if err != nil {
			return err
		}
		if lo != nil && hi != nil && *lo >= *hi {
			return fmt.Errorf("rebalance: hash range [%d, %d) is empty", *lo, *hi)
		}
	case shardmap.MethodRange:
		if len(r.Keys) > 0 {
			return fmt.Errorf("rebalance: a key range has bounds, not keys")
		}
		var keys [2]*shardmap.Key
		for i, b := range []string{r.Lo, r.Hi} {
			if b == "" {
				continue
			}
			k, err := parseKey(kt.kind, b)
			if err != nil {
				return err
			}
			keys[i] = &k
		}
		if keys[0] != nil && keys[1] != nil && shardmap.CompareText(kt.kind, r.Lo, r.Hi) >= 0 {
			return fmt.Errorf("rebalance: key range [%s, %s) is empty", r.Lo, r.Hi)
		}
	case shardmap.MethodDirectory:
		if r.Lo != "" || r.Hi != "" {
			return fmt.Errorf("rebalance: a directory move lists keys, not bounds")
		}
		if len(r.Keys) == 0 {
			return fmt.Errorf("rebalance: a directory move needs at least one key")
		}
		for _, k := range r.Keys {
			if _, err := parseKey(kt.kind, k); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("rebalance: unknown method %q", r.Method)
	}
	return nil
}

func parseKey(kind shardmap.KeyKind, text string) (shardmap.Key, error) {
	if strings.ContainsRune(text, 0) {
		return shardmap.Key{}, fmt.Errorf("rebalance: key %q holds a NUL byte, which PostgreSQL text cannot", text)
	}
	k, err := shardmap.ParseKey(kind, text)
	if err != nil {
		return k, fmt.Errorf("rebalance: %w", err)
	}
	return k, nil
}

// hashBounds reads a hash range's bounds; nil is open, and so is
// MinInt64 written out as lo, as shardmap takes it.
func hashBounds(r Range) (lo, hi *int64, err error) {
	for i, b := range []string{r.Lo, r.Hi} {
		if b == "" {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("rebalance: hash bound %q is not an int64", b)
		}
		if i == 0 {
			if v != math.MinInt64 {
				lo = &v
			}
		} else {
			hi = &v
		}
	}
	return lo, hi, nil
}

// Filter is the SQL boolean expression selecting the rows of r, over the
// column reference col (e.g. `"id"` or `NEW."id"`), which the caller
// quotes. It places rows exactly as shardmap does: PostgreSQL's own
// extended hash with seed 0 for hash, comparisons in the C collation for
// text ranges, timestamps without a zone read as UTC. Every value is a
// quoted literal with a cast to a fixed type name, so that the expression
// is also a valid publication row filter (built-in immutable functions
// and constants only). An unchecked Range (see Check) still yields safe
// SQL, which the server may refuse.
func Filter(r Range, col string) string {
	kt, ok := keyTypes[strings.ToLower(r.KeyType)]
	if !ok {
		kt = keyType{kind: shardmap.KindText, cast: "text"}
	}
	var conds []string
	switch r.Method {
	case shardmap.MethodHash:
		h := fmt.Sprintf(kt.hash, col)
		if kt.hash == "" {
			h = fmt.Sprintf("hashtextextended((%s)::text, 0)", col)
		}
		lo, hi, err := hashBounds(r)
		if err != nil { // unchecked: let the server refuse the text
			return fmt.Sprintf("(%s >= %s::bigint AND %s < %s::bigint)", h, quoteLiteral(r.Lo), h, quoteLiteral(r.Hi))
		}
		if lo != nil {
			conds = append(conds, fmt.Sprintf("%s >= '%d'::bigint", h, *lo))
		}
		if hi != nil {
			conds = append(conds, fmt.Sprintf("%s < '%d'::bigint", h, *hi))
		}
	case shardmap.MethodDirectory:
		if len(r.Keys) == 0 {
			return "false"
		}
		lits := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			lits[i] = keyLiteral(kt, k, false)
		}
		return fmt.Sprintf("(%s IN (%s))", col, strings.Join(lits, ", "))
	default: // range
		c := col
		if kt.kind == shardmap.KindText {
			// shardmap orders text bytewise, whatever the column's
			// collation. A column index in another collation is not used.
			c = fmt.Sprintf("(%s)::text COLLATE \"C\"", col)
		}
		if r.Lo != "" {
			conds = append(conds, fmt.Sprintf("%s >= %s", c, keyLiteral(kt, r.Lo, true)))
		}
		if r.Hi != "" {
			conds = append(conds, fmt.Sprintf("%s < %s", c, keyLiteral(kt, r.Hi, true)))
		}
	}
	if len(conds) == 0 {
		return "true"
	}
	return "(" + strings.Join(conds, " AND ") + ")"
}

// keyLiteral writes a key (or, with bound, a range bound) as a cast
// literal. Date and timestamp values go through shardmap's parser first,
// so the server compares the very instant shardmap does: a value without
// a zone is UTC, and a date column's bound is rounded up to the next
// whole day, which selects the same dates as comparing their midnights
// with the exact bound.
func keyLiteral(kt keyType, text string, bound bool) string {
	if kt.kind == shardmap.KindTime {
		if k, err := parseKey(kt.kind, text); err == nil {
			if t, err := time.Parse("2006-01-02 15:04:05.999999Z07:00", k.String()); err == nil {
				switch kt.cast {
				case "date":
					day := t.Truncate(24 * time.Hour)
					if bound && day.Before(t) {
						day = day.Add(24 * time.Hour)
					}
					text = day.Format("2006-01-02")
				case "timestamp":
					text = t.Format("2006-01-02 15:04:05.999999")
				default:
					text = t.Format("2006-01-02 15:04:05.999999") + "+00"
				}
			}
		}
	}
	return quoteLiteral(text) + "::" + kt.cast
}

// quoteLiteral quotes s as a string constant whatever
// standard_conforming_strings says: with a backslash it uses the E'...'
// form, where doubled backslashes mean one.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// ident quotes one identifier.
func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// schema is the table's schema, public when unnamed.
func (t Table) schema() string {
	if t.Schema == "" {
		return "public"
	}
	return t.Schema
}

// sql is the table's schema-qualified, quoted name. Unlike Qualified it
// never leaves the schema to the search path.
func (t Table) sql() string { return pgx.Identifier{t.schema(), t.Name}.Sanitize() }

// String names the table for messages.
func (t Table) String() string { return t.schema() + "." + t.Name }

// filter is Filter over t's key column.
func (t Table) filter(r Range) string { return Filter(r, ident(t.Key)) }

// RowsIn counts the rows of r in t on conn.
func RowsIn(ctx context.Context, conn *pgx.Conn, t Table, r Range) (int64, error) {
	if err := r.Check(); err != nil {
		return 0, err
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.sql()+" WHERE "+t.filter(r)).Scan(&n); err != nil {
		return 0, fmt.Errorf("rebalance: counting the range's rows of %s: %w", t, err)
	}
	return n, nil
}

// CheckPlacement counts the rows of t on conn that lie in none of owned,
// the ranges the map gives the shard conn is connected to: any such row
// is misplaced (a NULL key counts as misplaced too). owned must all be of
// t's distribution; none owned counts every row. A directory
// distribution placing unknown keys by hash is not expressible as ranges
// alone: pass its hash ranges and its keys as separate Ranges, and mind
// that a key listed for another shard but hashing here is missed.
func CheckPlacement(ctx context.Context, conn *pgx.Conn, t Table, owned []Range) (misplaced int64, err error) {
	in := make([]string, len(owned))
	for i, r := range owned {
		if err := r.Check(); err != nil {
			return 0, err
		}
		in[i] = t.filter(r)
	}
	where := "true"
	if len(in) > 0 {
		where = "NOT coalesce(" + strings.Join(in, " OR ") + ", false)"
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.sql()+" WHERE "+where).Scan(&misplaced); err != nil {
		return 0, fmt.Errorf("rebalance: checking the placement of %s: %w", t, err)
	}
	return misplaced, nil
}
