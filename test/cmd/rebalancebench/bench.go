package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// smallHi is the small range's upper bound: [0, 2^60) is 1/16 of the
// hash space, about 6% of the rows.
const smallHi = uint64(1) << 60

// warmup lets the clients connect and settle before a move starts.
const warmup = time.Second

// runBench sets up, runs the copy-rate moves and the cutovers, checks the
// data and tears everything down, also when ctx is cancelled. It returns
// the report so far even with an error.
func runBench(ctx context.Context, cfg config) (*report, error) {
	rep := &report{cfg: cfg}
	work, err := os.MkdirTemp("", "sgrebal-") // see binName
	if err != nil {
		return rep, err
	}
	b := &bench{cfg: cfg, work: work, rep: rep, machine: machineLine()}
	defer b.teardown()
	if err := b.setup(ctx); err != nil {
		return rep, err
	}
	l := newLoad(b.dsn, int64(cfg.rows), cfg.clients, cfg.rate)
	if err := b.copyRate(ctx, l); err != nil {
		return rep, err
	}
	if err := b.cutovers(ctx, l); err != nil {
		return rep, err
	}
	return rep, b.check(ctx, l)
}

// copyRate moves the upper half [0,) to s1 under load, then back to s0
// without.
func (b *bench) copyRate(ctx context.Context, l *load) error {
	half := moveReq{lo: "0", to: "s1"}
	b.logf("copy rate: moving %s while %d clients write", half, b.cfg.clients)
	st := l.start(ctx)
	defer st.stop()
	if err := sleep(ctx, warmup); err != nil {
		return err
	}
	res, err := b.move(ctx, half, l, len(b.rep.copies))
	st.stop()
	if err != nil {
		return err
	}
	b.rep.copies = append(b.rep.copies, res)
	b.logResult("copy rate", res)

	back := moveReq{lo: "0", to: "s0"}
	b.logf("copy rate: moving %s with no load", back)
	if res, err = b.move(ctx, back, nil, len(b.rep.copies)); err != nil {
		return err
	}
	b.rep.copies = append(b.rep.copies, res)
	b.logResult("copy rate", res)
	return nil
}

// cutovers moves [0, 2^60) back and forth under load.
func (b *bench) cutovers(ctx context.Context, l *load) error {
	if b.cfg.cutovers == 0 {
		return nil
	}
	b.logf("write pauses: %d moves of [0, 2^60) between s0 and s1 while %d clients write", b.cfg.cutovers, b.cfg.clients)
	st := l.start(ctx)
	defer st.stop()
	if err := sleep(ctx, warmup); err != nil {
		return err
	}
	for i := range b.cfg.cutovers {
		req := moveReq{lo: "0", hi: strconv.FormatUint(smallHi, 10), to: "s1"}
		if i%2 == 1 {
			req.to = "s0"
		}
		res, err := b.move(ctx, req, l, len(b.rep.copies)+i)
		if err != nil {
			return err
		}
		b.rep.cutovers = append(b.rep.cutovers, res)
		b.logResult(fmt.Sprintf("cutover %d/%d", i+1, b.cfg.cutovers), res)
	}
	st.stop()
	return nil
}

func (b *bench) logResult(what string, r moveResult) {
	line := fmt.Sprintf("%s: move %d %s: %d rows, copy %v, write pause %v, %d attempt(s), %s in all",
		what, r.id, r.req, r.rowsCopied, r.copyTook, r.pause, r.attempts, r.wall.Round(100*time.Millisecond))
	if r.loaded {
		line += fmt.Sprintf("; clients: worst write in the range %v (%d writes), elsewhere %v, %d error(s)",
			r.seen.inMax.Round(time.Millisecond), r.seen.inN, r.seen.outMax.Round(time.Millisecond), r.seen.errs)
	}
	b.logf("%s", line)
}

// check compares the shards' contents with what the clients' writes
// imply, and runs `rebalance verify`.
func (b *bench) check(ctx context.Context, l *load) error {
	rep := b.rep
	rep.load = loadTotals{updates: l.updates.Load(), inserts: l.inserts.Load(), errs: l.errs.Load(),
		notFound: l.notFound.Load(), samples: l.errorSamples()}
	var rows, sum int64
	for _, s := range b.cl.Shards {
		conn, err := pgx.Connect(ctx, s.Primary.DSN(appUser, appPassword, appDB))
		if err != nil {
			return err
		}
		var n, a int64
		err = conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(a), 0) FROM t").Scan(&n, &a)
		conn.Close(context.Background())
		if err != nil {
			return fmt.Errorf("counting t on s%d: %w", s.Index, err)
		}
		rows += n
		sum += a
		rep.checks = append(rep.checks, fmt.Sprintf("s%d holds %d rows of t", s.Index, n))
	}
	wantRows, wantSum := int64(b.cfg.rows)+rep.load.inserts, rep.load.updates
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISMATCH"
	}
	exact := rep.load.errs == 0
	rep.checks = append(rep.checks,
		fmt.Sprintf("rows: %d on the shards, %d loaded + %d inserted = %d: %s", rows, b.cfg.rows, rep.load.inserts, wantRows, verdict(rows == wantRows)),
		fmt.Sprintf("sum(a): %d on the shards, %d successful updates: %s", sum, wantSum, verdict(sum == wantSum)))
	if exact && rows != wantRows {
		rep.problem("the shards hold %d rows, the clients' writes imply %d: rows were lost or duplicated by the moves", rows, wantRows)
	}
	if exact && sum != wantSum {
		rep.problem("sum(a) on the shards is %d, the clients made %d successful increments: updates were lost or applied twice by the moves", sum, wantSum)
	}
	if !exact {
		rep.notes = append(rep.notes, "with client errors, the row and sum checks are not exact: a failed write's outcome may be unknown")
	}
	out, err := b.verify(ctx)
	if err != nil {
		rep.problem("shardgate rebalance verify: %v: %s", err, out)
	} else {
		rep.checks = append(rep.checks, "shardgate rebalance verify: ok")
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
