package merge

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func intRows(vals ...string) [][][]byte {
	rows := make([][][]byte, len(vals))
	for i, v := range vals {
		if v == "NULL" {
			rows[i] = [][]byte{nil}
		} else {
			rows[i] = [][]byte{[]byte(v)}
		}
	}
	return rows
}

func firstCol(rows [][][]byte) []string {
	var out []string
	for _, r := range textRows(rows) {
		out = append(out, r[0])
	}
	return out
}

func TestConcat(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.Int8OID)
	cases := []struct {
		name          string
		limit, offset int64
		want          []string
		reads         []int // rows read per source
	}{
		{"all", -1, 0, []string{"1", "2", "3", "4", "5", "6"}, []int{3, 0, 3}},
		{"offset", -1, 4, []string{"5", "6"}, []int{3, 0, 3}},
		{"limit stops reading", 2, 0, []string{"1", "2"}, []int{2, 0, 0}},
		{"limit across sources", 2, 2, []string{"3", "4"}, []int{3, 0, 1}},
		{"limit zero reads nothing", 0, 0, nil, []int{0, 0, 0}},
		{"offset past end", 5, 10, nil, []int{3, 0, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srcs := sources(intRows("1", "2", "3"), nil, intRows("4", "5", "6"))
			rows, err := collect(t, &Spec{Limit: tc.limit, Offset: tc.offset}, fields, srcs)
			if err != nil {
				t.Fatal(err)
			}
			if got := firstCol(rows); !slices.Equal(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
			for i, s := range srcs {
				if r := s.(*scribbleSource).reads; r != tc.reads[i] {
					t.Errorf("source %d: %d reads, want %d", i, r, tc.reads[i])
				}
			}
		})
	}
}

func TestHiddenColumnsDropped(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.TextOID, pgtype.Int8OID)
	srcs := sources([][][]byte{{[]byte("a"), []byte("3")}, {[]byte("b"), []byte("1")}}, [][][]byte{{[]byte("c"), []byte("2")}})
	rows, err := collect(t, &Spec{Limit: -1, Hidden: 1, Order: []Order{{Column: -1, Desc: true}}}, fields, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := textRows(rows), [][]string{{"a"}, {"c"}, {"b"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestMergeEveryType merges random sorted partitions of every type's
// values (NULLs included) for each direction and NULL placement, in both
// formats, and checks the result against a global sort.
func TestMergeEveryType(t *testing.T) {
	t.Parallel()
	for _, tc := range orderTiers {
		for _, f := range formats {
			for _, o := range []Order{{Column: 0}, {Column: 0, Desc: true, NullsFirst: true}, {Column: 0, NullsFirst: true}, {Column: 0, Desc: true}} {
				name := fmt.Sprintf("%s/%s/desc=%v,nullsfirst=%v", tc.name, f.name, o.Desc, o.NullsFirst)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					checkMerge(t, tc.oid, f.code, tc.tiers, o)
				})
			}
		}
	}
}

func checkMerge(t *testing.T, oid uint32, format int16, tiers [][]string, o Order) {
	rng := rand.New(rand.NewSource(int64(oid)*4 + int64(format)))
	type row struct {
		tier int // -1: NULL
		id   int
		text string
	}
	var all []row
	for id := 0; id < 300; id++ {
		ti := rng.Intn(len(tiers)+1) - 1
		r := row{tier: ti, id: id, text: "NULL"}
		if ti >= 0 {
			r.text = tiers[ti][rng.Intn(len(tiers[ti]))]
			if format == binaryFormat && r.text == "1900-01-01 00:00:00+05:53:28" {
				r.text = "NULL"
				r.tier = -1
			}
		}
		all = append(all, r)
	}
	cmpRows := func(a, b row) int {
		if (a.tier < 0) != (b.tier < 0) {
			if (a.tier < 0) == o.NullsFirst {
				return -1
			}
			return 1
		}
		c := a.tier - b.tier
		if o.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return a.id - b.id
	}
	parts := make([][]row, 3)
	for _, r := range all {
		p := rng.Intn(3)
		parts[p] = append(parts[p], r)
	}
	oids := []uint32{oid, pgtype.Int8OID}
	var srcs []Source
	for _, p := range parts {
		slices.SortFunc(p, cmpRows)
		var rs [][]string
		for _, r := range p {
			rs = append(rs, []string{r.text, strconv.Itoa(r.id)})
		}
		srcs = append(srcs, &scribbleSource{rows: rowsOf(t, oids, format, rs...)})
	}
	slices.SortFunc(all, cmpRows)
	spec := &Spec{Limit: -1, Order: []Order{o, {Column: 1}}}
	fields := fieldsOf(format, oids...)
	got, err := collect(t, spec, fields, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("%d rows, want %d", len(got), len(all))
	}
	for i, r := range texts(t, fields, got) {
		if want := strconv.Itoa(all[i].id); r[1] != want {
			t.Fatalf("row %d: id %s, want %s (value %s)", i, r[1], want, r[0])
		}
	}
}

func TestMergeLimitStopsReading(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(binaryFormat, pgtype.Int8OID)
	enc := func(vals ...int64) [][][]byte {
		var rows [][][]byte
		for _, v := range vals {
			rows = append(rows, [][]byte{appendInt8(nil, v, true)})
		}
		return rows
	}
	srcs := sources(enc(1, 4, 7, 10, 13), enc(2, 5, 8, 11), enc(3, 6, 9, 12))
	rows, err := collect(t, &Spec{Limit: 3, Offset: 2, Order: []Order{{Column: 0}}}, fields, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(t, fields, rows); !reflect.DeepEqual(got, [][]string{{"3"}, {"4"}, {"5"}}) {
		t.Fatalf("got %v", got)
	}
	total := 0
	for _, s := range srcs {
		total += s.(*scribbleSource).reads
	}
	if total > 8 { // 5 rows out plus one pending per source
		t.Errorf("read %d rows for LIMIT 3 OFFSET 2", total)
	}
}

func TestMergeRejectsUnsortedSource(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.TextOID)
	// "B" < "a" bytewise; a shard with a linguistic collation sorts them
	// the other way round.
	srcs := sources(intRows("a", "B"), intRows("c"))
	_, err := collect(t, &Spec{Limit: -1, Order: []Order{{Column: 0}}}, fields, srcs)
	var me *Error
	if !errors.As(err, &me) || me.Code != codeInternal {
		t.Fatalf("got %v, want an error about the order", err)
	}
}

func TestUnknownTypes(t *testing.T) {
	t.Parallel()
	const jsonOID = 114
	fields := fieldsOf(textFormat, jsonOID)
	_, err := collect(t, &Spec{Limit: -1, Order: []Order{{Column: 0}}}, fields, sources(intRows(`{}`)))
	var me *Error
	if !errors.As(err, &me) || me.Code != codeUnsupported {
		t.Fatalf("ORDER BY json: got %v, want 0A000", err)
	}
	rows, err := collect(t, &Spec{Limit: -1, Distinct: true}, fields, sources(intRows(`{"a":1}`, `{}`), intRows(`{}`, `NULL`, `NULL`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := firstCol(rows); !slices.Equal(got, []string{`{"a":1}`, `{}`, "NULL"}) {
		t.Fatalf("DISTINCT json: %v", got)
	}
	spec := &Spec{Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Max, Column: 0}}}
	if _, err := collect(t, spec, fields, nil); !errors.As(err, &me) || me.Code != codeUnsupported {
		t.Fatalf("max(json): got %v, want 0A000", err)
	}
}

func TestDistinct(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.NumericOID, pgtype.Int4OID)
	mk := func(rows ...[]string) [][][]byte {
		return rowsOf(t, []uint32{pgtype.NumericOID, pgtype.Int4OID}, textFormat, rows...)
	}
	a := mk([]string{"1.0", "1"}, []string{"1.5", "NULL"}, []string{"2", "2"}, []string{"2", "2"})
	b := mk([]string{"1.00", "1"}, []string{"1.50", "NULL"}, []string{"3", "1"})
	cases := []struct {
		name string
		spec Spec
		want [][]string
	}{
		{"streaming, first occurrence", Spec{Limit: -1, Distinct: true},
			[][]string{{"1.0", "1"}, {"1.5", "NULL"}, {"2", "2"}, {"3", "1"}}},
		{"with limit and offset", Spec{Limit: 2, Offset: 1, Distinct: true},
			[][]string{{"1.5", "NULL"}, {"2", "2"}}},
		{"sorted on all columns: adjacent", Spec{Limit: -1, Distinct: true, Order: []Order{{Column: 0}, {Column: 1}}},
			[][]string{{"1.0", "1"}, {"1.5", "NULL"}, {"2", "2"}, {"3", "1"}}},
		{"sorted on some columns: hashed", Spec{Limit: -1, Distinct: true, Hidden: 1, Order: []Order{{Column: 1}}},
			// Ordered by the hidden column; ties go to the first source.
			[][]string{{"1.0"}, {"3"}, {"2"}, {"1.5"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var src []Source
			if len(tc.spec.Order) == 0 {
				src = sources(a, b)
			} else {
				sorted := func(rows [][][]byte) [][][]byte {
					r := slices.Clone(rows)
					p, _ := compile(&tc.spec, fields)
					slices.SortStableFunc(r, func(x, y [][]byte) int {
						kx, ky := make([]datum, len(p.order)), make([]datum, len(p.order))
						_ = p.readKeys(kx, x)
						_ = p.readKeys(ky, y)
						return compareKeys(p.order, kx, ky)
					})
					return r
				}
				src = sources(sorted(a), sorted(b))
			}
			rows, err := collect(t, &tc.spec, fields, src)
			if err != nil {
				t.Fatal(err)
			}
			if got := textRows(rows); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorsPropagate(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.Int8OID)
	boom := errors.New("shard 2 connection lost")
	for _, spec := range []*Spec{{Limit: -1}, {Limit: -1, Order: []Order{{Column: 0}}}, {Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Count}}}} {
		srcs := []Source{&scribbleSource{rows: intRows("1")}, &scribbleSource{rows: intRows("2"), err: boom}}
		if _, err := collect(t, spec, fields, srcs); !errors.Is(err, boom) {
			t.Errorf("source error: got %v", err)
		}
		wide := []Source{&scribbleSource{rows: [][][]byte{{[]byte("1"), []byte("2")}}}}
		if _, err := collect(t, spec, fields, wide); err == nil {
			t.Errorf("row of the wrong width accepted")
		}
		stop := errors.New("client went away")
		err := Run(spec, fields, sources(intRows("1", "2")), func([][]byte) error { return stop })
		if !errors.Is(err, stop) {
			t.Errorf("emit error: got %v", err)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(textFormat, pgtype.Int8OID, pgtype.TextOID)
	for name, spec := range map[string]*Spec{
		"order out of range":     {Limit: -1, Order: []Order{{Column: 2}}},
		"negative out of range":  {Limit: -1, Order: []Order{{Column: -3}}},
		"hidden too many":        {Limit: -1, Hidden: 3},
		"limit below -1":         {Limit: -2},
		"outputs sans aggregate": {Limit: -1, Outputs: []Output{{Kind: Count}}},
		"sum of text":            {Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Sum, Column: 1}}},
		"avg count of text":      {Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Avg, Column: 0, Count: 1}}},
		"having bad op":          {Limit: -1, Aggregate: true, Outputs: []Output{{Kind: Count}}, Having: &Expr{Op: "like"}},
	} {
		if _, err := collect(t, spec, fields, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// genSource produces n int8 rows, reusing one buffer, as a wire reader
// does; it allocates nothing per row.
type genSource struct {
	n, i int
	step int64
	val  [8]byte
	row  [][]byte
}

func (g *genSource) Next() ([][]byte, error) {
	if g.i >= g.n {
		return nil, io.EOF
	}
	v := int64(g.i)*g.step + g.step
	g.i++
	for k := 7; k >= 0; k-- {
		g.val[k] = byte(v)
		v >>= 8
	}
	g.row[0] = g.val[:]
	return g.row, nil
}

// TestStreamingMemoryBounded: concatenating and merging a million rows
// allocates a small constant amount, however many rows pass.
func TestStreamingMemoryBounded(t *testing.T) {
	fields := fieldsOf(binaryFormat, pgtype.Int8OID)
	for _, spec := range []*Spec{{Limit: -1}, {Limit: -1, Order: []Order{{Column: 0}}}} {
		measure := func(rows int) uint64 {
			srcs := make([]Source, 4)
			for i := range srcs {
				srcs[i] = &genSource{n: rows / 4, step: int64(i + 1), row: make([][]byte, 1)}
			}
			n := 0
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := Run(spec, fields, srcs, func([][]byte) error { n++; return nil })
			runtime.ReadMemStats(&after)
			if err != nil || n != rows {
				t.Fatalf("err %v, %d rows", err, n)
			}
			return after.TotalAlloc - before.TotalAlloc
		}
		small, large := measure(1000), measure(1_000_000)
		t.Logf("order=%v: %d bytes for 1e3 rows, %d for 1e6", len(spec.Order) > 0, small, large)
		// Anything allocated per row would add megabytes; the slack only
		// absorbs the runtime's own background allocations.
		if large > small+256<<10 {
			t.Errorf("order=%v: allocation grows with rows: %d bytes for 1e3 rows, %d for 1e6", len(spec.Order) > 0, small, large)
		}
	}
}
