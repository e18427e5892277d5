package rebalance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shardgate/shardgate/shardmap"
)

// Estimate counts what a plan moves: the rows of the slice on the source,
// and their approximate size from the tables' average row size.
func Estimate(ctx context.Context, env *Env, p *Plan) (string, error) {
	src, err := env.Connect(ctx, p.From)
	if err != nil {
		return "", err
	}
	defer src.Close(ctx)
	var b strings.Builder
	var total, bytes int64
	for _, t := range p.Tables {
		n, err := RowsIn(ctx, src, t, p.Range)
		if err != nil {
			return "", err
		}
		// The average row size from the table's size and row count (the
		// planner's count when the table was analysed, else counted).
		var size, rows int64
		_ = src.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass), reltuples::bigint FROM pg_class WHERE oid = $1::regclass",
			t.sql()).Scan(&size, &rows)
		if rows <= 0 {
			_ = src.QueryRow(ctx, "SELECT count(*) FROM "+t.sql()).Scan(&rows)
		}
		est := int64(0)
		if rows > 0 {
			est = size / rows * n
		}
		total += n
		bytes += est
		fmt.Fprintf(&b, "  %s: %d rows to move, ~%s\n", t, n, humanBytes(est))
	}
	fmt.Fprintf(&b, "  in all: %d rows, ~%s, from %s to %s\n", total, humanBytes(bytes), p.From, p.To)
	return b.String(), nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// VerifyPlacement checks, on every shard, that no row of a sharded table
// lies outside the ranges the map gives that shard. Directory
// distributions are not checked (their placement is per key).
func VerifyPlacement(ctx context.Context, env *Env, spec shardmap.Spec, shards []string) (string, error) {
	m, err := shardmap.Build(spec, shards, 1, nil)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	var bad []string
	for _, shard := range shards {
		conn, err := env.Connect(ctx, shard)
		if err != nil {
			return b.String(), fmt.Errorf("shard %s: %w", shard, err)
		}
		for _, d := range m.Distributions() {
			if d.Method == shardmap.MethodDirectory {
				continue
			}
			var owned []Range
			for _, r := range m.RangeSpecs(d) {
				if r.Shard == shard {
					owned = append(owned, Range{Method: d.Method, KeyType: d.KeyType, Lo: r.Lo, Hi: r.Hi})
				}
			}
			for _, t := range d.Tables() {
				tb := Table{Schema: t.Schema, Name: t.Name, Key: t.Key}
				var exists bool
				if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", tb.sql()).Scan(&exists); err != nil {
					conn.Close(ctx)
					return b.String(), fmt.Errorf("shard %s, table %s: %w", shard, tb, err)
				}
				if !exists {
					fmt.Fprintf(&b, "shard %-6s %-30s not there\n", shard, tb.String())
					continue
				}
				n, err := CheckPlacement(ctx, conn, tb, owned)
				if err != nil {
					conn.Close(ctx)
					return b.String(), fmt.Errorf("shard %s, table %s: %w", shard, tb, err)
				}
				status := "ok"
				if n > 0 {
					status = fmt.Sprintf("%d ROWS ON A SHARD THAT DOES NOT OWN THEM", n)
					bad = append(bad, fmt.Sprintf("%s on %s", tb, shard))
				}
				fmt.Fprintf(&b, "shard %-6s %-30s %s\n", shard, tb.String(), status)
			}
		}
		conn.Close(ctx)
	}
	if len(bad) > 0 {
		return b.String(), errors.New("misplaced rows: " + strings.Join(bad, ", "))
	}
	return b.String(), nil
}

// DropMissingTables removes from the plan the distribution's tables that
// do not exist on the source (a map may name tables not created yet),
// and returns them.
func DropMissingTables(ctx context.Context, env *Env, p *Plan) ([]Table, error) {
	src, err := env.Connect(ctx, p.From)
	if err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	var kept, gone []Table
	for _, t := range p.Tables {
		var exists bool
		if err := src.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.sql()).Scan(&exists); err != nil {
			return nil, err
		}
		if exists {
			kept = append(kept, t)
		} else {
			gone = append(gone, t)
		}
	}
	if len(kept) == 0 {
		return gone, fmt.Errorf("none of the distribution's tables exists on shard %s: nothing to move", p.From)
	}
	p.Tables = kept
	return gone, nil
}
