package pool

import "sync"

// Set holds the pools of a proxy, created on first use.
type Set struct {
	// Options returns the options of a new pool; the password comes from
	// Get because it belongs to the role, not to the pool settings.
	Options func(k Key) Options

	mu    sync.Mutex
	pools map[Key]*Pool
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
	p := New(k, o)
	s.pools[k] = p
	return p
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
