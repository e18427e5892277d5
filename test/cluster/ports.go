package cluster

import (
	"fmt"
	"net"
	"sync"
)

// reserved holds ports handed to hosts of live clusters in this process.
// Probing with a throwaway listener only proves a port free right now; the
// set stops two hosts started in parallel from probing the same one before
// either server has bound it.
var (
	portMu   sync.Mutex
	reserved = map[int]bool{}
)

// freePort reserves a currently unused loopback port.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("cluster: probe for a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !reserved[port] {
			reserved[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("cluster: no free loopback port after 100 tries")
}

// reservePort claims a fixed port, failing if another cluster in this
// process already uses it.
func reservePort(port int) error {
	portMu.Lock()
	defer portMu.Unlock()
	if reserved[port] {
		return fmt.Errorf("cluster: port %d is already used by another cluster in this process", port)
	}
	reserved[port] = true
	return nil
}

func releasePort(port int) {
	portMu.Lock()
	defer portMu.Unlock()
	delete(reserved, port)
}
