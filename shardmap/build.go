package shardmap

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// SpecError is one problem of a Spec, at the path of the offending entry
// (such as "distributions[0].ranges[1].hi").
type SpecError struct {
	Path string
	Msg  string
}

func (e *SpecError) Error() string { return e.Path + ": " + e.Msg }

// Build checks spec against the shard names (in index order) and returns
// the Map. Every problem found is reported, each a *SpecError, joined.
// dir serves directory distributions; nil gives an in-memory directory,
// which suits a single proxy with a map from its config file.
func Build(spec Spec, shards []string, version uint64, dir Directory) (*Map, error) {
	if dir == nil {
		dir = NewMemDirectory()
	}
	m := &Map{
		version: version, shards: shards, index: map[string]int{},
		byName: map[string]*Distribution{}, tables: map[string]*Table{}, reference: map[string]bool{},
		dir: dir,
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &SpecError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if len(shards) == 0 {
		bad("shards", "expected at least one shard")
		return nil, errors.Join(errs...)
	}
	for i, s := range shards {
		m.index[s] = i
	}
	shardOf := func(path, name string) int {
		i, ok := m.index[name]
		if !ok {
			bad(path, "unknown shard %q; expected one of %s", name, strings.Join(shards, ", "))
			return -1
		}
		return i
	}
	if spec.DefaultShard != "" {
		m.defaultShard = max(shardOf("default_shard", spec.DefaultShard), 0)
	}
	for name, text := range spec.ReadFloors {
		i := shardOf("read_floors."+name, name)
		lsn, ok := parseLSN(text)
		if !ok {
			bad("read_floors."+name, "expected a WAL position such as 16/B374D848, got %q", text)
		}
		if i >= 0 && ok {
			if m.floors == nil {
				m.floors = make([]uint64, len(shards))
			}
			m.floors[i] = lsn
		}
	}
	for i, name := range spec.MoveTargets {
		if j := shardOf(fmt.Sprintf("move_targets[%d]", i), name); j >= 0 {
			m.targets = append(m.targets, j)
		}
	}
	seen := map[string]string{} // table -> path that declared it
	claim := func(path, name string) (schema, table string, ok bool) {
		schema, table, ok = splitName(name)
		if !ok {
			bad(path, "expected a table name such as orders or public.orders, got %q", name)
			return
		}
		if prev, dup := seen[name]; dup {
			bad(path, "table %s is already declared at %s", name, prev)
			return "", "", false
		}
		seen[name] = path
		return
	}
	for i, ds := range spec.Distributions {
		path := fmt.Sprintf("distributions[%d]", i)
		d := &Distribution{Name: ds.Name, Method: ds.Method, KeyType: strings.ToLower(ds.KeyType), place: -1}
		switch {
		case ds.Name == "":
			bad(path+".name", "expected a name for the distribution")
		case m.byName[ds.Name] != nil:
			bad(path+".name", "distribution %s is declared twice", ds.Name)
		}
		kind, ok := keyTypes[d.KeyType]
		if !ok {
			bad(path+".key_type", "expected one of smallint, integer, bigint, text, varchar, uuid, date, timestamp, timestamptz, got %q", ds.KeyType)
		}
		d.Kind = kind
		switch ds.Method {
		case MethodHash, MethodDirectory:
			if ok && kind == KindTime {
				bad(path+".key_type", "a %s distribution needs an integer, text or uuid key, got %s; use method: range for dates and timestamps", ds.Method, ds.KeyType)
			}
		case MethodRange:
		default:
			bad(path+".method", "expected hash, range or directory, got %q", ds.Method)
		}
		if len(ds.Tables) == 0 {
			bad(path+".tables", "expected at least one table")
		}
		for j, ts := range ds.Tables {
			tpath := fmt.Sprintf("%s.tables[%d]", path, j)
			schema, name, ok := claim(tpath+".name", strings.ToLower(ts.Name))
			if !ok {
				continue
			}
			if ts.Key == "" {
				bad(tpath+".key", "expected the sharding key column of table %s", ts.Name)
				continue
			}
			t := &Table{Schema: schema, Name: name, Key: strings.ToLower(ts.Key), Dist: d}
			d.tables = append(d.tables, t)
			m.tables[strings.TrimPrefix(schema+"."+name, ".")] = t
		}
		switch ds.Method {
		case MethodHash:
			d.ranges = hashRanges(path, ds, shardOf, bad)
		case MethodRange:
			d.ranges = keyRanges(path, ds, kind, ok, shardOf, bad)
		case MethodDirectory:
			switch {
			case ds.Place == "hash":
				d.ranges = hashRanges(path, ds, shardOf, bad)
			case ds.Place == "":
				bad(path+".place", "expected where new keys go: hash, or a shard name")
			default:
				d.place = shardOf(path+".place", ds.Place)
				if len(ds.Shards)+len(ds.Ranges) > 0 {
					bad(path+".place", "shards and ranges are used only with place: hash")
				}
			}
		}
		for _, s := range d.ranges {
			d.frozen = d.frozen || s.frozen
		}
		if len(ds.FrozenKeys) > 0 {
			d.frozen = true
			d.frozenKeys = map[string]bool{}
			for _, k := range ds.FrozenKeys {
				pk, err := ParseKey(d.Kind, k)
				if err != nil {
					bad(path+".frozen_keys", "%v", err)
					continue
				}
				d.frozenKeys[pk.String()] = true
			}
		}
		m.dists = append(m.dists, d)
		m.byName[d.Name] = d
	}
	for i, name := range spec.ReferenceTables {
		schema, table, ok := claim(fmt.Sprintf("reference_tables[%d]", i), strings.ToLower(name))
		if ok {
			m.reference[strings.TrimPrefix(schema+"."+table, ".")] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// splitName splits "schema.table" or "table".
func splitName(name string) (schema, table string, ok bool) {
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, table = "", name
	}
	ok = table != "" && !strings.ContainsAny(table, ". \t\"") && (!qualified || schema != "")
	return
}

// hashRanges checks a hash distribution's ranges: together they must cover
// the whole int64 hash space, without overlap.
func hashRanges(path string, ds DistributionSpec, shardOf func(string, string) int, bad func(string, string, ...any)) []span {
	switch {
	case len(ds.Shards) > 0 && len(ds.Ranges) > 0:
		bad(path, "give either shards (an even split) or ranges, not both")
		return nil
	case len(ds.Shards) > 0:
		bounds := evenSplit(len(ds.Shards))
		spans := make([]span, len(ds.Shards))
		for i, name := range ds.Shards {
			spans[i].shard = shardOf(fmt.Sprintf("%s.shards[%d]", path, i), name)
			if i > 0 {
				spans[i].lo = &Key{kind: KindInt, i: bounds[i-1]}
			}
			if i < len(bounds) {
				spans[i].hi = &Key{kind: KindInt, i: bounds[i]}
			}
		}
		return spans
	case len(ds.Ranges) == 0:
		bad(path, "expected shards (to split the hash space evenly) or ranges of the hash space")
		return nil
	}
	spans := rangeSpans(path, ds.Ranges, KindInt, shardOf, bad)
	if spans == nil {
		return nil
	}
	for i := range spans {
		// MinInt64 and MaxInt64 written out mean the open ends.
		if spans[i].lo != nil && spans[i].lo.i == math.MinInt64 {
			spans[i].lo = nil
		}
	}
	if spans[0].lo != nil {
		bad(path+".ranges", "the hash space from -9223372036854775808 to %d is in no range; the first range needs an empty lo", spans[0].lo.i)
	}
	if spans[len(spans)-1].hi != nil {
		bad(path+".ranges", "the hash space from %d up is in no range; the last range needs an empty hi", spans[len(spans)-1].hi.i)
	}
	for i := 1; i < len(spans); i++ {
		prev, cur := spans[i-1], spans[i]
		if prev.hi != nil && cur.lo != nil && prev.hi.i < cur.lo.i {
			bad(path+".ranges", "the hash space [%d, %d) is in no range", prev.hi.i, cur.lo.i)
		}
	}
	return spans
}

// keyRanges checks a range distribution's ranges: they must not overlap;
// gaps are allowed (a key in one is refused).
func keyRanges(path string, ds DistributionSpec, kind KeyKind, kindOK bool, shardOf func(string, string) int, bad func(string, string, ...any)) []span {
	if len(ds.Shards) > 0 {
		bad(path+".shards", "a range distribution lists its ranges, not shards")
	}
	if len(ds.Ranges) == 0 {
		bad(path+".ranges", "expected at least one range")
		return nil
	}
	if !kindOK {
		return nil
	}
	return rangeSpans(path, ds.Ranges, kind, shardOf, bad)
}

// rangeSpans parses ranges, sorts them and reports overlaps.
func rangeSpans(path string, rs []RangeSpec, kind KeyKind, shardOf func(string, string) int, bad func(string, string, ...any)) []span {
	type item struct {
		span
		at int
	}
	var items []item
	failed := false
	for i, r := range rs {
		rpath := fmt.Sprintf("%s.ranges[%d]", path, i)
		it := item{at: i}
		it.shard = shardOf(rpath+".shard", r.Shard)
		it.frozen = r.Frozen
		for _, b := range []struct {
			text string
			dst  **Key
			name string
		}{{r.Lo, &it.lo, "lo"}, {r.Hi, &it.hi, "hi"}} {
			if b.text == "" {
				continue
			}
			k, err := ParseKey(kind, b.text)
			if err != nil {
				bad(rpath+"."+b.name, "%v", err)
				failed = true
				continue
			}
			*b.dst = &k
		}
		if it.lo != nil && it.hi != nil && it.lo.compare(*it.hi) >= 0 {
			bad(rpath, "expected lo < hi, got [%s, %s)", r.Lo, r.Hi)
			failed = true
		}
		items = append(items, it)
	}
	if failed {
		return nil
	}
	sort.SliceStable(items, func(a, b int) bool {
		la, lb := items[a].lo, items[b].lo
		switch {
		case la == nil:
			return lb != nil
		case lb == nil:
			return false
		}
		return la.compare(*lb) < 0
	})
	spans := make([]span, len(items))
	for i, it := range items {
		spans[i] = it.span
		if i == 0 {
			continue
		}
		prev := items[i-1]
		if prev.hi == nil || it.lo == nil || prev.hi.compare(*it.lo) > 0 {
			bad(fmt.Sprintf("%s.ranges[%d]", path, it.at), "overlaps %s.ranges[%d]", path, prev.at)
		}
	}
	return spans
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
