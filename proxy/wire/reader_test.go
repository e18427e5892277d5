package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func frame(typ byte, body string) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	WriteFrame(w, typ, []byte(body))
	w.Flush()
	return b.Bytes()
}

func TestReaderFrames(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	in := append(append(frame('Q', "select 1\x00"), frame('Q', big)...), frame('S', "")...)
	r := NewReader(bytes.NewReader(in), 4096, ClientLimit)
	for _, want := range []struct {
		typ  byte
		body string
	}{{'Q', "select 1\x00"}, {'Q', big}, {'S', ""}} {
		typ, n, err := r.Header()
		if err != nil || typ != want.typ || n != len(want.body) {
			t.Fatalf("header: %q %d %v", typ, n, err)
		}
		b, err := r.Body(n)
		if err != nil || string(b) != want.body {
			t.Fatalf("body of %q: %d bytes, %v", typ, len(b), err)
		}
	}
	if _, _, err := r.Header(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestReaderLimits(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"negative length", []byte{'Q', 0x80, 0, 0, 0}},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}},
		{"small message too large", []byte{'S', 0, 0, 0x27, 0x20}},
		{"2 GB query", []byte{'Q', 0x7f, 0xff, 0xff, 0xf0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.in), 4096, ClientLimit)
			if _, _, err := r.Header(); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("want ErrMessageTooLarge, got %v", err)
			}
		})
	}
}

func TestCopyToStreamsLargeBodies(t *testing.T) {
	body := strings.Repeat("row\n", 50_000)
	r := NewReader(bytes.NewReader(frame('d', body)), 4096, nil)
	typ, n, err := r.Header()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := r.CopyTo(w, typ, n); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if !bytes.Equal(out.Bytes(), frame('d', body)) {
		t.Fatal("copied frame differs")
	}
}

func TestReadStartup(t *testing.T) {
	if _, err := ReadStartup(bytes.NewReader([]byte{0x80, 0, 0, 0})); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("2 GB startup packet: %v", err)
	}
	if _, err := ReadStartup(bytes.NewReader([]byte{0, 0, 0, 8, 0, 3})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated startup packet: %v", err)
	}
}

// FuzzReader: arbitrary bytes never panic the reader or make it allocate
// beyond what arrived.
func FuzzReader(f *testing.F) {
	f.Add(frame('Q', "select 1\x00"))
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{'d', 0, 0, 0x10, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 64, ClientLimit)
		for {
			_, n, err := r.Header()
			if err != nil {
				return
			}
			b, err := r.Body(n)
			if err != nil {
				return
			}
			if len(b) != n {
				t.Fatalf("body %d bytes, header said %d", len(b), n)
			}
		}
	})
}
