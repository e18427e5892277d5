package rebalance

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/shardgate/shardgate/shardmap"
)

// A fence keeps stale proxies and direct connections from writing a range
// a shard gave away. When part of such a range comes back to that shard,
// its old fence would refuse the proxies' own writes there, while the rest
// of the range must stay fenced. So before its cutover a move rewrites
// each old fence on its target to let through every part of its range
// that later moves (this one included) brought back, and drops a fence
// whose whole range came back. The parts are read from the catalog's
// moves each time, so a fence narrowed twice keeps both exceptions.

var oldFenceName = regexp.MustCompile(`^sg_m([0-9]+)_fence$`)

// fixOldFences narrows or drops the fences earlier moves left on the
// target's tables.
func (r *runner) fixOldFences(ctx context.Context) error {
	m := r.m
	ids := map[int64]bool{}
	for _, t := range m.Tables {
		rows, err := m.Target.Query(ctx, "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname LIKE 'sg\\_m%\\_fence'", t.sql())
		if err != nil {
			return fmt.Errorf("rebalance: listing old fences on %s: %w", t, err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			if g := oldFenceName.FindStringSubmatch(name); g != nil {
				if id, err := strconv.ParseInt(g[1], 10, 64); err == nil && id != r.id {
					ids[id] = true
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		return nil
	}
	moves, err := r.env.Catalog.Moves(ctx, 0)
	if err != nil {
		return err
	}
	plans := map[int64]*Plan{}
	for _, mv := range moves {
		if mv.Phase == PhaseAborted {
			continue
		}
		if p, _, _, err := Load(ctx, r.env.Catalog, mv.ID); err == nil {
			plans[mv.ID] = p
		}
	}
	for id := range ids {
		old := plans[id]
		if old == nil {
			continue // not a move of this catalog's: leave it alone
		}
		var back []Range
		for later, p := range plans {
			if later > id && p.Distribution == old.Distribution && p.To == old.From {
				back = append(back, p.Range)
			}
		}
		fence := &Mover{Source: m.Target, Target: m.Target, Job: fmt.Sprintf("m%d", id), Tables: old.Tables,
			Range: old.Range, TargetShard: old.To, Allowed: back, rebuild: true}
		if covered(old.Range, back) {
			err = fence.Unfence(ctx)
		} else {
			err = fence.FenceWithin(ctx, DefaultFenceWait)
		}
		if err != nil {
			return fmt.Errorf("rebalance: adjusting the fence of move %d on shard %s: %w", id, r.plan.To, err)
		}
	}
	return nil
}

// covered reports whether r lies within one of the ranges of back (or,
// for keys, whether back lists them all).
func covered(r Range, back []Range) bool {
	if len(r.Keys) > 0 {
		have := map[string]bool{}
		for _, b := range back {
			for _, k := range b.Keys {
				have[k] = true
			}
		}
		for _, k := range r.Keys {
			if !have[k] {
				return false
			}
		}
		return true
	}
	kind, _ := shardmap.KindOf(r.KeyType)
	for _, b := range back {
		if len(b.Keys) > 0 {
			continue
		}
		if compareBound(b.Lo, r.Lo, true, r.Method, kind) <= 0 && compareBound(r.Hi, b.Hi, false, r.Method, kind) <= 0 {
			return true
		}
	}
	return false
}
