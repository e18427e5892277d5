package copysplit

import (
	"reflect"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// optionCase is a COPY statement on table t (a int, b text, c text) and
// what OptionsFromStmt makes of it. TestServer runs the same statements
// on a real server, which must agree, unless ours says the refusal is
// the proxy's own or minVersion says the server is too old to know.
type optionCase struct {
	sql  string
	want Options
	code string // the expected error's SQLSTATE; "" for success
	msg  string
	// ours marks refusals only a sharding proxy makes.
	ours bool
	// minVersion is the server_version_num the statement needs.
	minVersion int
}

func csvWith(f func(*Options)) Options {
	o := DefaultOptions(CSV)
	f(&o)
	return o
}

func textWith(f func(*Options)) Options {
	o := DefaultOptions(Text)
	f(&o)
	return o
}

var optionCases = []optionCase{
	{sql: `COPY t FROM STDIN`, want: DefaultOptions(Text)},
	{sql: `COPY t FROM STDIN (FORMAT csv)`, want: DefaultOptions(CSV)},
	{sql: `COPY t FROM STDIN (FORMAT binary)`, want: DefaultOptions(Binary)},
	{sql: `COPY BINARY t FROM STDIN`, want: DefaultOptions(Binary)},
	{sql: `COPY t FROM STDIN WITH BINARY`, want: DefaultOptions(Binary)},
	{sql: `COPY t FROM STDIN (FORMAT text, DELIMITER '|', NULL '', HEADER)`,
		want: textWith(func(o *Options) { o.Delimiter, o.Null, o.Header = '|', "", true })},
	{sql: `COPY t FROM STDIN USING DELIMITERS ';' WITH NULL AS 'x'`,
		want: textWith(func(o *Options) { o.Delimiter, o.Null = ';', "x" })},
	{sql: `COPY t FROM STDIN WITH CSV HEADER DELIMITER ';' QUOTE '''' ESCAPE '\' NULL 'n' FORCE NOT NULL b`,
		want: csvWith(func(o *Options) {
			o.Header, o.Delimiter, o.Quote, o.Escape, o.Null, o.ForceNotNull = true, ';', '\'', '\\', "n", []string{"b"}
		})},
	{sql: `COPY t FROM STDIN (FORMAT csv, QUOTE '|')`, want: csvWith(func(o *Options) { o.Quote, o.Escape = '|', '|' })},
	{sql: `COPY t FROM STDIN (FORMAT csv, FORCE_NULL (b, c), HEADER match, FREEZE false, ENCODING 'utf8')`,
		want: csvWith(func(o *Options) { o.ForceNull, o.Header = []string{"b", "c"}, true })},
	{sql: `COPY t FROM STDIN (HEADER 0)`, want: DefaultOptions(Text)},
	{sql: `COPY t FROM STDIN (HEADER off)`, want: DefaultOptions(Text)},
	{sql: `COPY t FROM STDIN (HEADER 2)`, code: codeSyntax, msg: `header requires a Boolean value or "match"`},
	{sql: `COPY t FROM STDIN (FORMAT csv, DEFAULT 'D')`, minVersion: 160000,
		want: csvWith(func(o *Options) { o.Default, o.HasDefault = "D", true })},
	{sql: `COPY t FROM STDIN (FORMAT csv, FORCE_NOT_NULL *)`, minVersion: 170000,
		want: csvWith(func(o *Options) { o.ForceNotNullAll = true })},
	{sql: `COPY t FROM STDIN (FORMAT csv, FORMAT text)`, code: codeSyntax, msg: "conflicting or redundant options"},
	{sql: `COPY t FROM STDIN (FOO 1)`, code: codeSyntax, msg: `option "foo" not recognized`},
	{sql: `COPY t FROM STDIN (FORMAT xml)`, code: codeInvalidParam, msg: `COPY format "xml" not recognized`},
	{sql: `COPY t FROM STDIN (FORMAT 'CSV')`, code: codeInvalidParam, msg: `COPY format "CSV" not recognized`},
	{sql: `COPY t FROM STDIN (FORMAT binary, DELIMITER ',')`, code: codeSyntax, msg: "cannot specify DELIMITER in BINARY mode"},
	{sql: `COPY t FROM STDIN (FORMAT binary, NULL 'x')`, code: codeSyntax, msg: "cannot specify NULL in BINARY mode"},
	{sql: `COPY t FROM STDIN (FORMAT binary, HEADER)`, code: codeUnsupported, msg: "cannot specify HEADER in BINARY mode"},
	{sql: `COPY t FROM STDIN (DELIMITER 'ab')`, code: codeUnsupported, msg: "COPY delimiter must be a single one-byte character"},
	{sql: `COPY t FROM STDIN (DELIMITER 'é')`, code: codeUnsupported, msg: "COPY delimiter must be a single one-byte character"},
	{sql: `COPY t FROM STDIN (DELIMITER 'a')`, code: codeInvalidParam, msg: `COPY delimiter cannot be "a"`},
	{sql: `COPY t FROM STDIN (DELIMITER '.')`, code: codeInvalidParam, msg: `COPY delimiter cannot be "."`},
	{sql: `COPY t FROM STDIN (DELIMITER E'\n')`, code: codeInvalidParam, msg: "COPY delimiter cannot be newline or carriage return"},
	{sql: `COPY t FROM STDIN (NULL E'a\rb')`, code: codeInvalidParam, msg: "COPY null representation cannot use newline or carriage return"},
	{sql: `COPY t FROM STDIN (DELIMITER '|', NULL 'a|b')`, code: codeUnsupported, msg: "COPY delimiter must not appear in the NULL specification"},
	{sql: `COPY t FROM STDIN (FORMAT csv, DELIMITER '"')`, code: codeInvalidParam, msg: "COPY delimiter and quote must be different"},
	{sql: `COPY t FROM STDIN (FORMAT csv, NULL '"')`, code: codeUnsupported, msg: "CSV quote character must not appear in the NULL specification"},
	{sql: `COPY t FROM STDIN (QUOTE '"')`, code: codeUnsupported, msg: "COPY quote available only in CSV mode"},
	{sql: `COPY t FROM STDIN (ESCAPE '"')`, code: codeUnsupported, msg: "COPY escape available only in CSV mode"},
	{sql: `COPY t FROM STDIN (FORMAT csv, QUOTE '')`, code: codeUnsupported, msg: "COPY quote must be a single one-byte character"},
	{sql: `COPY t FROM STDIN (FORMAT csv, ESCAPE 'ab')`, code: codeUnsupported, msg: "COPY escape must be a single one-byte character"},
	{sql: `COPY t FROM STDIN (FORCE_NOT_NULL (b))`, code: codeUnsupported, msg: "COPY force not null available only in CSV mode"},
	{sql: `COPY t FROM STDIN (FORCE_NULL (b))`, code: codeUnsupported, msg: "COPY force null available only in CSV mode"},
	{sql: `COPY t FROM STDIN (FORMAT csv, FORCE_QUOTE *)`, code: codeUnsupported, msg: "COPY force quote only available using COPY TO"},
	{sql: `COPY t FROM STDIN (ENCODING 'SJIS')`, code: codeUnsupported, msg: `COPY ENCODING "SJIS" cannot be split across shards`, ours: true},
	{sql: `COPY t TO STDOUT`, code: codeUnsupported, msg: "only COPY table FROM STDIN can be split across shards", ours: true},
	{sql: `COPY t FROM '/tmp/x'`, code: codeUnsupported, msg: "only COPY table FROM STDIN can be split across shards", ours: true},
}

func parseCopy(t testing.TB, sql string) *pg_query.CopyStmt {
	t.Helper()
	res, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("parse %s: %v", sql, err)
	}
	stmt := res.Stmts[0].Stmt.GetCopyStmt()
	if stmt == nil {
		t.Fatalf("%s is not COPY", sql)
	}
	return stmt
}

func TestOptionsFromStmt(t *testing.T) {
	t.Parallel()
	for _, tc := range optionCases {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			got, err := OptionsFromStmt(parseCopy(t, tc.sql))
			if tc.code != "" {
				if err == nil || sqlState(err) != tc.code || err.Error() != tc.msg {
					t.Fatalf("error %v (%s), want %s %q", err, sqlState(err), tc.code, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("options\n got  %+v\n want %+v", got, tc.want)
			}
			if _, err := New(got, keyB); err != nil {
				t.Fatalf("New refuses what OptionsFromStmt accepts: %v", err)
			}
		})
	}
}

func TestKeyFromStmt(t *testing.T) {
	t.Parallel()
	table := []string{"a", "b", "c", "B"}
	cases := []struct {
		sql, key string
		table    []string
		want     Key
		code     string
	}{
		{sql: `COPY t FROM STDIN`, key: "c", table: table, want: Key{Name: "c", Index: 2, Columns: table}},
		{sql: `COPY t (c, b) FROM STDIN`, key: "b", table: table, want: Key{Name: "b", Index: 1, Columns: []string{"c", "b"}}},
		{sql: `COPY t ("B", a) FROM STDIN`, key: "B", want: Key{Name: "B", Index: 0, Columns: []string{"B", "a"}}},
		{sql: `COPY t (A, b) FROM STDIN`, key: "a", table: table, want: Key{Name: "a", Index: 0, Columns: []string{"a", "b"}}},
		{sql: `COPY t (a) FROM STDIN`, key: "b", table: table, code: codeUnsupported},
		{sql: `COPY t FROM STDIN`, key: "z", table: table, code: codeUnsupported},
		{sql: `COPY t (a, z) FROM STDIN`, key: "a", table: table, code: codeUndefinedColumn},
		{sql: `COPY t (a, a) FROM STDIN`, key: "a", code: codeDuplicateColumn},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			got, err := KeyFromStmt(parseCopy(t, tc.sql), tc.table, tc.key)
			if tc.code != "" {
				if sqlState(err) != tc.code {
					t.Fatalf("error %v, want SQLSTATE %s", err, tc.code)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	cases := map[string]Options{
		"text delimiter backslash": textWith(func(o *Options) { o.Delimiter = '\\' }),
		"no delimiter":             textWith(func(o *Options) { o.Delimiter = 0 }),
		"csv quote is delimiter":   csvWith(func(o *Options) { o.Quote = ',' }),
		"csv no escape":            csvWith(func(o *Options) { o.Escape = 0 }),
		"binary header":            {Format: Binary, Header: true},
		"unknown format":           {Format: 9, Delimiter: ','},
	}
	for name, o := range cases {
		if _, err := New(o, keyB); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(DefaultOptions(Text), Key{Name: "x", Index: 3, Columns: abc}); err == nil {
		t.Error("New accepted a key index past the columns")
	}
}

func TestSafeEncoding(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"UTF8": true, "utf-8": true, "LATIN1": true, "EUC_JP": true, "WIN1252": true,
		"SJIS": false, "Shift_JIS": false, "shift-jis-2004": false, "BIG5": false, "GBK": false,
		"gb18030": false, "UHC": false, "JOHAB": false, "WIN932": false, "windows-936": false,
	} {
		if got := SafeEncoding(name); got != want {
			t.Errorf("SafeEncoding(%q) = %v, want %v", name, got, want)
		}
	}
}
