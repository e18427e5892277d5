package copysplit

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// gotRow is a Row copied out of the Splitter's buffers.
type gotRow struct {
	Data string
	Key  string
	Null bool
	Line int64
}

func (r gotRow) String() string {
	if r.Null {
		return fmt.Sprintf("%d:%q=NULL", r.Line, r.Data)
	}
	return fmt.Sprintf("%d:%q=%q", r.Line, r.Data, r.Key)
}

// outcome is everything a Splitter made of one input.
type outcome struct {
	Header string
	Rows   []gotRow
	Done   bool
	Err    error
}

// chunker returns the size of the next chunk.
type chunker func() int

func whole() int   { return 1 << 30 }
func oneByte() int { return 1 }

func randomChunks(seed uint64, maxLen int) chunker {
	r := rand.New(rand.NewPCG(seed, 7))
	return func() int { return 1 + r.IntN(maxLen) }
}

// run feeds input to a new Splitter in chunks and collects the outcome,
// checking the contract on the way: Header only grows from nil to its
// final value, and a row's bytes are not clobbered before the next call.
func run(opts Options, key Key, input []byte, next chunker) outcome {
	sp, err := New(opts, key)
	if err != nil {
		return outcome{Err: err}
	}
	var out outcome
	collect := func(r Row) {
		g := gotRow{Data: string(r.Data), Key: string(r.Key), Null: r.Null, Line: r.Line}
		if r.Null && r.Key != nil {
			panic("null key with a value")
		}
		out.Rows = append(out.Rows, g)
	}
	for rest := input; len(rest) > 0; {
		n := min(next(), len(rest))
		// A private copy per chunk, overwritten once drained, catches rows
		// that keep pointing into a chunk after Feed is called again.
		chunk := append([]byte(nil), rest[:n]...)
		rest = rest[n:]
		sp.Feed(chunk)
		for {
			r, ok, err := sp.Next()
			if err != nil {
				out.Err = err
				return out
			}
			if !ok {
				break
			}
			collect(r)
		}
		for i := range chunk {
			chunk[i] = '#'
		}
	}
	r, ok, err := sp.Finish()
	if err != nil {
		out.Err = err
		return out
	}
	if ok {
		collect(r)
	}
	out.Header = string(sp.Header())
	out.Done = sp.Done()
	return out
}

// runAll runs input whole, a byte at a time and in random chunks, and
// fails t unless all agree. It returns the outcome.
func runAll(t testing.TB, opts Options, key Key, input []byte) outcome {
	t.Helper()
	want := run(opts, key, input, whole)
	ways := map[string]chunker{"1-byte": oneByte}
	for seed := range uint64(4) {
		ways[fmt.Sprintf("random%d", seed)] = randomChunks(seed, 1+int(seed)*7)
	}
	for name, c := range ways {
		got := run(opts, key, input, c)
		if !sameOutcome(got, want) {
			t.Fatalf("%s chunks disagree with whole input %q:\n got  %+v\n want %+v", name, input, got, want)
		}
	}
	if want.Err == nil {
		checkConcat(t, opts, input, want)
	}
	return want
}

func sameOutcome(a, b outcome) bool {
	if (a.Err == nil) != (b.Err == nil) || a.Err != nil && a.Err.Error() != b.Err.Error() {
		return false
	}
	if a.Err != nil {
		return true
	}
	return a.Header == b.Header && a.Done == b.Done && reflect.DeepEqual(a.Rows, b.Rows)
}

// checkConcat checks that the header and rows are the input, up to an
// end marker.
func checkConcat(t testing.TB, opts Options, input []byte, o outcome) {
	t.Helper()
	var b strings.Builder
	b.WriteString(o.Header)
	for _, r := range o.Rows {
		b.WriteString(r.Data)
	}
	got := b.String()
	switch {
	case !strings.HasPrefix(string(input), got):
		t.Fatalf("header+rows are not a prefix of the input:\n got   %q\n input %q", got, input)
	case o.Done && opts.Format == Binary:
		if rest := string(input[len(got):]); rest != "\xff\xff" {
			t.Fatalf("after the rows comes %q, not the trailer", rest)
		}
	case o.Done:
		// The rest is "\." and whatever the server ignores after it.
	case opts.Format == Binary && len(input)-len(got) == 1:
		// A lone byte where a field count should be ends the data.
	case len(got) != len(input):
		t.Fatalf("header+rows lose input:\n got   %q\n input %q", got, input)
	}
}

// sqlState returns err's SQLSTATE, or "" if it has none.
func sqlState(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// bin builds binary COPY data: the header, tuples of fields (nil is
// NULL), and the trailer.
func bin(tuples ...[][]byte) []byte {
	var b bytes.Buffer
	b.Write(binarySignature[:])
	b.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	for _, tup := range tuples {
		b.Write([]byte{byte(len(tup) >> 8), byte(len(tup))})
		for _, f := range tup {
			if f == nil {
				b.Write([]byte{0xff, 0xff, 0xff, 0xff})
				continue
			}
			n := len(f)
			b.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
			b.Write(f)
		}
	}
	b.Write([]byte{0xff, 0xff})
	return b.Bytes()
}
