package merge

import (
	"errors"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// aggCase is shard result rows (one slice per shard) merged by spec.
type aggCase struct {
	name   string
	oids   []uint32 // shard column types
	spec   Spec
	shards [][][]string
	want   [][]string // merged rows in text form
}

func runAggCases(t *testing.T, cases []aggCase) {
	t.Helper()
	for _, tc := range cases {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				fields := fieldsOf(f.code, tc.oids...)
				var srcs []Source
				for _, sh := range tc.shards {
					srcs = append(srcs, &scribbleSource{rows: rowsOf(t, tc.oids, f.code, sh...)})
				}
				spec := tc.spec
				if spec.Limit == 0 {
					spec.Limit = -1
				}
				out, err := Fields(&spec, fields)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := collect(t, &spec, fields, srcs)
				if err != nil {
					t.Fatal(err)
				}
				if got := texts(t, out, rows); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func agg(outs ...Output) Spec { return Spec{Aggregate: true, Outputs: outs} }

func TestAggregates(t *testing.T) {
	t.Parallel()
	var i8, num, f4, f8, txt, b uint32 = pgtype.Int8OID, pgtype.NumericOID, pgtype.Float4OID, pgtype.Float8OID, pgtype.TextOID, pgtype.BoolOID
	runAggCases(t, []aggCase{
		{"count", []uint32{i8}, agg(Output{Kind: Count}), [][][]string{{{"3"}}, {{"4"}}, {{"0"}}}, [][]string{{"7"}}},
		{"sum bigint", []uint32{i8}, agg(Output{Kind: Sum}), [][][]string{{{"5"}}, {{"NULL"}}, {{"-2"}}}, [][]string{{"3"}}},
		{"sum all NULL", []uint32{i8}, agg(Output{Kind: Sum}), [][][]string{{{"NULL"}}, {{"NULL"}}}, [][]string{{"NULL"}}},
		{"sum numeric keeps largest scale", []uint32{num}, agg(Output{Kind: Sum}),
			[][][]string{{{"1.5"}}, {{"2.250"}}, {{"NULL"}}, {{"-100000000000000000000"}}}, [][]string{{"-99999999999999999996.250"}}},
		{"sum numeric NaN", []uint32{num}, agg(Output{Kind: Sum}), [][][]string{{{"1"}}, {{"NaN"}}}, [][]string{{"NaN"}}},
		{"sum float8", []uint32{f8}, agg(Output{Kind: Sum}), [][][]string{{{"0.1"}}, {{"0.2"}}}, [][]string{{"0.30000000000000004"}}},
		{"sum float4 adds in float4", []uint32{f4}, agg(Output{Kind: Sum}),
			[][][]string{{{"1.6777216e+07"}}, {{"1"}}, {{"1"}}}, [][]string{{"1.6777216e+07"}}},
		{"min max text", []uint32{txt, txt}, agg(Output{Kind: Min, Column: 0}, Output{Kind: Max, Column: 1}),
			[][][]string{{{"b", "b"}}, {{"a", "a"}}, {{"NULL", "NULL"}}, {{"ab", "ab"}}}, [][]string{{"a", "b"}}},
		{"min max numeric by value", []uint32{num, num}, agg(Output{Kind: Min, Column: 0}, Output{Kind: Max, Column: 1}),
			[][][]string{{{"10.5", "10.5"}}, {{"9.75", "9.75"}}, {{"-Infinity", "NaN"}}}, [][]string{{"-Infinity", "NaN"}}},
		{"min max all NULL", []uint32{f8, f8}, agg(Output{Kind: Min, Column: 0}, Output{Kind: Max, Column: 1}),
			[][][]string{{{"NULL", "NULL"}}}, [][]string{{"NULL", "NULL"}}},
		{"avg of integer sums", []uint32{i8, i8}, agg(Output{Kind: Avg, Column: 0, Count: 1}),
			[][][]string{{{"3", "2"}}, {{"NULL", "0"}}, {{"2", "1"}}}, [][]string{{"1.6666666666666667"}}},
		{"avg of numeric sums", []uint32{num, i8}, agg(Output{Kind: Avg, Column: 0, Count: 1}),
			[][][]string{{{"0.003", "2"}}, {{"0.0005", "1"}}}, [][]string{{"0.00116666666666666667"}}},
		{"avg of float sums", []uint32{f8, i8}, agg(Output{Kind: Avg, Column: 0, Count: 1}),
			[][][]string{{{"0.5", "1"}}, {{"1", "1"}}}, [][]string{{"0.75"}}},
		{"avg no input", []uint32{num, i8}, agg(Output{Kind: Avg, Column: 0, Count: 1}),
			[][][]string{{{"NULL", "0"}}, {{"NULL", "0"}}}, [][]string{{"NULL"}}},
		{"bool_and bool_or", []uint32{b, b}, agg(Output{Kind: BoolAnd, Column: 0}, Output{Kind: BoolOr, Column: 1}),
			[][][]string{{{"t", "f"}}, {{"NULL", "NULL"}}, {{"f", "t"}}}, [][]string{{"f", "t"}}},
		{"bool_and all true", []uint32{b, b}, agg(Output{Kind: BoolAnd, Column: 0}, Output{Kind: BoolOr, Column: 1}),
			[][][]string{{{"t", "f"}}, {{"t", "f"}}}, [][]string{{"t", "f"}}},
		{"no group, no rows anywhere", []uint32{i8, num, i8}, agg(Output{Kind: Count, Column: 0}, Output{Kind: Sum, Column: 1}, Output{Kind: Max, Column: 2}),
			[][][]string{{{"0", "NULL", "NULL"}}, {{"0", "NULL", "NULL"}}}, [][]string{{"0", "NULL", "NULL"}}},
		{"no group, no shards", []uint32{i8, num}, agg(Output{Kind: Count, Column: 0}, Output{Kind: Sum, Column: 1}),
			nil, [][]string{{"0", "NULL"}}},
	})
}

func TestGroupBy(t *testing.T) {
	t.Parallel()
	var i8, num, txt uint32 = pgtype.Int8OID, pgtype.NumericOID, pgtype.TextOID
	oids := []uint32{txt, i8, num, i8}
	// Shard rows: g, count(*), sum(x), count(x); avg(x) = sum / count.
	shards := [][][]string{
		{{"a", "2", "3", "2"}, {"b", "1", "NULL", "0"}, {"NULL", "1", "7", "1"}},
		{{"b", "4", "10.5", "3"}, {"a", "1", "1", "1"}},
		{{"c", "1", "-1", "1"}},
	}
	outs := []Output{{Kind: Group, Column: 0}, {Kind: Count, Column: 1}, {Kind: Sum, Column: 2}, {Kind: Avg, Column: 2, Count: 3}}
	runAggCases(t, []aggCase{
		{"groups in first-seen order", oids, Spec{Aggregate: true, Outputs: outs, Hidden: 1}, shards, [][]string{
			{"a", "3", "4", "1.3333333333333333"},
			{"b", "5", "10.5", "3.5000000000000000"},
			{"NULL", "1", "7", "7.0000000000000000"},
			{"c", "1", "-1", "-1.00000000000000000000"},
		}},
		{"ordered by group, nulls first, limit", oids, Spec{Aggregate: true, Outputs: outs, Hidden: 1,
			Order: []Order{{Column: 0, NullsFirst: true}}, Limit: 2}, shards, [][]string{
			{"NULL", "1", "7", "7.0000000000000000"},
			{"a", "3", "4", "1.3333333333333333"},
		}},
		{"ordered by avg desc, offset", oids, Spec{Aggregate: true, Outputs: outs, Hidden: 1,
			Order: []Order{{Column: 3, Desc: true, NullsFirst: true}}, Offset: 1}, shards, [][]string{
			{"b", "5", "10.5", "3.5000000000000000"},
			{"a", "3", "4", "1.3333333333333333"},
			{"c", "1", "-1", "-1.00000000000000000000"},
		}},
		{"grouped by a hidden column, ordered by a hidden sum", oids, Spec{Aggregate: true,
			Outputs:       []Output{{Kind: Count, Column: 1}},
			HiddenOutputs: []Output{{Kind: Group, Column: 0}, {Kind: Sum, Column: 2}},
			Hidden:        3, Order: []Order{{Column: -1}}}, shards, [][]string{{"1"}, {"3"}, {"1"}, {"5"}}},
		{"distinct over groups", oids, Spec{Aggregate: true, Distinct: true,
			Outputs:       []Output{{Kind: Count, Column: 1}},
			HiddenOutputs: []Output{{Kind: Group, Column: 0}}, Hidden: 3}, shards, [][]string{{"3"}, {"5"}, {"1"}}},
	})
}

func TestGroupKeysCompareAsServer(t *testing.T) {
	t.Parallel()
	var num, f8, i8 uint32 = pgtype.NumericOID, pgtype.Float8OID, pgtype.Int8OID
	runAggCases(t, []aggCase{
		{"numeric scales", []uint32{num, i8}, agg(Output{Kind: Group, Column: 0}, Output{Kind: Count, Column: 1}),
			[][][]string{{{"1.0", "1"}, {"2", "1"}}, {{"1.00", "2"}, {"2.000", "3"}}}, [][]string{{"1.0", "3"}, {"2", "4"}}},
		{"float zeros", []uint32{f8, i8}, agg(Output{Kind: Group, Column: 0}, Output{Kind: Count, Column: 1}),
			[][][]string{{{"-0", "1"}}, {{"0", "2"}, {"NaN", "1"}}, {{"NaN", "1"}}}, [][]string{{"-0", "3"}, {"NaN", "2"}}},
	})
}

func intp(i int) *int                  { return &i }
func strp(s string) *string            { return &s }
func leaf(i int) *Expr                 { return &Expr{Output: intp(i)} }
func konst(s string) *Expr             { return &Expr{Const: strp(s)} }
func cmpx(op string, a, b *Expr) *Expr { return &Expr{Op: op, Args: []*Expr{a, b}} }

func TestHaving(t *testing.T) {
	t.Parallel()
	var txt, i8, num uint32 = pgtype.TextOID, pgtype.Int8OID, pgtype.NumericOID
	oids := []uint32{txt, i8, num, i8}
	shards := [][][]string{
		{{"a", "2", "3", "10"}, {"b", "1", "NULL", "20"}},
		{{"b", "4", "10.5", "30"}, {"a", "1", "1", "40"}, {"c", "1", "-1", "50"}},
	}
	outs := []Output{{Kind: Group, Column: 0}, {Kind: Count, Column: 1}, {Kind: Sum, Column: 2}}
	spec := func(h *Expr) Spec { return Spec{Aggregate: true, Outputs: outs, Hidden: 1, Having: h} }
	runAggCases(t, []aggCase{
		{"count > 2", oids, spec(cmpx(">", leaf(1), konst("2"))), shards, [][]string{{"a", "3", "4"}, {"b", "5", "10.5"}}},
		{"bigint vs fractional constant", oids, spec(cmpx(">=", leaf(1), konst("4.5"))), shards, [][]string{{"b", "5", "10.5"}}},
		{"numeric vs bigint column", oids, spec(cmpx("<", leaf(2), leaf(1))), shards, [][]string{{"c", "1", "-1"}}},
		{"and/or/not with NULL", oids, spec(&Expr{Op: "or", Args: []*Expr{
			cmpx("=", leaf(0), konst("c")),
			{Op: "not", Args: []*Expr{cmpx("<>", leaf(2), &Expr{ConstNull: true})}},
			{Op: "and", Args: []*Expr{cmpx("=", leaf(0), konst("a")), cmpx(">", leaf(2), konst("3.9"))}},
		}}), shards, [][]string{{"a", "3", "4"}, {"c", "1", "-1"}}},
		{"hidden aggregate", oids, spec(cmpx(">", &Expr{Hidden: &Output{Kind: Max, Column: 3}}, konst("35"))), shards,
			[][]string{{"a", "3", "4"}, {"c", "1", "-1"}}},
		{"hidden avg", oids, spec(cmpx("=", &Expr{Hidden: &Output{Kind: Avg, Column: 2, Count: 1}}, konst("2.1"))), shards,
			[][]string{{"b", "5", "10.5"}}},
		{"no groups pass", oids, spec(cmpx(">", leaf(1), konst("100"))), shards, nil},
		{"having on an aggregate without groups", oids, Spec{Aggregate: true, Outputs: []Output{{Kind: Count, Column: 1}},
			Hidden: 3, Having: cmpx(">", leaf(0), konst("100"))}, shards, nil},
	})
}

func TestAggregateFields(t *testing.T) {
	t.Parallel()
	var i4, i8, num, f4, f8, txt uint32 = pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID, pgtype.Float4OID, pgtype.Float8OID, pgtype.TextOID
	shard := fieldsOf(binaryFormat, txt, i8, num, f4, f8, i4, i8)
	shard[0].TableOID, shard[0].TableAttributeNumber = 16384, 2
	spec := &Spec{Aggregate: true, Outputs: []Output{
		{Kind: Group, Column: 0}, {Kind: Count, Column: 1}, {Kind: Sum, Column: 2}, {Kind: Sum, Column: 3},
		{Kind: Avg, Column: 2, Count: 1}, {Kind: Avg, Column: 3, Count: 1}, {Kind: Avg, Column: 1, Count: 1, Name: "mean"},
		{Kind: Sum, Column: 5}, {Kind: Min, Column: 4},
	}, Hidden: 1}
	got, err := Fields(spec, shard)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		oid  uint32
		size int16
	}{{"c0", txt, -1}, {"c1", i8, -1}, {"c2", num, -1}, {"c3", f4, -1}, {"c2", num, -1}, {"c3", f8, 8}, {"mean", num, -1}, {"c5", i8, 8}, {"c4", f8, -1}}
	for i, w := range want {
		if g := got[i]; string(g.Name) != w.name || g.DataTypeOID != w.oid || g.DataTypeSize != w.size || g.Format != binaryFormat {
			t.Errorf("field %d: %s/%d/%d, want %v", i, g.Name, g.DataTypeOID, g.DataTypeSize, w)
		}
	}
	if got[0].TableOID != 16384 || got[4].TypeModifier != -1 {
		t.Errorf("group column lost its table, or avg kept a modifier")
	}
	plain, err := Fields(&Spec{Hidden: 2}, shard)
	if err != nil || len(plain) != 5 {
		t.Fatalf("plain fields: %v %d", err, len(plain))
	}
}

func TestSumOverflow(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.Int8OID)
	_, err := collect(t, &Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Sum}}}, fields,
		sources(intRows("9223372036854775807"), intRows("1")))
	var me *Error
	if !errors.As(err, &me) || me.Code != codeOutOfRange {
		t.Fatalf("got %v, want 22003", err)
	}
}

func TestHavingTypes(t *testing.T) {
	t.Parallel()
	var f8, num, i8, d uint32 = pgtype.Float8OID, pgtype.NumericOID, pgtype.Int8OID, pgtype.DateOID
	oids := []uint32{f8, num, i8, d}
	shards := [][][]string{{{"0.5", "0.5", "1", "2024-01-01"}}, {{"0.25", "0.30", "2", "2023-12-31"}}}
	outs := []Output{{Kind: Sum, Column: 0}, {Kind: Sum, Column: 1}, {Kind: Count, Column: 2}, {Kind: Max, Column: 3}}
	spec := func(h *Expr) Spec { return Spec{Aggregate: true, Outputs: outs, Having: h} }
	row := [][]string{{"0.75", "0.80", "3", "2024-01-01"}}
	runAggCases(t, []aggCase{
		{"float vs numeric constant", oids, spec(cmpx("=", leaf(0), konst("0.75"))), shards, row},
		{"numeric vs float column", oids, spec(cmpx(">", leaf(1), leaf(0))), shards, row},
		{"bigint vs float column", oids, spec(cmpx(">", leaf(2), leaf(0))), shards, row},
		{"date vs date constant", oids, spec(cmpx(">=", leaf(3), konst("2024-01-01"))), shards, row},
		{"date before constant", oids, spec(cmpx("<", leaf(3), konst("2024-01-01"))), shards, nil},
		{"not NULL is NULL", oids, spec(&Expr{Op: "not", Args: []*Expr{cmpx("=", leaf(2), &Expr{ConstNull: true})}}), shards, nil},
	})
	fields := fieldsOf(textFormat, oids...)
	for name, h := range map[string]*Expr{
		"bad constant":        cmpx("=", leaf(3), konst("yesterday-ish")),
		"two constants":       cmpx("=", konst("1"), konst("1")),
		"date vs bigint":      cmpx("=", leaf(3), leaf(2)),
		"nested comparison":   cmpx("=", cmpx("=", leaf(2), konst("1")), konst("t")),
		"non-boolean leaf":    leaf(2),
		"leaf out of range":   cmpx("=", leaf(9), konst("1")),
		"comparison of three": {Op: "=", Args: []*Expr{leaf(0), leaf(1), leaf(2)}},
	} {
		s := spec(h)
		s.Limit = -1
		if _, err := collect(t, &s, fields, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
