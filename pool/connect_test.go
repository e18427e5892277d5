package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/pool"
)

// slowWriteConn returns from each Write only a while after the bytes went
// out, as a Write does on a loaded machine whose scheduler runs the
// goroutine late. pgconn then starts its background reader, which reads
// the server's reply while the Write has not returned yet.
type slowWriteConn struct{ net.Conn }

func (c slowWriteConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	time.Sleep(100 * time.Millisecond)
	return n, err
}

// slowConfig is the app user's connection config for addr, with each
// dialed socket wrapped by slow.
func slowConfig(t *testing.T, addr string, slow func(net.Conn) net.Conn) *pgconn.Config {
	t.Helper()
	cfg, err := pool.ConnConfig(addr, "app", "app", "app", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return slow(nc), nil
	}
	return cfg
}

// roundTrip sends a simple query on a taken-over connection and reads up
// to its ReadyForQuery.
func roundTrip(nc net.Conn) error {
	q := append([]byte{'Q', 0, 0, 0, 13}, "SELECT 1\x00"...)
	if _, err := nc.Write(q); err != nil {
		return err
	}
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	var hdr [5]byte
	for {
		if _, err := readFull(nc, hdr[:]); err != nil {
			return err
		}
		body := make([]byte, int(hdr[1])<<24|int(hdr[2])<<16|int(hdr[3])<<8|int(hdr[4])-4)
		if _, err := readFull(nc, body); err != nil {
			return err
		}
		if hdr[0] == 'Z' {
			return nil
		}
	}
}

func readFull(nc net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := nc.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestDialAfterSlowWrite: a server connection whose handshake had a slow
// write still delivers the reply to its first request. Taken from pgconn
// with a plain Hijack, pgconn's background reader stays blocked on the
// socket and swallows that reply (the subtest "plain hijack" shows it
// does), and the client waits forever.
func TestDialAfterSlowWrite(t *testing.T) {
	c := appCluster(t, 0)
	config := func(t *testing.T) *pgconn.Config {
		return slowConfig(t, c.Shards[0].Primary.Addr(), func(nc net.Conn) net.Conn { return slowWriteConn{nc} })
	}
	ctx := context.Background()

	t.Run("plain hijack", func(t *testing.T) {
		// The hazard itself, taken over the way dialConfig once did.
		// The race is the scheduler's, so a few tries are allowed.
		for try := range 3 {
			pc, err := pgconn.ConnectConfig(ctx, config(t))
			if err != nil {
				t.Fatal(err)
			}
			hc, err := pc.Hijack()
			if err != nil {
				t.Fatal(err)
			}
			err = roundTrip(hc.Conn)
			hc.Conn.Close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Logf("try %d: the reply was lost, as expected", try+1)
				return
			}
		}
		t.Fatal("the reply never went missing after a plain hijack: this test no longer shows the hazard")
	})

	t.Run("dial", func(t *testing.T) {
		for range 3 {
			nc, hello, err := pool.DialConfig(ctx, config(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(nc); err != nil {
				t.Fatalf("first request on a connection from dialConfig (server pid %d): %v", hello.PID, err)
			}
			nc.Close()
		}
	})
}

// slowTCPConn is slowWriteConn that still offers the socket (SyscallConn),
// as the catalog's pgx connections do.
type slowTCPConn struct{ *net.TCPConn }

func (c slowTCPConn) Write(b []byte) (int, error) { return slowWriteConn{c.TCPConn}.Write(b) }

// TestAliveBesideBackgroundReader: after a slow write, pgconn's background
// reader can stay blocked in Read on an idle connection, holding the
// socket's read lock (see TestDialAfterSlowWrite). Alive, which the
// catalog's pool runs on every checkout, must not wait behind it: it once
// did, and a catalog query hung for good.
func TestAliveBesideBackgroundReader(t *testing.T) {
	c := appCluster(t, 0)
	cfg := slowConfig(t, c.Shards[0].Primary.Addr(), func(nc net.Conn) net.Conn { return slowTCPConn{nc.(*net.TCPConn)} })
	ctx := context.Background()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	for range 3 {
		if _, err := pc.Exec(ctx, "select 1").ReadAll(); err != nil {
			t.Fatal(err)
		}
		done := make(chan bool, 1)
		go func() { done <- pool.Alive(pc.Conn()) }()
		select {
		case alive := <-done:
			if !alive {
				t.Fatal("an idle, healthy connection looked dead")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Alive waited behind pgconn's background reader")
		}
	}
	// And it still sees a connection the server ended.
	admin, err := pgconn.Connect(ctx, c.Shards[0].Primary.DSN("app", "app", "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("select pg_terminate_backend(%d)", pc.PID())).ReadAll(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pool.Alive(pc.Conn()) {
		if time.Now().After(deadline) {
			t.Fatal("a connection the server terminated still looks alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
