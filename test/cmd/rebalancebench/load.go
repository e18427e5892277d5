package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/shardmap"
)

// writeTimeout bounds one write: far above any pause a cutover may
// cause (--max-pause), so that only a hung write counts as an error.
const writeTimeout = 30 * time.Second

// insertPercent of the writes insert a new key; the others update a
// loaded row.
const insertPercent = 20

// maxErrorSamples are the first errors kept for the report.
const maxErrorSamples = 5

// hashRange is [lo, hi) of the int64 hash space; hiOpen means +inf.
type hashRange struct {
	lo     int64
	hi     int64
	hiOpen bool
}

func (r hashRange) has(h int64) bool { return h >= r.lo && (r.hiOpen || h < r.hi) }

// window collects the latencies of the writes started while it is the
// load's current one (one move): the longest write to a key whose hash is
// in the moving range, and the longest elsewhere.
type window struct {
	moving         hashRange
	inMax, outMax  atomic.Int64 // nanoseconds
	inN, outN      atomic.Int64
	errs, notFound atomic.Int64
}

func (w *window) observe(hash int64, d time.Duration, failed bool) {
	if failed {
		w.errs.Add(1)
		return
	}
	n, mx := &w.outN, &w.outMax
	if w.moving.has(hash) {
		n, mx = &w.inN, &w.inMax
	}
	n.Add(1)
	for {
		cur := mx.Load()
		if int64(d) <= cur || mx.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// windowStats is a closed window's figures.
type windowStats struct {
	inMax, outMax  time.Duration
	inN, outN      int64
	errs, notFound int64
}

func (w *window) stats() windowStats {
	return windowStats{inMax: time.Duration(w.inMax.Load()), outMax: time.Duration(w.outMax.Load()),
		inN: w.inN.Load(), outN: w.outN.Load(), errs: w.errs.Load(), notFound: w.notFound.Load()}
}

// load is the clients writing through shardgate: each updates a random
// loaded row (a = a + 1) or inserts a new key, one autocommit statement
// at a time. Its totals say what the tables must hold afterwards: rows
// loaded + inserts, sum(a) = updates.
type load struct {
	dsn     string
	rows    int64
	clients int
	rate    int
	nextID  atomic.Int64 // last key inserted
	cur     atomic.Pointer[window]

	updates, inserts atomic.Int64 // succeeded
	notFound         atomic.Int64 // updates that found no row
	errs             atomic.Int64
	mu               sync.Mutex
	samples          []string // the first errors
}

func newLoad(dsn string, rows int64, clients, rate int) *load {
	l := &load{dsn: dsn, rows: rows, clients: clients, rate: rate}
	l.nextID.Store(rows)
	return l
}

// stretch is one stretch of writing; stop ends it.
type stretch struct {
	stopping atomic.Bool
	wg       sync.WaitGroup
}

// start starts the clients. Each client goroutine is started here and
// ends after its current write once stop is called, or when ctx ends;
// its errors go to the load's counters and samples.
func (l *load) start(ctx context.Context) *stretch {
	r := &stretch{}
	for i := range l.clients {
		r.wg.Go(func() { l.client(ctx, r, i) })
	}
	return r
}

// stop asks the clients to finish their current write and waits for them.
func (r *stretch) stop() {
	r.stopping.Store(true)
	r.wg.Wait()
}

// watch makes w the current window: the writes started from now on
// report to it.
func (l *load) watch(w *window) { l.cur.Store(w) }

func (l *load) client(ctx context.Context, r *stretch, i int) {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(l.clients) / float64(l.rate))
	}
	next := time.Now()
	for !r.stopping.Load() && ctx.Err() == nil {
		if interval > 0 {
			next = next.Add(interval)
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			} else if wait < -interval {
				next = time.Now() // behind: do not burst to catch up
			}
		}
		if conn == nil {
			var err error
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conn, err = pgx.Connect(cctx, l.dsn)
			cancel()
			if err != nil {
				conn = nil
				if ctx.Err() == nil {
					l.fail(fmt.Errorf("connect: %w", err))
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
		}
		insert := rng.IntN(100) < insertPercent
		var id int64
		if insert {
			id = l.nextID.Add(1)
		} else {
			id = 1 + rng.Int64N(l.rows)
		}
		w := l.cur.Load()
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		var tag pgconn.CommandTag
		var err error
		if insert {
			tag, err = conn.Exec(wctx, "INSERT INTO t (id, a, b, c) VALUES ($1, 0, $2, now())", id, filler(id))
		} else {
			tag, err = conn.Exec(wctx, "UPDATE t SET a = a + 1, c = now() WHERE id = $1", id)
		}
		cancel()
		affected := tag.RowsAffected()
		took := time.Since(start)
		if ctx.Err() != nil {
			return // interrupted: the outcome does not matter any more
		}
		if err != nil {
			l.fail(fmt.Errorf("key %d (hash %d): %w", id, shardmap.HashInt(id), err))
			if conn.IsClosed() {
				conn = nil
			}
		} else if affected != 1 {
			l.notFound.Add(1)
			l.fail(fmt.Errorf("key %d (hash %d): the write touched %d rows, want 1: the row is not where the proxy sent it", id, shardmap.HashInt(id), affected))
		} else if insert {
			l.inserts.Add(1)
		} else {
			l.updates.Add(1)
		}
		if w != nil {
			w.observe(shardmap.HashInt(id), took, err != nil || affected != 1)
			if err == nil && affected != 1 {
				w.notFound.Add(1)
			}
		}
	}
}

// fail counts an error and keeps the first few.
func (l *load) fail(err error) {
	l.errs.Add(1)
	l.mu.Lock()
	if len(l.samples) < maxErrorSamples {
		l.samples = append(l.samples, err.Error())
	}
	l.mu.Unlock()
}

func (l *load) errorSamples() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.samples...)
}
