package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/rebalance"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/shardmap/catalog"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestRebalanceStatusReadsMovesOnce lists several moves: `rebalance
// status` reads the catalog's moves once, not once more per move listed.
// pg_stat_statements counts the catalog's statements.
func TestRebalanceStatusReadsMovesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	if bin, err := cluster.FindBinDir(""); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "lib", "pg_stat_statements.so")); err != nil {
			t.Skipf("no pg_stat_statements beside %s to count statements with", bin)
		}
	}
	c := cluster.ForTest(t, cluster.Options{ExtraConf: []string{"shared_preload_libraries = 'pg_stat_statements'"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	host := c.Shards[0].Primary
	if err := host.Exec(ctx, "CREATE DATABASE cat"); err != nil {
		t.Fatal(err)
	}
	dsn := host.DSN("postgres", "", "cat")
	store, err := catalog.Open(ctx, dsn, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const moves = 3
	for i := range moves {
		plan := &rebalance.Plan{Distribution: "users", Method: shardmap.MethodHash, KeyType: "bigint", From: "s0", To: "s1",
			Tables: []rebalance.Table{{Name: "users", Key: "id"}}, Range: rebalance.Range{Method: shardmap.MethodHash, KeyType: "bigint", Lo: "0"},
			Shards: []string{"s0", "s1"}}
		id, err := store.CreateMove(ctx, rebalance.PhaseCopying, plan)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.UpdateMove(ctx, id, rebalance.PhaseCopying, rebalance.Figures{RowsCopied: int64(10 * i), RowsTotal: 100}, ""); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close(context.Background())
	if _, err := stats.Exec(ctx, "CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()"); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if code := rebalanceStatus(ctx, store, nil, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("rebalance status: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if n := len(regexp.MustCompile(`(?m)^move \d+ `).FindAllString(out.String(), -1)); n != moves {
		t.Errorf("rebalance status lists %d moves, want %d:\n%s", n, moves, out.String())
	}
	if !strings.Contains(out.String(), "rows copied 20 of ~100") {
		t.Errorf("rebalance status does not show the figures:\n%s", out.String())
	}
	var reads int64
	err = stats.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE query LIKE '%FROM shardgate.moves%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&reads)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Errorf("rebalance status of %d moves read the moves table %d times, want once", moves, reads)
	}
}
