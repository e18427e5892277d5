package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy"
)

// readError reads from a raw connection until an ErrorResponse, and checks
// the connection is then closed by the proxy.
func readError(t *testing.T, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("want an ErrorResponse, got %v", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			if _, err := fe.Receive(); err == nil {
				t.Fatal("connection still open after the error")
			}
			return e
		}
	}
}

// login opens a raw protocol connection authenticated as app, ready for
// queries.
func login(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Let pgconn do SCRAM, then take the socket over.
	host, port, _ := net.SplitHostPort(addr)
	pc, err := pgconn.Connect(context.Background(), "host="+host+" port="+port+" user=app password=app dbname=app sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return hc.Conn
}

// TestBadInput: broken or hostile protocol input gets an error and a
// closed connection, and does not disturb other clients.
func TestBadInput(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode)
	bystander := p.connect(t)
	ctx := ctxT(t)
	alive := func() {
		t.Helper()
		var n int
		if err := bystander.QueryRow(ctx, "select 1").Scan(&n); err != nil {
			t.Fatalf("another client was disturbed: %v", err)
		}
	}
	alive()

	raw := func(t *testing.T, b []byte) net.Conn {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write(b)
		return c
	}
	be32 := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}

	t.Run("startup with a 2 GB length", func(t *testing.T) {
		e := readError(t, raw(t, be32(0x80000000, 196608)))
		if e.Code != "08P01" {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	t.Run("startup with an unknown protocol", func(t *testing.T) {
		e := readError(t, raw(t, be32(8, 0x12345678)))
		if e.Code != "0A000" {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	t.Run("startup without a user", func(t *testing.T) {
		body := append(be32(196608), append([]byte("database\x00app\x00"), 0)...)
		e := readError(t, raw(t, append(be32(uint32(len(body)+4)), body...)))
		if e.Code != "28000" {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	t.Run("query with a 2 GB length", func(t *testing.T) {
		c := login(t, p.addr)
		c.Write(append([]byte{'Q'}, be32(0x7ffffff0)...))
		if e := readError(t, c); e.Code != "08P01" {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	t.Run("garbage bytes", func(t *testing.T) {
		c := login(t, p.addr)
		c.Write([]byte("\xff\x00\x00\x00\x08garbage!"))
		if e := readError(t, c); e.Code != "08P01" || !strings.Contains(e.Message, "invalid frontend message type") {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	t.Run("truncated Bind", func(t *testing.T) {
		c := login(t, p.addr)
		c.Write([]byte{'B', 0, 0, 0, 7, 'a', 'b', 'c'})
		if e := readError(t, c); e.Code != "08P01" {
			t.Fatalf("got %s %s", e.Code, e.Message)
		}
	})
	alive()
}

// TestAuthFailures: a wrong password or an unknown user gets 28P01 and
// the same message shape, revealing nothing else.
func TestAuthFailures(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode)
	for _, tc := range []struct{ user, password string }{{"app", "wrong"}, {"nobody", "app"}} {
		_, err := pgconn.Connect(ctxT(t), p.dsn(tc.user, tc.password))
		if sqlState(err) != "28P01" || !strings.Contains(err.Error(), `password authentication failed for user "`+tc.user+`"`) {
			t.Fatalf("%s/%s: got %v", tc.user, tc.password, err)
		}
	}
	p.connect(t) // and the right password works
}

// TestServerDeath: a server that dies while idle costs its clients
// nothing; one that dies under a client's query gives that client an
// error, and nobody else notices.
func TestServerDeath(t *testing.T) {
	p := startProxy(t, proxy.TransactionMode, poolSize(4))
	ctx := ctxT(t)
	db := direct(t)
	a, b := p.connect(t), p.connect(t)
	for _, c := range []interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}{a, b} {
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() int {
		var n int
		if err := db.QueryRow(ctx, "select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = 'app' and pid <> pg_backend_pid()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if kill() == 0 {
		t.Fatal("no pooled server to kill: the test proves nothing")
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := a.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("a pooled server that died idle reached a client: %v", err)
	}

	// Now kill the server under a running query.
	var wg sync.WaitGroup
	var slowErr error
	wg.Go(func() { _, slowErr = a.Exec(ctx, "select pg_sleep(5)") })
	if !eventually(t, 5*time.Second, func() bool { return appBackends(t, db)["active"] == 1 }) {
		t.Fatal("query never started")
	}
	kill()
	wg.Wait()
	if slowErr == nil {
		t.Fatal("the client whose server died got no error")
	}
	if _, err := b.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("another client noticed: %v", err)
	}
	if _, err := a.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("the client is not usable after its error: %v", err)
	}
}

// rawTrust starts a proxy whose user app needs no password and opens a
// raw connection to it, for tests that speak the startup protocol by hand.
func rawTrust(t *testing.T) net.Conn {
	t.Helper()
	p := startProxy(t, proxy.TransactionMode, func(c *proxyConfig) {
		c.opts.Users["app"].Credential.Method = "trust"
	})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// sendStartup writes a StartupMessage for protocol 3.minor with the given
// parameters (name, value, name, value, ...).
func sendStartup(c net.Conn, minor uint32, params ...string) {
	body := binary.BigEndian.AppendUint32(nil, 3<<16|minor)
	for _, p := range params {
		body = append(append(body, p...), 0)
	}
	body = append(body, 0)
	w := bufio.NewWriter(c)
	w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)))
	w.Write(body)
	w.Flush()
}

// awaitReady reads until ReadyForQuery, failing on an ErrorResponse.
func awaitReady(t *testing.T, fe *pgproto3.Frontend) {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return
		case *pgproto3.ErrorResponse:
			t.Fatal(m.Message)
		}
	}
}

// TestProtocolNegotiation: a client asking for protocol 3.9 with an
// unknown _pq_ option is told we speak 3.0 and goes on.
func TestProtocolNegotiation(t *testing.T) {
	c := rawTrust(t)
	sendStartup(c, 9, "user", "app", "database", "app", "_pq_.fancy", "on")
	fe := pgproto3.NewFrontend(c, c)
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	npv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
	if !ok || npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.fancy" {
		t.Fatalf("got %#v", msg)
	}
	awaitReady(t, fe)
}

// TestGSSENCDeclined: a client asking for GSSAPI encryption is told 'N'
// and may go on in plain text, as libpq does with gssencmode=prefer.
func TestGSSENCDeclined(t *testing.T) {
	c := rawTrust(t)
	c.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877104))
	reply := make([]byte, 1)
	if _, err := io.ReadFull(c, reply); err != nil || reply[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q, %v", reply, err)
	}
	sendStartup(c, 0, "user", "app", "database", "app")
	awaitReady(t, pgproto3.NewFrontend(c, c))
}
