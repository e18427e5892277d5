package pool

import (
	"fmt"
	"strings"
	"time"
)

// SetOptions applies new options to a running topology, for a
// configuration reload: Interval, Timeout, BanMin, BanMax, MaxLag,
// MaxLagBytes, Policy and Zone, with the defaults NewTopology applies to
// zero values. Shards, Connect, Logger and Load are ignored and keep their
// values from NewTopology (SetHosts changes a shard's hosts). Reads see the
// new options at once; every host is polled at once, so that replicas are
// judged against a new MaxLag within milliseconds rather than an Interval,
// except banned hosts, whose current backoff runs its course.
func (t *Topology) SetOptions(o TopologyOptions) {
	cur := t.opts()
	o.Connect, o.Logger, o.Load = cur.Connect, cur.Logger, cur.Load
	t.cfg.Store(normalize(o))
	for _, h := range t.allHosts() {
		h.poke()
	}
}

// SetHosts makes hosts the servers of an existing shard, in that order,
// for a configuration reload, and returns the addresses it added and
// removed. Hosts are matched by address: a host that stays keeps its
// state, counters and any operator ban (its zone is updated). A new host
// is monitored at once if the topology is started, and takes traffic only
// after its first successful poll, as at start; Ready waits for it only if
// the topology is not ready yet. A removed host is never chosen again once
// SetHosts returns (a Read already under way may still return it), and its
// monitor has stopped and closed its connection; if it was the primary,
// the shard's primary is chosen again among the hosts that remain. A
// repeated address counts once.
//
// The number of shards is fixed when the topology is built: adding or
// removing a shard needs a restart. SetHosts panics for an index out of
// range, a programming error; SetShards checks.
func (t *Topology) SetHosts(shard int, hosts []HostSpec) (added, removed []string) {
	sh := t.shards[shard]
	t.mu.Lock()
	old := sh.list()
	keep := make(map[string]*Host, len(old))
	for _, h := range old {
		keep[h.addr] = h
	}
	next := make([]*Host, 0, len(hosts))
	seen := make(map[string]bool, len(hosts))
	var fresh, gone []*Host
	for _, hs := range hosts {
		if seen[hs.Addr] {
			continue
		}
		seen[hs.Addr] = true
		if h := keep[hs.Addr]; h != nil {
			zone := hs.Zone
			h.zone.Store(&zone)
			next = append(next, h)
			continue
		}
		h := t.newHost(sh, hs)
		if !t.countPending() {
			h.checked = true // Ready has returned: nothing waits for it
		}
		next = append(next, h)
		fresh = append(fresh, h)
		added = append(added, hs.Addr)
	}
	for _, h := range old {
		if !seen[h.addr] {
			gone = append(gone, h)
			removed = append(removed, h.addr)
		}
	}
	sh.mu.Lock()
	sh.hosts.Store(&next)
	sh.resolveLocked(t) // forgets a removed primary
	sh.mu.Unlock()
	for _, h := range gone {
		h.cancel()
		t.markChecked(h) // Ready must not wait for it
	}
	if t.started && !t.closed {
		for _, h := range fresh {
			t.startMonitorLocked(h)
		}
	}
	var done []chan struct{}
	for _, h := range gone {
		if h.done != nil {
			done = append(done, h.done)
		}
	}
	t.mu.Unlock()

	for _, h := range fresh {
		h.log.Info("shardgate: host added; it takes traffic after its first successful poll")
	}
	for _, h := range gone {
		h.log.Info("shardgate: host removed; it takes no more traffic")
	}
	for _, d := range done {
		<-d
	}
	sh.wakeWaiters() // a waiting read may have lost its only candidate
	return added, removed
}

// countPending counts one more host towards Ready, unless Ready's wait is
// already over: pending never rises again once it reached zero, so ready
// is closed only once.
func (t *Topology) countPending() bool {
	for {
		n := t.pending.Load()
		if n == 0 {
			return false
		}
		if t.pending.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// SetShards applies SetHosts to every shard, for a configuration reload
// that lists the shards in the topology's order. It fails, changing
// nothing, when the number of shards differs: that needs a restart. Shard
// names are not changed.
func (t *Topology) SetShards(shards []ShardSpec) (added, removed []string, err error) {
	if len(shards) != len(t.shards) {
		return nil, nil, fmt.Errorf("shardgate: the configuration has %d shards and the running topology %d; "+
			"adding or removing shards needs a restart", len(shards), len(t.shards))
	}
	for i, spec := range shards {
		a, r := t.SetHosts(i, spec.Hosts)
		added, removed = append(added, a...), append(removed, r...)
	}
	return added, removed, nil
}

// AdminBan keeps the replica at addr out of reads until AdminUnban, for an
// operator who wants it drained (maintenance, a suspect server), whatever
// its polls say; the monitor keeps polling it, so Snapshot still shows its
// position and lag. The reason shows in HostStatus.BanReason. Banning a
// banned host replaces the reason. A shard's current primary cannot be
// banned, since writes have nowhere else to go; should a banned replica be
// promoted, the ban ends when it becomes the primary. The ban belongs to
// the host: SetHosts removing it forgets the ban.
func (t *Topology) AdminBan(addr, reason string) error {
	hosts, err := t.find(addr)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		sh := h.sh
		sh.mu.Lock() // no primary change while we look
		if sh.primary.Load() == h {
			sh.mu.Unlock()
			return &Error{Code: "55000", // object_not_in_prerequisite_state
				Message: fmt.Sprintf("shardgate: cannot ban %s: it is the primary of shard %q and writes have nowhere else to go; "+
					"only replicas can be banned", addr, sh.name)}
		}
		h.mu.Lock()
		h.adminReason = reason
		if h.st.Load()&adminBit == 0 {
			h.adminAt = time.Now()
			h.update(func(old uint32) uint32 { return old | adminBit })
		}
		h.mu.Unlock()
		sh.mu.Unlock()
		h.log.Warn("shardgate: host banned by an operator; it takes no reads until unbanned", "reason", reason)
		sh.wakeWaiters()
	}
	return nil
}

// AdminUnban lifts an operator ban: the host takes reads again as soon as
// its polls qualify it. Unbanning a host that is not banned by an
// operator does nothing; a failure ban is not lifted, as it ends with the
// host's next successful poll.
func (t *Topology) AdminUnban(addr string) error {
	hosts, err := t.find(addr)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		h.mu.Lock()
		banned := h.st.Load()&adminBit != 0
		if banned {
			h.unbanLocked()
		}
		h.mu.Unlock()
		if banned {
			h.log.Info("shardgate: operator ban lifted")
			h.sh.wakeWaiters()
		}
	}
	return nil
}

// unbanLocked clears an operator ban. h.mu is held.
func (h *Host) unbanLocked() {
	h.update(func(old uint32) uint32 { return old &^ adminBit })
	h.adminReason, h.adminAt = "", time.Time{}
}

// find returns the hosts at addr: one, unless the configuration lists the
// address in several shards.
func (t *Topology) find(addr string) ([]*Host, error) {
	var out []*Host
	var known []string
	for _, h := range t.allHosts() {
		if h.addr == addr {
			out = append(out, h)
		}
		known = append(known, h.addr)
	}
	if len(out) == 0 {
		return nil, &Error{Code: "42704", // undefined_object
			Message: fmt.Sprintf("shardgate: no host %s in the topology (hosts: %s)", addr, strings.Join(known, ", "))}
	}
	return out, nil
}
