//go:build linux

package main

import (
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// end is one side of a relayed connection in the epoll loop.
type end struct {
	fd   int
	peer *end
	// pending holds bytes read from peer that this end's socket did not
	// take yet; while it does, the loop stops reading from peer.
	pending []byte
}

// serveEpoll relays every client from one locked OS thread. Reads, writes
// and a first non-blocking epoll_wait are raw system calls, which the Go
// scheduler never sees; only an epoll_wait that may block goes through
// syscall.Syscall, so the runtime can run the accepting goroutine
// meanwhile.
func serveEpoll(ln net.Listener, target string) error {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	added := make(chan [2]*end, 64)
	errc := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cfd, err1 := detach(c)
			sfd, err2 := detach(s)
			if err1 != nil || err2 != nil {
				continue
			}
			a, b := &end{fd: cfd}, &end{fd: sfd}
			a.peer, b.peer = b, a
			added <- [2]*end{a, b}
			// The loop may be asleep in epoll_wait: the registration
			// itself wakes it once data arrives.
			for _, e := range []*end{a, b} {
				syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, e.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(e.fd)})
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		loop(ep, added)
		close(done)
	}()
	select {
	case err := <-errc:
		return err
	case <-done:
		return nil
	}
}

// detach takes the socket out of Go's netpoller: a duplicate descriptor,
// non-blocking, with the original closed.
func detach(c net.Conn) (int, error) {
	f, err := c.(*net.TCPConn).File()
	c.Close()
	if err != nil {
		return 0, err
	}
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return 0, err
	}
	return fd, syscall.SetNonblock(fd, true)
}

func loop(ep int, added <-chan [2]*end) {
	runtime.LockOSThread() // one OS thread, as a C event loop is
	ends := map[int]*end{}
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 16<<10)
	for {
		n := rawEpollWait(ep, events)
		if n == 0 {
			var err error
			if n, err = syscall.EpollWait(ep, events, -1); err != nil {
				continue // EINTR
			}
		}
	drain:
		for {
			select {
			case p := <-added:
				ends[p[0].fd], ends[p[1].fd] = p[0], p[1]
			default:
				break drain
			}
		}
		for _, ev := range events[:n] {
			e := ends[int(ev.Fd)]
			if e == nil {
				continue // closed earlier in this batch
			}
			if ev.Events&syscall.EPOLLOUT != 0 && !flush(ep, e) {
				closePair(ep, ends, e)
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && !relay(ep, e, buf) {
				closePair(ep, ends, e)
			}
		}
	}
}

// relay moves what e has to read to its peer; false means the pair is done.
func relay(ep int, e *end, buf []byte) bool {
	n, errno := rawRW(syscall.SYS_READ, e.fd, buf)
	if errno == syscall.EAGAIN {
		return true
	}
	if n <= 0 {
		return false
	}
	if len(e.peer.pending) > 0 {
		// Bytes are held back for the peer (e was read in the same batch
		// as it filled): these go behind them.
		e.peer.pending = append(e.peer.pending, buf[:n]...)
		return true
	}
	w, errno := rawRW(syscall.SYS_WRITE, e.peer.fd, buf[:n])
	if errno == syscall.EAGAIN {
		w, errno = 0, 0
	}
	if errno != 0 {
		return false
	}
	if w < n {
		// The peer's socket is full: keep the rest, wait until it can
		// take more, and stop reading e meanwhile.
		e.peer.pending = append(e.peer.pending, buf[w:n]...)
		watch(ep, e)
		watch(ep, e.peer)
	}
	return true
}

// watch sets e's epoll interest from both ends' state: read e while its
// peer has nothing held back for it, and wait for e to take more while
// bytes are held back for it. Derived afresh each time, so that the two
// directions filling up at once cannot switch off each other's events.
func watch(ep int, e *end) {
	var ev uint32
	if len(e.peer.pending) == 0 {
		ev |= syscall.EPOLLIN
	}
	if len(e.pending) > 0 {
		ev |= syscall.EPOLLOUT
	}
	syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, e.fd, &syscall.EpollEvent{Events: ev, Fd: int32(e.fd)})
}

// flush writes e's pending bytes and, once they are out, reads its peer
// again.
func flush(ep int, e *end) bool {
	w, errno := rawRW(syscall.SYS_WRITE, e.fd, e.pending)
	if errno == syscall.EAGAIN {
		return true
	}
	if errno != 0 {
		return false
	}
	e.pending = e.pending[w:]
	if len(e.pending) == 0 {
		e.pending = nil
		watch(ep, e)
		watch(ep, e.peer)
	}
	return true
}

func closePair(ep int, ends map[int]*end, e *end) {
	for _, x := range []*end{e, e.peer} {
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, x.fd, nil)
		syscall.Close(x.fd)
		delete(ends, x.fd)
	}
}

// rawRW is read(2) or write(2) without the scheduler's system call hooks:
// on a non-blocking socket it cannot block.
func rawRW(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}

// rawEpollWait polls without blocking.
func rawEpollWait(ep int, events []syscall.EpollEvent) int {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}
