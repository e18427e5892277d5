package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shardgate/shardgate/shardmap"
)

// AckMap records that this proxy (Options.Name) runs map version with
// nothing in flight against the map's frozen ranges.
func (s *Store) AckMap(ctx context.Context, version uint64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO shardgate.map_acks AS a (name, version) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET version = greatest(a.version, excluded.version), acked_at = now()`, s.opts.Name, int64(version))
	if err != nil {
		return fmt.Errorf("catalog %s: acknowledging map version %d: %w", s.where, version, err)
	}
	return nil
}

// Unacked returns the live proxies (a heartbeat within alive) that have
// not acknowledged map version yet. A proxy silent for longer is out of
// the fleet: a move does not wait for it, and the source's fence keeps it
// from writing to a moved range.
func (s *Store) Unacked(ctx context.Context, version uint64, alive time.Duration) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.name FROM shardgate.proxies p LEFT JOIN shardgate.map_acks a USING (name)
		WHERE p.seen_at > now() - $1::interval AND coalesce(a.version, 0) < $2 ORDER BY p.name`,
		fmt.Sprintf("%d milliseconds", alive.Milliseconds()), int64(version))
	if err != nil {
		return nil, fmt.Errorf("catalog %s: reading map acknowledgements: %w", s.where, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// HeartbeatInterval is how often a proxy refreshes its row in
// shardgate.proxies; a proxy silent for a few of these is presumed gone.
const HeartbeatInterval = heartbeatInterval

// Move is one online move's record.
type Move struct {
	ID      int64
	Created time.Time
	Updated time.Time
	Phase   string
	Plan    json.RawMessage
	Figures json.RawMessage
	Error   string
}

// CreateMove records a new move in phase with its plan, and returns its id.
func (s *Store) CreateMove(ctx context.Context, phase string, plan any) (int64, error) {
	js, err := json.Marshal(plan)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := s.pool.QueryRow(ctx, "INSERT INTO shardgate.moves (phase, plan) VALUES ($1, $2::jsonb) RETURNING id", phase, string(js)).Scan(&id); err != nil {
		return 0, fmt.Errorf("catalog %s: recording a move: %w", s.where, err)
	}
	return id, nil
}

// UpdateMove records a move's phase, figures and error.
func (s *Store) UpdateMove(ctx context.Context, id int64, phase string, figures any, errText string) error {
	js, err := json.Marshal(figures)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "UPDATE shardgate.moves SET phase = $2, figures = $3::jsonb, error = $4, updated_at = now() WHERE id = $1",
		id, phase, string(js), errText)
	if err != nil {
		return fmt.Errorf("catalog %s: updating move %d: %w", s.where, id, err)
	}
	return nil
}

// Moves returns every move, newest first; id > 0 returns just that one.
func (s *Store) Moves(ctx context.Context, id int64) ([]Move, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, updated_at, phase, plan, figures, error FROM shardgate.moves
		WHERE $1 = 0 OR id = $1 ORDER BY id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: reading moves: %w", s.where, err)
	}
	defer rows.Close()
	var out []Move
	for rows.Next() {
		var m Move
		var plan, figures []byte
		if err := rows.Scan(&m.ID, &m.Created, &m.Updated, &m.Phase, &plan, &figures, &m.Error); err != nil {
			return nil, err
		}
		m.Plan, m.Figures = plan, figures
		out = append(out, m)
	}
	return out, rows.Err()
}

// KeyOwners returns the shard the directory gives each of keys of
// distribution dist; keys without an entry are absent from the result.
func (s *Store) KeyOwners(ctx context.Context, dist string, keys []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT key, shard FROM shardgate.directory WHERE distribution = $1 AND key = ANY($2)", dist, keys)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: reading directory entries: %w", s.where, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, sh string
		if err := rows.Scan(&k, &sh); err != nil {
			return nil, err
		}
		out[k] = sh
	}
	return out, rows.Err()
}

// MoveKeys gives keys of directory distribution dist to shard to and
// installs spec as the new map, in one transaction: proxies drop the
// keys from their caches (the directory's notifications come first) and
// then take the map, whose version tells them to plan held writes again.
// Keys without an entry get one, so their first rows land on to.
func (s *Store) MoveKeys(ctx context.Context, spec shardmap.Spec, shards []string, dist string, keys []string, to string) (uint64, error) {
	if _, err := shardmap.Build(spec, shards, 1, nil); err != nil {
		return 0, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("catalog %s: moving keys: %w", s.where, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `INSERT INTO shardgate.directory (distribution, key, shard) SELECT $1, k, $3 FROM unnest($2::text[]) k
		ON CONFLICT (distribution, key) DO UPDATE SET shard = excluded.shard`, dist, keys, to); err != nil {
		return 0, fmt.Errorf("catalog %s: moving keys: %w", s.where, err)
	}
	var version int64
	if err := tx.QueryRow(ctx, `UPDATE shardgate.map SET version = version + 1, spec = $1::jsonb, shards = $2, updated_at = now() RETURNING version`,
		string(js), shards).Scan(&version); err != nil {
		return 0, fmt.Errorf("catalog %s: moving keys: writing the map: %w", s.where, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("catalog %s: moving keys: %w", s.where, err)
	}
	return uint64(version), nil
}
