package wire

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

func TestWriteFrame(t *testing.T) {
	var out bytes.Buffer
	// With a 4-byte buffer the header never fits whole: the slow path.
	for _, size := range []int{4, 4096} {
		out.Reset()
		w := bufio.NewWriterSize(&out, size)
		WriteFrame(w, 'Q', []byte("select 1\x00"))
		WriteFrame(w, 'S', nil)
		w.Flush()
		if got, want := out.String(), "Q\x00\x00\x00\x0dselect 1\x00S\x00\x00\x00\x04"; got != want {
			t.Fatalf("buffer %d: got %q, want %q", size, got, want)
		}
	}
}

// BenchmarkWriteFrame: relaying a row costs no allocation.
func BenchmarkWriteFrame(b *testing.B) {
	w := bufio.NewWriterSize(io.Discard, 16<<10)
	row := make([]byte, 40)
	b.ReportAllocs()
	for b.Loop() {
		WriteFrame(w, 'D', row)
	}
}
