package catalog

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/shardmap"
)

const (
	// queryTimeout bounds one check of the catalog, so that a hung
	// catalog delays the watch loop rather than stopping it.
	queryTimeout = 5 * time.Second
	// minBackoff and maxBackoff bound the wait between attempts to
	// reconnect the LISTEN connection; it doubles after each failure.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// heartbeatInterval is how often Watch refreshes the proxies row.
	heartbeatInterval = 2 * time.Second
)

// Watch follows the catalog until ctx ends, then returns ctx.Err().
// current is the map in force (from Load), or nil. Whenever the catalog
// holds another version, Watch loads and builds it and passes it to
// apply, from Watch's own goroutine, one map at a time; serve passes
// (*proxy.Server).SetShardMap. A map that fails to build is logged as an
// error naming the problem, once per version, and the map in force stays.
// Watch also keeps the directory cache true, and, with Options.Name,
// writes this proxy's heartbeat.
//
// Changes arrive two ways. A trigger on the map table NOTIFYs, which a
// dedicated LISTEN connection receives within milliseconds; and the map's
// version is read every Options.PollInterval, which catches what the
// notifications miss (the LISTEN connection being down, or a change made
// with triggers disabled).
//
// Goroutines: Watch runs the poll loop in the caller's goroutine and
// starts the listener, which holds the LISTEN connection. The listener
// ends when ctx ends, and Watch waits for it before returning. Neither
// gives up: errors are logged, the poll retries at the next tick, the
// listener reconnects with backoff from 100ms to 5s.
func (s *Store) Watch(ctx context.Context, current *shardmap.Map, apply func(*shardmap.Map)) error {
	w := &watcher{s: s, apply: apply, wake: make(chan struct{}, 1)}
	if current != nil {
		w.version = current.Version()
	}
	l := &listener{s: s, wake: w.wake}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	started := time.Now()
	var beat time.Time
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return ctx.Err()
		case <-tick.C:
		case <-w.wake:
		}
		w.check(ctx, l.listening.Load())
		if s.opts.Name != "" && time.Since(beat) >= heartbeatInterval {
			beat = time.Now()
			hctx, cancel := context.WithTimeout(ctx, queryTimeout)
			if err := s.Heartbeat(hctx, s.opts.Name, s.opts.Addr, started); err != nil {
				s.log.Debug("catalog heartbeat failed", "err", err)
			}
			cancel()
		}
	}
}

// watcher is the state of Watch's poll loop.
type watcher struct {
	s     *Store
	apply func(*shardmap.Map)
	wake  chan struct{}
	// version is the version of the map in force; refused is the last
	// version that failed to build, not tried again.
	version, refused uint64
	// gen is the directory generation last seen, if genKnown.
	gen      int64
	genKnown bool
	// failing is set while the catalog cannot be read, so that an outage
	// is logged once rather than at every tick.
	failing bool
}

// check reads the catalog's version and installs a new map if there is
// one. listening says whether the listener's connection is up, in which
// case directory changes have been notified and the cache already knows.
func (w *watcher) check(parent context.Context, listening bool) {
	ctx, cancel := context.WithTimeout(parent, queryTimeout)
	defer cancel()
	var version, gen int64
	err := w.s.pool.QueryRow(ctx, "SELECT version, directory_generation FROM shardgate.map").Scan(&version, &gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return // an empty catalog: nothing to follow yet
	}
	if err != nil {
		w.fail(parent, err)
		return
	}
	if w.genKnown && gen != w.gen && !listening {
		w.s.dir.cache.flush()
	}
	w.gen, w.genKnown = gen, true
	if uint64(version) == w.version || uint64(version) == w.refused {
		w.recover()
		return
	}
	m, err := w.s.Load(ctx)
	var me *MapError
	if errors.As(err, &me) {
		w.recover()
		w.refused = me.Version
		w.s.log.Error("shard map in the catalog refused; keeping the map in force",
			"version", me.Version, "in_force", w.version, "err", err)
		return
	}
	if err != nil {
		w.fail(parent, err)
		return
	}
	w.recover()
	w.s.log.Info("shard map changed in the catalog", "version", m.Version(), "previous", w.version)
	w.version, w.refused = m.Version(), 0
	w.apply(m)
}

// fail notes a failed check; parent ending means Watch is stopping, which
// is no failure.
func (w *watcher) fail(parent context.Context, err error) {
	if parent.Err() != nil {
		return
	}
	if !w.failing {
		w.s.log.Warn("cannot read the catalog; keeping the map in force and retrying", "err", err)
	}
	w.failing = true
}

func (w *watcher) recover() {
	if w.failing {
		w.s.log.Info("catalog readable again")
	}
	w.failing = false
}

// listener holds the LISTEN connection of a Watch.
type listener struct {
	s    *Store
	wake chan<- struct{}
	// listening is set while LISTEN is in force.
	listening atomic.Bool
}

// run keeps a LISTEN connection up until ctx ends.
func (l *listener) run(ctx context.Context) {
	backoff := minBackoff
	quiet := false // the current outage has been logged
	for {
		connected, err := l.session(ctx)
		l.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff, quiet = minBackoff, false
		}
		if !quiet {
			l.s.log.Warn("catalog notifications interrupted; reconnecting (the version poll goes on)", "err", err)
			quiet = true
		} else {
			l.s.log.Debug("catalog notifications: reconnect failed", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session connects, listens and handles notifications until the
// connection fails or ctx ends. connected reports whether LISTEN took
// effect.
func (l *listener) session(ctx context.Context) (connected bool, err error) {
	cfg := l.s.listen.Copy()
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { l.handle(n.Payload) }
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(cctx, "LISTEN "+channel).ReadAll(); err != nil {
		return false, err
	}
	l.listening.Store(true)
	// Whatever happened while no one listened is unknown: forget every
	// cached directory entry and look at the version now.
	l.s.dir.cache.flush()
	l.poke()
	l.s.log.Debug("listening for catalog changes")
	for {
		if err := conn.WaitForNotification(ctx); err != nil {
			return true, err
		}
	}
}

// handle acts on one notification; it runs on the listener's goroutine.
func (l *listener) handle(payload string) {
	if l.s.dir.handle(payload) {
		return
	}
	if strings.HasPrefix(payload, "map ") {
		l.poke()
	}
}

// poke wakes the poll loop, unless it is already due to wake.
func (l *listener) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
