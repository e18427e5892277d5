package main

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestRelays sends bytes through each design to an echo server, including
// a burst bigger than the socket buffers that the client reads only late,
// so that the epoll loop's path for a full socket runs too.
func TestRelays(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	designs := map[string]func(net.Listener, string) error{"goroutine": serveGoroutines}
	if runtime.GOOS == "linux" {
		designs["epoll"] = serveEpoll
	}
	for name, serve := range designs {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go serve(ln, echo.Addr().String())
			for _, size := range []int{1, 100, 8 << 20} {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(20 * time.Second))
				sent := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
				go c.Write(sent)
				// Read late, so that the relay finds the client's socket
				// full and must hold bytes back.
				time.Sleep(100 * time.Millisecond)
				got := make([]byte, size)
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, sent) {
					t.Fatalf("%d bytes: %v, echo differs: %v", size, err, !bytes.Equal(got, sent))
				}
				c.Close()
			}
		})
	}
}
