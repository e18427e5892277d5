package router

import "sync/atomic"

// counter is a counter bumped on every statement by every client: striped
// over cache lines so that concurrent bumps do not fight over one.
type counter struct {
	stripes [16]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

// add counts one event; key spreads the events over the stripes.
func (c *counter) add(key int) { c.stripes[key&15].n.Add(1) }

func (c *counter) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}

// CacheStats are the parse caches' figures: Hits are statements analysed
// or planned without the parser, Misses those that needed it; Size is the
// entries held now.
type CacheStats struct {
	Hits, Misses uint64
	Size         int
}

// CacheStats returns the caches' figures since the Router was made.
func (r *Router) CacheStats() CacheStats {
	st := CacheStats{Hits: r.hits.load(), Misses: r.misses.load()}
	if r.cache != nil {
		st.Size = r.cache.len() + r.shapes.len()
	}
	if r.plans != nil {
		st.Size += r.plans.len()
	}
	return st
}
