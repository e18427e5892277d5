package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bucket upper bounds in seconds. Checkouts that wait at all usually wait
// for a busy pool, so the buckets start at 100µs; they end at 10s, past
// any sensible checkout timeout. Queries get one more bucket, 30s, for
// the reports and migrations that legitimately run that long.
var (
	checkoutWaitBuckets = []float64{
		.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
	}
	queryDurationBuckets = append(checkoutWaitBuckets[:len(checkoutWaitBuckets):len(checkoutWaitBuckets)], 30)
)

// Role label values for ObserveQuery.
const (
	rolePrimary = "primary"
	roleReplica = "replica"
)

// shardSet is the histogram children resolved for each shard index, so
// that an observation is a bounds check and an Observe, with no label
// hashing. SetShards replaces the whole set; it is never changed in
// place, so a reader that loaded it may use it without a lock.
type shardSet struct {
	names []string
	obs   []shardObservers
}

// shardObservers are one shard's histogram children.
type shardObservers struct {
	primary, replica, checkout prometheus.Observer
}

// SetShards names the shards, index by index, as the proxy's shard map
// numbers them; ObserveQuery and ObserveCheckoutWait take these indexes.
// An empty name stands for the index, as in pool.ShardSpec.
//
// Shards that keep their name keep their histograms; the series of shards
// no longer named are removed, so a scrape does not show shards that are
// gone. Observations racing with SetShards may land in a removed series
// and be lost; nothing else is.
func (m *Metrics) SetShards(names []string) {
	m.shardsMu.Lock()
	defer m.shardsMu.Unlock()
	next := &shardSet{names: make([]string, len(names)), obs: make([]shardObservers, len(names))}
	keep := make(map[string]bool, len(names))
	for i, name := range names {
		if name == "" {
			name = strconv.Itoa(i)
		}
		next.names[i] = name
		keep[name] = true
		next.obs[i] = shardObservers{
			primary:  m.queryDuration.WithLabelValues(name, rolePrimary),
			replica:  m.queryDuration.WithLabelValues(name, roleReplica),
			checkout: m.checkoutWait.WithLabelValues(name),
		}
	}
	prev := m.shards.Swap(next)
	for _, name := range prev.names {
		if !keep[name] {
			m.queryDuration.DeleteLabelValues(name, rolePrimary)
			m.queryDuration.DeleteLabelValues(name, roleReplica)
			m.checkoutWait.DeleteLabelValues(name)
		}
	}
}

// ObserveQuery records one statement's duration on a shard as run on its
// primary or on a replica (role "primary" or "replica"). It is called once
// per statement, so it does not allocate. An unknown shard index or role
// is ignored rather than a panic on the query path: it can only be a
// shard map that changed under the caller, and SetShards will follow.
func (m *Metrics) ObserveQuery(shard int, role string, d time.Duration) {
	s := m.shards.Load()
	if uint(shard) >= uint(len(s.obs)) {
		return
	}
	switch role {
	case rolePrimary:
		s.obs[shard].primary.Observe(d.Seconds())
	case roleReplica:
		s.obs[shard].replica.Observe(d.Seconds())
	}
}

// ObserveCheckoutWait records how long a client waited for a server
// connection on a shard, once per checkout. Like ObserveQuery it does not
// allocate and ignores an unknown shard index.
func (m *Metrics) ObserveCheckoutWait(shard int, d time.Duration) {
	s := m.shards.Load()
	if uint(shard) >= uint(len(s.obs)) {
		return
	}
	s.obs[shard].checkout.Observe(d.Seconds())
}
