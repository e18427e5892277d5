package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run1("version"); code != 0 || !strings.HasPrefix(out, "shardgate ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errs := run1("frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errs)
	}

	// check-config prints the example with its secrets hidden.
	code, out, errs := run1("check-config", "../../shardgate.example.yaml")
	if code != 0 {
		t.Fatalf("check-config of the example: %d %s", code, errs)
	}
	if !strings.Contains(out, "is valid") || strings.Contains(out, "password: app") || !strings.Contains(out, "******") {
		t.Fatalf("check-config output shows secrets or no verdict:\n%s", out)
	}

	// A bad file names the key and what was expected.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("pool:\n  mode: sesion\nusers: [{name: app, password: secret-pw}]\nshards: [{name: s0, hosts: [{addr: db1}]}]\n"), 0o600)
	code, _, errs = run1("check-config", bad)
	for _, want := range []string{`pool.mode: expected one of transaction, session, statement, got "sesion"`, `shards[0].hosts[0].addr: expected host:port, got "db1"`} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("bad config: want %q in:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "secret-pw") {
		t.Fatal("a password appeared in an error message")
	}
}
