package merge

import (
	"fmt"
	"math/rand"
	"strings"
)

// testTableSQL creates table t with n rows of seeded random data: every
// type the engine orders, NULLs in every column, the special float and
// numeric values, BC and infinite dates, and strings that sort
// differently under other collations.
//
// Some choices keep the single-server answer unique, so that a byte
// comparison is fair: float columns that are summed hold multiples of
// 1/4 (exact sums in any order) and never +0 next to -0 (min/max of the
// two is either); numerics that are min'd, grouped or deduplicated have
// a fixed scale (1.5 and 1.50 are equal, and which one the server shows
// is arbitrary). Summed floats have no -Infinity: NaN from
// Infinity + -Infinity has another bit pattern than a NaN input, and
// which one a sum ends with depends on the order of additions.
func testTableSQL(seed int64, n int) string {
	rng := rand.New(rand.NewSource(seed))
	var b strings.Builder
	b.WriteString(`CREATE TABLE t (
	id int8 PRIMARY KEY, g int4, g2 text,
	i2 int2, i4 int4, i8 int8, f4 real, f8 float8, fo float8,
	n numeric(14,3), nv numeric, ns numeric, b bool,
	tx text, vc varchar(8), bp char(4), nm name, by bytea, u uuid,
	d date, ts timestamp, tz timestamptz, tm time, iv interval, o oid, c "char");
`)
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	str := func(max int) string {
		pool := []string{"", "a", "a ", "ab", "B", "Z", "é", "日本", "x y", "'q'", "~"}
		if rng.Intn(2) == 0 {
			return pool[rng.Intn(len(pool))]
		}
		s := make([]byte, rng.Intn(max+1))
		for i := range s {
			s[i] = "abcXYZ _09"[rng.Intn(10)]
		}
		return string(s)
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	quarter := func(maxK int) string {
		k := rng.Intn(2*maxK) - maxK
		if k >= 0 {
			k++ // never +0
		}
		return fmt.Sprintf("%g", float64(k)/4)
	}
	cols := []func() string{
		func() string { return fmt.Sprint(rng.Intn(10)) },
		func() string { return lit(pick("x", "y", "z")) },
		func() string { return fmt.Sprint(rng.Intn(65536) - 32768) },
		func() string { return fmt.Sprint(rng.Int31() - rng.Int31()) },
		func() string { return fmt.Sprint(rng.Int63() - rng.Int63()) },
		func() string { return pick("'NaN'", "'Infinity'", "'-0'", quarter(400), quarter(400), quarter(400)) },
		func() string { return pick("'NaN'", "'Infinity'", "'-0'", quarter(4e6), quarter(4e6), quarter(4e6)) },
		func() string {
			return pick("'NaN'", "'-Infinity'", fmt.Sprintf("%g", rng.NormFloat64()*pow10f(rng.Intn(40)-20)),
				fmt.Sprintf("'%g'", rng.ExpFloat64()*1e300), fmt.Sprintf("%g", -rng.Float64()*1e-310))
		},
		func() string { return fmt.Sprintf("%d.%03d", rng.Intn(2e9)-1e9, rng.Intn(1000)) },
		func() string {
			whole := rng.Int63n(1e18) - 5e17
			if scale := rng.Intn(7); scale > 0 {
				return fmt.Sprintf("%d.%0*d", whole, scale, rng.Intn(int(pow10f(scale))))
			}
			return fmt.Sprint(whole)
		},
		func() string {
			return pick("'NaN'", "'Infinity'", "'-Infinity'", fmt.Sprintf("%d.%02d", rng.Intn(2e6)-1e6, rng.Intn(100)))
		},
		func() string { return pick("true", "false") },
		func() string { return lit(str(6)) },
		func() string { return lit(str(8)) },
		func() string { return lit(str(4)) },
		func() string { return lit(strings.TrimSpace(str(5)) + "n") },
		func() string {
			v := make([]byte, rng.Intn(4))
			rng.Read(v)
			return fmt.Sprintf(`'\x%x'::bytea`, v)
		},
		func() string {
			v := make([]byte, 16)
			rng.Read(v)
			if rng.Intn(10) == 0 {
				v[0] = 0xff
			}
			return fmt.Sprintf("'%x'::uuid", v)
		},
		func() string {
			return pick("'infinity'::date", "'-infinity'::date", fmt.Sprintf("date '2000-01-01' + %d", rng.Intn(1.6e6)-8e5))
		},
		func() string {
			return pick("'-infinity'::timestamp", fmt.Sprintf("timestamp '2000-01-01' + %d * interval '1 microsecond' + %d * interval '1 second'",
				rng.Intn(1e6), rng.Int63n(1.2e11)-6e10))
		},
		func() string {
			return pick("'infinity'::timestamptz", fmt.Sprintf("timestamptz '2000-01-01 00:00:00+00' + %d * interval '1 microsecond' + %d * interval '1 second'",
				rng.Intn(1e6), rng.Int63n(1.2e11)-6e10))
		},
		func() string {
			return pick("'24:00:00'::time", fmt.Sprintf("time '00:00' + %d * interval '1 microsecond'", rng.Int63n(86400e6)))
		},
		func() string {
			return fmt.Sprintf("%d * interval '1 month' + %d * interval '1 day' + %d * interval '1 microsecond'",
				rng.Intn(50)-25, rng.Intn(100)-50, rng.Int63n(2e11)-1e11)
		},
		func() string { return fmt.Sprintf("'%d'::oid", rng.Uint32()) },
		func() string { return pick(`''::"char"`, fmt.Sprintf(`chr(%d)::"char"`, rng.Intn(254)+1)) },
	}
	for start := 1; start <= n; start += 500 {
		b.WriteString("INSERT INTO t VALUES\n")
		for id := start; id < start+500 && id <= n; id++ {
			if id > start {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "(%d", id)
			for _, col := range cols {
				v := col()
				if rng.Intn(12) == 0 {
					v = "NULL"
				}
				b.WriteString(", " + v)
			}
			b.WriteString(")")
		}
		b.WriteString(";\n")
	}
	return b.String()
}

func pow10f(n int) float64 {
	f := 1.0
	for ; n > 0; n-- {
		f *= 10
	}
	for ; n < 0; n++ {
		f /= 10
	}
	return f
}

// orderedColumns are the columns ORDER BY is checked on.
var orderedColumns = []string{"i2", "i4", "i8", "f4", "f8", "fo", "n", "nv", "ns", "b", "tx", "vc", "bp", "nm",
	"by", "u", "d", "ts", "tz", "tm", "iv", "o", "c"}

// minMaxColumns have min and max aggregates in PostgreSQL 15 and a
// unique text form per value.
var minMaxColumns = []string{"i2", "i4", "i8", "f4", "f8", "fo", "n", "ns", "tx", "vc", "bp", "d", "ts", "tz", "tm", "o"}

func serverCases() []serverCase {
	var cases []serverCase
	dirs := []struct {
		sql   string
		order Order
	}{
		{"ASC NULLS LAST", Order{}},
		{"DESC NULLS FIRST", Order{Desc: true, NullsFirst: true}},
		{"ASC NULLS FIRST", Order{NullsFirst: true}},
		{"DESC NULLS LAST", Order{Desc: true}},
	}
	for _, col := range orderedColumns {
		for i, d := range dirs {
			o := d.order
			sc := serverCase{
				name:  fmt.Sprintf("order %s %s", col, d.sql),
				whole: fmt.Sprintf("SELECT %s, id FROM t WHERE {W} ORDER BY %s %s, id", col, col, d.sql),
				spec:  Spec{Limit: -1, Order: []Order{o, {Column: 1}}},
			}
			if i%2 == 1 { // the tie-breaker as a hidden column
				sc.whole = fmt.Sprintf("SELECT %s FROM t WHERE {W} ORDER BY %s %s, id", col, col, d.sql)
				sc.shard = fmt.Sprintf("SELECT %s, id FROM t WHERE {W} ORDER BY %s %s, id", col, col, d.sql)
				sc.spec = Spec{Limit: -1, Hidden: 1, Order: []Order{o, {Column: -1}}}
			}
			cases = append(cases, sc)
		}
	}
	var mins, shardMins []string
	var minOuts []Output
	for i, col := range minMaxColumns {
		mins = append(mins, fmt.Sprintf("min(%s), max(%s)", col, col))
		minOuts = append(minOuts, Output{Kind: Min, Column: 1 + 2*i}, Output{Kind: Max, Column: 2 + 2*i})
	}
	shardMins = mins
	groupOuts := func(prefix []Output, more ...Output) []Output { return append(append(prefix, minOuts...), more...) }
	cases = append(cases,
		serverCase{name: "concat", whole: "SELECT id, tx, by FROM t WHERE {W}", spec: Spec{Limit: -1}, unordered: true},
		serverCase{name: "limit offset", whole: "SELECT i8, tx FROM t WHERE {W} ORDER BY i8 DESC, id LIMIT 50 OFFSET 30",
			shard: "SELECT i8, tx, id FROM t WHERE {W} ORDER BY i8 DESC, id LIMIT 80",
			spec:  Spec{Limit: 50, Offset: 30, Hidden: 1, Order: []Order{{Desc: true, NullsFirst: true}, {Column: 2}}}},
		serverCase{name: "limit past end", whole: "SELECT d FROM t WHERE {W} ORDER BY d, id LIMIT 10 OFFSET 3995",
			shard: "SELECT d, id FROM t WHERE {W} ORDER BY d, id LIMIT 4005",
			spec:  Spec{Limit: 10, Offset: 3995, Hidden: 1, Order: []Order{{}, {Column: 1}}}},
		serverCase{name: "group by g: every aggregate",
			whole: "SELECT g, count(*), count(i4), sum(i2), sum(i4), sum(i8), sum(n), sum(nv), sum(ns), sum(f8), sum(f4), " +
				"avg(i2), avg(i4), avg(i8), avg(n), avg(nv), avg(ns), avg(f8), avg(f4), bool_and(b), bool_or(b), " +
				strings.Join(mins, ", ") + " FROM t WHERE {W} GROUP BY g ORDER BY g",
			shard: "SELECT g, count(*), count(i4), sum(i2), sum(i4), sum(i8), sum(n), sum(nv), sum(ns), sum(f8), sum(f4), " +
				"bool_and(b), bool_or(b), " + strings.Join(shardMins, ", ") + ", sum(i2) AS avg, count(i2), sum(i4) AS avg, count(i4), sum(i8) AS avg, count(i8), " +
				"sum(n) AS avg, count(n), sum(nv) AS avg, count(nv), sum(ns) AS avg, count(ns), sum(f8) AS avg, count(f8), sum(f4::float8) AS avg, count(f4) " +
				"FROM t WHERE {W} GROUP BY g",
			spec: func() Spec {
				base := 13 + 2*len(minMaxColumns)
				outs := []Output{{Kind: Group}, {Kind: Count, Column: 1}, {Kind: Count, Column: 2}}
				for c := 3; c <= 10; c++ {
					outs = append(outs, Output{Kind: Sum, Column: c})
				}
				for i := 0; i < 8; i++ {
					outs = append(outs, Output{Kind: Avg, Column: base + 2*i, Count: base + 2*i + 1})
				}
				outs = append(outs, Output{Kind: BoolAnd, Column: 11}, Output{Kind: BoolOr, Column: 12})
				for i := range minMaxColumns {
					outs = append(outs, Output{Kind: Min, Column: 13 + 2*i}, Output{Kind: Max, Column: 14 + 2*i})
				}
				return Spec{Limit: -1, Aggregate: true, Outputs: outs, Hidden: 16, Order: []Order{{}}}
			}()},
		serverCase{name: "group by g2 min max, nulls first",
			whole: "SELECT g2, " + strings.Join(mins, ", ") + " FROM t WHERE {W} GROUP BY g2 ORDER BY g2 NULLS FIRST",
			spec:  Spec{Limit: -1, Aggregate: true, Outputs: groupOuts([]Output{{Kind: Group}}), Order: []Order{{NullsFirst: true}}}},
		serverCase{name: "no group by",
			whole: "SELECT count(*), sum(i8), avg(nv), min(fo), max(f8), avg(f8) FROM t WHERE {W}",
			shard: "SELECT count(*), sum(i8), min(fo), max(f8), sum(nv) AS avg, count(nv), sum(f8) AS avg, count(f8) FROM t WHERE {W}",
			spec: Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Count}, {Kind: Sum, Column: 1},
				{Kind: Avg, Column: 4, Count: 5}, {Kind: Min, Column: 2}, {Kind: Max, Column: 3}, {Kind: Avg, Column: 6, Count: 7}}, Hidden: 2}},
		serverCase{name: "no group by, no rows",
			whole: "SELECT count(*), sum(i4), avg(n), max(tx), bool_or(b) FROM t WHERE {W} AND false",
			shard: "SELECT count(*), sum(i4), max(tx), bool_or(b), sum(n) AS avg, count(n) FROM t WHERE {W} AND false",
			spec: Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Count}, {Kind: Sum, Column: 1},
				{Kind: Avg, Column: 4, Count: 5}, {Kind: Max, Column: 2}, {Kind: BoolOr, Column: 3}}, Hidden: 2}},
		serverCase{name: "group by hidden columns",
			whole: "SELECT count(*), sum(n) FROM t WHERE {W} GROUP BY g, g2 ORDER BY 1, 2",
			shard: "SELECT count(*), sum(n), g, g2 FROM t WHERE {W} GROUP BY g, g2",
			spec: Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Count}, {Kind: Sum, Column: 1}},
				HiddenOutputs: []Output{{Kind: Group, Column: 2}, {Kind: Group, Column: 3}}, Hidden: 2, Order: []Order{{}, {Column: 1}}}},
		serverCase{name: "group by every type",
			whole: "SELECT bp, d, c, count(*), sum(i4) FROM t WHERE {W} GROUP BY bp, d, c ORDER BY bp NULLS FIRST, d DESC, c",
			spec: Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Group}, {Kind: Group, Column: 1}, {Kind: Group, Column: 2},
				{Kind: Count, Column: 3}, {Kind: Sum, Column: 4}}, Order: []Order{{NullsFirst: true}, {Column: 1, Desc: true, NullsFirst: true}, {Column: 2}}}},
		serverCase{name: "group by float and numeric",
			whole: "SELECT f4, n, count(*) FROM t WHERE {W} GROUP BY f4, n ORDER BY f4 DESC, n",
			spec: Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Group}, {Kind: Group, Column: 1}, {Kind: Count, Column: 2}},
				Order: []Order{{Desc: true, NullsFirst: true}, {Column: 1}}}},
		serverCase{name: "having",
			whole: "SELECT g, count(*), sum(i4) FROM t WHERE {W} GROUP BY g HAVING count(*) > 360 AND max(i8) > 0 ORDER BY g",
			shard: "SELECT g, count(*), sum(i4), max(i8) FROM t WHERE {W} GROUP BY g",
			spec: Spec{Limit: -1, Aggregate: true, Hidden: 1, Order: []Order{{}},
				Outputs: []Output{{Kind: Group}, {Kind: Count, Column: 1}, {Kind: Sum, Column: 2}},
				Having: &Expr{Op: "and", Args: []*Expr{cmpx(">", leaf(1), konst("360")),
					cmpx(">", &Expr{Hidden: &Output{Kind: Max, Column: 3}}, konst("0"))}}}},
		serverCase{name: "having avg, or, not",
			whole: "SELECT g2, g, avg(i4) FROM t WHERE {W} GROUP BY g2, g HAVING avg(i4) < -1e7 OR NOT bool_or(b) OR sum(f8) >= 1000.5 ORDER BY 1, 2",
			shard: "SELECT g2, g, sum(i4) AS avg, count(i4), bool_or(b), sum(f8) FROM t WHERE {W} GROUP BY g2, g",
			spec: Spec{Limit: -1, Aggregate: true, Hidden: 3, Order: []Order{{}, {Column: 1}},
				Outputs: []Output{{Kind: Group}, {Kind: Group, Column: 1}, {Kind: Avg, Column: 2, Count: 3}},
				Having: &Expr{Op: "or", Args: []*Expr{cmpx("<", leaf(2), konst("-1e7")),
					{Op: "not", Args: []*Expr{{Hidden: &Output{Kind: BoolOr, Column: 4}}}},
					cmpx(">=", &Expr{Hidden: &Output{Kind: Sum, Column: 5}}, konst("1000.5"))}}}},
		serverCase{name: "order by aggregates, limit",
			whole: "SELECT g2, count(*), avg(i8) FROM t WHERE {W} GROUP BY g2 ORDER BY avg(i8) DESC NULLS LAST, g2 LIMIT 3 OFFSET 1",
			shard: "SELECT g2, count(*), sum(i8) AS avg, count(i8) FROM t WHERE {W} GROUP BY g2",
			spec: Spec{Limit: 3, Offset: 1, Aggregate: true, Hidden: 1, Order: []Order{{Column: 2, Desc: true}, {}},
				Outputs: []Output{{Kind: Group}, {Kind: Count, Column: 1}, {Kind: Avg, Column: 2, Count: 3}}}},
		serverCase{name: "order by hidden aggregate",
			whole: "SELECT g FROM t WHERE {W} GROUP BY g ORDER BY sum(i4), g",
			shard: "SELECT g, sum(i4) FROM t WHERE {W} GROUP BY g",
			spec: Spec{Limit: -1, Aggregate: true, Hidden: 1, Outputs: []Output{{Kind: Group}},
				HiddenOutputs: []Output{{Kind: Sum, Column: 1}}, Order: []Order{{Column: 1}, {}}}},
		serverCase{name: "distinct ordered", whole: "SELECT DISTINCT g, b FROM t WHERE {W} ORDER BY g, b",
			spec: Spec{Limit: -1, Distinct: true, Order: []Order{{}, {Column: 1}}}},
		serverCase{name: "distinct unordered", whole: "SELECT DISTINCT g2, c FROM t WHERE {W}",
			spec: Spec{Limit: -1, Distinct: true}, unordered: true},
		serverCase{name: "distinct limit", whole: "SELECT DISTINCT bp, n FROM t WHERE {W} ORDER BY bp DESC, n LIMIT 7 OFFSET 2",
			shard: "SELECT DISTINCT bp, n FROM t WHERE {W} ORDER BY bp DESC, n LIMIT 9",
			spec:  Spec{Limit: 7, Offset: 2, Distinct: true, Order: []Order{{Desc: true, NullsFirst: true}, {Column: 1}}}},
		serverCase{name: "distinct floats", whole: "SELECT DISTINCT f4 FROM t WHERE {W} ORDER BY f4",
			spec: Spec{Limit: -1, Distinct: true, Order: []Order{{}}}},
		serverCase{name: "distinct aggregate", whole: "SELECT DISTINCT bool_and(b), bool_or(b) FROM t WHERE {W} GROUP BY g",
			shard: "SELECT bool_and(b), bool_or(b), g FROM t WHERE {W} GROUP BY g", unordered: true,
			spec: Spec{Limit: -1, Aggregate: true, Distinct: true, Outputs: []Output{{Kind: BoolAnd}, {Kind: BoolOr, Column: 1}},
				HiddenOutputs: []Output{{Kind: Group, Column: 2}}, Hidden: 1}},
	)
	return cases
}
