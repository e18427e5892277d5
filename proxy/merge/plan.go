package merge

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// sortKey is an Order entry resolved against the rows it sorts.
type sortKey struct {
	col        int
	cls        class
	desc       bool
	nullsFirst bool
}

// plan is a Spec checked against the shard fields, every index resolved.
type plan struct {
	cols  []column // the shard columns
	width int      // client-visible columns
	// rowCols are the columns of the rows that Order, Distinct and the
	// sink see: the shard columns, or the merged columns under Aggregate.
	rowCols  []column
	order    []sortKey
	limit    int64
	offset   int64
	distinct bool
	agg      *aggPlan // nil without Aggregate
}

func compile(spec *Spec, fields []pgproto3.FieldDescription) (*plan, error) {
	if spec.Limit < -1 || spec.Offset < 0 {
		return nil, badSpec("Limit %d, Offset %d", spec.Limit, spec.Offset)
	}
	if spec.Hidden < 0 || spec.Hidden > len(fields) {
		return nil, badSpec("Hidden %d out of range for %d columns", spec.Hidden, len(fields))
	}
	p := &plan{limit: spec.Limit, offset: spec.Offset, distinct: spec.Distinct}
	p.cols = make([]column, len(fields))
	for i, f := range fields {
		if f.Format != textFormat && f.Format != binaryFormat {
			return nil, badSpec("column %d has format code %d", i, f.Format)
		}
		p.cols[i] = newColumn(f.DataTypeOID, f.Format)
	}
	orderable := len(fields)
	if spec.Aggregate {
		a, err := compileAgg(spec, p.cols, fields)
		if err != nil {
			return nil, err
		}
		p.agg, p.rowCols, p.width = a, a.rowCols, len(spec.Outputs)
		orderable = len(spec.Outputs) + len(spec.HiddenOutputs)
	} else {
		if len(spec.Outputs) > 0 || len(spec.HiddenOutputs) > 0 || spec.Having != nil {
			return nil, badSpec("Outputs, HiddenOutputs and Having need Aggregate")
		}
		p.rowCols, p.width = p.cols, len(fields)-spec.Hidden
	}
	for _, o := range spec.Order {
		col, err := resolve(o.Column, orderable, "order")
		if o.Name != "" {
			col, err = byName(o.Name, fields[:len(fields)-spec.Hidden], spec.Aggregate)
		}
		if err != nil {
			return nil, err
		}
		c := &p.rowCols[col]
		if c.t == nil {
			return nil, unsupported("cannot merge ORDER BY on %s: its sort order is unknown to shardgate", c.typeName())
		}
		p.order = append(p.order, sortKey{col: col, cls: c.t.cls, desc: o.Desc, nullsFirst: o.NullsFirst})
	}
	return p, nil
}

// compareKeys orders two rows' decoded sort keys.
func compareKeys(order []sortKey, a, b []datum) int {
	for i := range order {
		k, x, y := &order[i], &a[i], &b[i]
		var c int
		switch {
		case x.null || y.null:
			switch {
			case x.null && y.null:
				continue
			case x.null == k.nullsFirst:
				return -1
			default:
				return 1
			}
		default:
			c = compareDatum(k.cls, x, y)
			if k.desc {
				c = -c
			}
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// readKeys decodes row's sort keys into keys.
func (p *plan) readKeys(keys []datum, row [][]byte) error {
	for i, k := range p.order {
		if err := p.rowCols[k.col].read(&keys[i], row[k.col]); err != nil {
			return err
		}
	}
	return nil
}

// errDone tells a producer the limit is reached; Run returns nil for it.
var errDone = errors.New("merge: limit reached")

// sink applies Distinct, Offset and Limit to merged rows, drops hidden
// columns, and emits.
type sink struct {
	emit   func(row [][]byte) error
	width  int
	skip   int64
	left   int64 // rows still to emit; negative: no limit
	dedupe *deduper
}

func (p *plan) newSink(emit func(row [][]byte) error) *sink {
	s := &sink{emit: emit, width: p.width, skip: p.offset, left: p.limit}
	if p.distinct {
		s.dedupe = &deduper{cols: p.rowCols[:p.width]}
		// When the sort keys start with every visible column, equal rows
		// arrive together: comparing with the previous row is enough and
		// memory stays bounded. Otherwise remember every row seen.
		if !coversVisible(p.order, p.width) {
			s.dedupe.set = make(map[string]struct{})
		}
	}
	return s
}

// coversVisible reports whether the first width sort keys are the
// columns 0..width-1 in some order.
func coversVisible(order []sortKey, width int) bool {
	if len(order) < width {
		return false
	}
	seen := make([]bool, width)
	for _, k := range order[:width] {
		if k.col >= width || seen[k.col] {
			return false
		}
		seen[k.col] = true
	}
	return true
}

// put takes a merged row; the row is only read during the call.
func (s *sink) put(row [][]byte) error {
	row = row[:s.width]
	if s.dedupe != nil {
		dup, err := s.dedupe.seen(row)
		if err != nil || dup {
			return err
		}
	}
	if s.skip > 0 {
		s.skip--
		return nil
	}
	if err := s.emit(row); err != nil {
		return err
	}
	if s.left > 0 {
		s.left--
		if s.left == 0 {
			return errDone
		}
	}
	return nil
}

// deduper recognises rows equal, as the server compares, to one seen
// before.
type deduper struct {
	cols []column
	tmp  datum
	key  []byte
	prev []byte
	has  bool
	set  map[string]struct{} // nil: compare with the previous row only
}

func (d *deduper) seen(row [][]byte) (bool, error) {
	k := d.key[:0]
	for i, v := range row {
		var err error
		if k, err = d.cols[i].appendKey(k, v, &d.tmp); err != nil {
			return false, err
		}
	}
	d.key = k
	if d.set == nil {
		if d.has && bytes.Equal(k, d.prev) {
			return true, nil
		}
		d.prev, d.has = append(d.prev[:0], k...), true
		return false, nil
	}
	if _, ok := d.set[string(k)]; ok {
		return true, nil
	}
	d.set[string(k)] = struct{}{}
	return false, nil
}

// checkWidth rejects a shard row that does not match the fields.
func checkWidth(source int, row [][]byte, want int) error {
	if len(row) != want {
		return &Error{Code: codeInternal, Message: fmt.Sprintf("shard source %d sent a row of %d columns, expected %d", source, len(row), want)}
	}
	return nil
}

// byName finds the one visible column called name.
func byName(name string, visible []pgproto3.FieldDescription, aggregate bool) (int, error) {
	if aggregate {
		return 0, badSpec("order by name %q needs a plain merge", name)
	}
	found := -1
	for i, f := range visible {
		if string(f.Name) == name {
			if found >= 0 {
				return 0, unsupported("cannot merge ORDER BY %s: the result has two columns of that name", name)
			}
			found = i
		}
	}
	if found < 0 {
		return 0, unsupported("cannot merge ORDER BY %s: no result column has that name", name)
	}
	return found, nil
}
