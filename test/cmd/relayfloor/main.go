package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7001", "address to accept clients on")
	target := flag.String("target", "127.0.0.1:5432", "address of the server to relay to")
	mode := flag.String("mode", "goroutine", "I/O design: goroutine or epoll")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayfloor:", err)
		os.Exit(1)
	}
	switch *mode {
	case "goroutine":
		err = serveGoroutines(ln, *target)
	case "epoll":
		err = serveEpoll(ln, *target)
	default:
		err = fmt.Errorf("--mode: expected goroutine or epoll, got %q", *mode)
	}
	fmt.Fprintln(os.Stderr, "relayfloor:", err)
	os.Exit(1)
}

// serveGoroutines relays each client with a goroutine per direction.
func serveGoroutines(ln net.Listener, target string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			go func() {
				io.Copy(c, s)
				c.Close()
			}()
			io.Copy(s, c)
		}()
	}
}
