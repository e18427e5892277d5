package pool

import "time"

// HostStatus is one host's state, for SHOW shardgate.hosts and metrics.
type HostStatus struct {
	// Shard is the shard's name, ShardIndex its index.
	Shard      string
	ShardIndex int
	Addr, Zone string
	// Role is "primary", "replica" or "unknown"; a host that is down
	// shows its last known role.
	Role string
	// State is "up", "banned" (failed and not answered since, banned by
	// the proxy, or banned by an operator), "lagging" (an up replica too
	// far behind to read) or "unknown" (not checked yet).
	State string
	// Primary reports whether the host is the shard's current primary
	// (after resolving conflicts between hosts that claim to be one).
	Primary bool
	// LSN is a primary's current WAL LSN, a replica's replay LSN.
	LSN LSN
	// Timeline is the timeline a primary writes on (0 for replicas).
	Timeline uint32
	// LagBytes and Lag are a replica's distance behind the current
	// primary, measured at its last poll; both are 0 while the shard has
	// no primary.
	LagBytes int64
	Lag      time.Duration
	// Reads counts the reads Read sent to the host, fallbacks included.
	Reads uint64
	// PrimaryReadsRYW, PrimaryReadsLag and PrimaryReadsNoReplica count the
	// reads the host served as its shard's primary because no replica
	// could take them (Reason). They are per host, so summing a shard's
	// rows gives the shard's totals across failovers.
	PrimaryReadsRYW, PrimaryReadsLag, PrimaryReadsNoReplica uint64
	// LastError is the last failure while banned, else "".
	LastError string
	// BanReason says why the host is banned, "" when it is not: an
	// operator ban shows as "operator: " and the operator's reason, and
	// wins over a failure, which shows as its error, because only the
	// operator can lift it.
	BanReason string
	// AdminBanned reports an operator ban (AdminBan), which holds until
	// AdminUnban whatever the polls say.
	AdminBanned bool
	// BannedFor is how long the host has been banned; RetryIn is how long
	// until the monitor tries it again after a failure (0 for an operator
	// ban alone: the monitor keeps polling).
	BannedFor, RetryIn time.Duration
	// Polled is when the host last answered a poll; zero if never.
	Polled time.Time
}

// Snapshot returns the state of every host, shard by shard, in
// configuration order.
func (t *Topology) Snapshot() []HostStatus {
	now := time.Now()
	var out []HostStatus
	for _, sh := range t.shards {
		primary := sh.primary.Load()
		for _, h := range sh.list() {
			out = append(out, h.status(now, h == primary))
		}
	}
	return out
}

// status returns h's row of Snapshot.
func (h *Host) status(now time.Time, primary bool) HostStatus {
	st := h.st.Load()
	s := HostStatus{
		Shard: h.sh.name, ShardIndex: h.sh.index, Addr: h.addr, Zone: h.Zone(),
		Role:                  Role(st & roleMask).String(),
		Primary:               primary,
		LSN:                   LSN(h.lsn.Load()),
		LagBytes:              h.lagBytes.Load(),
		Lag:                   time.Duration(h.lagNanos.Load()),
		Reads:                 h.reads.Load(),
		PrimaryReadsRYW:       h.readsRYW.Load(),
		PrimaryReadsLag:       h.readsLag.Load(),
		PrimaryReadsNoReplica: h.readsNoReplica.Load(),
	}
	if Role(st&roleMask) == RolePrimary {
		s.Timeline = h.timeline.Load()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Polled = h.polled
	// Read the word again under h.mu, which every ban and unban holds,
	// so that the state agrees with the reasons read here.
	st = h.st.Load()
	failed, admin := st&healthMask == healthBanned, st&adminBit != 0
	if failed {
		s.LastError = h.lastErr
		s.BanReason = h.lastErr
		s.BannedFor = now.Sub(h.bannedAt)
		s.RetryIn = max(h.bannedUntil.Sub(now), 0)
	}
	if admin {
		s.AdminBanned = true
		s.BanReason = "operator"
		if h.adminReason != "" {
			s.BanReason += ": " + h.adminReason
		}
		if d := now.Sub(h.adminAt); !failed || d > s.BannedFor {
			s.BannedFor = d
		}
	}
	switch {
	case failed || admin:
		s.State = "banned"
	case st&healthMask == healthUnknown:
		s.State = "unknown"
	case st&lagBit != 0:
		s.State = "lagging"
	default:
		s.State = "up"
	}
	return s
}
