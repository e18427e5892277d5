package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pollSQL learns everything about a host in one round trip. The subquery
// evaluates pg_is_in_recovery() once, so the columns agree even if a
// promotion completes during the query. The timeline comes from the name
// of the current WAL file rather than pg_control_checkpoint(): right after
// a promotion the control file still holds the old timeline until the next
// checkpoint completes, which is exactly when two primaries must be told
// apart; and it is pure arithmetic, cheap enough for every poll, open to
// any role, and only computed on primaries (pg_walfile_name fails during
// recovery).
const pollSQL = `SELECT r,
	CASE WHEN r THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
	CASE WHEN r THEN NULL ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END
FROM (SELECT pg_is_in_recovery() AS r) s`

// pollResult is what one poll learnt.
type pollResult struct {
	replica  bool
	lsn      LSN
	timeline uint32
}

// monitor polls h until h.ctx ends: the topology closes or SetHosts
// removes h. It keeps one connection, reconnecting after failures as the
// ban backoff allows, and closes it before closing h.done. Errors are
// recorded on h (a ban), never returned.
func (t *Topology) monitor(h *Host) {
	defer t.wg.Done()
	defer close(h.done)
	var conn *pgconn.PgConn
	defer func() { closeConn(conn) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-timer.C:
		case <-h.wake:
			// Wake-ups may come in storms (every failed dial during a
			// failover): one poll per fastInterval answers them all.
			if d := fastInterval - time.Since(last); d > 0 {
				timer.Reset(d)
				continue
			}
		}
		// Neither a wake-up nor a timer set before a Ban shortens a ban:
		// pacing reconnections to a failing host is its purpose.
		if d := h.retryIn(time.Now()); d > 0 {
			timer.Reset(d)
			continue
		}
		conn = t.check(h, conn)
		last = time.Now()
		timer.Reset(t.nextPoll(h))
	}
}

// nextPoll returns the delay until h's next poll.
func (t *Topology) nextPoll(h *Host) time.Duration {
	if d := h.retryIn(time.Now()); d > 0 {
		return d
	}
	if h.sh.waiters.Load() > 0 && h.Role() == RoleReplica {
		return fastInterval
	}
	return t.opts().Interval
}

// retryIn returns how long h's ban still forbids an attempt, or 0.
func (h *Host) retryIn(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.Load()&healthMask != healthBanned {
		return 0
	}
	return max(h.bannedUntil.Sub(now), 0)
}

// check polls h once over conn, opening a connection if needed, and
// records the outcome. It returns the connection to keep, nil after a
// failure.
func (t *Topology) check(h *Host, conn *pgconn.PgConn) *pgconn.PgConn {
	h.mu.Lock()
	gen, reconnect := h.banGen, h.reconnect
	h.reconnect = false
	h.mu.Unlock()
	if conn != nil && (reconnect || conn.IsClosed()) {
		closeConn(conn)
		conn = nil
	}
	o := t.opts()
	if conn == nil {
		ctx, cancel := context.WithTimeout(h.ctx, o.Timeout)
		c, err := o.Connect(ctx, h.addr)
		cancel()
		if err == nil && c == nil {
			err = errors.New("Connect returned no connection")
		}
		if err != nil {
			if h.ctx.Err() == nil && !t.graceSlow(h, err) {
				t.failed(h, err)
			}
			return nil
		}
		conn = c
	}
	res, err := poll(h.ctx, conn, o.Timeout)
	if err != nil {
		closeConn(conn)
		if h.ctx.Err() == nil && !t.graceSlow(h, err) {
			t.failed(h, err)
		}
		return nil
	}
	t.answered(h, gen, res)
	return conn
}

// slowPollGrace is how many timed-out checks in a row an up host is
// forgiven before it is taken out. On a saturated machine a check can
// miss its timeout while the host serves its clients well: banning it
// then fails every client of the shard (a primary alone has no stand-in)
// over a hiccup. A host that refuses connections or errors is taken out
// at once; one that hangs, one check later.
const slowPollGrace = 1

// graceSlow reports whether a check's failure is a timeout the host is
// forgiven; the next check, on a fresh connection, comes one Interval
// later. Past the grace, a host is still forgiven while no other host of
// its shard can stand in for it: then a ban would turn a slow shard into
// one that refuses everything. Measured on a 2-core machine saturated by
// pgbench, a trivial query sent straight to PostgreSQL took up to 2.4 s
// now and then, and the only primary was banned, failing all 16 clients.
// A host that hangs for good keeps its clients waiting instead, as a
// direct connection would; one that errors or refuses is still taken out
// at once.
func (t *Topology) graceSlow(h *Host, err error) bool {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	h.mu.Lock()
	up := h.st.Load()&healthMask == healthUp
	forgive := up && (h.slowPolls < slowPollGrace || !standIn(h))
	if forgive {
		h.slowPolls++
	}
	n := h.slowPolls
	h.mu.Unlock()
	switch {
	case !forgive:
	case n <= slowPollGrace:
		h.log.Warn("shardgate: host slow to answer its health check; checking again before taking it out", "err", briefError(err, t.opts().Timeout))
	case n == slowPollGrace+1:
		h.log.Warn("shardgate: host still slow to answer its health check; no other host of its shard can take its traffic, so it keeps it", "err", briefError(err, t.opts().Timeout))
	}
	return forgive
}

// standIn reports whether another host of h's shard could take h's
// traffic if h were banned: another up primary for a primary (a promoted
// replica), any other up host for a replica (reads fall back to the
// primary).
func standIn(h *Host) bool {
	for _, o := range h.sh.list() {
		if o != h && o.Up() && (h.Role() != RolePrimary || o.Role() == RolePrimary) {
			return true
		}
	}
	return false
}

func poll(ctx context.Context, conn *pgconn.PgConn, timeout time.Duration) (pollResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rr := conn.ExecParams(ctx, pollSQL, nil, nil, nil, nil)
	var res pollResult
	rows := 0
	var bad error
	for rr.NextRow() {
		rows++
		v := rr.Values()
		if len(v) != 3 || len(v[0]) != 1 {
			bad = fmt.Errorf("unexpected poll result %q", v)
			continue
		}
		res.replica = v[0][0] == 't'
		if v[1] != nil { // NULL: a replica that has replayed nothing yet
			l, ok := parseLSN(v[1])
			if !ok {
				bad = fmt.Errorf("unexpected LSN %q in poll result", v[1])
			}
			res.lsn = l
		}
		if v[2] != nil {
			tl, err := strconv.ParseUint(string(v[2]), 16, 32)
			if err != nil {
				bad = fmt.Errorf("unexpected WAL file name %q in poll result", v[2])
			}
			res.timeline = uint32(tl)
		}
	}
	if _, err := rr.Close(); err != nil {
		return res, err
	}
	if bad == nil && rows != 1 {
		bad = fmt.Errorf("poll returned %d rows", rows)
	}
	return res, bad
}

func closeConn(conn *pgconn.PgConn) {
	if conn == nil {
		return
	}
	// Bounded: Close sends Terminate, which must not hang on a dead peer.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	conn.Close(ctx)
}

// answered records a successful poll.
func (t *Topology) answered(h *Host, gen uint64, res pollResult) {
	now := time.Now()
	role := RolePrimary
	if res.replica {
		role = RoleReplica
	}
	h.mu.Lock()
	if h.banGen != gen {
		// Ban came while the poll was under way: the ban stands until a
		// poll that starts after it, on a fresh connection, succeeds.
		h.mu.Unlock()
		t.markChecked(h)
		return
	}
	old := h.st.Load()
	wasBanned := old&healthMask == healthBanned
	downFor := now.Sub(h.bannedAt)
	h.failures, h.lastErr, h.bannedAt, h.bannedUntil, h.slowPolls = 0, "", time.Time{}, time.Time{}, 0
	h.polled = now
	h.lsn.Store(uint64(res.lsn))
	if role == RolePrimary {
		h.timeline.Store(res.timeline)
		h.lagBytes.Store(0)
		h.lagNanos.Store(0)
	}
	h.update(func(old uint32) uint32 {
		st := uint32(role) | healthUp | old&adminBit // only AdminUnban lifts that
		if role == RoleReplica {
			st |= old & lagBit // until the shard recomputes it
		}
		return st
	})
	h.mu.Unlock()

	switch oldRole := Role(old & roleMask); {
	case wasBanned:
		h.log.Info("shardgate: host answers again", "role", role.String(), "down_for", downFor.Round(time.Millisecond))
	case old&healthMask == healthUnknown:
		h.log.Info("shardgate: host is up", "role", role.String(), "lsn", res.lsn.String())
	case oldRole != role:
		h.log.Info("shardgate: host changed role", "from", oldRole.String(), "to", role.String(), "lsn", res.lsn.String())
	}
	h.sh.polled(t, h, now)
	// Last, so that Ready returns with the shard's primary chosen.
	t.markChecked(h)
}

// failed records a failed connection attempt or poll: h is banned for the
// backoff.
func (t *Topology) failed(h *Host, err error) {
	h.mu.Lock()
	wasBanned := h.st.Load()&healthMask == healthBanned
	retry := t.banLocked(h, err, time.Now())
	h.mu.Unlock()
	msg := briefError(err, t.opts().Timeout)
	if !wasBanned {
		h.log.Warn("shardgate: host down; it takes no traffic until it answers again", "err", msg, "retry_in", retry)
	} else {
		h.log.Debug("shardgate: host still down", "err", msg, "retry_in", retry)
	}
	h.sh.changed(t)
	t.markChecked(h)
}

// banLocked marks h banned with the next backoff and returns the backoff.
// h.mu is held.
func (t *Topology) banLocked(h *Host, err error, now time.Time) time.Duration {
	o := t.opts()
	h.failures++
	backoff := o.BanMin
	for i := 1; i < h.failures && backoff < o.BanMax; i++ {
		backoff *= 2
	}
	backoff = min(backoff, o.BanMax)
	if h.st.Load()&healthMask != healthBanned {
		h.bannedAt = now
	}
	h.bannedUntil = now.Add(backoff)
	h.lastErr = briefError(err, o.Timeout)
	h.setHealth(healthBanned)
	return backoff
}

// markChecked counts h's first completed check towards Ready.
func (t *Topology) markChecked(h *Host) {
	h.mu.Lock()
	first := !h.checked
	h.checked = true
	h.mu.Unlock()
	if first && t.pending.Add(-1) == 0 {
		close(t.ready)
	}
}

// briefError shortens the errors a monitor sees to their useful part:
// pgconn wraps "connection refused" in three layers of context.
func briefError(err error, timeout time.Duration) string {
	if err == nil {
		return "banned"
	}
	var pgErr *pgconn.PgError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr):
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer within " + timeout.String()
	case errors.As(err, &opErr) && opErr.Err != nil:
		return opErr.Err.Error()
	}
	return err.Error()
}

// polled updates the shard after a successful poll of h: the primary
// choice, the primary's LSN history, h's lag, and waiting reads.
func (sh *shard) polled(t *Topology, h *Host, now time.Time) {
	var lagChanged, lagging bool
	var lagBytes int64
	var lag time.Duration
	o := t.opts()
	sh.mu.Lock()
	sh.resolveLocked(t)
	p := sh.primary.Load()
	switch {
	case h == p:
		sh.history.add(now, LSN(h.lsn.Load()))
	case h.Role() == RoleReplica:
		if p != nil {
			lagBytes, lag = sh.history.lag(now, LSN(h.lsn.Load()))
		}
		lagging = (o.MaxLagBytes > 0 && lagBytes > o.MaxLagBytes) || (o.MaxLag > 0 && lag > o.MaxLag)
		h.lagBytes.Store(lagBytes)
		h.lagNanos.Store(int64(lag))
		lagChanged = h.Lagging() != lagging
		h.setLagging(lagging)
	}
	sh.mu.Unlock()
	if lagChanged && lagging {
		h.log.Warn("shardgate: replica lagging; it takes no reads until it catches up",
			"lag", lag.Round(time.Millisecond), "lag_bytes", lagBytes, "max_lag", o.MaxLag, "max_lag_bytes", o.MaxLagBytes)
	} else if lagChanged {
		h.log.Info("shardgate: replica caught up; it takes reads again", "lag", lag.Round(time.Millisecond), "lag_bytes", lagBytes)
	}
	sh.wakeWaiters()
}

// changed updates the shard after a host's health changed without a poll
// result (a failure or a ban).
func (sh *shard) changed(t *Topology) {
	sh.mu.Lock()
	sh.resolveLocked(t)
	sh.mu.Unlock()
	sh.wakeWaiters()
}

// wakeWaiters wakes the reads waiting for a replica to replay, so they
// look again. It costs nothing when none waits.
func (sh *shard) wakeWaiters() {
	if sh.waiters.Load() == 0 {
		return
	}
	ch := make(chan struct{})
	close(*sh.notify.Swap(&ch))
}

// wakeReplicas makes the shard's replicas poll now, for a waiting read.
func (sh *shard) wakeReplicas() {
	for _, h := range sh.list() {
		if h.Role() == RoleReplica {
			h.poke()
		}
	}
}

// resolveLocked chooses the shard's primary among the hosts that answered
// as one. Several can: an old primary that comes back un-demoted after a
// failover. The highest timeline wins, since a promotion starts a new one;
// on a tie the current choice stays. sh.mu is held.
func (sh *shard) resolveLocked(t *Topology) {
	cur := sh.primary.Load()
	hosts := sh.list()
	var best *Host
	claims := 0
	for _, h := range hosts {
		if h.st.Load()&(roleMask|healthMask) != stPrimaryUp {
			continue
		}
		claims++
		tl := h.timeline.Load()
		if best == nil || tl > best.timeline.Load() || (tl == best.timeline.Load() && h == cur) {
			best = h
		}
	}
	conflict := ""
	if claims > 1 {
		var b strings.Builder
		for _, h := range hosts {
			if h.st.Load()&(roleMask|healthMask) == stPrimaryUp {
				if b.Len() > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s (timeline %d)", h.addr, h.timeline.Load())
			}
		}
		conflict = b.String()
	}
	if conflict != sh.conflict {
		if conflict != "" {
			t.log.Warn("shardgate: several hosts claim to be the shard's primary; using the one on the highest timeline",
				"shard", sh.name, "claims", conflict, "primary", best.addr)
		} else {
			t.log.Info("shardgate: primary conflict over", "shard", sh.name)
		}
		sh.conflict = conflict
	}
	if best == cur {
		return
	}
	sh.primary.Store(best)
	// The history belongs to the old primary's WAL: a new timeline may
	// reuse LSNs it had already passed.
	sh.history.reset()
	if best == nil {
		// Only MinLSN and health decide reads until a primary is back.
		for _, h := range hosts {
			h.setLagging(false)
			h.lagBytes.Store(0)
			h.lagNanos.Store(0)
		}
		t.log.Warn("shardgate: shard has no primary; writes fail until one is back or a replica is promoted",
			"shard", sh.name, "was", hostAddr(cur))
		return
	}
	t.log.Info("shardgate: shard primary", "shard", sh.name, "primary", best.addr, "was", hostAddr(cur),
		"timeline", best.timeline.Load())
	best.mu.Lock()
	reason, banned := best.adminReason, best.st.Load()&adminBit != 0
	if banned {
		best.unbanLocked()
	}
	best.mu.Unlock()
	if banned {
		best.log.Warn("shardgate: operator ban lifted: the host became its shard's primary, and writes have nowhere else to go",
			"reason", reason)
	}
}

func hostAddr(h *Host) string {
	if h == nil {
		return "none"
	}
	return h.addr
}

// historySize bounds the primary LSN samples kept per shard. Samples are
// only added when the LSN moved, at most one per Interval, so the history
// spans at least historySize Intervals of constant writing (over a minute
// at the default); a replica further behind shows at least that much lag.
const historySize = 1024

// lagHistory is a ring of (time, primary LSN) samples with LSNs strictly
// increasing, from which a replica's time lag is read: how long ago the
// primary was first seen past the replica's replay position. Unlike
// pg_last_xact_replay_timestamp(), this does not grow on an idle primary.
type lagHistory struct {
	t    [historySize]time.Time
	lsn  [historySize]LSN
	head int // index of the oldest sample
	n    int
}

func (hs *lagHistory) reset() { hs.head, hs.n = 0, 0 }

func (hs *lagHistory) at(i int) int { return (hs.head + i) % historySize }

func (hs *lagHistory) add(now time.Time, l LSN) {
	if hs.n > 0 {
		newest := hs.lsn[hs.at(hs.n-1)]
		if l == newest {
			return // the first time an LSN was seen is what counts
		}
		if l < newest {
			hs.reset() // the primary went back (restored): start over
		}
	}
	if hs.n == historySize {
		hs.head = hs.at(1)
		hs.n--
	}
	i := hs.at(hs.n)
	hs.t[i], hs.lsn[i] = now, l
	hs.n++
}

// lag returns how far a replica that replayed up to replay is behind the
// newest sample, in bytes and in time.
func (hs *lagHistory) lag(now time.Time, replay LSN) (int64, time.Duration) {
	if hs.n == 0 {
		return 0, 0
	}
	newest := hs.lsn[hs.at(hs.n-1)]
	if replay >= newest {
		return 0, 0
	}
	// The oldest sample past replay: the replica has been missing that
	// WAL since then.
	i := sort.Search(hs.n, func(i int) bool { return hs.lsn[hs.at(i)] > replay })
	return int64(newest - replay), max(now.Sub(hs.t[hs.at(i)]), 0)
}
