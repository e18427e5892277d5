package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/shardgate/shardgate/test/cluster"
)

// Chaos timing: every minGap..maxGap a replica is picked and, unless it is
// already paused, its replay is paused for minPause..maxPause.
const (
	minGap   = 500 * time.Millisecond
	maxGap   = 2 * time.Second
	minPause = 200 * time.Millisecond
	maxPause = 3 * time.Second
	// maxAllPaused caps a pause that leaves no replica replaying: reads
	// would all fall back to the primary, which measures the fallback
	// rather than replica reads.
	maxAllPaused = 2 * time.Second
	// chaosOpTimeout bounds one pause or resume, connection included.
	chaosOpTimeout = 10 * time.Second
)

// chaosStats is what a chaos run did to the replicas.
type chaosStats struct {
	pauses int
	// paused sums every replica's paused time; allPaused is the time no
	// replica was replaying.
	paused, allPaused time.Duration
	errors            int
	firstErr          string
}

// replayChaos pauses and resumes WAL replay on the replicas at random
// until ctx ends, then resumes every one of them, whatever it believes
// their state to be, so that no run leaves a replica frozen.
func replayChaos(ctx context.Context, replicas []*cluster.Host, rng *rand.Rand) chaosStats {
	var st chaosStats
	fail := func(err error) {
		st.errors++
		if st.firstErr == "" {
			st.firstErr = err.Error()
		}
	}
	until := make([]time.Time, len(replicas))
	since := make([]time.Time, len(replicas))
	var allSince time.Time
	npaused := 0
	resume := func(i int) {
		opCtx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
		defer cancel()
		if err := replicas[i].ResumeReplay(opCtx); err != nil {
			fail(err)
		}
		now := time.Now()
		st.paused += now.Sub(since[i])
		if npaused == len(replicas) {
			st.allPaused += now.Sub(allSince)
		}
		npaused--
		until[i] = time.Time{}
	}
	pause := func(i int, d time.Duration) {
		opCtx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
		defer cancel()
		// Counted as paused even on error: the pause may have taken
		// effect, and the resume that follows is harmless if not.
		if err := replicas[i].PauseReplay(opCtx); err != nil {
			fail(err)
		}
		now := time.Now()
		st.pauses++
		npaused++
		since[i], until[i] = now, now.Add(d)
		if npaused == len(replicas) {
			allSince = now
		}
	}

	next := time.Now().Add(randDur(rng, minGap, maxGap))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wake := next
		for _, u := range until {
			if !u.IsZero() && u.Before(wake) {
				wake = u
			}
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			for i := range replicas {
				if !until[i].IsZero() {
					resume(i)
				}
			}
			resumeAll(replicas, fail)
			return st
		case <-timer.C:
		}
		now := time.Now()
		for i, u := range until {
			if !u.IsZero() && !now.Before(u) {
				resume(i)
			}
		}
		if now.Before(next) {
			continue
		}
		if i := rng.IntN(len(replicas)); until[i].IsZero() {
			d := randDur(rng, minPause, maxPause)
			if npaused == len(replicas)-1 {
				d = min(d, maxAllPaused)
			}
			pause(i, d)
		}
		next = time.Now().Add(randDur(rng, minGap, maxGap))
	}
}

// resumeAll resumes replay on every replica; resuming a replica that is
// not paused does nothing.
func resumeAll(replicas []*cluster.Host, fail func(error)) {
	ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
	defer cancel()
	for _, h := range replicas {
		if err := h.ResumeReplay(ctx); err != nil && fail != nil {
			fail(err)
		}
	}
}

// pauseAll pauses replay on every replica; on error it resumes them.
func pauseAll(ctx context.Context, replicas []*cluster.Host) error {
	for _, h := range replicas {
		if err := h.PauseReplay(ctx); err != nil {
			resumeAll(replicas, nil)
			return err
		}
	}
	return nil
}

func randDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}
