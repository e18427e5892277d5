package merge

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// tri is a truth value of SQL's three-valued logic.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triNull
)

// operand is one side of a HAVING comparison: a merged-row column, or a
// constant decoded once, at compile time, as the other side's type.
type operand struct {
	col   int    // merged-row column; -1 for a constant
	c     column // the column's type and format
	text  *string
	null  bool // the NULL constant
	konst datum
	from  class // the class the value decodes into
	tmp   datum
}

// cond is a compiled Expr.
type cond struct {
	op   string
	args []*cond
	l, r *operand
	cls  class // the class a comparison's operands are compared in
}

// compileCond compiles e; leaves index the merged row's first indexable
// columns, and Hidden leaves become extra outputs of a.
func (a *aggPlan) compileCond(e *Expr, indexable int, cols []column, fields []pgproto3.FieldDescription) (*cond, error) {
	if e == nil {
		return nil, badSpec("nil HAVING expression")
	}
	c := &cond{op: e.Op}
	switch e.Op {
	case "and", "or", "not":
		if len(e.Args) == 0 || (e.Op == "not" && len(e.Args) != 1) {
			return nil, badSpec("%q with %d arguments", e.Op, len(e.Args))
		}
		for _, arg := range e.Args {
			x, err := a.compileCond(arg, indexable, cols, fields)
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, x)
		}
		return c, nil
	case "":
		l, err := a.operand(e, indexable, cols, fields)
		if err != nil {
			return nil, err
		}
		if l.col >= 0 && l.c.oid != pgtype.BoolOID {
			return nil, badSpec("HAVING leaf of type OID %d is not boolean", l.c.oid)
		}
		if l.col < 0 && !l.null {
			b, ok := parseBoolConst(*l.text)
			if !ok {
				return nil, badSpec("HAVING constant %q is not boolean", *l.text)
			}
			l.konst.i = boolInt(b)
		}
		c.l, c.cls = l, clsInt
		l.from = clsInt
		return c, nil
	case "=", "<>", "<", "<=", ">", ">=":
		if len(e.Args) != 2 {
			return nil, badSpec("%q with %d arguments", e.Op, len(e.Args))
		}
		l, err := a.operand(e.Args[0], indexable, cols, fields)
		if err != nil {
			return nil, err
		}
		r, err := a.operand(e.Args[1], indexable, cols, fields)
		if err != nil {
			return nil, err
		}
		c.l, c.r = l, r
		if c.cls, err = typeComparison(l, r); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, badSpec("unknown HAVING operator %q", e.Op)
}

// operand compiles a leaf.
func (a *aggPlan) operand(e *Expr, indexable int, cols []column, fields []pgproto3.FieldDescription) (*operand, error) {
	o := &operand{col: -1}
	switch {
	case e.Op != "":
		return nil, unsupported("HAVING comparison of a %q expression", e.Op)
	case e.Output != nil:
		col, err := resolve(*e.Output, indexable, "having")
		if err != nil {
			return nil, err
		}
		o.col = col
	case e.Hidden != nil:
		if err := a.add(*e.Hidden, cols, fields); err != nil {
			return nil, err
		}
		o.col = len(a.outs) - 1
	case e.ConstNull:
		o.null = true
	case e.Const != nil:
		o.text = e.Const
	default:
		return nil, badSpec("empty HAVING leaf")
	}
	if o.col >= 0 {
		o.c = a.rowCols[o.col]
		if o.c.t != nil {
			o.from = o.c.t.cls
		}
	}
	return o, nil
}

// typeComparison picks the class two operands compare in, as the server
// would resolve the operator: integers, numeric and floats compare across
// types (an integer becomes numeric, numeric becomes float8); other types
// only with themselves. Constants take the other side's type.
func typeComparison(l, r *operand) (class, error) {
	switch {
	case l.col < 0 && r.col < 0:
		return 0, unsupported("HAVING comparison of two constants")
	case l.col < 0:
		return constComparison(l, r)
	case r.col < 0:
		return constComparison(r, l)
	}
	lo, ro := l.c.oid, r.c.oid
	if l.c.t == nil || r.c.t == nil {
		return 0, unsupported("HAVING comparison of %s and %s", l.c.typeName(), r.c.typeName())
	}
	if numericFamily(lo) && numericFamily(ro) {
		switch {
		case l.from == clsFloat || r.from == clsFloat:
			return clsFloat, nil
		case l.from == clsNumeric || r.from == clsNumeric:
			return clsNumeric, nil
		}
		return clsInt, nil
	}
	textual := func(oid uint32) bool {
		return oid == pgtype.TextOID || oid == pgtype.VarcharOID || oid == pgtype.NameOID
	}
	if lo == ro || textual(lo) && textual(ro) {
		return l.from, nil
	}
	return 0, unsupported("HAVING comparison of %s and %s", l.c.typeName(), r.c.typeName())
}

func numericFamily(oid uint32) bool {
	return isIntOID(oid) || isFloatOID(oid) || oid == pgtype.NumericOID
}

// constComparison decodes constant k as the type of column side x.
func constComparison(k, x *operand) (class, error) {
	if x.c.t == nil {
		return 0, unsupported("HAVING comparison with %s", x.c.typeName())
	}
	if k.null {
		return x.from, nil
	}
	v := []byte(*k.text)
	if x.c.t.text(&k.konst, v) {
		k.from = x.from
		return x.from, nil
	}
	// An integer column against a fractional constant compares as
	// numeric, as the server resolves int8 > 1.5.
	if isIntOID(x.c.oid) && k.konst.num().parseText(v) {
		k.from = clsNumeric
		return clsNumeric, nil
	}
	return 0, unsupported("HAVING constant %q is not a valid %s", *k.text, x.c.t.name)
}

func parseBoolConst(s string) (bool, bool) {
	switch s {
	case "t", "true", "TRUE", "yes", "on", "1":
		return true, true
	case "f", "false", "FALSE", "no", "off", "0":
		return false, true
	}
	return false, false
}

// value returns the operand's value in class to, or nil for NULL.
func (o *operand) value(row [][]byte, to class) (*datum, error) {
	d := &o.konst
	if o.col >= 0 {
		v := row[o.col]
		if v == nil {
			return nil, nil
		}
		d = &o.tmp
		if err := o.c.read(d, v); err != nil {
			return nil, err
		}
	} else if o.null {
		return nil, nil
	}
	if o.from == to {
		return d, nil
	}
	r := &o.tmp
	switch {
	case o.from == clsInt && to == clsNumeric:
		r.num().setInt64(d.i)
	case o.from == clsInt && to == clsFloat:
		r.f = float64(d.i)
	case o.from == clsNumeric && to == clsFloat:
		f, err := strconv.ParseFloat(string(d.n.appendText(nil)), 64)
		if err != nil && f == 0 {
			return nil, err
		}
		r.f = f
	default:
		return nil, badSpec("HAVING cannot compare class %d as %d", o.from, to)
	}
	return r, nil
}

// test reports whether a merged row passes.
func (c *cond) test(row [][]byte) (bool, error) {
	t, err := c.eval(row)
	return t == triTrue, err
}

func (c *cond) eval(row [][]byte) (tri, error) {
	switch c.op {
	case "and", "or":
		res := triTrue
		if c.op == "or" {
			res = triFalse
		}
		for _, x := range c.args {
			t, err := x.eval(row)
			if err != nil {
				return 0, err
			}
			switch {
			case t == triNull:
				res = triNull
			case c.op == "and" && t == triFalse:
				return triFalse, nil
			case c.op == "or" && t == triTrue:
				return triTrue, nil
			}
		}
		return res, nil
	case "not":
		t, err := c.args[0].eval(row)
		if t != triNull {
			t ^= 1
		}
		return t, err
	case "":
		d, err := c.l.value(row, clsInt)
		if d == nil || err != nil {
			return triNull, err
		}
		return tri(d.i), nil
	}
	a, err := c.l.value(row, c.cls)
	if a == nil || err != nil {
		return triNull, err
	}
	b, err := c.r.value(row, c.cls)
	if b == nil || err != nil {
		return triNull, err
	}
	cmp := compareDatum(c.cls, a, b)
	var ok bool
	switch c.op {
	case "=":
		ok = cmp == 0
	case "<>":
		ok = cmp != 0
	case "<":
		ok = cmp < 0
	case "<=":
		ok = cmp <= 0
	case ">":
		ok = cmp > 0
	default:
		ok = cmp >= 0
	}
	return tri(boolInt(ok)), nil
}
