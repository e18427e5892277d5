package pool

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// ReadRequest describes a read for Read.
type ReadRequest struct {
	// MinLSN is the client's causal LSN, for read-your-writes: only
	// replicas whose replay LSN is at least MinLSN qualify. 0 means any.
	MinLSN LSN
	// Wait is how long to wait for a replica to replay MinLSN when the
	// only thing keeping the replicas from qualifying is MinLSN. During
	// the wait the shard's replicas are polled every few milliseconds.
	Wait time.Duration
	// IncludePrimary makes the shard's primary a candidate like the
	// replicas (include_primary mode). It always satisfies MinLSN.
	IncludePrimary bool
	// Exclude is a host that just failed this read, to retry elsewhere.
	// It is not used as the fallback either.
	Exclude *Host
}

// Reason says why Read returned the primary instead of a replica.
type Reason uint8

// Reasons.
const (
	// ReasonReplica: the host was chosen among the qualifying candidates,
	// not as a fallback (with IncludePrimary it may be the primary).
	ReasonReplica Reason = iota
	// ReasonRYW: replicas were up but none had replayed MinLSN in time.
	ReasonRYW
	// ReasonLag: every replica that is up lags beyond MaxLag/MaxLagBytes.
	ReasonLag
	// ReasonNoReplica: no replica is up (or none is configured, or the
	// only ones were excluded).
	ReasonNoReplica
)

// String returns "replica", "ryw", "lag" or "no_replica".
func (r Reason) String() string {
	switch r {
	case ReasonReplica:
		return "replica"
	case ReasonRYW:
		return "ryw"
	case ReasonLag:
		return "lag"
	case ReasonNoReplica:
		return "no_replica"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Primary returns the shard's current primary: a host that answered its
// last poll out of recovery and, if several did, the one on the highest
// timeline. Without one, the *Error (SQLSTATE 57P03) lists every host's
// state.
func (t *Topology) Primary(shard int) (*Host, error) {
	sh, err := t.shard(shard)
	if err != nil {
		return nil, err
	}
	if h := sh.primary.Load(); h != nil && h.st.Load()&(roleMask|healthMask) == stPrimaryUp {
		return h, nil
	}
	return nil, sh.unavailable(fmt.Sprintf("shardgate: shard %q has no primary right now", sh.name), nil)
}

// Read chooses a host for a read on the shard: a qualifying replica (up,
// not lagging, replayed MinLSN, not Exclude), preferring TopologyOptions.Zone,
// chosen by the policy; else, after waiting up to r.Wait when only MinLSN
// disqualified replicas, the primary, with the reason. It fails only when
// the primary cannot take the read either (or ctx ends while waiting).
func (t *Topology) Read(ctx context.Context, shard int, r ReadRequest) (*Host, Reason, error) {
	sh, err := t.shard(shard)
	if err != nil {
		return nil, ReasonNoReplica, err
	}
	h, why := t.pick(sh, &r)
	if h == nil && why == ReasonRYW && r.Wait > 0 {
		h, why, err = t.waitReplay(ctx, sh, &r)
		if err != nil {
			return nil, why, err
		}
	}
	if h != nil {
		h.reads.Add(1)
		return h, ReasonReplica, nil
	}
	p := sh.primary.Load()
	if p == nil || p == r.Exclude || p.st.Load()&(roleMask|healthMask) != stPrimaryUp {
		return nil, why, sh.unavailable(fmt.Sprintf("shardgate: shard %q has no host for this read right now", sh.name), r.Exclude)
	}
	p.reads.Add(1)
	switch why {
	case ReasonRYW:
		p.readsRYW.Add(1)
	case ReasonLag:
		p.readsLag.Add(1)
	default:
		p.readsNoReplica.Add(1)
	}
	return p, why, nil
}

// maxStackCandidates is how many candidates pick collects without
// allocating; bigger shards still work, with one allocation per read.
const maxStackCandidates = 16

// pick returns a qualifying candidate, or nil and the reason none
// qualified.
func (t *Topology) pick(sh *shard, r *ReadRequest) (*Host, Reason) {
	o := t.opts()
	var buf [maxStackCandidates]*Host
	cands := buf[:0]
	inZone := 0
	behind, lagging := false, false
	var primary *Host
	if r.IncludePrimary {
		primary = sh.primary.Load()
	}
	for _, h := range sh.list() {
		if h == r.Exclude {
			continue
		}
		switch st := h.st.Load(); {
		case st == stReplicaUp:
			if LSN(h.lsn.Load()) < r.MinLSN {
				behind = true
				continue
			}
		case st == stReplicaLagging:
			lagging = true
			continue
		case h == primary && st&(roleMask|healthMask) == stPrimaryUp:
		default:
			continue
		}
		cands = append(cands, h)
		if o.Zone != "" && h.Zone() == o.Zone {
			inZone++
		}
	}
	switch {
	case len(cands) > 0:
	case behind:
		return nil, ReasonRYW
	case lagging:
		return nil, ReasonLag
	default:
		return nil, ReasonNoReplica
	}
	if inZone > 0 && inZone < len(cands) {
		n := 0
		for _, h := range cands {
			if h.Zone() == o.Zone {
				cands[n] = h
				n++
			}
		}
		cands = cands[:n]
	}
	return choose(o, sh, cands), ReasonReplica
}

// choose applies the policy to a non-empty candidate list.
func choose(o *TopologyOptions, sh *shard, cands []*Host) *Host {
	n := uint64(len(cands))
	if n == 1 {
		return cands[0]
	}
	switch {
	case o.Policy == Random:
		return cands[rand.Uint64N(n)]
	case o.Policy == LeastConnections && o.Load != nil:
		// Start at a rotating offset so that ties take turns.
		start := sh.rr.Add(1)
		var best *Host
		bestLoad := math.MaxInt
		for i := range n {
			h := cands[(start+i)%n]
			if l := o.Load(h.addr); l < bestLoad {
				best, bestLoad = h, l
			}
		}
		return best
	}
	return cands[sh.rr.Add(1)%n]
}

// waitReplay waits up to r.Wait for a replica to qualify, while the
// shard's replicas poll fast. It gives up early when the reason changes
// (say, the replicas went down), since waiting for MinLSN no longer helps.
func (t *Topology) waitReplay(ctx context.Context, sh *shard, r *ReadRequest) (*Host, Reason, error) {
	timer := time.NewTimer(r.Wait)
	defer timer.Stop()
	// Announce the waiter before looking, so that a poll finishing after
	// the look is sure to see it and wake us (see wakeWaiters).
	sh.waiters.Add(1)
	defer sh.waiters.Add(-1)
	sh.wakeReplicas()
	for {
		ch := *sh.notify.Load()
		h, why := t.pick(sh, r)
		if h != nil || why != ReasonRYW {
			return h, why, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, ReasonRYW, nil
		case <-ctx.Done():
			return nil, ReasonRYW, ctx.Err()
		}
	}
}

func (t *Topology) shard(i int) (*shard, error) {
	if i < 0 || i >= len(t.shards) {
		return nil, &Error{Code: "XX000", Message: fmt.Sprintf("shardgate: shard %d does not exist (the topology has %d)", i, len(t.shards))}
	}
	return t.shards[i], nil
}

// unavailable builds the error for a shard without a usable host: the
// headline, then each host's state, then what to do.
func (sh *shard) unavailable(headline string, exclude *Host) *Error {
	var b strings.Builder
	b.WriteString(headline)
	b.WriteString(": ")
	unchecked := false
	hosts := sh.list()
	if len(hosts) == 0 {
		b.WriteString("no hosts configured")
	}
	now := time.Now()
	for i, h := range hosts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.addr)
		b.WriteByte(' ')
		st := h.st.Load()
		switch {
		case h == exclude:
			b.WriteString("excluded (this read just failed there)")
		case st&healthMask == healthUnknown:
			b.WriteString("not checked yet")
			unchecked = true
		case st&healthMask == healthBanned:
			h.mu.Lock()
			fmt.Fprintf(&b, "down for %s (%s)", now.Sub(h.bannedAt).Round(time.Millisecond), h.lastErr)
			h.mu.Unlock()
		case st&adminBit != 0:
			h.mu.Lock()
			fmt.Fprintf(&b, "banned by an operator (%s)", h.adminReason)
			h.mu.Unlock()
		case Role(st&roleMask) == RolePrimary:
			b.WriteString("primary")
		case st&lagBit != 0:
			fmt.Fprintf(&b, "in recovery, lagging (%s, %d bytes behind)", time.Duration(h.lagNanos.Load()).Round(time.Millisecond), h.lagBytes.Load())
		default:
			fmt.Fprintf(&b, "in recovery (replayed up to %s)", LSN(h.lsn.Load()))
		}
	}
	if unchecked {
		b.WriteString("; retry in a moment, shardgate is still checking the hosts")
	} else {
		b.WriteString("; retry once the primary is back or a replica is promoted")
	}
	return &Error{Code: "57P03", Message: b.String()} // cannot_connect_now
}

// NoteRYWRead counts a read the proxy sent to a primary for
// read-your-writes without asking Read (read-your-writes by time).
func (t *Topology) NoteRYWRead(h *Host) {
	h.reads.Add(1)
	h.readsRYW.Add(1)
}
