package shardmap

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Map is a checked shard map. It is immutable; a changed map is a new Map
// with a higher Version.
type Map struct {
	version      uint64
	shards       []string
	index        map[string]int
	defaultShard int
	dists        []*Distribution
	byName       map[string]*Distribution
	// tables holds sharded tables by "schema.name", and unqualified ones
	// also by "name"; reference likewise.
	tables    map[string]*Table
	reference map[string]bool
	dir       Directory
	// floors are Spec.ReadFloors by shard index.
	floors []uint64
	// targets are Spec.MoveTargets as shard indexes.
	targets []int
}

// Distribution is a group of co-located tables sharded on one kind of key.
type Distribution struct {
	Name   string
	Method Method
	// Kind is the family of the key columns' type.
	Kind KeyKind
	// KeyType is the key type as the spec names it.
	KeyType string
	// ranges are sorted and, for hash, cover the whole hash space. For
	// directory they are the placement by hash, if any.
	ranges []span
	// place is the shard new directory keys go to; -1 places them by hash.
	place  int
	tables []*Table
	// frozen: some range or key of the distribution is frozen.
	frozen     bool
	frozenKeys map[string]bool
}

// span is one range of a distribution; a nil bound is open.
type span struct {
	lo, hi *Key
	shard  int
	frozen bool
}

// Table is a sharded table.
type Table struct {
	// Schema is "" when the spec did not qualify the name.
	Schema, Name string
	// Key is the sharding key column.
	Key  string
	Dist *Distribution
}

// Placement is how the map places a table.
type Placement uint8

// Placements.
const (
	Unsharded Placement = iota // on the default shard
	Sharded
	Reference
)

// Version is the map's version in the catalog (0 for a map from a file).
func (m *Map) Version() uint64 { return m.version }

// Shards names the shards, in the order of their indexes.
func (m *Map) Shards() []string { return m.shards }

// ShardIndex finds a shard by name.
func (m *Map) ShardIndex(name string) (int, bool) {
	i, ok := m.index[name]
	return i, ok
}

// DefaultShard is the index of the shard holding unsharded tables.
func (m *Map) DefaultShard() int { return m.defaultShard }

// Distributions lists the distributions in spec order.
func (m *Map) Distributions() []*Distribution { return m.dists }

// Distribution finds a distribution by name.
func (m *Map) Distribution(name string) *Distribution { return m.byName[name] }

// Sharded reports whether the map spreads any table over shards; without
// that, every statement simply runs on the default shard.
func (m *Map) Sharded() bool { return len(m.dists) > 0 || len(m.reference) > 0 }

// Table says how a table is placed. schema is "" for an unqualified name
// in a statement; it then matches the table in any schema, as the search
// path would (shardgate assumes one table of a name across schemas).
func (m *Map) Table(schema, name string) (Placement, *Table) {
	if t := m.lookup(m.tables, schema, name); t != nil {
		return Sharded, t
	}
	if m.reference[name] || m.reference[qualified(schema, name)] {
		return Reference, nil
	}
	return Unsharded, nil
}

// lookup finds a table declared unqualified (any schema) or in the schema
// named, where an unqualified name in a statement means public, the
// default search path's.
func (m *Map) lookup(tables map[string]*Table, schema, name string) *Table {
	if t := tables[name]; t != nil {
		return t
	}
	return tables[qualified(schema, name)]
}

func qualified(schema, name string) string {
	if schema == "" {
		schema = "public"
	}
	return schema + "." + name
}

// Tables lists the distribution's tables.
func (d *Distribution) Tables() []*Table { return d.tables }

// KeyError is a key the map cannot place.
type KeyError struct{ Msg string }

func (e *KeyError) Error() string { return e.Msg }

// SQLState is invalid_parameter_value: the key, not the statement, is wrong.
func (e *KeyError) SQLState() string { return "22023" }

// Locate returns the index of the shard owning key k of distribution d.
// A directory distribution looks the key up, and places and records it
// when it is new.
func (m *Map) Locate(ctx context.Context, d *Distribution, k Key) (int, error) {
	if d.Method != MethodDirectory {
		return d.byRange(k)
	}
	if name, ok, err := m.dir.Get(ctx, d.Name, k.String()); err != nil {
		return 0, err
	} else if ok {
		return m.directoryShard(d, k, name)
	}
	shard := d.place
	if shard < 0 {
		var err error
		if shard, err = d.byRange(k); err != nil {
			return 0, err
		}
	}
	name, err := m.dir.Put(ctx, d.Name, k.String(), m.shards[shard])
	if err != nil {
		return 0, err
	}
	return m.directoryShard(d, k, name)
}

func (m *Map) directoryShard(d *Distribution, k Key, name string) (int, error) {
	i, ok := m.index[name]
	if !ok {
		return 0, &KeyError{Msg: fmt.Sprintf("the directory of distribution %s places key %s on shard %q, which is not in the shard map", d.Name, k, name)}
	}
	return i, nil
}

// byRange finds the range holding k: by its hash for hash distributions
// (and directory placement by hash), by its value for range ones.
func (d *Distribution) byRange(k Key) (int, error) {
	if d.Method != MethodRange {
		return d.inRanges(Key{kind: KindInt, i: k.hash()}, k)
	}
	return d.inRanges(k, k)
}

// inRanges finds the range holding probe; k is the key it stands for.
func (d *Distribution) inRanges(probe, k Key) (int, error) {
	// Few ranges per distribution are the norm; a binary search pays off
	// only past a few dozen.
	lo, hi := 0, len(d.ranges)
	for lo < hi {
		mid := (lo + hi) / 2
		s := &d.ranges[mid]
		switch {
		case s.hi != nil && probe.compare(*s.hi) >= 0:
			lo = mid + 1
		case s.lo != nil && probe.compare(*s.lo) < 0:
			hi = mid
		default:
			return s.shard, nil
		}
	}
	return 0, &KeyError{Msg: fmt.Sprintf("key %s of distribution %s is in no range of the shard map", k, d.Name)}
}

// ShardOfHash returns the shard owning a hash value (hash distributions).
func (d *Distribution) ShardOfHash(h int64) (int, error) {
	k := Key{kind: KindInt, i: h}
	return d.inRanges(k, k)
}

// evenSplit divides the int64 hash space into n contiguous ranges of
// (nearly) equal size.
func evenSplit(n int) []int64 {
	bounds := make([]int64, n-1)
	for i := 1; i < n; i++ {
		q, _ := bits.Div64(uint64(i), 0, uint64(n)) // i * 2^64 / n
		bounds[i-1] = int64(q + (1 << 63))          // counted from MinInt64
	}
	return bounds
}

// Describe prints the map for people, one range per line.
func (m *Map) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d; shards: %s; default shard: %s\n", m.version, strings.Join(m.shards, ", "), m.shards[m.defaultShard])
	for _, d := range m.dists {
		fmt.Fprintf(&b, "distribution %s: %s on %s key\n", d.Name, d.Method, d.KeyType)
		for _, t := range d.tables {
			name := t.Name
			if t.Schema != "" {
				name = t.Schema + "." + t.Name
			}
			fmt.Fprintf(&b, "  table %s (key %s)\n", name, t.Key)
		}
		for _, s := range d.ranges {
			lo, hi := "-inf", "+inf"
			if s.lo != nil {
				lo = s.lo.String()
			}
			if s.hi != nil {
				hi = s.hi.String()
			}
			what := "range"
			if d.Method != MethodRange {
				what = "hash range"
			}
			fmt.Fprintf(&b, "  %s [%s, %s) -> %s\n", what, lo, hi, m.shards[s.shard])
		}
		if d.Method == MethodDirectory {
			if d.place >= 0 {
				fmt.Fprintf(&b, "  new keys -> %s\n", m.shards[d.place])
			} else {
				fmt.Fprintf(&b, "  new keys placed by hash\n")
			}
		}
	}
	if len(m.reference) > 0 {
		var names []string
		for n := range m.reference {
			names = append(names, n)
		}
		fmt.Fprintf(&b, "reference tables: %s\n", strings.Join(sortedStrings(names), ", "))
	}
	return b.String()
}

// Range is one range of a distribution as an operator reads it: bounds
// printed as in Describe ("-inf" and "+inf" when open), and the shard.
type Range struct {
	Lo, Hi string
	Shard  string
	Frozen bool
}

// Ranges returns the distribution's ranges in order, over the shards of m
// (the map the distribution belongs to).
func (m *Map) Ranges(d *Distribution) []Range {
	specs := m.RangeSpecs(d)
	out := make([]Range, len(specs))
	for i, rs := range specs {
		out[i] = Range{Lo: orOpen(rs.Lo, "-inf"), Hi: orOpen(rs.Hi, "+inf"), Shard: rs.Shard, Frozen: rs.Frozen}
	}
	return out
}

// orOpen prints an open bound ("") as open.
func orOpen(bound, open string) string {
	if bound == "" {
		return open
	}
	return bound
}

// RangeSpecs returns the distribution's ranges in order as a spec writes
// them, with "" for an open end, whether the spec gave ranges or an even
// split over shards. Unlike Ranges, an open end and a text bound that
// reads "-inf" or "+inf" stay apart.
func (m *Map) RangeSpecs(d *Distribution) []RangeSpec {
	out := make([]RangeSpec, 0, len(d.ranges))
	for _, s := range d.ranges {
		r := RangeSpec{Shard: m.shards[s.shard], Frozen: s.frozen}
		if s.lo != nil {
			r.Lo = s.lo.String()
		}
		if s.hi != nil {
			r.Hi = s.hi.String()
		}
		out = append(out, r)
	}
	return out
}

// ReferenceTables returns the reference tables' names, sorted.
func (m *Map) ReferenceTables() []string {
	names := make([]string, 0, len(m.reference))
	for n := range m.reference {
		names = append(names, n)
	}
	return sortedStrings(names)
}

// Frozen reports whether some range or key of the distribution is frozen
// for a move; writes that may touch it wait for the next map.
func (d *Distribution) Frozen() bool { return d.frozen }

// FrozenKey reports whether writes to key k must wait: its range, or the
// key itself (directory), is being moved.
func (d *Distribution) FrozenKey(k Key) bool {
	if !d.frozen {
		return false
	}
	if d.frozenKeys[k.String()] {
		return true
	}
	if len(d.ranges) == 0 || (d.Method == MethodDirectory && d.place >= 0) {
		return false
	}
	probe := k
	if d.Method != MethodRange {
		probe = Key{kind: KindInt, i: k.hash()}
	}
	for _, s := range d.ranges {
		if (s.lo == nil || probe.compare(*s.lo) >= 0) && (s.hi == nil || probe.compare(*s.hi) < 0) {
			return s.frozen
		}
	}
	return false
}

// Frozen reports whether any distribution has a frozen range or key.
func (m *Map) Frozen() bool {
	for _, d := range m.dists {
		if d.frozen {
			return true
		}
	}
	return false
}

// FrozenShards returns, for each frozen distribution, the shards whose
// writes a cutover waits on: the owners of the frozen ranges (for
// frozen directory keys, every shard: the directory says which).
func (m *Map) FrozenShards() map[int]bool {
	out := map[int]bool{}
	for _, d := range m.dists {
		if !d.frozen {
			continue
		}
		if len(d.frozenKeys) > 0 {
			for i := range m.shards {
				out[i] = true
			}
		}
		for _, s := range d.ranges {
			if s.frozen {
				out[s.shard] = true
			}
		}
	}
	return out
}

// ReadFloor returns the WAL position shard i's replicas must have
// replayed to serve reads (0: none), from Spec.ReadFloors.
func (m *Map) ReadFloor(i int) uint64 {
	if i < len(m.floors) {
		return m.floors[i]
	}
	return 0
}

// MoveTargets returns the shards a move in its cutover is about to send
// the frozen writes to (Spec.MoveTargets), by index.
func (m *Map) MoveTargets() []int { return m.targets }

// parseLSN reads PostgreSQL's text form of a WAL position, hi/lo in hex.
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l, err1 == nil && err2 == nil
}
