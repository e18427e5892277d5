package pool_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardgate/shardgate/pool"
)

// pipeDialer opens in-memory connections for pool tests that need no
// server. It counts the connections whose pool end is still open, and can
// hold dials until released, to catch the pool opening one.
type pipeDialer struct {
	pid  atomic.Uint32
	live atomic.Int64
	mu   sync.Mutex
	hold chan struct{} // non-nil: dials wait until it is closed
}

func (d *pipeDialer) dial(ctx context.Context, _ pool.Key) (net.Conn, *pool.Hello, error) {
	d.mu.Lock()
	hold := d.hold
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	a, b := net.Pipe()
	d.live.Add(1)
	go func() {
		io.Copy(io.Discard, b) // ends when the pool closes a
		d.live.Add(-1)
	}()
	return a, &pool.Hello{PID: d.pid.Add(1)}, nil
}

// holdDials makes dials wait until the returned function is called.
func (d *pipeDialer) holdDials() (release func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.hold = ch
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		d.hold = nil
		d.mu.Unlock()
		close(ch)
	}
}

// closed reports whether the pool closed c.
func closed(c *pool.Conn) bool {
	return c.Net().SetReadDeadline(time.Time{}) != nil // io.ErrClosedPipe
}

// getAsync checks a connection out in the background.
func getAsync(p *pool.Pool) <-chan *pool.Conn {
	ch := make(chan *pool.Conn, 1)
	go func() {
		c, err := p.Get(context.Background())
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	return ch
}

func fakeKey() pool.Key { return pool.Key{Addr: "h:1", User: "u", Database: "d"} }

func TestPoolStats(t *testing.T) {
	d := &pipeDialer{}
	p := pool.New(fakeKey(), pool.Options{Size: 2, CheckoutTimeout: 5 * time.Second, Dial: d.dial})
	defer p.Close()
	ctx := context.Background()
	a, err := p.Get(ctx)
	must(t, err)
	if s := p.Stats(); s.Open != 1 || s.Active != 1 || s.Idle != 0 || s.Login != 0 || s.Waits != 0 || s.MaxWait != 0 {
		t.Fatalf("one checked out: %+v", s)
	}

	release := d.holdDials()
	bc := getAsync(p)
	waitFor(t, 2*time.Second, "a connection being opened", func() bool { return p.Stats().Login == 1 })
	if s := p.Stats(); s.Open != 2 || s.Active != 1 || s.Waiting != 0 {
		t.Fatalf("while dialing: %+v", s)
	}
	cc := getAsync(p) // the pool is full: this one waits
	waitFor(t, 2*time.Second, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	time.Sleep(100 * time.Millisecond)
	s := p.Stats()
	if s.Waits != 1 || s.MaxWait < 100*time.Millisecond || s.MaxWait > 2*time.Second || s.WaitTotal != 0 {
		t.Fatalf("while waiting: %+v", s)
	}
	release()
	b := <-bc
	p.Put(a) // to the waiter
	c := <-cc
	if b == nil || c != a {
		t.Fatalf("b %v, waiter got %v, want a", b, c)
	}
	s = p.Stats()
	if s.Waiting != 0 || s.MaxWait != 0 || s.Active != 2 || s.Login != 0 || s.Waits != 1 ||
		s.WaitTotal < 100*time.Millisecond || s.MaxWaitEver != s.WaitTotal {
		t.Fatalf("after the wait: %+v", s)
	}
	// A checkout served at once adds nothing to the waits.
	p.Put(b)
	b, err = p.Get(ctx)
	must(t, err)
	if s2 := p.Stats(); s2.Waits != 1 || s2.WaitTotal != s.WaitTotal || s2.Checkouts != 4 {
		t.Fatalf("after a checkout without a wait: %+v", s2)
	}
	p.Put(b)
	p.Put(c)
	if s := p.Stats(); s.Active != 0 || s.Idle != 2 {
		t.Fatalf("all returned: %+v", s)
	}
}

func TestPoolSetOptions(t *testing.T) {
	ctx := context.Background()
	t.Run("growing serves a waiter at once", func(t *testing.T) {
		d := &pipeDialer{}
		o := pool.Options{Size: 1, CheckoutTimeout: 5 * time.Second, Dial: d.dial}
		p := pool.New(fakeKey(), o)
		defer p.Close()
		a, err := p.Get(ctx)
		must(t, err)
		wc := getAsync(p)
		waitFor(t, 2*time.Second, "a waiter", func() bool { return p.Stats().Waiting == 1 })
		o.Size = 2
		p.SetOptions(o)
		select {
		case c := <-wc:
			if c == nil || c == a {
				t.Fatalf("waiter got %v", c)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the waiter was not served after the pool grew")
		}
		if s := p.Stats(); s.Open != 2 || s.Active != 2 || p.Size() != 2 {
			t.Fatalf("after growing: %+v", s)
		}
	})

	t.Run("shrinking closes idle connections now and busy ones on return", func(t *testing.T) {
		d := &pipeDialer{}
		o := pool.Options{Size: 3, Dial: d.dial}
		p := pool.New(fakeKey(), o)
		defer p.Close()
		var cs []*pool.Conn
		for range 3 {
			c, err := p.Get(ctx)
			must(t, err)
			cs = append(cs, c)
		}
		a, b, c := cs[0], cs[1], cs[2]
		p.Put(a)
		o.Size = 1
		p.SetOptions(o)
		if !closed(a) || closed(b) || closed(c) {
			t.Fatalf("after shrinking: closed a %v b %v c %v; want only the idle a", closed(a), closed(b), closed(c))
		}
		if s := p.Stats(); s.Open != 2 || s.Idle != 0 || s.Active != 2 {
			t.Fatalf("after shrinking: %+v", s)
		}
		p.Put(b) // 2 open, size 1: closed
		if !closed(b) {
			t.Fatal("b returned to an oversized pool was kept")
		}
		p.Put(c) // 1 open: kept
		if closed(c) {
			t.Fatal("c closed although the pool is at its size")
		}
		if s := p.Stats(); s.Open != 1 || s.Idle != 1 {
			t.Fatalf("after the returns: %+v", s)
		}
		waitFor(t, 2*time.Second, "the closed pipes ended", func() bool { return d.live.Load() == 1 })
	})
}

// TestPoolResizeUnderLoad resizes a pool while clients check connections
// out, return and discard them, then checks that no connection leaked
// and no slot was lost or counted twice, that the pool never held more
// connections than any size it was given, and that growing it let more
// clients than its first size hold a connection at once.
//
// Checked-out connections may exceed the size in force for a while after
// a shrink (busy ones close only when returned), so the bound on them is
// the largest size ever set. What must hold at every moment is checked
// after each SetOptions: a connection may only sit idle in a pool at or
// below its size.
func TestPoolResizeUnderLoad(t *testing.T) {
	const firstSize = 3
	sizes := []int{1, 4, 2, 6}
	maxSize := firstSize
	for _, n := range sizes {
		maxSize = max(maxSize, n)
	}
	// below is the largest size under maxSize: more connections than that
	// checked out at once shows the pool grew to maxSize.
	below := firstSize
	for _, n := range sizes {
		if n < maxSize {
			below = max(below, n)
		}
	}
	d := &pipeDialer{}
	o := pool.Options{Size: firstSize, CheckoutTimeout: 10 * time.Second, Dial: d.dial}
	p := pool.New(fakeKey(), o)
	defer p.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	var maxActive atomic.Int64
	var active atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				c, err := p.Get(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				n := active.Add(1)
				for m := maxActive.Load(); n > m && !maxActive.CompareAndSwap(m, n); m = maxActive.Load() {
				}
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				}
				active.Add(-1)
				if i%10 == 0 {
					p.Discard(c)
				} else {
					p.Put(c)
				}
			}
		}()
	}
	stop := make(chan struct{})
	resized := make(chan struct{})
	go func() {
		defer close(resized)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			o.Size = sizes[i%len(sizes)]
			p.SetOptions(o)
			// Only this goroutine resizes, so o.Size is in force until the
			// next iteration.
			s := p.Stats()
			if s.Idle > 0 && s.Open > o.Size {
				t.Errorf("size %d, but %d open with %d idle after SetOptions: idle ones should have been closed", o.Size, s.Open, s.Idle)
			}
			if s.Open > maxSize || s.Active > maxSize {
				t.Errorf("%d open, %d active: more than the largest size ever set, %d", s.Open, s.Active, maxSize)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-resized
	s := p.Stats()
	if s.Active != 0 || s.Login != 0 || s.Waiting != 0 || s.Open != s.Idle || s.Open > o.Size {
		t.Fatalf("after the load, size %d: %+v", o.Size, s)
	}
	waitFor(t, 2*time.Second, "every connection the pool dropped closed", func() bool { return d.live.Load() == int64(s.Open) })
	t.Logf("max active %d, stats %+v", maxActive.Load(), s)
	// 8 clients contend for the pool, so while it has its largest size
	// they fill it; only that size lets more than below be checked out.
	if m := maxActive.Load(); m > int64(maxSize) {
		t.Errorf("%d connections checked out at once; no size set was above %d", m, maxSize)
	} else if m <= int64(below) {
		t.Errorf("at most %d connections checked out at once, though 8 clients contended and the pool grew to %d", m, maxSize)
	}
}

func TestSetReconfigureAndRemove(t *testing.T) {
	d := &pipeDialer{}
	s := &pool.Set{Options: func(pool.Key) pool.Options {
		return pool.Options{Size: 1, CheckoutTimeout: 5 * time.Second, Dial: d.dial}
	}}
	defer s.Close()
	ctx := context.Background()
	a := s.Get(pool.Key{Addr: "h:1", User: "u", Database: "a"}, "")
	b := s.Get(pool.Key{Addr: "h:1", User: "u", Database: "b"}, "")
	o := s.Get(pool.Key{Addr: "h:2", User: "u", Database: "a"}, "")
	s.Reconfigure(func(k pool.Key) pool.Options {
		size := 2
		if k.Database == "b" {
			size = 3
		}
		return pool.Options{Size: size, CheckoutTimeout: 5 * time.Second, Dial: d.dial}
	})
	if a.Size() != 2 || b.Size() != 3 || o.Size() != 2 {
		t.Fatalf("sizes after Reconfigure: %d %d %d", a.Size(), b.Size(), o.Size())
	}
	if n := s.Get(pool.Key{Addr: "h:3", User: "u", Database: "a"}, ""); n.Size() != 2 {
		t.Fatalf("new pool size %d", n.Size())
	}

	held, err := a.Get(ctx)
	must(t, err)
	held2, err := a.Get(ctx)
	must(t, err)
	wc := getAsync(a) // waits: a is full
	waitFor(t, 2*time.Second, "a waiter", func() bool { return a.Stats().Waiting == 1 })
	s.Remove("h:1")
	select {
	case c := <-wc:
		if c != nil {
			t.Fatal("a waiter of a removed pool got a connection")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a waiter of a removed pool still waits")
	}
	if _, err := a.Get(ctx); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Get on a removed pool: %v", err)
	}
	if s.InUse("h:1") != 2 {
		t.Fatalf("in use after Remove: %d", s.InUse("h:1"))
	}
	if closed(held) {
		t.Fatal("Remove closed a connection in use")
	}
	a.Put(held)
	a.Discard(held2)
	if !closed(held) || s.InUse("h:1") != 0 {
		t.Fatalf("returned to a removed pool: closed %v, in use %d", closed(held), s.InUse("h:1"))
	}
	if n := s.Get(pool.Key{Addr: "h:1", User: "u", Database: "a"}, ""); n == a {
		t.Fatal("Get after Remove returned the removed pool")
	}
	for _, p := range s.All() {
		if p == a || p == b {
			t.Fatalf("removed pool %s still in the set", p.Key())
		}
	}
	if _, err := o.Get(ctx); err != nil {
		t.Fatalf("pool to another address: %v", err)
	}
}

// BenchmarkGetPut measures the checkout path: an idle connection out and
// back, as every transaction does.
func BenchmarkGetPut(b *testing.B) {
	d := &pipeDialer{}
	p := pool.New(fakeKey(), pool.Options{Size: 8, Dial: d.dial})
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := p.Get(ctx)
			if err != nil {
				b.Fatal(err)
			}
			p.Put(c)
		}
	})
}

// TestReturnedTwice: a connection returned (or discarded) twice is taken
// back once. Taken twice, it would sit in the idle list twice and be
// handed to two clients at once, or free its slot twice.
func TestReturnedTwice(t *testing.T) {
	d := &pipeDialer{}
	p := pool.New(fakeKey(), pool.Options{Size: 3, CheckoutTimeout: 5 * time.Second, Dial: d.dial})
	defer p.Close()
	ctx := context.Background()
	a, err := p.Get(ctx)
	must(t, err)
	p.Put(a)
	p.Put(a)
	if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.Active != 0 {
		t.Fatalf("after returning one connection twice: %+v, want 1 open and idle", s)
	}
	x, err := p.Get(ctx)
	must(t, err)
	y, err := p.Get(ctx)
	must(t, err)
	if x == y {
		t.Fatal("one connection handed out twice at once")
	}
	p.Discard(y)
	p.Discard(y)
	if s := p.Stats(); s.Open != 1 || s.Active != 1 {
		t.Fatalf("after discarding one connection twice: %+v, want 1 open (x)", s)
	}
	p.Put(x)
}
