package cluster

import (
	"context"
	"os"
	"testing"
	"time"
)

// RequirePGEnv names the environment variable that, set to "1", makes
// ForTest fail instead of skip when PostgreSQL is missing. It is meant for
// CI, where a broken install must not pass as a green run of skipped tests.
const RequirePGEnv = "SHARDGATE_REQUIRE_PG"

// forTestTimeout bounds cluster startup in tests.
const forTestTimeout = 2 * time.Minute

// ForTest starts a cluster for t and stops it in t.Cleanup. When no
// PostgreSQL binaries are found it skips t, unless SHARDGATE_REQUIRE_PG=1 or
// opts.BinDir was given, which fail it instead.
// If t has failed by cleanup time, the tail of every server log is logged
// before the cluster (and a temporary Dir with the logs) goes away.
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	// Only autodetection may skip: an explicit BinDir that is wrong is a
	// mistake worth failing on.
	maySkip := opts.BinDir == "" && os.Getenv(RequirePGEnv) != "1"
	if _, err := FindBinDir(opts.BinDir); err != nil {
		if maySkip {
			t.Skipf("skipping: %v; install the PostgreSQL server (e.g. apt-get install postgresql) or set %s=1 to make this an error", err, RequirePGEnv)
		}
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), forTestTimeout)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.Hosts() {
				t.Logf("last lines of %s log (%s):\n%s", h.Name, h.LogFile, lastLines(readFrom(h.LogFile, 0), 40))
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}
