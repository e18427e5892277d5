package merge

import (
	"io"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// sliceSource replays prepared rows without copying, so a benchmark
// measures the merge, not the source.
type sliceSource struct {
	rows [][][]byte
	i    int
}

func (s *sliceSource) Next() ([][]byte, error) {
	if s.i >= len(s.rows) {
		return nil, errEnd
	}
	s.i++
	return s.rows[s.i-1], nil
}

var errEnd = io.EOF

const benchSources, benchRows = 4, 100_000

// sortedInt8Rows returns per-source sorted int8 rows, interleaved across
// sources so the merge switches source at almost every row.
func sortedInt8Rows(format int16) [][][][]byte {
	sets := make([][][][]byte, benchSources)
	for s := range sets {
		sets[s] = make([][][]byte, benchRows)
		for i := range sets[s] {
			v := int64(i*benchSources + s)
			if format == binaryFormat {
				sets[s][i] = [][]byte{appendInt8(nil, v, true)}
			} else {
				sets[s][i] = [][]byte{strconv.AppendInt(nil, v, 10)}
			}
		}
	}
	return sets
}

func runBench(b *testing.B, spec *Spec, fields []pgproto3.FieldDescription, sets [][][][]byte) {
	b.Helper()
	total := 0
	for _, s := range sets {
		total += len(s)
	}
	srcs := make([]Source, len(sets))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i, s := range sets {
			srcs[i] = &sliceSource{rows: s}
		}
		if err := Run(spec, fields, srcs, func([][]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/row")
}

func BenchmarkMergeInt8(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			runBench(b, &Spec{Limit: -1, Order: []Order{{Column: 0}}}, fieldsOf(f.code, pgtype.Int8OID), sortedInt8Rows(f.code))
		})
	}
}

func BenchmarkConcat(b *testing.B) {
	runBench(b, &Spec{Limit: -1}, fieldsOf(binaryFormat, pgtype.Int8OID), sortedInt8Rows(binaryFormat))
}

// BenchmarkGroupBy aggregates 4 × 100k partial rows into 1000 groups:
// GROUP BY g with count, sum(bigint) → numeric and avg of numeric.
func BenchmarkGroupBy(b *testing.B) {
	oids := []uint32{pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID, pgtype.NumericOID, pgtype.Int8OID}
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			sets := make([][][][]byte, benchSources)
			for s := range sets {
				for i := 0; i < benchRows; i++ {
					g := strconv.Itoa(i % 1000)
					sets[s] = append(sets[s], rowsOf(b, oids, f.code, []string{g, "3", strconv.Itoa(i * 7), strconv.Itoa(i) + ".25", "2"})[0])
				}
			}
			spec := &Spec{Limit: -1, Aggregate: true, Hidden: 1, Order: []Order{{Column: 0}}, Outputs: []Output{
				{Kind: Group}, {Kind: Count, Column: 1}, {Kind: Sum, Column: 2}, {Kind: Avg, Column: 3, Count: 4}}}
			runBench(b, spec, fieldsOf(f.code, oids...), sets)
		})
	}
}
