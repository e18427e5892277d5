//go:build !linux

package main

import (
	"errors"
	"net"
)

// serveEpoll needs Linux's epoll.
func serveEpoll(net.Listener, string) error {
	return errors.New("--mode epoll needs Linux")
}
