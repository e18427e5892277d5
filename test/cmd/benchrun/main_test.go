package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/test/bench"
)

func TestParseInts(t *testing.T) {
	got, err := parseInts("1, 16,64")
	if err != nil || !reflect.DeepEqual(got, []int{1, 16, 64}) {
		t.Fatalf("parseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "-3", "x"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q): no error", bad)
		}
	}
}

func TestPick(t *testing.T) {
	got, err := pick("prepared, simple", bench.Protocols)
	if err != nil || !reflect.DeepEqual(got, []string{"prepared", "simple"}) {
		t.Fatalf("pick = %v, %v", got, err)
	}
	if _, err := pick("simple,turbo", bench.Protocols); err == nil || !strings.Contains(err.Error(), "turbo") {
		t.Fatalf("pick with an unknown entry: %v", err)
	}
}

// Bad flags are refused before anything is started.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--protocols", "fast"},
		{"--workloads", "tpc-c"},
		{"--targets", "pgpool"},
		{"--duration", "0s"},
		{"--no-such-flag"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%v) = %d, want 2; stderr: %s", args, code, errOut.String())
		}
	}
}

func TestShardingConfig(t *testing.T) {
	def := bench.DefaultShardingConfig()
	cfg, err := shardingConfig(shardingFlags{set: map[string]bool{}})
	if err != nil || !reflect.DeepEqual(cfg, def) {
		t.Fatalf("defaults: %+v, %v; want %+v", cfg, err, def)
	}
	cfg, err = shardingConfig(shardingFlags{set: map[string]bool{}, quick: true})
	if err != nil || cfg.Seconds != 3 || cfg.Rounds != 1 || !reflect.DeepEqual(cfg.Clients, []int{16}) || cfg.Rows != 100_000 {
		t.Fatalf("quick: %+v, %v", cfg, err)
	}
	// Explicit flags win over --quick and the defaults; unset ones do not.
	cfg, err = shardingConfig(shardingFlags{
		set:   map[string]bool{"duration": true, "clients": true, "rows": true, "protocols": true},
		quick: true, duration: 5 * time.Second, clients: "8,32", rows: 5000, protocols: "prepared",
		users: 1, rounds: 9,
	})
	if err != nil || cfg.Seconds != 5 || !reflect.DeepEqual(cfg.Clients, []int{8, 32}) || cfg.Rows != 5000 ||
		!reflect.DeepEqual(cfg.Protocols, []string{"prepared"}) || cfg.Users != 100_000 || cfg.Rounds != 1 {
		t.Fatalf("explicit: %+v, %v", cfg, err)
	}
	for _, f := range []shardingFlags{
		{set: map[string]bool{"rows": true}, rows: 0},
		{set: map[string]bool{"users": true}, users: 2},
		{set: map[string]bool{"rounds": true}, rounds: 0},
		{set: map[string]bool{"scatter-runs": true}, scatterRuns: -1},
		{set: map[string]bool{"clients": true}, clients: "x"},
		{set: map[string]bool{"workloads": true}},
		{set: map[string]bool{"shards": true}},
	} {
		if _, err := shardingConfig(f); err == nil {
			t.Errorf("shardingConfig(%+v): no error", f.set)
		}
	}
}

// Bad --sharding flags are refused before anything is started.
func TestRunShardingRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--sharding", "--rows", "0"},
		{"--sharding", "--workloads", "tpc-b"},
		{"--sharding", "--targets", "direct"},
		{"--sharding", "--protocols", "fast"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%v) = %d, want 2; stderr: %s", args, code, errOut.String())
		}
	}
}
