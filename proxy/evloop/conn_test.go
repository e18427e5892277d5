//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client end and the plain server end of a TCP
// connection over loopback.
func pair(t *testing.T, l *Loop) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w, err := l.Wrap(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, s
}

func newLoop(t *testing.T) *Loop {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func TestConnBlockingReadWrite(t *testing.T) {
	l := newLoop(t)
	c, s := pair(t, l)
	go func() {
		time.Sleep(20 * time.Millisecond) // the Read must wait for it
		s.Write([]byte("hello"))
	}()
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// 8 MB is far more than the socket buffers: Write must wait for the
	// reader, and every byte arrive in order.
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	go func() { c.Write(big); c.Close() }()
	got, err := io.ReadAll(s)
	if err != nil || len(got) != len(big) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	for i := range got {
		if got[i] != big[i] {
			t.Fatalf("byte %d differs", i)
		}
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	l := newLoop(t)
	c, s := pair(t, l)
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	// A passed deadline fails a read even with data there, as Go's
	// sockets do: stopping a reader must not consume anything.
	s.Write([]byte("x"))
	time.Sleep(10 * time.Millisecond)
	c.SetReadDeadline(time.Unix(1, 0))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a passed deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after the deadline cleared: %d, %v", n, err)
	}
	done := make(chan error)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read woken by Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a waiting Read")
	}
	// The peer sees the close.
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer after Close: %v", err)
	}
}

func TestConnHandler(t *testing.T) {
	l := newLoop(t)
	c, s := pair(t, l)
	got := make(chan string, 10)
	c.SetHandler(func(uint32) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, ErrWouldBlock) {
				return
			}
			if err != nil {
				got <- "err:" + err.Error()
				return
			}
			got <- string(buf[:n])
		}
	})
	c.Kick()
	s.Write([]byte("one"))
	if g := <-got; g != "one" {
		t.Fatalf("handler read %q", g)
	}
	// Nonblocking writes never wait: what the socket cannot take now
	// stays pending, in order, and goes out when writes block again.
	c.SetNonblocking(true)
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = byte(i)
	}
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("nonblocking write: %d, %v", n, err)
	}
	if c.Pending() == 0 {
		t.Fatal("16 MB went out at once: the test cannot see pending bytes")
	}
	c.SetNonblocking(false)
	go c.Write([]byte("tail"))
	want := append(big, "tail"...)
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		if buf[i] != want[i] {
			t.Fatalf("byte %d differs", i)
		}
	}
	s.Close()
	if g := <-got; g != "err:EOF" {
		t.Fatalf("handler after the peer closed: %q", g)
	}
}
