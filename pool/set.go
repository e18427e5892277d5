package pool

import (
	"sync"
	"sync/atomic"
)

// Set holds the pools of a proxy, created on first use.
type Set struct {
	// Options returns the options of a new pool; the password comes from
	// Get because it belongs to the role, not to the pool settings. Set it
	// before the first Get; change it later only with Reconfigure, which
	// also applies it to the pools that exist.
	Options func(k Key) Options

	mu    sync.Mutex
	pools map[Key]*Pool
	// reconfig serialises Reconfigure calls, so that the options of the
	// last call are those every pool ends with.
	reconfig sync.Mutex
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

// Reconfigure makes opts the Options of new pools and applies it to every
// existing pool with SetOptions, for a configuration reload: pools keep
// their connections and passwords, and resize as SetOptions describes.
func (s *Set) Reconfigure(opts func(k Key) Options) {
	s.reconfig.Lock()
	defer s.reconfig.Unlock()
	s.mu.Lock()
	s.Options = opts
	s.mu.Unlock()
	// A pool created from here on already has the new options; setting
	// them again does nothing.
	for _, p := range s.All() {
		p.SetOptions(opts(p.key))
	}
}

// Remove closes and forgets every pool to addr, for a server taken out of
// the configuration. Gets on those pools fail with ErrClosed, waiters
// included; connections checked out are closed when returned. A later Get
// for addr starts a new pool. InUse(addr) keeps counting the old pools'
// connections until they are returned, so it stays right if addr comes
// back.
func (s *Set) Remove(addr string) {
	var gone []*Pool
	s.mu.Lock()
	for k, p := range s.pools {
		if k.Addr == addr {
			gone = append(gone, p)
			delete(s.pools, k)
		}
	}
	s.mu.Unlock()
	for _, p := range gone {
		p.Close()
	}
}
