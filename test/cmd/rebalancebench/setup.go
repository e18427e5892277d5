package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	// Aliased: this package's run in progress is its type bench.
	sgbench "github.com/shardgate/shardgate/test/bench"
	"github.com/shardgate/shardgate/test/cluster"
)

// Names the benchmark uses everywhere.
const (
	// The app role and database are test/bench's, since
	// sgbench.StartShardgate logs in as them to see that the proxy is up.
	appUser     = sgbench.User
	appPassword = sgbench.Password
	appDB       = sgbench.Database
	catalogDB   = "sg_catalog"
	// dist is the distribution and its one table.
	dist = "t"
	// binName is what the shardgate under test is called while it runs:
	// like benchrun's, without "shardgate", so that colleagues' pkill
	// shardgate sweeps spare it (see sgbench.BuildShardgate), and not
	// benchrun's own, so that the two benchmarks' proxies can be told
	// apart.
	binName = "sgrebal-proxy"
)

// tableDDL is t on both shards: about 100 bytes a row on disk.
const tableDDL = "CREATE TABLE t (id bigint PRIMARY KEY, a bigint NOT NULL, b text NOT NULL, c timestamptz NOT NULL)"

// bench is a run in progress: what it started, to be stopped in
// teardown.
type bench struct {
	cfg     config
	work    string // temporary directory: binary, config, logs
	bin     string // shardgate
	cfgPath string // the proxy's (and the move tool's) config
	cl      *cluster.Cluster
	proxy   *sgbench.Proc
	dsn     string // clients' DSN through shardgate
	rep     *report
	machine string // machineLine before anything started
}

// setup builds shardgate, starts the cluster and the proxy and loads the
// rows; teardown undoes whatever part of it happened.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.bin, err = b.shardgateBinary(ctx); err != nil {
		return err
	}
	b.logf("starting 2 shards (primaries only)")
	b.cl, err = cluster.Start(ctx, cluster.Options{
		Shards:    2,
		Users:     []cluster.User{{Name: appUser, Password: appPassword}},
		Databases: []cluster.Database{{Name: appDB, Owner: appUser}},
		ExtraConf: []string{
			// PostgreSQL 15 starts a subscription's workers at most once
			// per wal_retrieve_retry_interval (5s by default): every move
			// would wait that long before its copy begins.
			"wal_retrieve_retry_interval = 200ms",
			// The 1M rows (about 130 MB with the index) stay in memory.
			"shared_buffers = 256MB",
		},
	})
	if err != nil {
		return err
	}
	s0 := b.cl.Shards[0].Primary
	if err := s0.Exec(ctx, "CREATE DATABASE "+catalogDB+" OWNER "+appUser); err != nil {
		return err
	}
	if err := b.load(ctx); err != nil {
		return err
	}
	b.cfgPath = filepath.Join(b.work, "shardgate.yaml")
	primaries := []string{s0.Addr(), b.cl.Shards[1].Primary.Addr()}
	var port int
	b.proxy, port, err = sgbench.StartShardgate(ctx, b.bin, b.cfgPath, filepath.Join(b.work, "proxy.log"), func(listen string) string {
		return renderConfig(listen, primaries)
	})
	if err != nil {
		return err
	}
	b.dsn = sgbench.ProxyDSN(port)
	b.logf("shardgate (pid %d) on 127.0.0.1:%d", b.proxy.Pid(), port)
	pgVersion, _ := s0.QueryString(ctx, "SHOW server_version")
	b.rep.meta = []string{
		"date: " + time.Now().Format("2006-01-02 15:04 MST"),
		b.machine,
		fmt.Sprintf("servers: PostgreSQL %s, 2 shards, primaries only (a move reads from and writes to primaries), wal_retrieve_retry_interval 200ms", pgVersion),
		fmt.Sprintf("data: t(id bigint primary key, a bigint, b text, c timestamptz), %d rows COPYed into s0; map [,0) s0, [0,) s0, catalog on s0", b.cfg.rows),
		fmt.Sprintf("load: %d clients through one shardgate (transaction pooling), %s, 80%% UPDATE of a random loaded row, 20%% INSERT of a new key", b.cfg.clients, rateText(b.cfg.rate)),
		fmt.Sprintf("moves: shardgate rebalance move --max-pause %s, run as a child process", b.cfg.maxPause),
	}
	return nil
}

// shardgateBinary copies --proxy-bin, or builds ./cmd/shardgate of this
// module, into the work directory as binName.
func (b *bench) shardgateBinary(ctx context.Context) (string, error) {
	if b.cfg.proxyBin != "" {
		return sgbench.CopyShardgate(b.cfg.proxyBin, b.work, binName)
	}
	b.logf("building shardgate")
	return sgbench.BuildShardgate(ctx, b.work, binName)
}

// teardown stops the proxy and the cluster and removes the work
// directory (unless --keep-logs).
func (b *bench) teardown() {
	if b.proxy != nil {
		b.logf("stopping shardgate")
		b.proxy.Stop(sgbench.ProxyStopTimeout)
	}
	if b.cl != nil {
		b.logf("stopping the cluster")
		if err := b.cl.Stop(); err != nil {
			b.logf("stop cluster: %v", err)
		}
	}
	if b.cfg.keepLogs {
		b.logf("logs kept in %s", b.work)
		return
	}
	os.RemoveAll(b.work)
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.cfg.log, "rebalancebench: "+format+"\n", a...)
}

// renderConfig is shardgate's config: both primaries, the catalog on s0
// seeded with t's map (the whole hash space on s0, cut at 0 so that
// either half can move), info logs.
func renderConfig(listen string, primaries []string) string {
	var b strings.Builder
	b.WriteString("# generated by rebalancebench\n")
	fmt.Fprintf(&b, "listen:\n  addr: %s\n", listen)
	b.WriteString("pool:\n  mode: transaction\n  size: 20\n")
	fmt.Fprintf(&b, "users:\n  - name: %s\n    password: %s\n    auth: scram-sha-256\n", appUser, appPassword)
	b.WriteString("shards:\n")
	for i, addr := range primaries {
		fmt.Fprintf(&b, "  - name: s%d\n    hosts:\n      - addr: %s\n        role: primary\n", i, addr)
	}
	b.WriteString(`sharding:
  distributions:
    - name: ` + dist + `
      method: hash
      key_type: bigint
      tables:
        - name: t
          key: id
      ranges:
        - hi: "0"
          shard: s0
        - lo: "0"
          shard: s0
`)
	fmt.Fprintf(&b, "catalog:\n  dsn: postgres://%s:%s@%s/%s?sslmode=disable\n", appUser, appPassword, primaries[0], catalogDB)
	b.WriteString("log:\n  level: info\n  format: text\n")
	return b.String()
}

// load creates t on both shards and COPYs the rows into s0.
func (b *bench) load(ctx context.Context) error {
	begin := time.Now()
	for _, s := range b.cl.Shards {
		if err := execApp(ctx, s.Primary, tableDDL); err != nil {
			return err
		}
	}
	b.logf("loading %d rows into s0 with COPY", b.cfg.rows)
	conn, err := pgx.Connect(ctx, b.cl.Shards[0].Primary.DSN(appUser, appPassword, appDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	now := time.Now()
	id := int64(0)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if id >= int64(b.cfg.rows) {
			return nil, nil
		}
		id++
		return []any{id, int64(0), filler(id), now}, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"id", "a", "b", "c"}, src); err != nil {
		return fmt.Errorf("COPY into s0: %w", err)
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) t"); err != nil {
		return err
	}
	b.logf("loaded in %v", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// filler is a row's b: 50 characters, so that a row is about 100 bytes.
func filler(id int64) string {
	return fmt.Sprintf("row %012d %s", id, strings.Repeat("x", 33))
}

// execApp runs sql as app in the app database on h.
func execApp(ctx context.Context, h *cluster.Host, sql string) error {
	conn, err := pgx.Connect(ctx, h.DSN(appUser, appPassword, appDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s on %s: %w", sql, h.Name, err)
	}
	return nil
}

// seed makes each run's key choices differ.
var seed = rand.Uint64()
