package proxy

import "testing"

func TestCausalLSN(t *testing.T) {
	names := []string{"s0", "s1"}
	var c causalLSN
	c.raise(1, 0x3000060)
	if got := c.format(names); got != "s0=0/0,s1=0/3000060" {
		t.Fatalf("format = %q", got)
	}
	// Positions only grow: a lower one handed over changes nothing.
	if err := c.set("s1=0/10,s0=0/16B3748", names); err != nil {
		t.Fatal(err)
	}
	if got := c.format(names); got != "s0=0/16B3748,s1=0/3000060" {
		t.Fatalf("after set: %q", got)
	}
	// A bare position is owed on every shard.
	var d causalLSN
	if err := d.set("0/5000000", names); err != nil {
		t.Fatal(err)
	}
	if d.at(0) != 0x5000000 || d.at(1) != 0x5000000 {
		t.Fatalf("bare position: %q", d.format(names))
	}
	if got := d.format(names[:1]); got != "0/5000000" {
		t.Fatalf("one shard prints a bare position, got %q", got)
	}
	for _, bad := range []string{"yesterday", "s9=0/1", "s0=x", "s0"} {
		if err := d.set(bad, names); err == nil {
			t.Errorf("set(%q) accepted", bad)
		}
	}
}
