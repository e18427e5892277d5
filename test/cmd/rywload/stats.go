package main

import (
	"math/bits"
	"sort"
	"strings"
	"time"
)

// subBits sets the histogram's resolution: 2^subBits buckets per power of
// two of microseconds, so a percentile is off by at most 1/2^subBits
// (about 3%), whatever the run's length.
const subBits = 5

// numBuckets covers up to 2^40 µs (about 12 days), far past any timeout.
const numBuckets = (40 - subBits + 1) << subBits

// histogram counts latencies in log-linear buckets. A fixed array rather
// than a slice of samples keeps memory flat however long the run.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
}

func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	e := bits.Len64(us) - subBits - 1
	i := (e+1)<<subBits + int((us>>e)&(1<<subBits-1))
	return min(i, numBuckets-1)
}

// bucketMid is the middle of bucket i's range, in microseconds.
func bucketMid(i int) float64 {
	if i < 1<<subBits {
		return float64(i)
	}
	e := i>>subBits - 1
	mantissa := uint64(1<<subBits | i&(1<<subBits-1))
	return float64(mantissa<<e) + float64(uint64(1)<<e)/2
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(uint64(max(d.Microseconds(), 0)))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1), or 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(i) * float64(time.Microsecond))
		}
	}
	return 0
}

// counts is what one phase measured. Each client keeps its own, merged
// once at the end, so the hot loop takes no lock.
type counts struct {
	writes         int64
	ownReads       int64
	ownOnReplica   int64
	stale          int64
	staleOnReplica int64
	plainReads     int64
	plainOnReplica int64
	reconnects     int64
	// inWindow counts the statements that succeeded before the deadline.
	inWindow int64
	// errors counts failed statements by "statement: message".
	errors map[string]int64
	// staleSamples keeps a few stale reads for the report.
	staleSamples []string

	writeLat, ownLat, plainLat histogram
}

// maxSamples bounds the stale reads and error kinds quoted in the report.
const maxSamples = 5

func (c *counts) noteError(stmt string, err error) {
	if c.errors == nil {
		c.errors = map[string]int64{}
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	c.errors[stmt+": "+msg]++
}

func (c *counts) errorTotal() int64 {
	var n int64
	for _, v := range c.errors {
		n += v
	}
	return n
}

func (c *counts) statements() int64 {
	return c.writes + c.ownReads + c.plainReads
}

func (c *counts) merge(o *counts) {
	c.writes += o.writes
	c.ownReads += o.ownReads
	c.ownOnReplica += o.ownOnReplica
	c.stale += o.stale
	c.staleOnReplica += o.staleOnReplica
	c.plainReads += o.plainReads
	c.plainOnReplica += o.plainOnReplica
	c.reconnects += o.reconnects
	c.inWindow += o.inWindow
	for k, v := range o.errors {
		if c.errors == nil {
			c.errors = map[string]int64{}
		}
		c.errors[k] += v
	}
	for _, s := range o.staleSamples {
		if len(c.staleSamples) < maxSamples {
			c.staleSamples = append(c.staleSamples, s)
		}
	}
	c.writeLat.merge(&o.writeLat)
	c.ownLat.merge(&o.ownLat)
	c.plainLat.merge(&o.plainLat)
}

// topErrors returns the most frequent error kinds, most frequent first.
func (c *counts) topErrors(n int) []string {
	keys := make([]string, 0, len(c.errors))
	for k := range c.errors {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c.errors[keys[i]] != c.errors[keys[j]] {
			return c.errors[keys[i]] > c.errors[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys[:min(n, len(keys))]
}

// share is part/whole as a percentage, 0 for an empty whole.
func share(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
