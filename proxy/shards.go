package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/router"
	"github.com/shardgate/shardgate/shardmap"
)

// mapGeneration numbers the shard maps a process installs, so the
// router's plan cache never serves a plan made for another map, even one
// with the same catalog version (a map from a reloaded file).
var mapGeneration atomic.Uint64

// schema is the router's view of a shard map.
type schema struct {
	m   *shardmap.Map
	gen uint64
}

func newSchema(m *shardmap.Map) *schema { return &schema{m: m, gen: mapGeneration.Add(1)} }

// Table implements router.Schema.
func (s *schema) Table(schemaName, name string) (router.TableInfo, bool) {
	p, t := s.m.Table(schemaName, name)
	switch p {
	case shardmap.Sharded:
		return router.TableInfo{Kind: router.TableSharded, Distribution: t.Dist.Name, Key: t.Key}, true
	case shardmap.Reference:
		return router.TableInfo{Kind: router.TableReference}, true
	}
	return router.TableInfo{}, false
}

// Version implements router.Schema.
func (s *schema) Version() uint64 { return s.gen }

// SetShardMap installs a new shard map; statements planned from then on
// use it. Its shards must be Options.Shards, in order.
func (s *Server) SetShardMap(m *shardmap.Map) {
	if m == nil {
		s.schema.Store(nil)
	} else {
		s.schema.Store(newSchema(m))
	}
	s.mapChanged()
	if m != nil {
		if m.Frozen() && len(m.MoveTargets()) > 0 {
			s.prewarm(m)
		}
		s.ackMap(m)
	}
}

// readFloor is the position a shard's replicas must have replayed to
// serve reads, from the map (set by an online move at its switch).
func (s *Server) readFloor(shard int) pool.LSN {
	if sc := s.schema.Load(); sc != nil {
		return pool.LSN(sc.m.ReadFloor(shard))
	}
	return 0
}

// shardMap returns the map in force, or nil when every statement goes to
// the first shard.
func (s *Server) shardMap() *schema {
	sc := s.schema.Load()
	if sc == nil || !sc.m.Sharded() {
		return nil
	}
	return sc
}

// defaultShard is where statements on unsharded tables go.
func (s *Server) defaultShard() int {
	if sc := s.schema.Load(); sc != nil {
		return sc.m.DefaultShard()
	}
	return 0
}

// params are a Bind's parameter values, to read sharding keys from.
type params struct {
	formats []int16
	values  [][]byte // nil: NULL
}

// parseBindParams reads the parameters of a Bind body after its portal
// and statement names.
func parseBindParams(b []byte) (*params, error) {
	bad := fmt.Errorf("malformed Bind parameters")
	if len(b) < 2 {
		return nil, bad
	}
	p := &params{}
	nf := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < 2*nf+2 {
		return nil, bad
	}
	for i := range nf {
		p.formats = append(p.formats, int16(binary.BigEndian.Uint16(b[2*i:])))
	}
	b = b[2*nf:]
	nv := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for range nv {
		if len(b) < 4 {
			return nil, bad
		}
		n := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if n < 0 {
			p.values = append(p.values, nil)
			continue
		}
		if len(b) < n {
			return nil, bad
		}
		p.values = append(p.values, b[:n])
		b = b[n:]
	}
	return p, nil
}

// binary reports whether parameter i (0-based) is in binary format.
func (p *params) binary(i int) bool {
	switch len(p.formats) {
	case 0:
		return false
	case 1:
		return p.formats[0] == 1
	}
	return i < len(p.formats) && p.formats[i] == 1
}

// shardSet is the shards a statement runs on, ascending.
type shardSet []int

func (ss shardSet) add(i int) shardSet {
	if j, found := slices.BinarySearch(ss, i); !found {
		ss = slices.Insert(ss, j, i)
	}
	return ss
}

// resolve turns a plan into the shards it runs on, reading keys from the
// bind parameters (nil for the simple protocol). current is the shard of
// the client's open transaction, or -1: a read that any shard can serve
// stays there.
func (s *session) resolve(sc *schema, p *router.Plan, ps *params, current int) (shardSet, error) {
	m := sc.m
	s.mu.Lock()
	forced := s.shard
	s.mu.Unlock()
	if forced != "" && p.Spread != router.SpreadShard {
		// SET shardgate.shard routes like a shard= hint, which a hint in
		// the statement itself overrides.
		i, ok := m.ShardIndex(forced)
		if !ok {
			return nil, &Error{Code: "22023", Message: fmt.Sprintf("shard %q set with SET shardgate.shard is not in the shard map", forced)}
		}
		return shardSet{i}, nil
	}
	if p.Refused != nil {
		return nil, p.Refused
	}
	switch p.Spread {
	case router.SpreadDefault:
		return shardSet{m.DefaultShard()}, nil
	case router.SpreadAny:
		if current >= 0 {
			return shardSet{current}, nil
		}
		return shardSet{m.DefaultShard()}, nil
	case router.SpreadShard:
		i, ok := m.ShardIndex(p.Shard)
		if !ok {
			return nil, &Error{Code: "22023", Message: fmt.Sprintf("shard %q named in a shardgate hint is not in the shard map", p.Shard),
				Hint: "known shards: " + strings.Join(m.Shards(), ", ")}
		}
		return shardSet{i}, nil
	case router.SpreadAll:
		if p.Write && m.Frozen() {
			// A write without a key may touch the frozen rows.
			return nil, errFrozenWrite
		}
		all := make(shardSet, len(m.Shards()))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	d, err := s.distribution(m, p.Distribution)
	if err != nil {
		return nil, err
	}
	var set shardSet
	for _, v := range p.Keys {
		keys, err := keyValues(d, v, ps, p.Assigned)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if p.Write && d.FrozenKey(k) {
				return nil, errFrozenWrite
			}
			i, err := m.Locate(context.Background(), d, k)
			if err != nil {
				return nil, err
			}
			set = set.add(i)
		}
	}
	if len(set) == 0 {
		// Only NULL keys: no row can match, and any shard says so.
		return shardSet{m.DefaultShard()}, nil
	}
	return set, nil
}

// distribution finds the distribution a plan's keys belong to. A key hint
// on a statement naming no sharded table needs the map to have just one.
func (s *session) distribution(m *shardmap.Map, name string) (*shardmap.Distribution, error) {
	if name != "" {
		if d := m.Distribution(name); d != nil {
			return d, nil
		}
		return nil, &Error{Code: "XX000", Message: fmt.Sprintf("distribution %q is not in the shard map", name)}
	}
	if ds := m.Distributions(); len(ds) == 1 {
		return ds[0], nil
	}
	return nil, &Error{Code: "22023", Message: "a key hint needs a statement on a sharded table to tell its distribution",
		Hint: "use /* shardgate: shard=NAME */ instead"}
}

// keyValues reads the key values a plan's Value stands for: a literal, a
// parameter, or each element of an array parameter (key = ANY($1)). NULLs
// match no row and are left out.
//
// assigned says the value is assigned to the key column (INSERT, UPDATE
// SET) rather than compared with it.
func keyValues(d *shardmap.Distribution, v router.Value, ps *params, assigned bool) ([]shardmap.Key, error) {
	if v.Param == 0 {
		if v.Null {
			return nil, nil
		}
		k, err := shardmap.ParseKey(d.Kind, v.Text)
		if err != nil {
			if k, ok, isNumber := numericIntKey(d.Kind, v, assigned); isNumber {
				if !ok {
					return nil, nil // an integer key equals no fraction
				}
				return []shardmap.Key{k}, nil
			}
			return nil, &Error{Code: "22P02", Message: err.Error()}
		}
		return []shardmap.Key{k}, nil
	}
	if ps == nil || v.Param > len(ps.values) {
		return nil, &Error{Code: "08P01", Message: fmt.Sprintf("there is no parameter $%d", v.Param)}
	}
	raw := ps.values[v.Param-1]
	if raw == nil {
		return nil, nil
	}
	bin := ps.binary(v.Param - 1)
	if v.Array {
		return arrayKeys(d, raw, bin)
	}
	k, err := paramKey(d, raw, bin)
	if err != nil {
		return nil, err
	}
	return []shardmap.Key{k}, nil
}

// numericIntKey reads a numeric literal (2.0, 2.5, 1e3) given for an
// integer key as the server does: compared with the key, it matches the
// integer it equals, or none; assigned to it, it is rounded half away
// from zero. isNumber is false for anything else. A literal with a cast
// is left to the key type's own input function, as the server does.
func numericIntKey(kind shardmap.KeyKind, v router.Value, assigned bool) (k shardmap.Key, ok, isNumber bool) {
	if kind != shardmap.KindInt || v.Type != "" {
		return k, false, false
	}
	r, valid := new(big.Rat).SetString(v.Text)
	if !valid || strings.ContainsAny(v.Text, "/ ") {
		return k, false, false
	}
	if !r.IsInt() {
		if !assigned {
			return k, false, true
		}
		// Round half away from zero: |r| + 1/2, floored, with r's sign.
		abs := new(big.Rat).Abs(r)
		abs.Add(abs, big.NewRat(1, 2))
		n := new(big.Int).Quo(abs.Num(), abs.Denom())
		if r.Sign() < 0 {
			n.Neg(n)
		}
		r.SetInt(n)
	}
	if !r.Num().IsInt64() {
		return k, false, false // out of range: the server says so
	}
	k, err := shardmap.ParseKey(kind, r.Num().String())
	return k, err == nil, err == nil
}

func paramKey(d *shardmap.Distribution, raw []byte, bin bool) (shardmap.Key, error) {
	var k shardmap.Key
	var err error
	if bin {
		k, err = shardmap.BinaryKey(d.Kind, raw)
	} else {
		k, err = shardmap.ParseKey(d.Kind, string(raw))
	}
	if err != nil {
		return k, &Error{Code: "22P02", Message: fmt.Sprintf("sharding key of distribution %s: %v", d.Name, err)}
	}
	return k, nil
}

// arrayKeys reads a one-dimensional array parameter's elements.
func arrayKeys(d *shardmap.Distribution, raw []byte, bin bool) ([]shardmap.Key, error) {
	var elems [][]byte
	var err error
	if bin {
		elems, err = binaryArray(raw)
	} else {
		elems, err = textArray(string(raw))
	}
	if err != nil {
		return nil, &Error{Code: "22P02", Message: fmt.Sprintf("sharding key array of distribution %s: %v", d.Name, err)}
	}
	keys := make([]shardmap.Key, 0, len(elems))
	for _, e := range elems {
		if e == nil {
			continue
		}
		k, err := paramKey(d, e, bin)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// binaryArray reads the elements of an array in binary format: ndim, a
// has-nulls flag, the element type, each dimension's size and lower bound,
// then each element length-prefixed (-1 for NULL).
func binaryArray(b []byte) ([][]byte, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("short binary array")
	}
	ndim := int(binary.BigEndian.Uint32(b))
	b = b[12:]
	if ndim == 0 {
		return nil, nil
	}
	if ndim != 1 || len(b) < 8 {
		return nil, fmt.Errorf("expected a one-dimensional array")
	}
	n := int(binary.BigEndian.Uint32(b))
	b = b[8:]
	elems := make([][]byte, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, fmt.Errorf("short binary array")
		}
		size := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if size < 0 {
			elems = append(elems, nil)
			continue
		}
		if len(b) < size {
			return nil, fmt.Errorf("short binary array")
		}
		elems = append(elems, b[:size])
		b = b[size:]
	}
	return elems, nil
}

// textArray reads a one-dimensional array literal such as {1,2,"a b",NULL}.
func textArray(s string) ([][]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("malformed array literal %q", s)
	}
	body := s[1 : len(s)-1]
	var elems [][]byte
	if strings.TrimSpace(body) == "" {
		return nil, nil
	}
	for i := 0; i <= len(body); {
		for i < len(body) && body[i] == ' ' {
			i++
		}
		var elem []byte
		quoted := false
		if i < len(body) && body[i] == '"' {
			quoted = true
			i++
			for i < len(body) && body[i] != '"' {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				elem = append(elem, body[i])
				i++
			}
			i++ // closing quote
			for i < len(body) && body[i] != ',' {
				i++
			}
		} else {
			j := strings.IndexByte(body[i:], ',')
			if j < 0 {
				j = len(body) - i
			}
			if strings.ContainsAny(body[i:i+j], "{}") {
				return nil, fmt.Errorf("expected a one-dimensional array, got %q", s)
			}
			elem = []byte(strings.TrimSpace(body[i : i+j]))
			i += j
		}
		if !quoted && strings.EqualFold(string(elem), "null") {
			elem = nil
		} else if elem == nil {
			elem = []byte{}
		}
		elems = append(elems, elem)
		i++ // the comma
	}
	return elems, nil
}

// leaveShardLocked lets go of a link on another shard than the next
// request needs, waiting for the responses still due if the client has no
// transaction open there. It returns the link if it must stay: a
// transaction (or a pinned or session-mode client) holds it.
func (s *session) leaveShardLocked(l *link) *link {
	if s.mode == SessionMode || s.pinned || l.openTx || l.unsynced || l.writers > 0 {
		return l
	}
	if l.pumping {
		s.mu.Unlock()
		s.pumpRuns.Wait()
		s.mu.Lock()
	}
	return s.link
}

// crossShardLocked is the error for a request that needs another shard
// than the one the client's transaction (or session) holds.
func (s *session) crossShardLocked(l *link, n need) error {
	names := s.shardNames()
	from, to := names[l.shard], names[s.shardOf(n)]
	if s.mode == SessionMode || s.pinned {
		return &Error{Code: "0A000",
			Message: fmt.Sprintf("this client holds a server connection on shard %s for its session; the statement needs shard %s", from, to),
			Hint:    "use pool.mode: transaction for clients that use several shards, or route with /* shardgate: shard=NAME */"}
	}
	return &Error{Code: "0A000",
		Message: fmt.Sprintf("this transaction runs on shard %s; the statement needs shard %s, and transactions over several shards are not supported yet", from, to),
		Hint:    "keep a transaction on the keys of one shard, or run the statement outside the transaction"}
}

// shardNames names the shards by index.
func (s *session) shardNames() []string { return s.srv.shardNames() }

// shardNames names the shards by index: the map's, else the configured.
func (s *Server) shardNames() []string {
	if sc := s.schema.Load(); sc != nil {
		return sc.m.Shards()
	}
	names := make([]string, len(s.o().Shards))
	for i, sh := range s.o().Shards {
		names[i] = sh.Name
	}
	return names
}

// currentShard is the shard of the client's server connection, or -1.
func (s *session) currentShard() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != nil {
		return s.link.shard
	}
	if s.dtx != nil && len(s.dtx.conns) > 0 {
		return s.dtx.conns[0].shard
	}
	return -1
}

// checkNewKey refuses an UPDATE that would move its row to another shard
// by changing its sharding key.
func (s *session) checkNewKey(sc *schema, p *router.Plan, ps *params, shard int) error {
	if p.NewKey == nil {
		return nil
	}
	d, err := s.distribution(sc.m, p.Distribution)
	if err != nil {
		return err
	}
	keys, err := keyValues(d, *p.NewKey, ps, true)
	if err != nil {
		return err
	}
	for _, k := range keys {
		i, err := sc.m.Locate(context.Background(), d, k)
		if err != nil {
			return err
		}
		if i != shard {
			names := sc.m.Shards()
			return &Error{Code: "0A000",
				Message: fmt.Sprintf("the UPDATE changes the sharding key of distribution %s to %s, which belongs on shard %s, not on shard %s where the row is", d.Name, k, names[i], names[shard]),
				Hint:    "delete the row and insert it with its new key instead"}
		}
	}
	return nil
}
