package router

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// Plan plans sql against s: where it runs and how the shards' results
// combine. A text of several statements gets a plan as wide as its
// statements need, without Merge, or is refused when they go to
// different places. Text the parser rejects goes to the default shard,
// which reports the error.
//
// The result may be shared (cached by text and s.Version()) and is
// read-only. It keeps no reference to sql, which may be a view of a
// reused buffer. A cache hit allocates nothing. A SELECT, INSERT, UPDATE,
// DELETE or WITH whose text differs from one planned before only in its
// constants is planned from that one's plan, without the parser (see
// shape.go): its plan is the same as if it had been parsed, and costs a
// pass over the text and an allocation or two. A nil s knows no table:
// everything is unsharded.
func (r *Router) Plan(sql string, s Schema) *Plan {
	if s == nil {
		s = noTables{}
	}
	v := s.Version()
	if r.plans == nil {
		return r.makePlan(sql, s)
	}
	if p := r.plans.get(sql, v); p != nil {
		r.hits.add(len(sql))
		return p
	}
	if p, ok := r.planShape(sql, s, v); ok {
		r.hits.add(len(sql))
		return p
	}
	r.misses.add(len(sql))
	p := r.makePlan(sql, s)
	r.plans.put(sql, v, p)
	return p
}

func (r *Router) makePlan(sql string, s Schema) *Plan {
	res, err := pg_query.Parse(sql)
	return r.planParsed(sql, res, err, s)
}

// planParsed plans sql from its parse (res, or the parser's error).
func (r *Router) planParsed(sql string, res *pg_query.ParseResult, err error, s Schema) *Plan {
	var (
		p    *Plan
		dist string
	)
	if err != nil {
		p = &Plan{Spread: SpreadDefault}
	} else {
		p, dist = planStatements(res, s)
	}
	p.Write = r.Analyze(sql).Write
	if p.Spread == SpreadAny && p.Write {
		// A statement that reads no sharded table but may write
		// (nextval, an advisory lock, FOR UPDATE on a reference table)
		// runs where the unsharded objects live, so that its effects meet
		// in one place.
		p.Spread = SpreadDefault
	}
	applyHints(p, findShardHints(sql), dist)
	return p
}

// applyHints lets a shard or key hint override the plan. A hint also
// lifts a refusal: the user says where the rows are.
func applyHints(p *Plan, h shardHints, dist string) {
	switch {
	case h.shard != "":
		*p = Plan{Spread: SpreadShard, Shard: h.shard, Write: p.Write, DDL: p.DDL}
	case h.hasKey:
		*p = Plan{Spread: SpreadKeys, Keys: []Value{{Text: h.key}}, Distribution: dist, Write: p.Write, DDL: p.DDL}
	}
}

// planStatements plans each statement of a parsed text and combines the
// plans. dist is the distribution of the first sharded table named, for
// key hints.
func planStatements(res *pg_query.ParseResult, s Schema) (*Plan, string) {
	if len(res.Stmts) == 0 {
		return &Plan{Spread: SpreadAny}, ""
	}
	var (
		plans []*Plan
		dist  string
	)
	for _, raw := range res.Stmts {
		one := &pg_query.ParseResult{Version: res.Version, Stmts: []*pg_query.RawStmt{raw}}
		p, d := planStatement(one, s)
		if dist == "" {
			dist = d
		}
		plans = append(plans, p)
	}
	if len(plans) == 1 {
		return plans[0], dist
	}
	return combine(plans), dist
}

// combine merges the plans of a text's statements into one. The proxy
// sends the whole text wherever the plan says, so the statements must
// agree on the place: session statements and reads that any shard serves
// go anywhere; otherwise all on the default shard, all on the same
// single key's shard, or all on every shard as schema changes and
// reference writes. Results of several statements are never merged, and
// INSERT splitting, key changes and COPY need a statement of their own.
func combine(plans []*Plan) *Plan {
	out := &Plan{Spread: SpreadAny}
	for _, p := range plans {
		if p.Refused != nil {
			return &Plan{Refused: p.Refused}
		}
		if p.NewKey != nil || p.Insert != nil || p.Copy != nil {
			return &Plan{Refused: multiRefusal("an UPDATE of the sharding key, a multi-row INSERT into a sharded table, or a COPY")}
		}
		out.DDL = out.DDL || p.DDL
		out.Reference = out.Reference || p.Reference
		if p.Spread == SpreadAny {
			continue
		}
		everywhere := p.Spread == SpreadAll && (p.DDL || p.Reference)
		switch {
		case p.Spread == SpreadAll && !everywhere:
			return &Plan{Refused: multiRefusal("a statement over several shards")}
		case p.Spread == SpreadKeys && (!single(p.Keys, true) || p.Merge != nil):
			return &Plan{Refused: multiRefusal("a statement over several keys")}
		case out.Spread == SpreadAny:
			out.Spread, out.Keys, out.Distribution = p.Spread, p.Keys, p.Distribution
		case out.Spread != p.Spread,
			p.Spread == SpreadKeys && (out.Distribution != p.Distribution || !sameValue(out.Keys[0], p.Keys[0])):
			return &Plan{Refused: multiRefusal("statements that go to different shards")}
		}
	}
	return out
}

func multiRefusal(what string) *Refusal {
	return &Refusal{
		Message: "a query string of several statements cannot hold " + what + ": the whole string runs in one place",
		Hint:    "send the statements one at a time, or route the string with a /* shardgate: shard=NAME */ hint",
	}
}

// noTables is the Schema of a map that shards nothing.
type noTables struct{}

func (noTables) Table(string, string) (TableInfo, bool) { return TableInfo{}, false }
func (noTables) Version() uint64                        { return 0 }
