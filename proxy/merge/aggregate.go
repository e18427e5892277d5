package merge

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// aggOut is an Output resolved against the shard columns.
type aggOut struct {
	kind  Kind
	col   int    // shard column read
	cnt   int    // Avg: shard column of the counts
	cntIn column // Avg: the count column's type and format
	in    column // the input's type and format
	res   column // the result's type, in the input's format
	float bool   // Sum and Avg accumulate in floating point
}

// aggPlan merges groups: outs are Outputs, then HiddenOutputs, then the
// hidden aggregates Having refers to; rowCols are their result columns.
type aggPlan struct {
	outs    []aggOut
	groupBy []int // indexes in outs of the Group outputs
	rowCols []column
	having  *cond
}

func compileAgg(spec *Spec, cols []column, fields []pgproto3.FieldDescription) (*aggPlan, error) {
	a := &aggPlan{}
	for _, o := range append(slices.Clip(spec.Outputs), spec.HiddenOutputs...) {
		if err := a.add(o, cols, fields); err != nil {
			return nil, err
		}
	}
	if spec.Having != nil {
		h, err := a.compileCond(spec.Having, len(spec.Outputs)+len(spec.HiddenOutputs), cols, fields)
		if err != nil {
			return nil, err
		}
		a.having = h
	}
	return a, nil
}

// add appends o to the merged row, at index len(a.outs)-1.
func (a *aggPlan) add(o Output, cols []column, fields []pgproto3.FieldDescription) error {
	f, err := outputField(o, fields)
	if err != nil {
		return err
	}
	col, _ := resolve(o.Column, len(cols), "output")
	ao := aggOut{kind: o.Kind, col: col, in: cols[col], res: newColumn(f.DataTypeOID, f.Format)}
	if o.Kind == Avg {
		ao.cnt, _ = resolve(o.Count, len(cols), "avg count")
		ao.cntIn = cols[ao.cnt]
	}
	ao.float = isFloatOID(ao.in.oid)
	if o.Kind == Group {
		a.groupBy = append(a.groupBy, len(a.outs))
	}
	a.outs = append(a.outs, ao)
	a.rowCols = append(a.rowCols, ao.res)
	return nil
}

// acc is one output's running state in one group.
type acc struct {
	has bool     // a non-NULL input was seen (Group: the value was set)
	i   int64    // Count, integer Sum, bool, Avg's count
	f   float64  // float Sum and Avg
	n   *decimal // numeric Sum, integer and numeric Avg
	b   []byte   // Group, Min, Max: a copy of the value; nil is NULL
}

// aggregate groups every source's rows, then filters, sorts and emits
// the groups. Memory grows with the number of groups, not of rows.
func (p *plan) aggregate(sources []Source, out *sink) error {
	a := p.agg
	groups, err := p.collectGroups(sources)
	if err != nil {
		return err
	}
	rows := make([][][]byte, 0, len(groups))
	for i, g := range groups {
		row := a.finish(g)
		groups[i] = nil // let the state go as rows take its place
		if a.having != nil {
			pass, err := a.having.test(row)
			if err != nil {
				return err
			}
			if !pass {
				continue
			}
		}
		rows = append(rows, row)
	}
	if len(p.order) > 0 {
		if err := p.sortRows(rows); err != nil {
			return err
		}
	}
	for _, row := range rows {
		if err := out.put(row); err != nil {
			return err
		}
	}
	return nil
}

// collectGroups reads every row and folds it into its group's state,
// found by a hash of the Group columns; groups come out in the order
// they were first seen.
func (p *plan) collectGroups(sources []Source) ([][]acc, error) {
	a := p.agg
	index := make(map[string]int)
	var groups [][]acc
	var key []byte
	var tmp, cur datum
	for si, src := range sources {
		for {
			row, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := checkWidth(si, row, len(p.cols)); err != nil {
				return nil, err
			}
			key = key[:0]
			for _, g := range a.groupBy {
				o := &a.outs[g]
				if key, err = o.in.appendKey(key, row[o.col], &tmp); err != nil {
					return nil, err
				}
			}
			gi, ok := index[string(key)]
			if !ok {
				gi = len(groups)
				index[string(key)] = gi
				groups = append(groups, make([]acc, len(a.outs)))
			}
			if err := a.update(groups[gi], row, &tmp, &cur); err != nil {
				return nil, err
			}
		}
	}
	// Without GROUP BY every shard sent one row even for no input, and
	// the server sends one row too, whatever the shards sent.
	if len(a.groupBy) == 0 && len(groups) == 0 {
		groups = append(groups, make([]acc, len(a.outs)))
	}
	return groups, nil
}

// update folds one shard row into a group's state.
func (a *aggPlan) update(accs []acc, row [][]byte, tmp, cur *datum) error {
	for i := range a.outs {
		o, ac, v := &a.outs[i], &accs[i], row[a.outs[i].col]
		if o.kind == Group {
			if !ac.has {
				ac.has, ac.b = true, cloneValue(v)
			}
			continue
		}
		if o.kind == Avg {
			if err := addCount(o, ac, row[o.cnt], tmp); err != nil {
				return err
			}
		}
		if v == nil {
			continue // aggregates skip NULL inputs, as the shards did
		}
		if err := o.in.read(tmp, v); err != nil {
			return err
		}
		first := !ac.has
		ac.has = true
		switch o.kind {
		case Count:
			var over bool
			if ac.i, over = addInt64(ac.i, tmp.i); over {
				return overflow("bigint")
			}
		case Sum, Avg:
			if err := o.addSum(ac, tmp, first); err != nil {
				return err
			}
		case Min, Max:
			if !first {
				if err := o.in.read(cur, ac.b); err != nil {
					return err
				}
				c := compareDatum(o.in.t.cls, tmp, cur)
				if (o.kind == Min && c >= 0) || (o.kind == Max && c <= 0) {
					continue
				}
			}
			ac.b = setValue(ac.b, v)
		case BoolAnd:
			ac.i = boolInt(first && tmp.i == 1 || !first && ac.i == 1 && tmp.i == 1)
		case BoolOr:
			ac.i = boolInt(first && tmp.i == 1 || !first && (ac.i == 1 || tmp.i == 1))
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// addCount adds an Avg's count column.
func addCount(o *aggOut, ac *acc, v []byte, tmp *datum) error {
	if v == nil {
		return nil
	}
	if err := o.cntIn.read(tmp, v); err != nil {
		return err
	}
	var over bool
	if ac.i, over = addInt64(ac.i, tmp.i); over {
		return overflow("bigint")
	}
	return nil
}

// addInt64 adds and reports overflow, where the server raises
// "bigint out of range".
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0)
}

// addSum adds one shard's sum: exactly in int64 (checked) or numeric, in
// float32 for real as float4pl does, in float64 for double precision.
func (o *aggOut) addSum(ac *acc, x *datum, first bool) error {
	switch {
	case o.in.oid == pgtype.Float4OID && o.kind == Sum:
		ac.f = float64(float32(ac.f) + float32(x.f))
	case o.float:
		ac.f += x.f
	case o.in.oid == pgtype.NumericOID || o.kind == Avg:
		if ac.n == nil {
			ac.n = new(decimal)
		}
		if o.in.oid != pgtype.NumericOID {
			x.num().setInt64(x.i)
		}
		if first {
			ac.n.set(x.n)
		} else {
			ac.n.add(x.n)
		}
	default:
		var over bool
		if ac.i, over = addInt64(ac.i, x.i); over {
			return overflow("bigint")
		}
	}
	return nil
}

// setValue copies v into dst's storage; the result is never nil, since
// nil would read as NULL.
func setValue(dst, v []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, len(v))
	}
	return append(dst[:0], v...)
}

func cloneValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

// finish encodes a group's merged row in the result columns' formats.
func (a *aggPlan) finish(accs []acc) [][]byte {
	row := make([][]byte, len(a.outs))
	for i := range a.outs {
		o, ac := &a.outs[i], &accs[i]
		bin := o.res.format == binaryFormat
		switch {
		case o.kind == Group || o.kind == Min || o.kind == Max:
			row[i] = ac.b
		case o.kind == Count:
			row[i] = appendInt8(nil, ac.i, bin)
		case !ac.has:
			// NULL: no non-NULL input.
		case o.kind == Avg && ac.i == 0:
		case o.kind == Avg && o.float:
			row[i] = appendFloat(nil, pgtype.Float8OID, ac.f/float64(ac.i), bin)
		case o.kind == Avg:
			var q decimal
			q.divInt(ac.n, ac.i)
			row[i] = appendNumeric(nil, &q, bin)
		case o.kind == Sum && o.float:
			row[i] = appendFloat(nil, o.res.oid, ac.f, bin)
		case o.kind == Sum && o.res.oid == pgtype.NumericOID:
			row[i] = appendNumeric(nil, ac.n, bin)
		case o.kind == Sum:
			row[i] = appendInt8(nil, ac.i, bin)
		default: // BoolAnd, BoolOr
			row[i] = appendBool(nil, ac.i == 1, bin)
		}
	}
	return row
}

func appendInt8(dst []byte, n int64, bin bool) []byte {
	if bin {
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return strconv.AppendInt(dst, n, 10)
}

func appendBool(dst []byte, b, bin bool) []byte {
	switch {
	case bin:
		return append(dst, byte(boolInt(b)))
	case b:
		return append(dst, 't')
	}
	return append(dst, 'f')
}

func appendFloat(dst []byte, oid uint32, f float64, bin bool) []byte {
	switch {
	case oid == pgtype.Float4OID && bin:
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	case oid == pgtype.Float4OID:
		return appendFloat4(dst, float32(f))
	case bin:
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return appendFloat8(dst, f)
}

func appendNumeric(dst []byte, d *decimal, bin bool) []byte {
	if bin {
		return d.appendBinary(dst)
	}
	return d.appendText(dst)
}

// sortRows sorts merged groups by p.order (stable, so equal groups keep
// the order they were first seen in).
func (p *plan) sortRows(rows [][][]byte) error {
	type keyed struct {
		row  [][]byte
		keys []datum
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		ks[i] = keyed{r, make([]datum, len(p.order))}
		if err := p.readKeys(ks[i].keys, r); err != nil {
			return err
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return compareKeys(p.order, a.keys, b.keys) })
	for i := range ks {
		rows[i] = ks[i].row
	}
	return nil
}
