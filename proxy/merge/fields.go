package merge

import "github.com/jackc/pgx/v5/pgproto3"

// Fields returns the RowDescription fields the client sees, given the
// fields every shard returned (they are identical): hidden columns
// dropped, and under Aggregate one field per Output with the type the
// single server would have reported for the client's original query. An
// Avg column becomes numeric for integer and numeric sums and float8 for
// float sums, named "avg"; Count stays bigint, Sum keeps the shards' sum
// type (bigint for the int2/int4 sums shards return as bigint).
func Fields(spec *Spec, shard []pgproto3.FieldDescription) ([]pgproto3.FieldDescription, error) {
	if spec.Hidden < 0 || spec.Hidden > len(shard) {
		return nil, badSpec("Hidden %d out of range for %d columns", spec.Hidden, len(shard))
	}
	if !spec.Aggregate {
		out := make([]pgproto3.FieldDescription, len(shard)-spec.Hidden)
		copy(out, shard)
		return out, nil
	}
	out := make([]pgproto3.FieldDescription, len(spec.Outputs))
	for i, o := range spec.Outputs {
		f, err := outputField(o, shard)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

// outputField is the field the single server reports for o.
func outputField(o Output, shard []pgproto3.FieldDescription) (pgproto3.FieldDescription, error) {
	col, err := resolve(o.Column, len(shard), "output")
	if err != nil {
		return pgproto3.FieldDescription{}, err
	}
	f := shard[col]
	var countOID uint32
	if o.Kind == Avg {
		cnt, err := resolve(o.Count, len(shard), "avg count")
		if err != nil {
			return pgproto3.FieldDescription{}, err
		}
		countOID = shard[cnt].DataTypeOID
	}
	res, err := resultOf(o, f.DataTypeOID, countOID, f.DataTypeSize)
	if err != nil {
		return pgproto3.FieldDescription{}, err
	}
	// Group, Min and Max return the shards' own column unchanged (the
	// shards ran the same expression); computed results carry no table
	// and no type modifier, as an aggregate's result does.
	if res.oid != f.DataTypeOID || o.Kind == Avg {
		f.DataTypeOID, f.DataTypeSize = res.oid, res.size
		f.TableOID, f.TableAttributeNumber, f.TypeModifier = 0, 0, -1
	}
	if o.Kind == Avg && len(f.Name) == 0 {
		// The rewritten query names its sum after the client's avg
		// (its alias, or "avg").
		f.Name = []byte("avg")
	}
	if o.Name != "" {
		f.Name = []byte(o.Name)
	}
	return f, nil
}
