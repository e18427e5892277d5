package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sgconfig "github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/shardmap"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		args               []string
		rows, cutovers     int
		clients, wantsRate int
	}{
		{"defaults", nil, 1_000_000, 10, 8, 2000},
		{"quick", []string{"--quick"}, 100_000, 3, 8, 2000},
		{"explicit flags win over quick", []string{"--quick", "--rows", "5000", "--cutovers", "1", "--rate", "0"}, 5000, 1, 8, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.rows != tc.rows || cfg.cutovers != tc.cutovers || cfg.clients != tc.clients || cfg.rate != tc.wantsRate {
				t.Fatalf("got %+v", cfg)
			}
		})
	}
}

// Bad flags are refused before anything is started.
func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--rows", "10"},
		{"--clients", "0"},
		{"--cutovers", "-1"},
		{"--rate", "-5"},
		{"--max-pause", "0s"},
		{"--no-such-flag"},
		{"extra"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%v) = %d, want 2; stderr: %s", args, code, errOut.String())
		}
	}
}

// The figures come from the tool's own output; these are its formats
// (cmd/shardgate/rebalance.go), the plan spanning several lines.
func TestParseToolOutput(t *testing.T) {
	t.Parallel()
	out := `move 7  done      move hash range [0, 1152921504606846976) of distribution t (hash on bigint) from shard s1 to shard s0
  table "t" (key id)  started 2026-11-23 05:29:04  updated 2026-11-23 05:29:05
  rows copied 52662 of ~52008, copy took 1.579s, cutover attempts 2, write pause 17.408µs, rows deleted from the source 52702, verified true
`
	st, err := parseStatus(out)
	if err != nil {
		t.Fatal(err)
	}
	want := status{phase: "done", rowsCopied: 52662, rowsTotal: 52008, copyTook: 1579 * time.Millisecond, attempts: 2,
		pause: 17408 * time.Nanosecond, deleted: 52702, verified: true}
	if st != want {
		t.Fatalf("parseStatus = %+v, want %+v", st, want)
	}
	if _, err := parseStatus("no moves\n"); err == nil {
		t.Fatal("parseStatus of no figures: no error")
	}

	move := `move hash range [0, +inf) of distribution t (hash on bigint) from shard s0 to shard s1
  table "t" (key id)
move 12 started
copying  [....................]   0% 0/51599 rows  0 rows/s  lag 0 B  ETA ?  pause 0s  deleted 0
time=2026-11-23T05:29:38.883Z level=INFO msg="cutover done" move=12 write_pause=47.033731ms attempt=1
`
	if id, from := parseStarted(move); id != 12 || from != "s0" {
		t.Fatalf("parseStarted = %d, %q", id, from)
	}
	if d := parseCutoverPause(move); d != 47033731*time.Nanosecond {
		t.Fatalf("parseCutoverPause = %v", d)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	ds := ms(50, 10, 40, 20, 30, 60, 70, 80, 90, 100)
	for _, tc := range []struct {
		p    float64
		want int
	}{{50, 50}, {99, 100}, {100, 100}, {10, 10}, {0, 10}} {
		if got := percentile(ds, tc.p); got != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("p%v = %v, want %dms", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestHashRange(t *testing.T) {
	t.Parallel()
	small := moveReq{lo: "0", hi: "1152921504606846976"}
	hr, err := small.hashRange()
	if err != nil {
		t.Fatal(err)
	}
	if !hr.has(0) || !hr.has(1<<60-1) || hr.has(1<<60) || hr.has(-1) {
		t.Fatalf("%+v: wrong bounds", hr)
	}
	if got := rangeText(small); got != "[0, 2^60)" {
		t.Fatalf("rangeText = %q", got)
	}
	half, _ := moveReq{lo: "0"}.hashRange()
	if !half.has(1<<63-1) || half.has(-1) {
		t.Fatalf("%+v: wrong bounds", half)
	}
	// About 1/16 of the keys hash into the small range.
	n := 0
	for id := int64(1); id <= 16000; id++ {
		if hr.has(shardmap.HashInt(id)) {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Fatalf("%d of 16000 keys in [0, 2^60)", n)
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	w := &window{moving: hashRange{lo: 0, hi: 100}}
	w.observe(5, 30*time.Millisecond, false)
	w.observe(50, 10*time.Millisecond, false)
	w.observe(-5, 20*time.Millisecond, false)
	w.observe(500, 5*time.Millisecond, false)
	w.observe(7, time.Hour, true)
	s := w.stats()
	if s.inMax != 30*time.Millisecond || s.inN != 2 || s.outMax != 20*time.Millisecond || s.outN != 2 || s.errs != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// The generated config is valid and its map is the whole hash space on
// s0 in two ranges, so that [0,) can move.
func TestRenderConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shardgate.yaml")
	if err := os.WriteFile(path, []byte(renderConfig("127.0.0.1:6432", []string{"127.0.0.1:5001", "127.0.0.1:5002"})), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := sgconfig.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cfg.ShardMap()
	if err != nil {
		t.Fatal(err)
	}
	d := m.Distribution(dist)
	if d == nil {
		t.Fatalf("no distribution %q", dist)
	}
	rs := m.Ranges(d)
	if len(rs) != 2 || rs[0].Shard != "s0" || rs[1].Shard != "s0" || rs[1].Lo != "0" {
		t.Fatalf("ranges = %+v", rs)
	}
	if cfg.Catalog.DSN == "" {
		t.Fatal("no catalog.dsn")
	}
}

func TestFiller(t *testing.T) {
	t.Parallel()
	if n := len(filler(123)); n != 50 {
		t.Fatalf("filler is %d bytes, want 50", n)
	}
}
