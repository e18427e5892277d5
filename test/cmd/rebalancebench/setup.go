package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/test/cluster"
)

// Names the benchmark uses everywhere.
const (
	appUser     = "app"
	appPassword = "app"
	appDB       = "app"
	catalogDB   = "sg_catalog"
	// dist is the distribution and its one table.
	dist = "t"
	// binName is what the shardgate under test is called while it runs.
	// Colleagues on the same machine stop their own dev proxies by name
	// (pkill shardgate), which would kill ours mid-run; a name, and
	// paths, without "shardgate" keep ours out of such sweeps.
	binName = "sgrebal-proxy"
	// proxyStopTimeout bounds a child's shutdown before it is killed.
	proxyStopTimeout = 10 * time.Second
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
	proxy   *child
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
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	b.cfgPath = filepath.Join(b.work, "shardgate.yaml")
	primaries := []string{s0.Addr(), b.cl.Shards[1].Primary.Addr()}
	if err := os.WriteFile(b.cfgPath, []byte(renderConfig(listen, primaries)), 0o600); err != nil {
		return err
	}
	b.dsn = fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", port, appUser, appPassword, appDB)
	b.proxy, err = startChild("shardgate", filepath.Join(b.work, "proxy.log"), b.bin, "serve", "--config", b.cfgPath)
	if err != nil {
		return err
	}
	if err := b.proxy.waitLogin(ctx, b.dsn, 30*time.Second); err != nil {
		return err
	}
	b.logf("shardgate (pid %d) on %s", b.proxy.pid(), listen)
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
	bin := filepath.Join(b.work, binName)
	if b.cfg.proxyBin != "" {
		data, err := os.ReadFile(b.cfg.proxyBin)
		if err != nil {
			return "", fmt.Errorf("--proxy-bin: %w", err)
		}
		return bin, os.WriteFile(bin, data, 0o755)
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run rebalancebench inside the shardgate module or pass --proxy-bin (go env GOMOD: %q, %v)", gomod, err)
	}
	b.logf("building shardgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shardgate")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/shardgate: %w\n%s", err, out)
	}
	return bin, nil
}

// teardown stops the proxy and the cluster and removes the work
// directory (unless --keep-logs).
func (b *bench) teardown() {
	if b.proxy != nil {
		b.logf("stopping shardgate")
		b.proxy.stop(proxyStopTimeout)
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

// child is a process the benchmark started: shardgate serving, or a move.
// It runs in its own process group, so that the terminal's Ctrl-C reaches
// only the benchmark, which then stops its children in a known order.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// startChild starts bin with its output in logPath (and in also, if
// given).
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	return startChildTee(name, logPath, nil, bin, args...)
}

func startChildTee(name, logPath string, also *strings.Builder, bin string, args ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if also != nil {
		// exec serializes writes when Stdout and Stderr are the same
		// writer, so the builder is never written by two goroutines.
		w := &teeWriter{f: f, b: also}
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	// The waiter ends when the process does; it closes the log.
	go func() {
		c.waitErr = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

type teeWriter struct {
	f *os.File
	b *strings.Builder
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.b.Write(p)
	return t.f.Write(p)
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and kills the child after timeout.
func (c *child) stop(timeout time.Duration) {
	if c == nil || c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// logTail returns the last lines of the child's log, for errors.
func (c *child) logTail(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLogin polls until a login through the child works and a query
// runs; it fails early if the child exits.
func (c *child) waitLogin(ctx context.Context, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if c.exited() {
			return fmt.Errorf("%s exited during startup (%v); its log ends with:\n%s", c.name, c.waitErr, c.logTail(20))
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not accepting logins after %v: %v; its log ends with:\n%s", c.name, timeout, err, c.logTail(20))
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv drops PG* variables, which would silently redirect the move
// tool (it reads PGUSER, PGPASSWORD and PGDATABASE; the benchmark passes
// --user and --database instead), and pins messages to English.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") || strings.HasPrefix(kv, "SHARDGATE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// seed makes each run's key choices differ.
var seed = rand.Uint64()
