package copysplit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/test/cluster"
)

var copySeedFlag = flag.Uint64("copyseed", 0, "seed for the random rows of TestServer; 0 picks one from the clock")

// serverRows is how many random rows the server test loads: enough for
// every kind of value to meet every option set many times.
const serverRows = 3000

// srcColumns are the test table's columns: n numbers the rows, the
// others are keys in turn.
var srcColumns = []string{"n", "i", "t", "u", "ts"}

// expected holds the server's own view of one column of every row, in
// row order: its text output and its binary send form, nil for NULL.
type expected struct {
	text [][]byte
	bin  [][]byte
}

// streamCase is a COPY data stream the server makes, with the options
// for reading it back.
type streamCase struct {
	name string
	to   string // COPY TO options
	from string // COPY FROM options for the same data
	// edit, if set, rewrites the stream (say, to CRLF line endings) in a
	// way the server reads back to the same rows.
	edit func([]byte) []byte
	// done says the edited stream ends with "\.".
	done bool
}

var streamCases = []streamCase{
	{name: "text", to: "FORMAT text", from: "FORMAT text"},
	// Not NULL '': the server would print an empty string and NULL alike.
	{name: "text options", to: "DELIMITER '|', NULL '<nil>'", from: "DELIMITER '|', NULL '<nil>'"},
	{name: "text header", to: "FORMAT text, HEADER", from: "FORMAT text, HEADER true"},
	{name: "text crlf and end marker", to: "FORMAT text", from: "FORMAT text", done: true,
		edit: func(b []byte) []byte {
			b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
			return append(b, "\\.\r\nnot data\r\n"...)
		}},
	{name: "text cr", to: "FORMAT text", from: "FORMAT text",
		edit: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r")) }},
	{name: "text last line without newline", to: "FORMAT text", from: "FORMAT text",
		edit: func(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\n")) }},
	{name: "csv", to: "FORMAT csv", from: "FORMAT csv"},
	{name: "csv options", to: "FORMAT csv, HEADER, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NULL'",
		from: "FORMAT csv, HEADER, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NULL'"},
	{name: "csv force quote", to: "FORMAT csv, FORCE_QUOTE *", from: "FORMAT csv"},
	{name: "csv tab and pipe", to: "FORMAT csv, DELIMITER E'\\t', QUOTE '|', NULL '\\N', FORCE_QUOTE (t)",
		from: "FORMAT csv, DELIMITER E'\\t', QUOTE '|', NULL '\\N'"},
	{name: "csv end marker", to: "FORMAT csv", from: "FORMAT csv", done: true,
		edit: func(b []byte) []byte { return append(b, "\\.\nnot,data\n"...) }},
	{name: "binary", to: "FORMAT binary", from: "FORMAT binary", done: true},
}

// TestServer checks the splitter against a real server: the server
// writes COPY streams of random rows, the splitter must cut them into
// rows whose keys are the server's values, and the server must read the
// rows, split in two by key, back into the same table.
func TestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	seed := *copySeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("random rows from -copyseed=%d", seed)
	host := cluster.ForTest(t, cluster.Options{Shards: 1}).Shards[0].Primary
	ctx := context.Background()
	conn, err := host.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, diffTable); err != nil {
		t.Fatal(err)
	}
	t.Run("options", func(t *testing.T) { checkOptionsOnServer(t, conn, version) })
	t.Run("hand-written cases", func(t *testing.T) { checkCasesOnServer(t, conn, version) })
	t.Run("random inputs", func(t *testing.T) { checkRandomOnServer(t, conn, seed) })
	exp := loadSource(t, conn, rand.New(rand.NewPCG(seed, 1)))
	for _, sc := range streamCases {
		t.Run(sc.name, func(t *testing.T) { checkStream(t, conn, sc, exp, seed) })
	}
}

// checkOptionsOnServer runs optionCases on the server, which must accept
// and refuse the same statements, with the same codes and messages.
func checkOptionsOnServer(t *testing.T, conn *pgx.Conn, version int) {
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE t (a int, b text, c text)"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range optionCases {
		if tc.ours || version < tc.minVersion {
			continue
		}
		// Accepted statements get the least data their options allow.
		var data []byte
		switch {
		case tc.want.Format == Binary:
			data = bin()
		case tc.want.Header:
			data = []byte(strings.Join(abc, string(tc.want.Delimiter)) + "\n")
		}
		_, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(data), tc.sql)
		var pgErr *pgconn.PgError
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: server refuses what we accept: %v", tc.sql, err)
		case tc.code != "" && !errors.As(err, &pgErr):
			t.Errorf("%s: server accepts what we refuse (%v)", tc.sql, err)
		case tc.code != "" && (pgErr.Code != tc.code || pgErr.Message != tc.msg):
			t.Errorf("%s: server says %s %q, we say %s %q", tc.sql, pgErr.Code, pgErr.Message, tc.code, tc.msg)
		}
	}
}

// loadSource fills table src with random rows and returns the server's
// text and binary forms of every column, by row number.
func loadSource(t *testing.T, conn *pgx.Conn, r *rand.Rand) map[string]expected {
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE src (n int PRIMARY KEY, i int8, t text, u uuid, ts timestamptz)`); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, serverRows)
	for n := range rows {
		rows[n] = []any{int32(n), randValue(r, randInt), randValue(r, randText), randValue(r, randUUID), randValue(r, randTime)}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"src"}, srcColumns, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	exp := make(map[string]expected)
	for _, col := range srcColumns {
		var e expected
		// The simple protocol returns text as the server prints it, in
		// this session's settings, which its COPY TO uses too.
		q := fmt.Sprintf("SELECT %[1]s::text, %[2]s(%[1]s) FROM src ORDER BY src.n", col, sendFunc[col])
		res, err := conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		for res.Next() {
			var text *string
			var bin []byte
			if err := res.Scan(&text, &bin); err != nil {
				t.Fatal(err)
			}
			var tb []byte
			if text != nil {
				tb = []byte(*text)
			}
			e.text = append(e.text, tb)
			e.bin = append(e.bin, bin)
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		exp[col] = e
	}
	return exp
}

var sendFunc = map[string]string{"n": "int4send", "i": "int8send", "t": "textsend", "u": "uuid_send", "ts": "timestamptz_send"}

// checkStream has the server write sc's stream, splits it keyed on each
// column in turn, and reads it back into two tables split by key.
func checkStream(t *testing.T, conn *pgx.Conn, sc streamCase, exp map[string]expected, seed uint64) {
	ctx := context.Background()
	var buf bytes.Buffer
	q := fmt.Sprintf("COPY (SELECT %s FROM src ORDER BY n) TO STDOUT (%s)", strings.Join(srcColumns, ", "), sc.to)
	if _, err := conn.PgConn().CopyTo(ctx, &buf, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	stream := buf.Bytes()
	if sc.edit != nil {
		stream = sc.edit(stream)
	}
	from := fmt.Sprintf("COPY %%s (%s) FROM STDIN (%s)", strings.Join(srcColumns, ", "), sc.from)
	stmt := parseCopy(t, fmt.Sprintf(from, "dst"))
	opts, err := OptionsFromStmt(stmt)
	if err != nil {
		t.Fatal(err)
	}
	var byKeyT outcome
	for _, col := range srcColumns {
		key, err := KeyFromStmt(stmt, nil, col)
		if err != nil {
			t.Fatal(err)
		}
		for ci, next := range []chunker{whole, oneByte, randomChunks(seed, 100), randomChunks(seed+1, 70000)} {
			got := run(opts, key, stream, next)
			if got.Err != nil {
				t.Fatalf("key %s, chunking %d: %v", col, ci, got.Err)
			}
			checkConcat(t, opts, stream, got)
			if got.Done != sc.done {
				t.Fatalf("key %s, chunking %d: done %v", col, ci, got.Done)
			}
			checkKeys(t, opts, col, got.Rows, exp[col])
			if col == "t" && ci == 0 {
				byKeyT = got
			}
		}
	}
	readBack(t, conn, from, opts, byKeyT)
}

// checkKeys compares the keys of rows with the server's values.
func checkKeys(t *testing.T, opts Options, col string, rows []gotRow, e expected) {
	t.Helper()
	want := e.text
	if opts.Format == Binary {
		want = e.bin
	}
	if len(rows) != len(want) {
		t.Fatalf("key %s: %d rows, want %d", col, len(rows), len(want))
	}
	bad := 0
	for i, r := range rows {
		null := want[i] == nil
		if r.Null != null || !null && r.Key != string(want[i]) {
			t.Errorf("key %s, row %d %q: key %q null %v, want %q", col, i, r.Data, r.Key, r.Null, want[i])
			if bad++; bad == 5 {
				t.FailNow()
			}
		}
	}
}

// readBack sends the rows to two tables by a hash of the key, as a proxy
// sends them to shards, and checks that the server reads every row into
// the table it was sent to and that together they are src.
func readBack(t *testing.T, conn *pgx.Conn, from string, opts Options, o outcome) {
	ctx := context.Background()
	var parts [2]bytes.Buffer
	var ns [2][]string
	for i := range parts {
		parts[i].WriteString(o.Header)
	}
	for n, r := range o.Rows {
		h := fnv.New32a()
		h.Write([]byte(r.Key))
		p := 0
		if !r.Null {
			p = int(h.Sum32() & 1)
		}
		parts[p].WriteString(r.Data)
		ns[p] = append(ns[p], strconv.Itoa(n))
	}
	for i := range parts {
		if opts.Format == Binary {
			parts[i].Write([]byte{0xff, 0xff})
		}
		table := fmt.Sprintf("dst%d", i)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (LIKE src)", table)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, &parts[i], fmt.Sprintf(from, table)); err != nil {
			t.Fatalf("COPY into %s: %v", table, err)
		}
		var got string
		q := fmt.Sprintf("SELECT coalesce(string_agg(n::text, ',' ORDER BY n), '') FROM %s", table)
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(ns[i], ","); got != want {
			t.Fatalf("%s holds rows %.200s, want %.200s", table, got, want)
		}
	}
	var diff int
	q := `SELECT count(*) FROM ((TABLE src EXCEPT ALL (TABLE dst0 UNION ALL TABLE dst1))
		UNION ALL ((TABLE dst0 UNION ALL TABLE dst1) EXCEPT ALL TABLE src)) d`
	if err := conn.QueryRow(ctx, q).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("%d rows differ between src and the two tables read back", diff)
	}
}

// randValue returns a value from gen, or NULL one time in ten.
func randValue(r *rand.Rand, gen func(*rand.Rand) any) any {
	if r.IntN(10) == 0 {
		return nil
	}
	return gen(r)
}

func randInt(r *rand.Rand) any {
	switch r.IntN(8) {
	case 0:
		return []int64{0, -1, 1, math.MinInt64, math.MaxInt64}[r.IntN(5)]
	case 1:
		return int64(r.Uint64())
	}
	return r.Int64N(2_000_000) - 1_000_000
}

// textPieces are the characters and strings COPY must escape or quote
// in some format or option set, and some that look like markers.
var textPieces = []string{
	"\t", "\n", "\r", "\r\n", "\\", "\\\\", `"`, `""`, "'", ",", ";", "|", ".", `\.`, `\N`, "NULL", "N",
	" ", "a", "z", "0", "7", "x4", "é", "日本", "🙂", "\u00a0", "\x7f", "\x01", "abc", "\\.\n",
}

func randText(r *rand.Rand) any {
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(textPieces[r.IntN(len(textPieces))])
	}
	return b.String()
}

func randUUID(r *rand.Rand) any {
	var u [16]byte
	for i := range u {
		u[i] = byte(r.Uint32())
	}
	return u
}

func randTime(r *rand.Rand) any {
	// 1900 to 2100, in microseconds, the server's precision.
	const lo, span = -2208988800_000000, 6311433600_000000
	return time.UnixMicro(lo + r.Int64N(span)).UTC()
}
