package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/test/cluster"
)

// TestLoadSmoke runs every phase briefly: read-your-writes must hold under
// replay chaos, and with the guarantee off the same check must see stale
// reads, or its zero would mean nothing.
func TestLoadSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and runs load")
	}
	c := cluster.ForTest(t, clusterOptions(false))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var warnings strings.Builder
	rep, err := measure(ctx, c, config{
		duration: 3 * time.Second, clients: 8, writeShare: 0.3,
		proofDuration: 2 * time.Second, seed: 1,
		proxyLog: &cappedLog{w: &warnings, limit: maxShownWarnings},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.write(&out)
	t.Logf("\n%s%s", out.String(), warnings.String())
	if len(rep.phases) != 2 || rep.proof == nil {
		t.Fatalf("ran %d measured phases and proof %v", len(rep.phases), rep.proof != nil)
	}
	for _, p := range rep.phases {
		if p.stale != 0 {
			t.Errorf("%s: %d stale reads of the client's own write", p.mode.name, p.stale)
		}
		if p.writes == 0 || p.ownReads == 0 || p.plainReads == 0 {
			t.Errorf("%s: writes %d, own reads %d, plain reads %d: the workload did not run", p.mode.name, p.writes, p.ownReads, p.plainReads)
		}
	}
	if all := rep.phase(modeAllPrimary); all.plainOnReplica+all.ownOnReplica != 0 {
		t.Errorf("%s: %d reads ran on a replica", all.mode.name, all.plainOnReplica+all.ownOnReplica)
	}
	if rep.proof.stale == 0 {
		t.Errorf("%s: no stale read in %d own reads: the check cannot tell", rep.proof.mode.name, rep.proof.ownReads)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{.5, 500 * time.Millisecond}, {.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.04 || diff > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", tc.q, got, tc.want)
		}
	}
	// Small values are exact.
	var s histogram
	s.add(7 * time.Microsecond)
	if got := s.quantile(.5); got != 7*time.Microsecond {
		t.Errorf("quantile of one 7µs sample = %v", got)
	}
}

// Bucket boundaries follow each other without gaps or overlaps.
func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<16; us++ {
		b := bucketOf(us)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", us, b, prev)
		}
		prev = b
	}
}

// Bad flags are refused before anything is started.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--duration", "100ms"},
		{"--write-share", "1"},
		{"--write-share", "0"},
		{"--stale-check", "-1s"},
		{"extra"},
		{"--no-such-flag"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%v) = %d, want 2; stderr: %s", args, code, errOut.String())
		}
	}
}

func TestFailures(t *testing.T) {
	ok := func() *report {
		ryw := &phaseResult{mode: modeRYW, window: time.Second, elapsed: time.Second, chaos: chaosStats{pauses: 3}}
		ryw.writes, ryw.ownReads, ryw.plainReads, ryw.plainOnReplica = 10, 10, 100, 90
		all := &phaseResult{mode: modeAllPrimary, window: time.Second, elapsed: time.Second}
		all.writes, all.ownReads, all.plainReads = 10, 10, 100
		proof := &phaseResult{mode: modeNoRYW}
		proof.ownReads, proof.stale = 10, 9
		return &report{phases: []*phaseResult{ryw, all}, proof: proof}
	}
	if f := ok().failures(); len(f) != 0 {
		t.Fatalf("a good run fails: %v", f)
	}
	for name, spoil := range map[string]func(r *report){
		"stale":       func(r *report) { r.phases[0].stale = 1 },
		"errors":      func(r *report) { r.phases[1].noteError("insert", context.DeadlineExceeded) },
		"few replica": func(r *report) { r.phases[0].plainOnReplica = 69 },
		"no pauses":   func(r *report) { r.phases[0].chaos.pauses = 0 },
		"blind check": func(r *report) { r.proof.stale = 0 },
		"check error": func(r *report) { r.proof.noteError("plain read", context.DeadlineExceeded) },
		"stuck close": func(r *report) { r.phases[0].closeHung = true },
	} {
		r := ok()
		spoil(r)
		if f := r.failures(); len(f) != 1 {
			t.Errorf("%s: failures %v, want one", name, f)
		}
	}
}
