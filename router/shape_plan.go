package router

import (
	"reflect"
	"sync"
	"unsafe"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// shapeEntry is what the shape cache knows of a shape: the plan of its
// key for a schema version, or nil when its texts are planned one by one
// (their plans need more than key values from the text, or the key's plan
// did not match a text's).
type shapeEntry struct {
	version uint64
	plan    *Plan
}

var shapes = sync.Pool{New: func() any { return new(shape) }}

// planShape plans sql from the plan of its shape. ok=false means the
// caller must plan sql itself: sql has no shape, or its shape is planned
// text by text. A shape seen for the first time is planned, and its plan
// is kept only if, filled with this text's values, it is the plan of the
// text: the text is then planned too, and that plan returned.
func (r *Router) planShape(sql string, s Schema, v uint64) (p *Plan, ok bool) {
	sh := shapes.Get().(*shape)
	defer func() {
		if cap(sh.key) <= maxCachedQuery*2 {
			sh.sql = ""
			shapes.Put(sh)
		}
	}()
	if !sh.read(sql) || len(sh.key) > maxCachedQuery {
		return nil, false
	}
	if e, hit := r.shapes.get(unsafe.String(unsafe.SliceData(sh.key), len(sh.key))); hit && e.version == v {
		if e.plan == nil {
			return nil, false
		}
		return sh.fill(e.plan)
	}
	key := string(sh.key)
	tmpl := r.shapePlan(key, s)
	full := r.makePlan(sql, s)
	if tmpl != nil {
		if filled, ok := sh.fill(tmpl); !ok || !reflect.DeepEqual(filled, full) {
			tmpl = nil
		}
	}
	r.shapes.put(key, shapeEntry{version: v, plan: tmpl})
	if tmpl == nil {
		r.plans.put(sql, v, full)
	}
	return full, true
}

// shapePlan plans a shape's key, or returns nil when the plan cannot
// serve the shape's texts: the key does not parse (a literal was replaced
// where the grammar wants a constant, as in EXTRACT('epoch' FROM x)), or
// the plan says more about the text than Values can carry. Merges (LIMIT
// and HAVING constants, the rewritten SQL), INSERT splits and COPY need
// the text itself, and refusals are rare enough to plan one by one.
func (r *Router) shapePlan(key string, s Schema) *Plan {
	res, err := pg_query.Parse(key)
	if err != nil {
		return nil
	}
	p := r.planParsed(key, res, nil, s)
	if p.Refused != nil || p.Merge != nil || p.Rewritten != "" || p.Insert != nil || p.Copy != nil {
		return nil
	}
	return p
}

// filledPlan holds a filled plan with room for its first keys, so that a
// point query's plan is one allocation.
type filledPlan struct {
	p      Plan
	keys   [2]Value
	newKey Value
}

// fill returns the shape's plan t with its parameters replaced by the
// text's values, as literal Values. A plan that uses no parameter is t
// itself. ok=false when t uses a parameter as no literal can be (an
// array of keys) or one the shape does not have.
func (sh *shape) fill(t *Plan) (*Plan, bool) {
	uses := t.NewKey != nil && t.NewKey.Param != 0
	for _, k := range t.Keys {
		uses = uses || k.Param != 0
	}
	if !uses {
		return t, true
	}
	// One string holds the values; each Text is a part of it. The copy
	// also keeps the plan off sql, which may be a reused buffer.
	vals := string(sh.canon)
	f := &filledPlan{p: *t}
	switch {
	case t.Keys == nil:
	case len(t.Keys) <= len(f.keys):
		f.p.Keys = f.keys[:len(t.Keys):len(t.Keys)]
	default:
		f.p.Keys = make([]Value, len(t.Keys))
	}
	for i, k := range t.Keys {
		v, ok := sh.literalValue(k, vals)
		if !ok {
			return nil, false
		}
		f.p.Keys[i] = v
	}
	if t.NewKey != nil {
		v, ok := sh.literalValue(*t.NewKey, vals)
		if !ok {
			return nil, false
		}
		f.newKey = v
		f.p.NewKey = &f.newKey
	}
	return &f.p, true
}

// literalValue turns a parameter Value into the literal one the text has.
func (sh *shape) literalValue(k Value, vals string) (Value, bool) {
	if k.Param == 0 {
		return k, true
	}
	if k.Param < 0 || k.Param > len(sh.vals) || k.Array || k.Null || k.Text != "" {
		return Value{}, false
	}
	s := sh.vals[k.Param-1]
	return Value{Text: vals[s.off:s.end], Type: k.Type}, true
}
