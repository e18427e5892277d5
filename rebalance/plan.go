package rebalance

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/shardgate/shardgate/shardmap"
)

// Plan is one move: a slice of one distribution going from one shard to
// another, and the maps before, during and after its cutover. It is
// recorded in the catalog when the move starts, so a resumed or aborted
// move works from the same maps.
type Plan struct {
	Distribution string          `json:"distribution"`
	Method       shardmap.Method `json:"method"`
	KeyType      string          `json:"key_type"`
	Tables       []Table         `json:"tables"`
	From         string          `json:"from"`
	To           string          `json:"to"`
	// Range is what moves: [Lo, Hi) of the hash space or of the keys, or
	// the directory keys.
	Range Range `json:"range"`
	// Shards are the catalog map's shards.
	Shards []string `json:"shards"`
	// Before is the map the move starts from, with the moving slice cut
	// out as a range of its own (same owners: no data moves for that);
	// Frozen is Before with the slice frozen; After has the slice owned by
	// To. An aborted move goes back to Before.
	Before shardmap.Spec `json:"before"`
	Frozen shardmap.Spec `json:"frozen"`
	After  shardmap.Spec `json:"after"`
}

// Describe prints the plan for people.
func (p *Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "move %s of distribution %s (%s on %s) from shard %s to shard %s\n", p.Range.Describe(p.Method), p.Distribution, p.Method, p.KeyType, p.From, p.To)
	for _, t := range p.Tables {
		fmt.Fprintf(&b, "  table %s (key %s)\n", t.Qualified(), t.Key)
	}
	return b.String()
}

// Describe names the moving slice.
func (r Range) Describe(m shardmap.Method) string {
	if len(r.Keys) > 0 {
		return fmt.Sprintf("%d directory keys", len(r.Keys))
	}
	lo, hi := r.Lo, r.Hi
	if lo == "" {
		lo = "-inf"
	}
	if hi == "" {
		hi = "+inf"
	}
	if m == shardmap.MethodRange {
		return fmt.Sprintf("keys [%s, %s)", lo, hi)
	}
	return fmt.Sprintf("hash range [%s, %s)", lo, hi)
}

// Qualified is the table's name as SQL would write it, quoted.
func (t Table) Qualified() string {
	if t.Schema == "" {
		return ident(t.Name)
	}
	return ident(t.Schema) + "." + ident(t.Name)
}

// Request is what the operator asks for.
type Request struct {
	Distribution string
	// To is the shard receiving the slice.
	To string
	// From, for a hash split: the shard whose (single) range is split in
	// two, the upper half moving.
	From string
	// Lo and Hi bound the slice explicitly ("" = open): hash values for
	// hash distributions, keys for range ones.
	Lo, Hi string
	// Keys are directory keys to move (directory distributions), and
	// Owners the shard the directory gives each now (keys without an
	// entry have no rows yet).
	Keys   []string
	Owners map[string]string
}

// NewPlan plans req against the current map (spec over shards).
func NewPlan(spec shardmap.Spec, shards []string, req Request) (*Plan, error) {
	m, err := shardmap.Build(spec, shards, 1, nil)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(shards, req.To) {
		return nil, fmt.Errorf("shard %q is not in the map's shards (%s): add it to the config's shards and restart the proxies first", req.To, strings.Join(shards, ", "))
	}
	d := m.Distribution(req.Distribution)
	if d == nil {
		var names []string
		for _, d := range m.Distributions() {
			names = append(names, d.Name)
		}
		return nil, fmt.Errorf("no distribution %q in the map (it has: %s)", req.Distribution, strings.Join(names, ", "))
	}
	di := slices.IndexFunc(spec.Distributions, func(ds shardmap.DistributionSpec) bool { return ds.Name == d.Name })
	p := &Plan{Distribution: d.Name, Method: d.Method, KeyType: d.KeyType, To: req.To, Shards: shards}
	for _, t := range d.Tables() {
		p.Tables = append(p.Tables, Table{Schema: t.Schema, Name: t.Name, Key: t.Key})
	}
	ds := spec.Distributions[di]
	if d.Method == shardmap.MethodDirectory {
		return directoryPlan(p, spec, di, d, req)
	}
	if len(req.Keys) > 0 {
		return nil, fmt.Errorf("--keys moves keys of a directory distribution; %s is %s: give --from, or --lo and --hi", d.Name, d.Method)
	}
	// Explicit ranges, so that one of them can be cut out.
	ranges := m.RangeSpecs(d)
	lo, hi := req.Lo, req.Hi
	if req.From != "" {
		if d.Method != shardmap.MethodHash {
			return nil, fmt.Errorf("--from splits a hash range; for a range distribution give the keys to move with --lo and --hi")
		}
		var owned []shardmap.RangeSpec
		for _, r := range ranges {
			if r.Shard == req.From {
				owned = append(owned, r)
			}
		}
		if len(owned) != 1 {
			return nil, fmt.Errorf("shard %s owns %d ranges of %s; name the half to move with --lo and --hi", req.From, len(owned), d.Name)
		}
		lo, hi = midpoint(owned[0].Lo, owned[0].Hi), owned[0].Hi // the upper half moves
	}
	cut, from, err := cutOut(ranges, lo, hi, d.Method, d.Kind)
	if err != nil {
		return nil, err
	}
	if from == req.To {
		return nil, fmt.Errorf("%s already lives on shard %s", Range{Lo: lo, Hi: hi}.Describe(d.Method), req.To)
	}
	p.From = from
	p.Range = Range{Method: d.Method, KeyType: d.KeyType, Lo: lo, Hi: hi}
	before := ds
	before.Shards, before.Ranges = nil, cut
	frozen, after := before, before
	frozen.Ranges, after.Ranges = slices.Clone(cut), slices.Clone(cut)
	for i, r := range cut {
		if r.Lo == lo && r.Hi == hi {
			frozen.Ranges[i].Frozen = true
			after.Ranges[i].Shard = req.To
		}
	}
	p.Before, p.Frozen, p.After = withDist(spec, di, before), withDist(spec, di, frozen), withDist(spec, di, after)
	p.Frozen.MoveTargets = []string{req.To}
	for _, s := range []shardmap.Spec{p.Before, p.Frozen, p.After} {
		if _, err := shardmap.Build(s, shards, 1, nil); err != nil {
			return nil, fmt.Errorf("planned map does not build: %w", err)
		}
	}
	return p, nil
}

func withDist(spec shardmap.Spec, i int, d shardmap.DistributionSpec) shardmap.Spec {
	out := spec
	out.Distributions = slices.Clone(spec.Distributions)
	out.Distributions[i] = d
	out.MoveTargets = nil // only the frozen map has them, set by the caller
	return out
}

// midpoint halves a hash range ("" = the open end of int64).
func midpoint(lo, hi string) string {
	l, h := big.NewInt(-1<<63), new(big.Int).SetUint64(1<<63)
	if lo != "" {
		l.SetString(lo, 10)
	}
	if hi != "" {
		h.SetString(hi, 10)
	}
	mid := new(big.Int).Add(l, h)
	mid.Rsh(mid, 1) // floor division, also for negatives
	return mid.String()
}

// cutOut splits the ranges so that [lo, hi) is one of them; it must lie
// inside one existing range, whose owner it returns.
func cutOut(ranges []shardmap.RangeSpec, lo, hi string, method shardmap.Method, kind shardmap.KeyKind) ([]shardmap.RangeSpec, string, error) {
	cmp := func(a, b string, openLow bool) int { return compareBound(a, b, openLow, method, kind) }
	for i, r := range ranges {
		// [lo, hi) inside [r.Lo, r.Hi)?
		if cmp(lo, r.Lo, true) < 0 || cmp(hi, r.Hi, false) > 0 {
			continue
		}
		if r.Frozen {
			return nil, "", fmt.Errorf("the range [%s, %s) is frozen by a move in progress: `shardgate rebalance status`", r.Lo, r.Hi)
		}
		var out []shardmap.RangeSpec
		out = append(out, ranges[:i]...)
		if cmp(r.Lo, lo, true) != 0 {
			out = append(out, shardmap.RangeSpec{Lo: r.Lo, Hi: lo, Shard: r.Shard})
		}
		out = append(out, shardmap.RangeSpec{Lo: lo, Hi: hi, Shard: r.Shard})
		if cmp(hi, r.Hi, false) != 0 {
			out = append(out, shardmap.RangeSpec{Lo: hi, Hi: r.Hi, Shard: r.Shard})
		}
		out = append(out, ranges[i+1:]...)
		return out, r.Shard, nil
	}
	return nil, "", fmt.Errorf("[%s, %s) does not lie inside one range of the map: move it in pieces, one per current range", orInf(lo, "-inf"), orInf(hi, "+inf"))
}

func orInf(s, inf string) string {
	if s == "" {
		return inf
	}
	return s
}

// compareBound orders two bounds; "" is -inf as a lower bound and +inf as
// an upper one (openLow says which).
func compareBound(a, b string, openLow bool, method shardmap.Method, kind shardmap.KeyKind) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		if openLow {
			return -1
		}
		return 1
	case b == "":
		if openLow {
			return 1
		}
		return -1
	}
	if method != shardmap.MethodRange {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return cmpInt(x, y)
	}
	return shardmap.CompareText(kind, a, b)
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// directoryPlan plans a move of directory keys: they must all live on one
// shard now. The map itself does not change owners: the directory does,
// at the cutover, together with a map version that unfreezes the keys.
func directoryPlan(p *Plan, spec shardmap.Spec, di int, d *shardmap.Distribution, req Request) (*Plan, error) {
	if len(req.Keys) == 0 {
		return nil, fmt.Errorf("%s is a directory distribution: give the keys to move with --keys", d.Name)
	}
	keys := make([]string, 0, len(req.Keys))
	from := ""
	for _, k := range req.Keys {
		key, err := shardmap.ParseKey(d.Kind, k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		text := key.String()
		keys = append(keys, text)
		owner, ok := req.Owners[text]
		if !ok {
			continue
		}
		if from != "" && owner != from {
			return nil, fmt.Errorf("the keys live on several shards (%s and %s): move one shard's keys at a time", from, owner)
		}
		from = owner
	}
	if from == "" {
		return nil, fmt.Errorf("none of the keys is in the directory yet: they have no rows to move")
	}
	if from == req.To {
		return nil, fmt.Errorf("the keys already live on shard %s", req.To)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	p.From = from
	p.Range = Range{Method: d.Method, KeyType: d.KeyType, Keys: keys}
	frozen := spec.Distributions[di]
	frozen.FrozenKeys = keys
	p.Before, p.After = spec, spec
	p.Before.MoveTargets, p.After.MoveTargets = nil, nil
	p.Frozen = withDist(spec, di, frozen)
	p.Frozen.MoveTargets = []string{req.To}
	if _, err := shardmap.Build(p.Frozen, p.Shards, 1, nil); err != nil {
		return nil, fmt.Errorf("planned map does not build: %w", err)
	}
	return p, nil
}

// CanonicalKeys writes keys of distribution dist as the directory stores
// them (the key type's canonical text); keys that do not parse are kept
// as given, for NewPlan to refuse.
func CanonicalKeys(spec shardmap.Spec, dist string, keys []string) []string {
	out := slices.Clone(keys)
	for _, ds := range spec.Distributions {
		if ds.Name != dist {
			continue
		}
		kind, ok := shardmap.KindOf(ds.KeyType)
		if !ok {
			return out
		}
		for i, k := range keys {
			if key, err := shardmap.ParseKey(kind, k); err == nil {
				out[i] = key.String()
			}
		}
	}
	return out
}
