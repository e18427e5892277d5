package copysplit

import (
	"fmt"
	"strings"
	"testing"
)

// benchChunk is the size of the CopyData messages in the benchmarks; pgx
// and psql send messages of this order.
const benchChunk = 64 << 10

// benchRows returns about size bytes of 100-byte rows made by row.
func benchRows(size int, row func(i int) string) []byte {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(row(i))
	}
	return []byte(b.String())
}

// textRow is a 100-byte text row keyed on its second field.
func textRow(i int) string {
	s := fmt.Sprintf("%d\tuser%08d\t2024-01-02 03:04:05+00\t", i, i*7919)
	return s + strings.Repeat("v", 99-len(s)) + "\n"
}

func textRowEscaped(i int) string {
	s := fmt.Sprintf("%d\tuser\\t%05d\t2024-01-02 03:04:05+00\tline\\none\\\\", i, i*7919)
	return s + strings.Repeat("v", 99-len(s)) + "\n"
}

func csvRow(i int) string {
	s := fmt.Sprintf("%d,\"user, %06d\",2024-01-02 03:04:05+00,\"say \"\"hi\"\"\",", i, i*7919)
	return s + strings.Repeat("v", 99-len(s)) + "\n"
}

func binaryRow(i int) string {
	f := [][]byte{[]byte(fmt.Sprint(i)), []byte(fmt.Sprintf("user%08d", i*7919)), []byte(strings.Repeat("v", 60))}
	b := bin(f)
	return string(b[19 : len(b)-2])
}

func BenchmarkSplit(b *testing.B) {
	const size = 4 << 20
	for _, bc := range []struct {
		name string
		opts Options
		data []byte
	}{
		{"text", DefaultOptions(Text), benchRows(size, textRow)},
		{"text escaped", DefaultOptions(Text), benchRows(size, textRowEscaped)},
		{"csv quoted", DefaultOptions(CSV), benchRows(size, csvRow)},
		{"binary", DefaultOptions(Binary), append(bin()[:19], benchRows(size, binaryRow)...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			key := Key{Name: "b", Index: 1}
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				sp, err := New(bc.opts, key)
				if err != nil {
					b.Fatal(err)
				}
				for rest := bc.data; len(rest) > 0; {
					n := min(benchChunk, len(rest))
					sp.Feed(rest[:n])
					rest = rest[n:]
					for {
						r, ok, err := sp.Next()
						if err != nil {
							b.Fatal(err)
						}
						if !ok {
							break
						}
						if len(r.Key) == 0 {
							b.Fatal("empty key")
						}
						rows++
					}
				}
				if _, _, err := sp.Finish(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
		})
	}
}
