package copysplit

import (
	"strings"
	"testing"
)

var abc = []string{"a", "b", "c"}

// keyB is the middle of three columns, so that tests see fields before
// and after the key.
var keyB = Key{Name: "b", Index: 1, Columns: abc}

func row(data, key string, line int64) gotRow { return gotRow{Data: data, Key: key, Line: line} }
func nullRow(data string, line int64) gotRow  { return gotRow{Data: data, Null: true, Line: line} }

type splitCase struct {
	name   string
	opts   Options
	key    Key
	input  string
	header string
	rows   []gotRow
	done   bool
	err    string // message; its SQLSTATE must be 22P04 unless code says otherwise
	code   string
}

func runCases(t *testing.T, cases []splitCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := tc.key
			if key.Name == "" {
				key = keyB
			}
			got := runAll(t, tc.opts, key, []byte(tc.input))
			if tc.err != "" {
				if got.Err == nil || got.Err.Error() != tc.err {
					t.Fatalf("error %v, want %q (rows %v)", got.Err, tc.err, got.Rows)
				}
				code := tc.code
				if code == "" {
					code = codeBadFormat
				}
				if sqlState(got.Err) != code {
					t.Fatalf("SQLSTATE %q, want %q", sqlState(got.Err), code)
				}
				return
			}
			if got.Err != nil {
				t.Fatalf("error %v", got.Err)
			}
			if got.Header != tc.header || got.Done != tc.done {
				t.Errorf("header %q done %v, want %q %v", got.Header, got.Done, tc.header, tc.done)
			}
			if len(got.Rows) != len(tc.rows) {
				t.Fatalf("rows %v\nwant %v", got.Rows, tc.rows)
			}
			for i := range tc.rows {
				if got.Rows[i] != tc.rows[i] {
					t.Errorf("row %d: %v, want %v", i, got.Rows[i], tc.rows[i])
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	runCases(t, textCases())
}

func textCases() []splitCase {
	text := DefaultOptions(Text)
	header := text
	header.Header = true
	pipe := text
	pipe.Delimiter = '|'
	pipe.Null = ""
	upperA := text
	upperA.Delimiter = 'A'
	return []splitCase{
		{name: "empty", opts: text},
		{name: "plain", opts: text, input: "1\tx\t2\n3\ty\t4\n",
			rows: []gotRow{row("1\tx\t2\n", "x", 1), row("3\ty\t4\n", "y", 2)}},
		{name: "escapes", opts: text, input: `1	a\tb\nc\\d\101\x41\x4g\q\r\b\f\v\0	2` + "\n",
			rows: []gotRow{row(`1	a\tb\nc\\d\101\x41\x4g\q\r\b\f\v\0	2`+"\n", "a\tb\nc\\dAA\x04gq\r\b\f\v\x00", 1)}},
		{name: "octal keeps low byte", opts: text, input: "1\t\\777\\18\n",
			rows: []gotRow{row("1\t\\777\\18\n", "\xff\x018", 1)}},
		{name: "null marker is raw", opts: text, input: "1\t\\N\t2\n1\t\\\\N\t2\n1\t\\N2\t3\n",
			rows: []gotRow{nullRow("1\t\\N\t2\n", 1), row("1\t\\\\N\t2\n", `\N`, 2), row("1\t\\N2\t3\n", "N2", 3)}},
		{name: "empty key is not null", opts: text, input: "1\t\t2\n",
			rows: []gotRow{row("1\t\t2\n", "", 1)}},
		{name: "custom null", opts: pipe, input: "1||2\n1|\\N|2\n",
			rows: []gotRow{nullRow("1||2\n", 1), row("1|\\N|2\n", "N", 2)}},
		{name: "escaped delimiter", opts: text, input: "1\\\tx\ty\tz\n",
			rows: []gotRow{row("1\\\tx\ty\tz\n", "y", 1)}},
		{name: "hex digit delimiter", opts: upperA, input: `1\x4AbAc` + "\n",
			rows: []gotRow{row(`1\x4AbAc`+"\n", "c", 1)}},
		{name: "backslash newline", opts: text, input: "1\ta\\\nb\t2\n3\tc\t4\n",
			rows: []gotRow{row("1\ta\\\nb\t2\n", "a\nb", 1), row("3\tc\t4\n", "c", 2)}},
		{name: "crlf", opts: text, input: "1\tx\t2\r\n3\ty\t4\r\n",
			rows: []gotRow{row("1\tx\t2\r\n", "x", 1), row("3\ty\t4\r\n", "y", 2)}},
		{name: "crlf backslash cr", opts: text, input: "1\ta\\\rb\t2\r\n",
			rows: []gotRow{row("1\ta\\\rb\t2\r\n", "a\rb", 1)}},
		{name: "cr", opts: text, input: "1\tx\t2\r3\ty\t4\r",
			rows: []gotRow{row("1\tx\t2\r", "x", 1), row("3\ty\t4\r", "y", 2)}},
		{name: "cr then lf", opts: text, input: "1\tx\t2\r3\ty\n", err: "literal newline found in data"},
		{name: "crlf then lf", opts: text, input: "1\tx\t2\r\n3\ty\t4\n", err: "literal newline found in data"},
		{name: "crlf then cr", opts: text, input: "1\tx\t2\r\n3\ty\r4\r\n", err: "literal carriage return found in data"},
		{name: "crlf then cr at end", opts: text, input: "1\tx\t2\r\n3\ty\t4\r", err: "literal carriage return found in data"},
		{name: "lf then cr", opts: text, input: "1\tx\t2\n3\ty\r\n", err: "literal carriage return found in data"},
		{name: "end marker", opts: text, input: "1\tx\t2\n\\.\nignored\n\\q\n", done: true,
			rows: []gotRow{row("1\tx\t2\n", "x", 1)}},
		{name: "end marker crlf", opts: text, input: "1\tx\t2\r\n\\.\r\nignored", done: true,
			rows: []gotRow{row("1\tx\t2\r\n", "x", 1)}},
		{name: "end marker first", opts: text, input: "\\.\n1\tx\n", done: true},
		{name: "end marker after data", opts: text, input: "1\tx\t2\\.\n3\ty\t4\n", done: true,
			rows: []gotRow{row("1\tx\t2\\.\n", "x", 1)}},
		{name: "escaped end marker", opts: text, input: "1\tx\\\\.\n",
			rows: []gotRow{row("1\tx\\\\.\n", "x\\.", 1)}},
		{name: "end marker at eof", opts: text, input: "1\tx\t2\n\\.", err: "end-of-copy marker corrupt"},
		{name: "end marker corrupt", opts: text, input: "1\tx\t2\n\\.x\n", err: "end-of-copy marker corrupt"},
		{name: "end marker style", opts: text, input: "1\tx\t2\r\n\\.\n", err: "end-of-copy marker does not match previous newline style"},
		{name: "end marker style cr", opts: text, input: "1\tx\t2\n\\.\r", err: "end-of-copy marker does not match previous newline style"},
		{name: "last row without newline", opts: text, input: "1\tx\t2\n3\ty",
			rows: []gotRow{row("1\tx\t2\n", "x", 1), row("3\ty", "y", 2)}},
		{name: "trailing backslash", opts: text, input: "1\tx\\",
			rows: []gotRow{row("1\tx\\", "x", 1)}},
		{name: "trailing backslash null", opts: text, input: "1\t\\N\\",
			rows: []gotRow{nullRow("1\t\\N\\", 1)}},
		{name: "missing key", opts: text, input: "1\tx\t2\n1\n", err: `missing data for column "b"`},
		{name: "empty line", opts: text, input: "\n", err: `missing data for column "b"`},
		{name: "empty line first column", opts: text, key: Key{Name: "a", Columns: abc}, input: "\n",
			rows: []gotRow{row("\n", "", 1)}},
		{name: "header", opts: header, input: "a\tb\tc\n1\tx\t2\n", header: "a\tb\tc\n",
			rows: []gotRow{row("1\tx\t2\n", "x", 2)}},
		{name: "header only", opts: header, input: "a\tb\tc", header: "a\tb\tc"},
		{name: "header crlf", opts: header, input: "a\\\tb\r\n1\tx\t2\r\n", header: "a\\\tb\r\n",
			rows: []gotRow{row("1\tx\t2\r\n", "x", 2)}},
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	runCases(t, csvCases())
}

func csvCases() []splitCase {
	csv := DefaultOptions(CSV)
	nullWord := csv
	nullWord.Null = "NULL"
	notNull := csv
	notNull.ForceNotNull = []string{"b"}
	forceNull := csv
	forceNull.ForceNull = []string{"b"}
	esc := csv
	esc.Escape = '\\'
	semi := csv
	semi.Delimiter, semi.Quote, semi.Escape, semi.Header = ';', '\'', '\'', true
	withDefault := csv
	withDefault.Default, withDefault.HasDefault = "DEF", true
	return []splitCase{
		{name: "plain", opts: csv, input: "1,x,2\n3,y,4\n",
			rows: []gotRow{row("1,x,2\n", "x", 1), row("3,y,4\n", "y", 2)}},
		{name: "quoted", opts: csv, input: "1,\"x,\"\"y\"\"\nz\",2\n\"3\",\"\",\"\n\"\n",
			rows: []gotRow{row("1,\"x,\"\"y\"\"\nz\",2\n", "x,\"y\"\nz", 1), row("\"3\",\"\",\"\n\"\n", "", 2)}},
		{name: "partly quoted", opts: csv, input: "1,a\"b,c\"d,2\n",
			rows: []gotRow{row("1,a\"b,c\"d,2\n", "ab,cd", 1)}},
		{name: "nulls", opts: csv, input: "1,,2\n1,\"\",2\n",
			rows: []gotRow{nullRow("1,,2\n", 1), row("1,\"\",2\n", "", 2)}},
		{name: "null word", opts: nullWord, input: "1,NULL,2\n1,\"NULL\",2\n1,,2\n",
			rows: []gotRow{nullRow("1,NULL,2\n", 1), row("1,\"NULL\",2\n", "NULL", 2), row("1,,2\n", "", 3)}},
		{name: "force not null", opts: notNull, input: "1,,2\n",
			rows: []gotRow{row("1,,2\n", "", 1)}},
		{name: "force null", opts: forceNull, input: "1,\"\",2\n1,\"x\",2\n",
			rows: []gotRow{nullRow("1,\"\",2\n", 1), row("1,\"x\",2\n", "x", 2)}},
		{name: "escape", opts: esc, input: `1,"a\"b\\c\d""",2` + "\n",
			rows: []gotRow{row(`1,"a\"b\\c\d""",2`+"\n", `a"b\c\d`, 1)}},
		{name: "escape outside quotes", opts: esc, input: `1,a\"b",2` + "\n",
			rows: []gotRow{row(`1,a\"b",2`+"\n", `a\b`, 1)}},
		{name: "options and header", opts: semi, input: "a;b;c\n1;'x;''y';2\n", header: "a;b;c\n",
			rows: []gotRow{row("1;'x;''y';2\n", "x;'y", 2)}},
		{name: "crlf inside quotes", opts: csv, input: "1,\"x\r\ny\",2\r\n3,\"\r\",4\r\n",
			rows: []gotRow{row("1,\"x\r\ny\",2\r\n", "x\r\ny", 1), row("3,\"\r\",4\r\n", "\r", 2)}},
		{name: "unquoted cr", opts: csv, input: "1,x,2\r\n3,y\r,4\r\n", err: "unquoted carriage return found in data"},
		{name: "unquoted newline", opts: csv, input: "1,x,2\r\n3,y\n", err: "unquoted newline found in data"},
		{name: "end marker", opts: csv, input: "1,x,2\n\\.\n3,y,4\n", done: true,
			rows: []gotRow{row("1,x,2\n", "x", 1)}},
		{name: "end marker crlf", opts: csv, input: "1,x,2\r\n\\.\r\n3", done: true,
			rows: []gotRow{row("1,x,2\r\n", "x", 1)}},
		{name: "backslash dot data", opts: csv, input: "\\.x,y\n1,\\.,2\n\"\\.\",z\n", key: Key{Name: "a", Columns: abc},
			rows: []gotRow{row("\\.x,y\n", "\\.x", 1), row("1,\\.,2\n", "1", 2), row("\"\\.\",z\n", "\\.", 3)}},
		{name: "backslash dot at eof", opts: csv, input: "1,x\n\\.", key: Key{Name: "a", Columns: abc},
			rows: []gotRow{row("1,x\n", "1", 1), row("\\.", "\\.", 2)}},
		{name: "backslash dot lf in crlf", opts: csv, input: "1,x\r\n\\.\n", err: "unquoted newline found in data"},
		{name: "backslash dot quote", opts: csv, input: "\\.\"a\nb\",c\n", key: Key{Name: "a", Columns: abc},
			rows: []gotRow{row("\\.\"a\nb\",c\n", "\\.a\nb", 1)}},
		{name: "end marker style", opts: csv, input: "1,x\n\\.\r", err: "end-of-copy marker does not match previous newline style"},
		{name: "unterminated at eof", opts: csv, input: "1,x,2\n3,\"y,4\n", err: "unterminated CSV quoted field"},
		{name: "unterminated after key", opts: csv, input: "3,y,\"4", err: "unterminated CSV quoted field"},
		{name: "last row without newline", opts: csv, input: "1,x,2\n3,\"y\"",
			rows: []gotRow{row("1,x,2\n", "x", 1), row("3,\"y\"", "y", 2)}},
		{name: "missing key", opts: csv, input: "1\n", err: `missing data for column "b"`},
		{name: "missing key quoted", opts: csv, input: "\"1,2\"\n", err: `missing data for column "b"`},
		{name: "default marker", opts: withDefault, input: "1,DEF,2\n", code: codeUnsupported,
			err: `cannot route a COPY row whose sharding key column "b" is given as DEFAULT`},
		{name: "quoted default is data", opts: withDefault, input: "1,\"DEF\",2\n",
			rows: []gotRow{row("1,\"DEF\",2\n", "DEF", 1)}},
	}
}

func TestBinary(t *testing.T) {
	t.Parallel()
	runCases(t, binaryCases())
}

func binaryCases() []splitCase {
	b := DefaultOptions(Binary)
	good := bin([][]byte{[]byte("1"), []byte("key"), nil}, [][]byte{{}, nil, []byte("z")})
	hdr := string(good[:19])
	tuple1 := "\x00\x03\x00\x00\x00\x011\x00\x00\x00\x03key\xff\xff\xff\xff"
	tuple2 := "\x00\x03\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x01z"
	ext := string(binarySignature[:]) + "\x00\x00\x00\x00\x00\x00\x00\x03abc" + tuple1 + "\xff\xff"
	return []splitCase{
		{name: "tuples", opts: b, input: string(good), header: hdr, done: true,
			rows: []gotRow{row(tuple1, "key", 1), nullRow(tuple2, 2)}},
		{name: "header extension", opts: b, input: ext, header: ext[:22], done: true,
			rows: []gotRow{row(tuple1, "key", 1)}},
		{name: "no trailer", opts: b, input: hdr + tuple1, header: hdr,
			rows: []gotRow{row(tuple1, "key", 1)}},
		{name: "lone byte at end", opts: b, input: hdr + tuple1 + "\x00", header: hdr,
			rows: []gotRow{row(tuple1, "key", 1)}},
		{name: "empty", opts: b, err: "COPY file signature not recognized"},
		{name: "bad signature", opts: b, input: "PGCOPY\n\xff\r\n\x01", err: "COPY file signature not recognized"},
		{name: "text as binary", opts: b, input: "1\tx\t2\n", err: "COPY file signature not recognized"},
		{name: "short flags", opts: b, input: hdr[:13], err: "invalid COPY file header (missing flags)"},
		{name: "oids", opts: b, input: hdr[:11] + "\x00\x01\x00\x00" + hdr[15:], err: "invalid COPY file header (WITH OIDS)"},
		{name: "critical flag", opts: b, input: hdr[:11] + "\x80\x00\x00\x00" + hdr[15:], err: "unrecognized critical flags in COPY file header"},
		{name: "non-critical flag", opts: b, input: hdr[:11] + "\x00\x00\x00\x01" + hdr[15:], header: hdr[:11] + "\x00\x00\x00\x01" + hdr[15:]},
		{name: "short length", opts: b, input: hdr[:17], err: "invalid COPY file header (missing length)"},
		{name: "negative length", opts: b, input: hdr[:15] + "\xff\xff\xff\xfe", err: "invalid COPY file header (missing length)"},
		{name: "short extension", opts: b, input: hdr[:15] + "\x00\x00\x00\x05ab", err: "invalid COPY file header (wrong length)"},
		{name: "field count", opts: b, input: hdr + "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00", err: "row field count is 2, expected 3"},
		{name: "field count unknown columns", opts: b, key: Key{Name: "b", Index: 1}, input: hdr + "\x00\x01\x00\x00\x00\x00",
			err: `missing data for column "b"`},
		{name: "field size", opts: b, input: hdr + "\x00\x03\xff\xff\xff\xfe", err: "invalid field size"},
		{name: "truncated tuple", opts: b, input: hdr + tuple1[:9], err: "unexpected EOF in COPY data"},
		{name: "data after trailer", opts: b, input: string(good) + "\x00", err: "received copy data after EOF marker"},
	}
}

// TestFeedPanics guards the chunk-lifetime contract: feeding before the
// previous chunk is drained would drop or reorder data.
func TestFeedPanics(t *testing.T) {
	t.Parallel()
	sp, err := New(DefaultOptions(Text), keyB)
	if err != nil {
		t.Fatal(err)
	}
	sp.Feed([]byte("1\tx\n2\ty\n"))
	if _, ok, err := sp.Next(); !ok || err != nil {
		t.Fatalf("Next: %v %v", ok, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Feed with an undrained chunk did not panic")
		}
	}()
	sp.Feed([]byte("3\tz\n"))
}

// TestBoundedMemory streams a million rows in random chunks and checks
// that the Splitter's buffers stay the size of one row.
func TestBoundedMemory(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 1000 {
		b.WriteString("12345\tkey\\tvalue\t")
		b.WriteString(strings.Repeat("x", i%90))
		b.WriteString("\n")
	}
	block := []byte(b.String())
	sp, err := New(DefaultOptions(Text), keyB)
	if err != nil {
		t.Fatal(err)
	}
	next := randomChunks(1, 1000)
	rows := 0
	for range 1000 {
		for rest := block; len(rest) > 0; {
			n := min(next(), len(rest))
			sp.Feed(rest[:n])
			rest = rest[n:]
			for {
				r, ok, err := sp.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if string(r.Key) != "key\tvalue" {
					t.Fatalf("row %d key %q", rows, r.Key)
				}
				rows++
			}
			if cap(sp.pend) > 512 || cap(sp.keyBuf) > 512 {
				t.Fatalf("buffers grew to %d and %d bytes", cap(sp.pend), cap(sp.keyBuf))
			}
		}
	}
	if _, _, err := sp.Finish(); err != nil || rows != 1_000_000 {
		t.Fatalf("Finish: %v after %d rows", err, rows)
	}
}

// TestAfterError guards the error contract: the error sticks, and the
// data a client sends before its CopyDone can still be fed.
func TestAfterError(t *testing.T) {
	t.Parallel()
	sp, err := New(DefaultOptions(Text), keyB)
	if err != nil {
		t.Fatal(err)
	}
	sp.Feed([]byte("1\n2\tx\n"))
	_, _, err = sp.Next()
	if sqlState(err) != codeBadFormat {
		t.Fatalf("Next: %v", err)
	}
	sp.Feed([]byte("3\ty\n"))
	if _, ok, err2 := sp.Next(); ok || err2 != err {
		t.Fatalf("Next after error: %v %v", ok, err2)
	}
	if _, ok, err2 := sp.Finish(); ok || err2 != err {
		t.Fatalf("Finish after error: %v %v", ok, err2)
	}
}

// TestAppendDoesNotClobber guards against a caller appending a line
// ending to a row and so overwriting the next row in the chunk.
func TestAppendDoesNotClobber(t *testing.T) {
	t.Parallel()
	sp, err := New(DefaultOptions(Text), keyB)
	if err != nil {
		t.Fatal(err)
	}
	sp.Feed([]byte("1\tx\n2\ty\n"))
	r, _, _ := sp.Next()
	_ = append(r.Data, '!')
	_ = append(r.Key, '!')
	if r, _, _ = sp.Next(); string(r.Data) != "2\ty\n" {
		t.Fatalf("second row %q", r.Data)
	}
}
