package pool

import (
	"sync"
	"sync/atomic"
)

// Set holds the pools of a proxy, created on first use.
type Set struct {
	// Options returns the options of a new pool; the password comes from
	// Get because it belongs to the role, not to the pool settings.
	Options func(k Key) Options

	mu    sync.Mutex
	pools map[Key]*Pool
	// inUse maps an address to the number of connections checked out of
	// all its pools. It is a sync.Map because InUse sits on the read
	// routing path (least-connections) and must not contend on mu.
	inUse sync.Map // string -> *atomic.Int64
}

// Get returns the pool for k, creating it if needed.
func (s *Set) Get(k Key, password string) *Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pools[k]; ok {
		return p
	}
	if s.pools == nil {
		s.pools = map[Key]*Pool{}
	}
	o := s.Options(k)
	o.Password = password
	n, _ := s.inUse.LoadOrStore(k.Addr, new(atomic.Int64))
	p := newPool(k, o, n.(*atomic.Int64))
	s.pools[k] = p
	return p
}

// InUse returns how many connections to addr are checked out, summed over
// every pool of the set (all users and databases). It is cheap enough to
// call for every routing decision.
func (s *Set) InUse(addr string) int {
	n, ok := s.inUse.Load(addr)
	if !ok {
		return 0
	}
	return int(n.(*atomic.Int64).Load())
}

// All returns every pool.
func (s *Set) All() []*Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Pool, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, p)
	}
	return out
}

// Close closes every pool.
func (s *Set) Close() {
	for _, p := range s.All() {
		p.Close()
	}
}
