package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/router"
	"github.com/shardgate/shardgate/shardmap"
)

// An online move (shardgate rebalance) freezes the range it moves in the
// catalog's map. Every proxy then holds new writes to that range, waits
// for the transactions already running on its shard to end, and
// acknowledges the map version in the catalog; the move switches the
// range's owner only when every live proxy has. Held writes go on, on the
// new map, as soon as it arrives (or on the old owner if the move gives
// up its cutover). Reads are never held.

// errFrozenWrite is resolve's answer for a write to a frozen range.
var errFrozenWrite = errors.New("write to a frozen range")

// frozenHoldLimit bounds how long a write waits for a frozen range: a
// cutover takes under a second (rebalance --max-pause); this long means
// the move stopped half way, which `shardgate rebalance resume` or
// `abort` ends.
const frozenHoldLimit = 10 * time.Second

// MapAcker records that this proxy runs a map version with nothing
// running against its frozen ranges; the catalog implements it.
type MapAcker interface {
	AckMap(ctx context.Context, version uint64) error
}

// mapWatch wakes writes held for a frozen range when the map changes.
type mapWatch struct {
	mu      sync.Mutex
	changed chan struct{}
}

func (w *mapWatch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

func (s *Server) mapChanged() {
	w := &s.maps
	w.mu.Lock()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	w.mu.Unlock()
}

// planFor plans text on the map sc and resolves its shards. A write to a
// frozen range waits for the next map and is planned again on it.
func (s *session) planFor(sc *schema, text string, ps *params) (*schema, *router.Plan, shardSet, error) {
	var deadline time.Time // set on the first frozen write: time.Now is not free on this path
	for {
		plan := s.srv.o().Router.Plan(text, sc)
		set, err := s.resolve(sc, plan, ps, s.currentShard())
		if err != errFrozenWrite {
			return sc, plan, set, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(frozenHoldLimit)
		}
		changed := s.srv.maps.wait()
		if s.srv.schema.Load() == sc {
			select {
			case <-changed:
			case <-s.killed:
				return sc, plan, nil, adminShutdown()
			case <-time.After(time.Until(deadline)):
				return sc, plan, nil, &Error{Code: "55P03",
					Message: "the rows of this key are being moved to another shard, and the move has not finished its cutover",
					Hint:    "retry; if this persists, `shardgate rebalance status` shows the move, and `resume` or `abort` ends it"}
			}
		}
		if next := s.srv.shardMap(); next != nil {
			sc = next
		}
	}
}

// ackMap acknowledges m in the catalog once no transaction that may have
// written its frozen ranges is still running here: those that were open
// on a frozen range's shard when m arrived must end first. A map without
// frozen ranges is acknowledged at once.
func (s *Server) ackMap(m *shardmap.Map) {
	acker := s.o().Acker
	if acker == nil {
		return
	}
	var waitFor map[*session]uint64
	if m.Frozen() {
		shards := m.FrozenShards()
		waitFor = map[*session]uint64{}
		for _, ss := range s.allSessions() {
			ss.mu.Lock()
			if ss.txOnShardsLocked(shards) {
				waitFor[ss] = ss.txEnds
			}
			ss.mu.Unlock()
		}
	}
	go func() {
		for len(waitFor) > 0 {
			for ss, seq := range waitFor {
				ss.mu.Lock()
				ended := ss.txEnds != seq || ss.gone
				ss.mu.Unlock()
				if ended {
					delete(waitFor, ss)
				}
			}
			if len(waitFor) == 0 {
				break
			}
			select {
			case <-s.done:
				return
			case <-time.After(time.Millisecond):
			}
			if sc := s.schema.Load(); sc == nil || sc.m != m {
				return // a newer map (or none) superseded this one
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := acker.AckMap(ctx, m.Version()); err != nil {
			s.log.Warn("could not acknowledge the shard map in the catalog", "version", m.Version(), "err", err)
		}
	}()
}

// txOnShardsLocked reports whether the session has a transaction open on
// one of shards (or a request running there). Called with mu held.
func (ss *session) txOnShardsLocked(shards map[int]bool) bool {
	// A replica link cannot write the frozen rows; a primary link can,
	// even in a transaction that has only read so far. Without host
	// monitoring (host nil) every link is the primary's.
	if l := ss.link; l != nil && (l.rw || l.host == nil) && shards[l.shard] && !l.quietLocked() {
		return true
	}
	if d := ss.dtx; d != nil {
		for _, c := range d.conns {
			if shards[c.shard] {
				return true
			}
		}
	}
	return ss.scattered != nil || ss.distEnding > 0
}

// primaryAddr returns the address of shard i's primary, and whether its
// pools are keyed read-write (they are when a topology tells primaries
// from replicas, see route).
func (s *Server) primaryAddr(i int) (addr string, rw bool, ok bool) {
	o := s.o()
	if o.Topology == nil {
		if i < 0 || i >= len(o.Shards) {
			return "", false, false
		}
		return o.Shards[i].Primary, false, true
	}
	h, err := o.Topology.Primary(i)
	if err != nil {
		return "", false, false
	}
	return h.Addr(), true, true
}

// prewarm opens connections to the primaries a frozen map's move is
// about to send the frozen writes to: for each user and database, as
// many as are open to the primaries of the frozen shards. Without them
// every held write would connect at its switch, all at once, and the
// client-seen pause would outlast the move's own.
func (s *Server) prewarm(m *shardmap.Map) {
	o := s.o()
	type userDB struct {
		user, db string
		rw       bool
	}
	sources := map[string]bool{}
	for i := range m.FrozenShards() {
		if addr, _, ok := s.primaryAddr(i); ok {
			sources[addr] = true
		}
	}
	want := map[userDB]int{}
	for _, p := range o.Pools.All() {
		if k := p.Key(); sources[k.Addr] {
			want[userDB{k.User, k.Database, k.ReadWrite}] += p.Stats().Open
		}
	}
	passwords := map[string]string{}
	for _, u := range o.Users {
		passwords[u.ServerUser] = u.ServerPassword
	}
	for _, t := range m.MoveTargets() {
		addr, rw, ok := s.primaryAddr(t)
		if !ok {
			continue
		}
		for k, n := range want {
			if k.rw == rw && n > 0 {
				o.Pools.Get(pool.Key{Addr: addr, User: k.user, Database: k.db, ReadWrite: rw}, passwords[k.user]).Warm(n)
			}
		}
	}
}
