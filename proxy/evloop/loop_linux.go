//go:build linux

package evloop

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Supported reports whether this platform has the event loop.
const Supported = true

// Loop is one epoll(7) event loop on a locked OS thread.
type Loop struct {
	ep, wake int // the epoll descriptor; an eventfd that wakes the loop

	mu    sync.Mutex
	conns map[int]*Conn // by descriptor
	kicks []*Conn       // conns whose handler must run soon
	gen   uint32
	stop  bool
	// sleeping: the loop is, or is about to be, blocked in epoll_wait,
	// so a kick must write the eventfd to wake it.
	sleeping atomic.Bool
	done     chan struct{}
}

// New starts a loop.
func New() (*Loop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		syscall.Close(ep)
		return nil, e
	}
	l := &Loop{ep: ep, wake: int(r), conns: map[int]*Conn{}, done: make(chan struct{})}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, l.wake, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wake)}); err != nil {
		syscall.Close(ep)
		syscall.Close(l.wake)
		return nil, err
	}
	go l.run()
	return l, nil
}

// Close stops the loop and closes every Conn it still watches.
func (l *Loop) Close() {
	l.mu.Lock()
	if l.stop {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.stop = true
	conns := make([]*Conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	l.signal()
	<-l.done
	syscall.Close(l.ep)
	syscall.Close(l.wake)
}

// ErrNotTCP is Wrap's answer for a connection it cannot take over (TLS, a
// Unix socket): it stays on Go's netpoller.
var ErrNotTCP = errors.New("evloop: only plain TCP connections can be taken over")

// Wrap takes a plain TCP connection over: its descriptor is duplicated,
// the original closed (which removes it from Go's netpoller), and the
// duplicate watched by the loop. c must not be used afterwards.
func (l *Loop) Wrap(c net.Conn) (*Conn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, ErrNotTCP
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(orig uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, orig, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		fd = int(r)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	nc := &Conn{loop: l, fd: fd, laddr: c.LocalAddr(), raddr: c.RemoteAddr(),
		closed: make(chan struct{}), rtok: make(chan struct{}, 1), wtok: make(chan struct{}, 1),
		rdlChanged: make(chan struct{}, 1), wdlChanged: make(chan struct{}, 1)}
	// The duplicate shares the open file, which Go made non-blocking.
	c.Close()
	l.mu.Lock()
	if l.stop {
		l.mu.Unlock()
		syscall.Close(fd)
		return nil, net.ErrClosed
	}
	l.gen++
	nc.gen = l.gen
	l.conns[fd] = nc
	l.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | edgeTriggered, Fd: int32(fd), Pad: int32(nc.gen)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.forget(nc)
		syscall.Close(fd)
		return nil, err
	}
	return nc, nil
}

// Kick makes the loop run c's handler soon, with no events: a handler
// just installed must look at what arrived before.
func (l *Loop) Kick(c *Conn) {
	l.mu.Lock()
	l.kicks = append(l.kicks, c)
	l.mu.Unlock()
	if l.sleeping.CompareAndSwap(true, false) {
		l.signal()
	}
}

func (l *Loop) signal() {
	one := uint64(1)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.wake), uintptr(unsafe.Pointer(&one)), 8)
}

// forget drops a closed conn, and has its handler run once more so that
// its owner sees the close.
func (l *Loop) forget(c *Conn) {
	l.mu.Lock()
	if l.conns[c.fd] == c {
		delete(l.conns, c.fd)
	}
	l.kicks = append(l.kicks, c)
	l.mu.Unlock()
	if l.sleeping.CompareAndSwap(true, false) {
		l.signal()
	}
}

func (l *Loop) run() {
	// One OS thread, as a C event loop is: the handlers' raw system calls
	// then never pass through the scheduler.
	runtime.LockOSThread()
	defer close(l.done)
	events := make([]syscall.EpollEvent, 256)
	var kicks []*Conn
	for {
		l.mu.Lock()
		if l.stop {
			l.mu.Unlock()
			return
		}
		kicks, l.kicks = l.kicks, kicks[:0]
		l.mu.Unlock()
		for i, c := range kicks {
			c.ready(0)
			kicks[i] = nil
		}
		n := rawEpollWait(l.ep, events)
		if n == 0 {
			l.sleeping.Store(true)
			l.mu.Lock()
			pending := len(l.kicks) > 0 || l.stop
			l.mu.Unlock()
			if pending {
				l.sleeping.Store(false)
				continue
			}
			// Only a wait that may block goes through the scheduler's
			// system call hooks, which let the runtime run goroutines on
			// another thread meanwhile.
			var err error
			n, err = syscall.EpollWait(l.ep, events, -1)
			l.sleeping.Store(false)
			if err != nil {
				continue // EINTR
			}
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l.wake {
				var buf [8]byte
				syscall.RawSyscall(syscall.SYS_READ, uintptr(l.wake), uintptr(unsafe.Pointer(&buf[0])), 8)
				continue
			}
			l.mu.Lock()
			c := l.conns[fd]
			l.mu.Unlock()
			if c == nil || c.gen != uint32(ev.Pad) {
				continue // closed, its descriptor maybe reused since
			}
			c.ready(ev.Events)
		}
	}
}

// rawEpollWait polls without blocking, without the scheduler's hooks.
func rawEpollWait(ep int, events []syscall.EpollEvent) int {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}

// rawRW is read(2) or write(2) without the scheduler's hooks: on a
// non-blocking socket it cannot block.
func rawRW(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// edgeTriggered is EPOLLET, which syscall declares negative: one report
// per arrival, as Go's netpoller registers its sockets.
const edgeTriggered = 1 << 31
