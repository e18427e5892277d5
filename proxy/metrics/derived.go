package metrics

// derivedCounters keeps counters that are differences of two source
// counters (statements that succeeded = statements - errors; reads served
// as a replica = reads - primary fallbacks) from going down.
//
// The source loads its two counters one after the other while queries
// keep adding to both, so a scrape can see one increment and not the
// other and report a difference one too low; the next scrape's correct
// value would then look like a counter reset to Prometheus, and rate()
// would spike by the whole counter. So a difference that goes down while
// the larger source counter did not is held at its previous value. If
// the larger counter went down too, the source really was reset (a pool
// recreated, say) and the new value stands.
//
// Only pulled.Collect uses it, under pulled.mu. A series missing from one
// scrape is forgotten, so one that comes back starts afresh.
type derivedCounters struct {
	prev, cur map[seriesKey]derivedValue
}

// seriesKey names a derived series: what it derives, then its labels.
type seriesKey struct {
	kind, shard, host, role, user, database string
}

type derivedValue struct {
	raw, out float64
}

// begin starts a scrape: the last scrape's values become the reference.
func (d *derivedCounters) begin() {
	d.prev, d.cur = d.cur, d.prev
	if d.cur == nil {
		d.cur = make(map[seriesKey]derivedValue)
	}
	clear(d.cur)
}

// value returns v, the difference computed now, or the value reported
// last time when v went down though raw, the larger counter, did not.
func (d *derivedCounters) value(k seriesKey, raw, v float64) float64 {
	if p, ok := d.prev[k]; ok && raw >= p.raw && v < p.out {
		v = p.out
	}
	d.cur[k] = derivedValue{raw: raw, out: v}
	return v
}
