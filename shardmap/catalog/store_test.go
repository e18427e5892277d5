package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardgate/shardgate/shardmap"
)

func TestSetupSeedsAnEmptyCatalog(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s1", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed})
	snap, err := s.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 1 || !reflect.DeepEqual(snap.Spec, seed) || !slices.Equal(snap.Shards, twoShards) {
		t.Fatalf("snapshot = %+v, want version 1 with the seed over %v", snap, twoShards)
	}
	m, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 1 || m.Shards()[m.DefaultShard()] != "s1" || m.Distribution("tenants") == nil {
		t.Fatalf("loaded map:\n%s", m.Describe())
	}
}

func TestEmptyCatalogWithoutSeed(t *testing.T) {
	dsn := sharedDB(t)
	// Before Setup there is no schema; after it, no map.
	s, err := Connect(ctxT(t), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Load(ctxT(t)); !errors.Is(err, ErrNoMap) {
		t.Fatalf("Load before Setup: %v, want ErrNoMap", err)
	}
	if err := s.Setup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctxT(t)); !errors.Is(err, ErrNoMap) {
		t.Fatalf("Load after Setup: %v, want ErrNoMap", err)
	}
	// SetSpec writes the first version of an empty catalog.
	if v, err := s.SetSpec(ctxT(t), testSpec("", "5", "s0"), twoShards); err != nil || v != 1 {
		t.Fatalf("SetSpec = %d, %v; want 1", v, err)
	}
}

func TestCatalogWinsOverFile(t *testing.T) {
	dsn := sharedDB(t)
	first := testSpec("s0", "1000", "s0")
	open(t, dsn, Options{Seed: &first})

	// A second proxy whose file says otherwise gets the catalog's map, and
	// says so.
	var l logs
	second := testSpec("s1", "2000", "s1")
	s := open(t, dsn, Options{Seed: &second, Logger: l.logger()})
	snap, err := s.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 1 || !reflect.DeepEqual(snap.Spec, first) {
		t.Fatalf("snapshot = %+v, want the first seed, version 1", snap)
	}
	if !contains(l.String(), "level=INFO", "differs from the catalog's shard map") {
		t.Errorf("no info record about the difference:\n%s", l.String())
	}

	// The same file again is not worth a word.
	var quiet logs
	open(t, dsn, Options{Seed: &first, Logger: quiet.logger()})
	if strings.Contains(quiet.String(), "differs") {
		t.Errorf("an identical seed was reported as different:\n%s", quiet.String())
	}
}

// TestConcurrentSetup starts several proxies on a new catalog at once:
// each must come up, with one version 1 between them.
func TestConcurrentSetup(t *testing.T) {
	dsn := sharedDB(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		seed := testSpec("s0", "1000", twoShards[i%2])
		wg.Go(func() {
			stores[i], errs[i] = Open(ctxT(t), dsn, Options{Seed: &seed, Shards: twoShards, Logger: (&logs{}).logger()})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	snap, err := stores[0].Snapshot(ctxT(t))
	if err != nil || snap.Version != 1 {
		t.Fatalf("snapshot = %+v, %v; want version 1", snap, err)
	}
}

func TestSetSpecRefusesAnInconsistentSpec(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed})
	bad := testSpec("s0", "1000", "s9")
	_, err := s.SetSpec(ctxT(t), bad, twoShards)
	var se *shardmap.SpecError
	if !errors.As(err, &se) || se.Path != "distributions[2].place" {
		t.Fatalf("SetSpec of a bad spec: %v, want a SpecError at distributions[2].place", err)
	}
	if snap, _ := s.Snapshot(ctxT(t)); snap.Version != 1 {
		t.Fatalf("version %d after a refused SetSpec, want 1", snap.Version)
	}
}

func TestLoadRefusesAnInconsistentCatalog(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	s := open(t, dsn, Options{Seed: &seed})
	tests := []struct {
		name, spec string
		shards     []string
		wantPath   string
		wantMsg    string
	}{
		{
			name:     "overlapping ranges",
			spec:     `{"distributions":[{"name":"e","method":"range","key_type":"bigint","tables":[{"name":"e","key":"id"}],"ranges":[{"hi":"10","shard":"s0"},{"lo":"5","shard":"s1"}]}]}`,
			wantPath: "distributions[0].ranges[1]", wantMsg: "overlaps distributions[0].ranges[0]",
		},
		{
			name:     "misspelt key",
			spec:     `{"distributions":[{"name":"e","method":"hash","key_type":"bigint","tabels":[]}]}`,
			wantPath: "spec", wantMsg: `unknown field "tabels"`,
		},
		{
			name:     "shard unknown to the proxy",
			spec:     `{}`,
			shards:   []string{"s0", "s1", "s2"},
			wantPath: "shards[2]", wantMsg: "shard s2 is not in this proxy's config",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shards := tt.shards
			if shards == nil {
				shards = twoShards
			}
			exec(t, dsn, "UPDATE shardgate.map SET version = $1, spec = $2, shards = $3", i+2, tt.spec, shards)
			_, err := s.Load(ctxT(t))
			var me *MapError
			var se *shardmap.SpecError
			if !errors.As(err, &me) || me.Version != uint64(i+2) || !errors.As(err, &se) {
				t.Fatalf("Load: %v, want a MapError of version %d with SpecErrors", err, i+2)
			}
			if se.Path != tt.wantPath || !strings.Contains(se.Msg, tt.wantMsg) {
				t.Errorf("SpecError %q, want %s: ...%s...", se, tt.wantPath, tt.wantMsg)
			}
		})
	}
}

// TestSetupAsNonOwner opens a set-up catalog as a role that may use its
// tables but owns nothing: Setup must not try to change the schema.
func TestSetupAsNonOwner(t *testing.T) {
	dsn := sharedDB(t)
	seed := testSpec("s0", "1000", "s0")
	open(t, dsn, Options{Seed: &seed})
	role := fmt.Sprintf("proxy_%d", dbSeq.Add(1))
	exec(t, dsn, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN PASSWORD 'pw';
		GRANT USAGE ON SCHEMA shardgate TO %[1]s;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shardgate TO %[1]s`, role))
	roleDSN := strings.Replace(dsn, "user=postgres", "user="+role+" password=pw", 1)
	s := open(t, roleDSN, Options{Seed: &seed})
	if _, err := s.Load(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Directory().Put(ctxT(t), "tenants", "a", "s0"); err != nil {
		t.Fatal(err)
	}
}

func TestTwoPhaseDecisions(t *testing.T) {
	db := sharedDB(t)
	s := open(t, db, Options{})
	other := open(t, db, Options{})
	ctx := ctxT(t)
	// The first outcome recorded is the only one, whoever asks later.
	if got, err := s.Decide(ctx, "g1", true); err != nil || !got {
		t.Fatalf("Decide(g1, commit) = %v, %v", got, err)
	}
	if got, err := other.Decide(ctx, "g1", false); err != nil || !got {
		t.Fatalf("a resolver's abort after the commit was recorded = %v, %v; want commit", got, err)
	}
	if got, err := other.Decide(ctx, "g2", false); err != nil || got {
		t.Fatalf("Decide(g2, abort) = %v, %v", got, err)
	}
	if got, err := s.Decide(ctx, "g2", true); err != nil || got {
		t.Fatalf("a commit after a resolver's abort = %v, %v; want abort", got, err)
	}
	// Racing: one transaction holds an uncommitted decision; the other
	// waits for it and then yields to it.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO shardgate.twophase_decisions (gid, commit) VALUES ('g3', true)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() {
		got, err := other.Decide(ctx, "g3", false)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	time.Sleep(200 * time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-done; !got {
		t.Fatal("the racing abort won over the commit recorded first")
	}
	for _, gid := range []string{"g1", "g2", "g3"} {
		if err := s.ForgetDecision(ctx, gid); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Decide(ctx, "g1", false); got {
		t.Fatal("a forgotten decision still answers")
	}
}
