package copysplit_test

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/shardgate/shardgate/proxy/copysplit"
)

// A proxy reads the COPY statement's options and key position, then feeds
// each CopyData payload to the Splitter and routes the rows it returns.
func ExampleSplitter() {
	res, _ := pg_query.Parse(`COPY users (id, name) FROM STDIN (FORMAT csv, HEADER)`)
	stmt := res.Stmts[0].Stmt.GetCopyStmt()
	opts, err := copysplit.OptionsFromStmt(stmt)
	if err != nil {
		panic(err)
	}
	key, err := copysplit.KeyFromStmt(stmt, nil, "name")
	if err != nil {
		panic(err)
	}
	sp, err := copysplit.New(opts, key)
	if err != nil {
		panic(err)
	}
	// CopyData messages cut the data anywhere.
	for _, msg := range []string{"id,name\n1,al", "ice\n2,\"b,o\n", "b\"\n3,"} {
		sp.Feed([]byte(msg))
		for {
			row, ok, err := sp.Next()
			if err != nil {
				panic(err) // fail the COPY on every shard, report err
			}
			if !ok {
				break
			}
			fmt.Printf("line %d key %q: forward %q after header %q\n", row.Line, row.Key, row.Data, sp.Header())
		}
	}
	row, ok, err := sp.Finish() // at CopyDone
	fmt.Printf("last row %v, null %v, error %v: forward %q\n", ok, row.Null, err, row.Data)
	// Output:
	// line 2 key "alice": forward "1,alice\n" after header "id,name\n"
	// line 3 key "b,o\nb": forward "2,\"b,o\nb\"\n" after header "id,name\n"
	// last row true, null true, error <nil>: forward "3,"
}
