package copysplit

import (
	"testing"
)

// fuzzOptions are the option sets FuzzSplit picks from.
var fuzzOptions = func() []Options {
	esc := DefaultOptions(CSV)
	esc.Escape = '\\'
	semi := DefaultOptions(CSV)
	semi.Delimiter, semi.Quote, semi.Escape, semi.Null, semi.Header = ';', '\'', '\'', "N", true
	header := DefaultOptions(Text)
	header.Header = true
	return []Options{DefaultOptions(Text), DefaultOptions(CSV), esc, semi, header, DefaultOptions(Binary)}
}()

// FuzzSplit feeds any input, whole and in pieces, to splitters of every
// format: they must not panic, must agree however the input is cut, and
// when they accept it, the header and rows must be the input (up to an
// end marker).
func FuzzSplit(f *testing.F) {
	for _, cases := range [][]splitCase{textCases(), csvCases(), binaryCases()} {
		for i, tc := range cases {
			f.Add([]byte(tc.input), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, input []byte, mode uint8) {
		opts := fuzzOptions[int(mode)%len(fuzzOptions)]
		key := Key{Name: abc[mode/16%2], Index: int(mode / 16 % 2), Columns: abc}
		if mode&0x80 != 0 {
			key.Columns = nil // no field count check
		}
		runAll(t, opts, key, input)
	})
}
