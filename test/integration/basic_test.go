package integration

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy"
)

var allModes = []proxy.PoolMode{proxy.TransactionMode, proxy.SessionMode, proxy.StatementMode}

// TestProtocols runs the same client work through each pool mode: simple
// and extended protocol, multi-statement strings, COPY both ways and a
// rolled-back transaction.
func TestProtocols(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			p := startProxy(t, mode)
			c := p.connect(t)
			ctx := ctxT(t)
			table := "proto_" + mode.String()
			if _, err := c.Exec(ctx, "drop table if exists "+table+"; create table "+table+" (id int primary key, name text)"); err != nil {
				t.Fatal(err)
			}

			// Multi-statement simple query: every statement's result arrives.
			mrr := c.PgConn().Exec(ctx, "insert into "+table+" values (1, 'a'); select 41 + 1; select 'x'")
			results, err := mrr.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 3 || string(results[1].Rows[0][0]) != "42" || string(results[2].Rows[0][0]) != "x" {
				t.Fatalf("multi-statement results: %+v", results)
			}

			// Extended protocol, every exec mode pgx has.
			for _, m := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
				pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
				var name string
				if err := c.QueryRow(ctx, "select name from "+table+" where id = $1", m, 1).Scan(&name); err != nil || name != "a" {
					t.Fatalf("exec mode %v: %q %v", m, name, err)
				}
			}

			// COPY FROM STDIN, then COPY TO STDOUT.
			in := "2\tb\n3\tc\n"
			tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(in), "copy "+table+" from stdin")
			if err != nil || tag.RowsAffected() != 2 {
				t.Fatalf("copy from: %v %v", tag, err)
			}
			var out bytes.Buffer
			if _, err := c.PgConn().CopyTo(ctx, &out, "copy (select * from "+table+" order by id) to stdout"); err != nil {
				t.Fatal(err)
			}
			if out.String() != "1\ta\n2\tb\n3\tc\n" {
				t.Fatalf("copy to: %q", out.String())
			}

			if mode != proxy.StatementMode {
				tx, err := c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "insert into "+table+" values (9, 'z')"); err != nil {
					t.Fatal(err)
				}
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := c.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 3 {
				t.Fatalf("count after rollback = %d, %v", n, err)
			}

			// A server error leaves the connection usable.
			if _, err := c.Exec(ctx, "select 1/0"); err == nil || !strings.Contains(err.Error(), "22012") {
				t.Fatalf("want division by zero, got %v", err)
			}
			if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPortalSuspension reads a result in chunks with Execute row limits
// (PortalSuspended between them), and with a cursor's FETCH.
func TestPortalSuspension(t *testing.T) {
	for _, mode := range []proxy.PoolMode{proxy.TransactionMode, proxy.SessionMode} {
		t.Run(mode.String(), func(t *testing.T) {
			p := startProxy(t, mode)

			c := login(t, p.addr)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fe := pgproto3.NewFrontend(c, c)
			fe.Send(&pgproto3.Parse{Query: "select g from generate_series(1, 10) g"})
			fe.Send(&pgproto3.Bind{})
			fe.Send(&pgproto3.Execute{MaxRows: 4})
			fe.Send(&pgproto3.Execute{})
			fe.Send(&pgproto3.Sync{})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for done := false; !done; {
				msg, err := fe.Receive()
				if err != nil {
					t.Fatal(err)
				}
				switch m := msg.(type) {
				case *pgproto3.DataRow:
					got = append(got, string(m.Values[0]))
				case *pgproto3.PortalSuspended:
					got = append(got, "suspended")
				case *pgproto3.CommandComplete:
					got = append(got, string(m.CommandTag))
				case *pgproto3.ErrorResponse:
					t.Fatal(m.Message)
				case *pgproto3.ReadyForQuery:
					done = true
				}
			}
			want := "1 2 3 4 suspended 5 6 7 8 9 10 SELECT 6"
			if strings.Join(got, " ") != want {
				t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
			}

			conn := p.connect(t)
			ctx := ctxT(t)
			pc := conn.PgConn()
			if _, err := pc.Exec(ctx, "begin; declare cur cursor for select g from generate_series(1, 10) g").ReadAll(); err != nil {
				t.Fatal(err)
			}
			res, err := pc.Exec(ctx, "fetch 4 from cur").ReadAll()
			if err != nil || len(res[0].Rows) != 4 {
				t.Fatalf("fetch: %v %v", res, err)
			}
			res, err = pc.Exec(ctx, "fetch all from cur").ReadAll()
			if err != nil || len(res[0].Rows) != 6 || string(res[0].Rows[5][0]) != "10" {
				t.Fatalf("fetch all: %v %v", res, err)
			}
			if _, err := pc.Exec(ctx, "commit").ReadAll(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
