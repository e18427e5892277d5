package integration

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy"
)

// TestErrorThenRestOfBatch sends an extended-protocol batch in two
// writes: a Parse that fails and a Flush, then, once the error is back,
// Bind, Execute and Sync, which the server skips. The proxy must not wait
// for replies to the skipped messages: before the fix it kept them queued,
// every later reply answered the wrong request (a hidden one's reply could
// swallow the client's: a hang), and the server stayed attached.
func TestErrorThenRestOfBatch(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode)
	c := login(t, p.addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.Parse{Query: "SELECT * FROM no_such_table_for_skip"})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := fe.Receive()
	if _, ok := msg.(*pgproto3.ErrorResponse); !ok || err != nil {
		t.Fatalf("want the Parse's error, got %T %v", msg, err)
	}
	time.Sleep(50 * time.Millisecond) // the proxy has seen the error
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.ReadyForQuery); !ok {
		t.Fatalf("after the skipped messages want ReadyForQuery, got %T", msg)
	}
	// The link must be idle and go back to the pool...
	if !eventually(t, 2*time.Second, func() bool { return p.srv.Clients().Active == 0 }) {
		t.Fatalf("the server stays attached to the client: %+v", p.srv.Clients())
	}
	// ...and the next queries get their own replies.
	for i := range 3 {
		fe.Send(&pgproto3.Query{String: "SELECT 41 + 1"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		var got string
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			if dr, ok := msg.(*pgproto3.DataRow); ok {
				got = string(dr.Values[0])
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		if got != "42" {
			t.Fatalf("query %d answered %q", i, got)
		}
	}
}
