package main

import (
	"reflect"
	"strings"
	"testing"

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
