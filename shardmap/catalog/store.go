package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/shardmap"
)

// Defaults of Options.
const (
	DefaultPollInterval   = time.Second
	DefaultDirectoryCache = 100_000
)

// Options configure a Store. The zero value works for a tool that reads
// or writes the catalog; a proxy sets Shards and Seed.
type Options struct {
	// Shards are this proxy's shards, in its config's order. Maps are built
	// over them, so that a map's shard indexes are the proxy's own; a map
	// naming a shard not among them is refused. Empty uses the catalog's
	// list, which suits tools.
	Shards []string
	// Seed is written as version 1, with Shards, by Setup when the
	// catalog holds no map. Nil writes nothing. A catalog that already
	// holds a map keeps it: the catalog wins over the config file.
	Seed *shardmap.Spec
	// PollInterval is how often Watch reads the map's version, as a
	// backstop for lost notifications (default DefaultPollInterval).
	PollInterval time.Duration
	// DirectoryCache bounds the directory entries kept in memory (default
	// DefaultDirectoryCache; negative keeps none).
	DirectoryCache int
	// Name and Addr identify this proxy in the catalog's proxies table;
	// with a Name, Watch writes a heartbeat row there.
	Name, Addr string
	// Logger receives what Watch finds (default slog.Default()).
	Logger *slog.Logger
}

// Store is a connection to the catalog database: the shard map, its
// directory and the two-phase commit decisions. It is safe for
// concurrent use. Close it when done.
type Store struct {
	pool   *pgxpool.Pool
	listen *pgconn.Config // for Watch's dedicated LISTEN connection
	opts   Options
	log    *slog.Logger
	dir    *Directory
	where  string // the catalog's host and database, for logs: never the DSN
}

// Open connects to the catalog at dsn and runs Setup: the schema is
// created if missing and opts.Seed written into an empty catalog. It
// fails if the catalog cannot be reached; callers that start before the
// database is up retry.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := Connect(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect connects to the catalog at dsn without changing it, for tools
// that only read it. The DSN is a libpq URL or key=value string; its
// pgxpool settings (pool_max_conns, ...) apply to the Store's pool.
func Connect(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts passwords from its message only on a best-effort
		// basis, and this may end up in a log.
		return nil, errors.New("catalog: cannot parse the catalog's connection string (not shown)")
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "shardgate catalog"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.DirectoryCache == 0 {
		opts.DirectoryCache = DefaultDirectoryCache
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{opts: opts, where: describe(&cfg.ConnConfig.Config)}
	s.log = opts.Logger.With("catalog", s.where)
	s.listen = cfg.ConnConfig.Config.Copy()
	// A LISTEN connection only reads; keepalives are what notice that its
	// peer vanished without closing it.
	s.listen.DialFunc = (&net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}}).DialContext
	// A pooled connection the server ended while it sat idle (a restart,
	// an administrator) holds the FATAL unread: checking for it costs one
	// non-blocking peek, and spares the next caller a 57P01.
	cfg.PrepareConn = func(_ context.Context, c *pgx.Conn) (bool, error) {
		return pool.Alive(c.PgConn().Conn()), nil
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", s.where, err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("catalog %s: %w", s.where, err)
	}
	s.dir = &Directory{pool: s.pool, cache: newDirCache(opts.DirectoryCache)}
	return s, nil
}

// describe names the catalog in logs and errors: host, port and database.
func describe(c *pgconn.Config) string {
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) + "/" + c.Database
}

// Close closes the Store's connections. Watch must have returned.
func (s *Store) Close() { s.pool.Close() }

// Directory is the catalog's directory, for shardmap.Build. Maps loaded
// by the Store use it.
func (s *Store) Directory() *Directory { return s.dir }

// Setup creates the catalog's schema if it is missing and, if the catalog
// holds no map, writes Options.Seed as version 1. Proxies starting at
// once may all run it: they take turns on an advisory lock. When the
// catalog already holds a map that differs from the seed, Setup logs it
// at info level and leaves the catalog as it is.
func (s *Store) Setup(ctx context.Context) error {
	var seed []byte
	if s.opts.Seed != nil {
		if _, err := shardmap.Build(*s.opts.Seed, s.opts.Shards, 1, nil); err != nil {
			return fmt.Errorf("catalog: the seed map is inconsistent: %w", err)
		}
		var err error
		if seed, err = json.Marshal(s.opts.Seed); err != nil {
			return err
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
			return err
		}
		var marker *string
		if err := tx.QueryRow(ctx, "SELECT obj_description(to_regclass('shardgate.map'), 'pg_class')").Scan(&marker); err != nil {
			return err
		}
		if marker == nil || *marker != schemaVersion {
			if _, err := tx.Exec(ctx, schemaSQL); err != nil {
				return err
			}
		}
		if seed == nil {
			return nil
		}
		tag, err := tx.Exec(ctx, `INSERT INTO shardgate.map (version, spec, shards) VALUES (1, $1::jsonb, $2)
			ON CONFLICT (id) DO NOTHING`, string(seed), s.opts.Shards)
		if err == nil && tag.RowsAffected() == 1 {
			s.log.Info("catalog seeded with the config file's shard map", "version", 1)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("catalog %s: setting up the schema: %w", s.where, err)
	}
	if s.opts.Seed == nil {
		return nil
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	if !sameSpec(snap.Spec, *s.opts.Seed) || !slices.Equal(snap.Shards, s.opts.Shards) {
		s.log.Info("the config file's sharding section differs from the catalog's shard map; the catalog's is used",
			"version", snap.Version)
	}
	return nil
}

// sameSpec compares specs as the catalog stores them, in JSON, where an
// empty list and no list are one.
func sameSpec(a, b shardmap.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// Snapshot is the catalog's shard map as stored.
type Snapshot struct {
	Version uint64
	Spec    shardmap.Spec
	// Shards are the shards the map was written for, in order.
	Shards []string
}

// Snapshot reads the shard map as stored. It returns ErrNoMap when there
// is none, and a *MapError when the stored spec does not decode.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	var version int64
	var spec []byte
	err := s.pool.QueryRow(ctx, "SELECT version, spec::text, shards FROM shardgate.map").Scan(&version, &spec, &snap.Shards)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return snap, ErrNoMap
	case err != nil:
		return snap, fmt.Errorf("catalog %s: reading the shard map: %w", s.where, err)
	}
	snap.Version = uint64(version)
	dec := json.NewDecoder(bytes.NewReader(spec))
	// A misspelt key would otherwise vanish silently, and a distribution
	// with it.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap.Spec); err != nil {
		return snap, &MapError{Version: snap.Version, Err: &shardmap.SpecError{Path: "spec", Msg: strings.TrimPrefix(err.Error(), "json: ")}}
	}
	return snap, nil
}

// Load reads the shard map and builds it over Options.Shards, with the
// catalog's directory. An inconsistent map is refused with a *MapError.
func (s *Store) Load(ctx context.Context) (*shardmap.Map, error) {
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.Build(snap)
}

// Build builds a snapshot's map over Options.Shards, with the catalog's
// directory. An inconsistent map is refused with a *MapError.
func (s *Store) Build(snap Snapshot) (*shardmap.Map, error) {
	shards := s.opts.Shards
	var errs []error
	if len(shards) == 0 {
		shards = snap.Shards
	}
	for i, name := range snap.Shards {
		if !slices.Contains(shards, name) {
			errs = append(errs, &shardmap.SpecError{Path: fmt.Sprintf("shards[%d]", i),
				Msg: fmt.Sprintf("shard %s is not in this proxy's config (shards: %s)", name, strings.Join(shards, ", "))})
		}
	}
	spec := snap.Spec
	if spec.DefaultShard == "" && len(snap.Shards) > 0 {
		// "The first shard" is the first of the catalog's list, which
		// need not be this proxy's first.
		spec.DefaultShard = snap.Shards[0]
	}
	if len(errs) > 0 {
		return nil, &MapError{Version: snap.Version, Err: errors.Join(errs...)}
	}
	m, err := shardmap.Build(spec, shards, snap.Version, s.dir)
	if err != nil {
		return nil, &MapError{Version: snap.Version, Err: err}
	}
	return m, nil
}

// SetSpec writes spec, over shards, as the catalog's new shard map, with
// the version one above the current one (or 1 in an empty catalog), and
// returns that version. The change is one transaction; every Watch
// follows it. An inconsistent spec is refused and nothing is written.
// This, or `shardgate shardmap apply`, is how the map is changed.
func (s *Store) SetSpec(ctx context.Context, spec shardmap.Spec, shards []string) (uint64, error) {
	if _, err := shardmap.Build(spec, shards, 1, nil); err != nil {
		return 0, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	var version int64
	err = s.pool.QueryRow(ctx, `INSERT INTO shardgate.map AS m (version, spec, shards) VALUES (1, $1::jsonb, $2)
		ON CONFLICT (id) DO UPDATE SET version = m.version + 1, spec = excluded.spec, shards = excluded.shards, updated_at = now()
		RETURNING version`, string(js), shards).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("catalog %s: writing the shard map: %w", s.where, err)
	}
	return uint64(version), nil
}

// Decide records the outcome of the two-phase transaction gid unless one
// is recorded already, and returns the recorded one. The committing proxy
// asks to commit, a resolver that finds the transaction in doubt asks to
// roll back: whichever comes first wins, atomically (a racing insert
// waits for the other and then yields), so a decision a dying proxy was
// still sending can never commit one shard after a resolver rolled back
// another. It is idempotent: retry it when the answer was lost.
func (s *Store) Decide(ctx context.Context, gid string, commit bool) (bool, error) {
	var got bool
	err := s.pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO shardgate.twophase_decisions (gid, commit) VALUES ($1, $2) ON CONFLICT (gid) DO NOTHING RETURNING commit)
		SELECT commit FROM ins UNION ALL SELECT commit FROM shardgate.twophase_decisions WHERE gid = $1 LIMIT 1`, gid, commit).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		// The row that won was committed by another session after this
		// statement's snapshot: a new statement sees it.
		err = s.pool.QueryRow(ctx, "SELECT commit FROM shardgate.twophase_decisions WHERE gid = $1", gid).Scan(&got)
	}
	if err != nil {
		return false, fmt.Errorf("catalog %s: deciding the outcome of %s: %w", s.where, gid, err)
	}
	return got, nil
}

// ForgetDecision deletes gid's decision, once every shard has finished
// it.
func (s *Store) ForgetDecision(ctx context.Context, gid string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM shardgate.twophase_decisions WHERE gid = $1", gid)
	if err != nil {
		return fmt.Errorf("catalog %s: forgetting the decision on %s: %w", s.where, gid, err)
	}
	return nil
}

// Heartbeat records that the proxy called name, serving at addr and
// started at started, is alive now.
func (s *Store) Heartbeat(ctx context.Context, name, addr string, started time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO shardgate.proxies AS p (name, addr, started_at, seen_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (name) DO UPDATE SET addr = excluded.addr, started_at = excluded.started_at, seen_at = now()`, name, addr, started)
	if err != nil {
		return fmt.Errorf("catalog %s: heartbeat: %w", s.where, err)
	}
	return nil
}
