package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/test/cluster"
)

// Operations tests: the shardgate binary as an operator runs it, with its
// metrics endpoint, its admin console, live reloads (RELOAD and SIGHUP),
// the graceful drain of SIGTERM, and a rolling restart of two processes
// sharing one address.

// opsLog collects a process's output; safe to read while it runs.
type opsLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *opsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *opsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// opsProc is a running shardgate binary. Unlike startShardgate's process
// it keeps its config file's path (to rewrite it before a reload), waits
// for its own "listening" line rather than for the address to answer
// (another process may share the address), and reaps it in a goroutine
// so a test can wait for its exit with a deadline.
type opsProc struct {
	cmd  *exec.Cmd
	path string // the config file
	addr string
	log  *opsLog
	// exited is closed when the process has been reaped; err is then
	// cmd.Wait's result.
	exited chan struct{}
	err    error
}

// opsCfg is the YAML config of a test's shardgate.
type opsCfg struct {
	addr      string
	hosts     []string // shard s0's hosts; the first is the primary
	reusePort bool
	// extra is more YAML sections (pool, metrics, shutdown, ...).
	extra string
}

func (c opsCfg) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen:\n  addr: %s\n", c.addr)
	if c.reusePort {
		b.WriteString("  reuse_port: true\n")
	}
	b.WriteString(`users:
  - name: app
    password: app
    auth: scram-sha-256
admin:
  users: [app]
shards:
  - name: s0
    hosts:
`)
	for i, h := range c.hosts {
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		fmt.Fprintf(&b, "      - { addr: %s, role: %s }\n", h, role)
	}
	b.WriteString(c.extra)
	return b.String()
}

// opsStart runs the binary with cfg and waits until it listens.
func opsStart(t *testing.T, bin string, cfg opsCfg) *opsProc {
	t.Helper()
	p := opsLaunch(t, bin, cfg)
	p.waitLog(t, "shardgate listening")
	return p
}

// opsLaunch runs the binary with cfg.
func opsLaunch(t *testing.T, bin string, cfg opsCfg) *opsProc {
	t.Helper()
	p := &opsProc{path: filepath.Join(t.TempDir(), "shardgate.yaml"), addr: cfg.addr, log: &opsLog{}, exited: make(chan struct{})}
	p.rewrite(t, cfg)
	p.cmd = exec.Command(bin, "serve", "-c", p.path)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The reaper: ends when the process does, killed by the cleanup at
	// the latest; its result is p.err.
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("shardgate %s log:\n%s", p.addr, p.log)
		}
	})
	return p
}

// waitLog waits until the process logs msg.
func (p *opsProc) waitLog(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.log.String(), msg) {
		select {
		case <-p.exited:
			t.Fatalf("shardgate exited (%v) before logging %q:\n%s", p.err, msg, p.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("shardgate %s did not log %q:\n%s", p.addr, msg, p.log)
		}
	}
}

// rewrite replaces the config file, for the next reload.
func (p *opsProc) rewrite(t *testing.T, cfg opsCfg) {
	t.Helper()
	if err := os.WriteFile(p.path, []byte(cfg.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *opsProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *opsProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("shardgate still running %s after being told to stop:\n%s", d, p.log)
	}
	return p.cmd.ProcessState.ExitCode()
}

// dsn is a connection string through the process to database db.
func (p *opsProc) dsn(db string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s user=app password=app dbname=%s sslmode=disable connect_timeout=5", host, port, db)
}

// opsConsole is a session on the admin console, keeping the notices it
// got.
type opsConsole struct {
	conn    *pgx.Conn
	mu      sync.Mutex
	notices []string
}

func opsConnectConsole(t *testing.T, p *opsProc) *opsConsole {
	t.Helper()
	cfg, err := pgx.ParseConfig(p.dsn("shardgate"))
	if err != nil {
		t.Fatal(err)
	}
	c := &opsConsole{}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		c.mu.Lock()
		c.notices = append(c.notices, n.Message)
		c.mu.Unlock()
	}
	if c.conn, err = pgx.ConnectConfig(ctxT(t), cfg); err != nil {
		t.Fatalf("console: %v", err)
	}
	t.Cleanup(func() { c.conn.Close(context.Background()) })
	return c
}

// run runs a command and returns the notices it raised.
func (c *opsConsole) run(t *testing.T, cmd string) ([]string, error) {
	t.Helper()
	c.mu.Lock()
	c.notices = nil
	c.mu.Unlock()
	_, err := c.conn.Exec(ctxT(t), cmd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notices, err
}

// show runs a SHOW command and returns its rows as column -> text.
func (c *opsConsole) show(t *testing.T, cmd string) []map[string]string {
	t.Helper()
	rows, err := c.conn.Query(ctxT(t), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		row := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			row[fd.Name] = string(rows.RawValues()[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

// opsSeries is one sample of a scrape.
type opsSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// opsScrape reads /metrics and parses the text format, enough for
// shardgate's series (no escaped quotes in label values).
func opsScrape(t *testing.T, metricsAddr string) []opsSeries {
	t.Helper()
	code, body := opsGet(t, "http://"+metricsAddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", code, body)
	}
	var out []opsSeries
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := opsSeries{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// opsSum adds up the series named name whose labels include match.
func opsSum(series []opsSeries, name string, match map[string]string) float64 {
	sum := 0.0
next:
	for _, s := range series {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
	}
	return sum
}

func opsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// opsWaitHTTP waits until the metrics listener answers.
func opsWaitHTTP(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	if !eventually(t, 10*time.Second, func() bool {
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}) {
		t.Fatalf("metrics listener %s does not answer", addr)
	}
}

// opsPgbench starts pgbench through p with a custom script (-n: no
// vacuum of pgbench's own tables, which the tests do not create). The
// caller waits for it; the cleanup kills it if it is still running.
func opsPgbench(t *testing.T, p *opsProc, script string, args ...string) (*exec.Cmd, *opsLog) {
	t.Helper()
	bin := "pgbench"
	if dir, err := cluster.FindBinDir(""); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "pgbench")); err == nil {
			bin = filepath.Join(dir, "pgbench")
		}
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Skip("no pgbench")
	}
	file := filepath.Join(t.TempDir(), "bench.sql")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.addr)
	cmd := exec.Command(bin, append([]string{"-n", "-f", file, "-h", host, "-p", port, "-U", "app"}, append(args, "app")...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD=app", "PGSSLMODE=disable")
	out := &opsLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// opsTable (re)creates a table of app's on the primary, directly, and
// waits until the replica has it too.
func opsTable(t *testing.T, ddl ...string) *pgx.Conn {
	t.Helper()
	db := connectDSN(t, primary().DSN("app", "app", "app"))
	for _, sql := range ddl {
		if _, err := db.Exec(ctxT(t), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	lsn, err := primary().CurrentLSN(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Shards[0].Replicas[0].WaitReplayed(ctxT(t), lsn); err != nil {
		t.Fatal(err)
	}
	return db
}

func opsCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func opsInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not an integer: %q", s)
	}
	return n
}

func opsSkip(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the binary")
	}
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
}

// TestOpsMetricsDuringPgbench scrapes /metrics while pgbench runs through
// the binary, checks the counters move, and that once traffic stops they
// equal SHOW STATS exactly: both read the same counters. It also checks
// /healthz and /readyz, including a proxy whose only primary cannot be
// reached (not ready, but alive).
func TestOpsMetricsDuringPgbench(t *testing.T) {
	opsSkip(t)
	opsTable(t, "drop table if exists ops_metrics",
		"create table ops_metrics (id int primary key, v int not null)",
		"insert into ops_metrics select g, 0 from generate_series(1, 100) g")
	bin := buildShardgate(t)
	metricsAddr := freeAddr(t)
	p := opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr(), pg.Shards[0].Replicas[0].Addr()},
		extra: fmt.Sprintf("metrics:\n  listen: %s\n", metricsAddr)})
	opsWaitHTTP(t, metricsAddr)
	console := opsConnectConsole(t, p)

	// A transaction on the primary, then a read, which the replica takes.
	bench, out := opsPgbench(t, p, `\set id random(1, 100)
begin;
update ops_metrics set v = v + 1 where id = :id;
select v from ops_metrics where id = :id;
commit;
select v from ops_metrics where id = :id;
`, "-T", "3", "-c", "4", "-j", "2")
	type moving struct{ xacts, ok, durations, clients, servers float64 }
	sample := func() moving {
		s := opsScrape(t, metricsAddr)
		return moving{
			xacts:     opsSum(s, "shardgate_pool_transactions_total", nil),
			ok:        opsSum(s, "shardgate_pool_queries_total", map[string]string{"outcome": "ok"}),
			durations: opsSum(s, "shardgate_query_duration_seconds_count", nil),
			clients:   opsSum(s, "shardgate_client_connections", nil),
			servers:   opsSum(s, "shardgate_pool_server_connections", nil),
		}
	}
	time.Sleep(time.Second)
	first := sample()
	time.Sleep(800 * time.Millisecond)
	second := sample()
	t.Logf("during pgbench: %+v then %+v", first, second)
	if !(second.xacts > first.xacts && second.ok > first.ok && second.durations > first.durations && first.xacts > 0) {
		t.Errorf("counters did not move during pgbench: %+v then %+v", first, second)
	}
	// pgbench's 4 clients (the console is not one of the pools' clients).
	if first.clients < 4 || second.clients < 4 || first.servers < 1 || second.servers < 1 {
		t.Errorf("gauges during pgbench: %+v and %+v; want >= 4 clients and >= 1 server connection", first, second)
	}
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	t.Logf("pgbench: %s", opsLastLine(out.String(), "tps"))

	// At a quiet moment (two SHOW STATS equal around the scrape), the
	// metrics are SHOW STATS's numbers.
	type key struct{ shard, host, role, user, database string }
	counters := func(rows []map[string]string) map[key][3]int64 {
		out := map[key][3]int64{}
		for _, r := range rows {
			out[key{r["shard"], r["host"], r["role"], r["user"], r["database"]}] = [3]int64{
				opsInt(t, r["total_xact_count"]), opsInt(t, r["total_query_count"]), opsInt(t, r["total_error_count"])}
		}
		return out
	}
	var stats map[key][3]int64
	var scrape []opsSeries
	if !eventually(t, 5*time.Second, func() bool {
		before := counters(console.show(t, "SHOW STATS"))
		scrape = opsScrape(t, metricsAddr)
		stats = counters(console.show(t, "SHOW STATS"))
		return fmt.Sprint(before) == fmt.Sprint(stats)
	}) {
		t.Fatal("SHOW STATS still changing after pgbench ended")
	}
	roles := map[string]bool{}
	for k, v := range stats {
		l := map[string]string{"shard": k.shard, "host": k.host, "role": k.role, "user": k.user, "database": k.database}
		ok := map[string]string{"outcome": "ok"}
		bad := map[string]string{"outcome": "error"}
		for n, v := range l {
			ok[n], bad[n] = v, v
		}
		got := [3]int64{int64(opsSum(scrape, "shardgate_pool_transactions_total", l)),
			int64(opsSum(scrape, "shardgate_pool_queries_total", ok) + opsSum(scrape, "shardgate_pool_queries_total", bad)),
			int64(opsSum(scrape, "shardgate_pool_queries_total", bad))}
		if got != v {
			t.Errorf("pool %+v: metrics say xacts, queries, errors = %v; SHOW STATS says %v", k, got, v)
		}
		if v[0] > 0 {
			roles[k.role] = true
		}
	}
	if !roles["primary"] || !roles["replica"] {
		t.Errorf("SHOW STATS %v: want traffic on the primary and on the replica", stats)
	}
	// pgbench's clients are gone; the console is not a client of the pools.
	if !eventually(t, 5*time.Second, func() bool {
		return opsSum(opsScrape(t, metricsAddr), "shardgate_client_connections", nil) == 0
	}) {
		t.Errorf("shardgate_client_connections still %v after pgbench left", opsSum(opsScrape(t, metricsAddr), "shardgate_client_connections", nil))
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := opsGet(t, "http://"+metricsAddr+path); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", path, code, body)
		}
	}

	t.Run("unreachable primary", func(t *testing.T) {
		metricsAddr := freeAddr(t)
		opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{freeAddr(t)},
			extra: fmt.Sprintf("metrics:\n  listen: %s\nmonitor:\n  timeout: 200ms\n", metricsAddr)})
		opsWaitHTTP(t, metricsAddr)
		if code, body := opsGet(t, "http://"+metricsAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "s0") {
			t.Errorf("/readyz: %d %q, want 503 naming shard s0", code, body)
		}
		if code, body := opsGet(t, "http://"+metricsAddr+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d %q, want 200: the process is alive", code, body)
		}
	})
}

// opsLastLine returns the last line of s that contains sub.
func opsLastLine(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

// TestOpsReload changes a running binary's config under connected
// clients: RELOAD grows the pools and adds the replica, which then takes
// reads; SIGHUP reloads too; an invalid file changes nothing; a key that
// needs a restart is reported. No client is disconnected, and the one in
// a transaction commits.
func TestOpsReload(t *testing.T) {
	opsSkip(t)
	db := opsTable(t, "drop table if exists ops_reload", "create table ops_reload (id int)")
	bin := buildShardgate(t)
	replica := pg.Shards[0].Replicas[0].Addr()
	cfg := opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
		extra: "pool:\n  size: 2\n  checkout_timeout: 10s\nrouting:\n  replica_reads: on\n"}
	p := opsStart(t, bin, cfg)
	console := opsConnectConsole(t, p)
	ctx := ctxT(t)

	var idle []*pgx.Conn
	for range 3 {
		c := connectDSN(t, p.dsn("app"))
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	tx, err := connectDSN(t, p.dsn("app")).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into ops_reload values (1)"); err != nil {
		t.Fatal(err)
	}
	inRecovery := func(c *pgx.Conn) bool {
		var r bool
		if err := c.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&r); err != nil {
			t.Fatalf("a client connected before the reload: %v", err)
		}
		return r
	}
	// The replica is not in the config yet: no read goes there. (This is
	// what the check after the reload would see if it did not apply.)
	for i := range 20 {
		if inRecovery(idle[i%len(idle)]) {
			t.Fatal("a read went to the replica, which is not configured yet")
		}
	}
	if hosts := console.show(t, "SHOW HOSTS"); len(hosts) != 1 {
		t.Fatalf("SHOW HOSTS before the reload: %v, want the primary only", hosts)
	}
	// A second transaction takes the pool's other connection, so a third
	// client waits for one (checkout_timeout is 10s) until the reload
	// grows the pool. Its goroutine ends with its query. (It logs in
	// first: a login takes a server connection too.)
	waiter := connectDSN(t, p.dsn("app"))
	tx2, err := connectDSN(t, p.dsn("app")).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "insert into ops_reload values (2)")
		waited <- err
	}()
	select {
	case err := <-waited:
		t.Fatalf("a third transaction ran with pool.size 2 and two open: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	cfg.hosts = append(cfg.hosts, replica)
	cfg.extra = "pool:\n  size: 5\n  checkout_timeout: 10s\nrouting:\n  replica_reads: on\n"
	p.rewrite(t, cfg)
	notices, err := console.run(t, "RELOAD")
	if err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	if n := strings.Join(notices, "\n"); !strings.Contains(n, "pool.size") || !strings.Contains(n, "shards") {
		t.Errorf("RELOAD notices %q: want pool.size and shards applied", notices)
	}
	poolSizes := func() []string {
		var sizes []string
		for _, r := range console.show(t, "SHOW POOLS") {
			sizes = append(sizes, r["pool_size"])
		}
		return sizes
	}

	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("the client waiting for a connection during the reload: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Error("the client waiting for a connection still waits 3s after RELOAD grew the pool")
	}
	if err := tx2.Commit(ctx); err != nil {
		t.Errorf("the second transaction open during the reload: %v", err)
	}
	// Every client is still connected; the transaction commits.
	for _, c := range idle {
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Errorf("client disconnected by the reload: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Errorf("the transaction open during the reload: %v", err)
	}
	var n int
	if err := db.QueryRow(ctx, "select count(*) from ops_reload").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows of the transactions around the reload: %d, %v; want 2", n, err)
	}
	// The replica takes reads within a few seconds.
	if !eventually(t, 5*time.Second, func() bool { return inRecovery(idle[0]) }) {
		t.Errorf("no read reached the replica added by RELOAD; SHOW HOSTS: %v", console.show(t, "SHOW HOSTS"))
	}
	for _, h := range console.show(t, "SHOW HOSTS") {
		if h["host"] == replica && (h["role"] != "replica" || opsInt(t, h["reads"]) == 0) {
			t.Errorf("SHOW HOSTS row of the added replica: %v, want role replica and reads > 0", h)
		}
	}
	sizes := poolSizes()
	for _, s := range sizes {
		if s != "5" {
			t.Errorf("SHOW POOLS pool_size %v after RELOAD, want 5 everywhere", sizes)
			break
		}
	}

	t.Run("SIGHUP", func(t *testing.T) {
		cfg.extra += "log:\n  slow_query: 250ms\n"
		p.rewrite(t, cfg)
		p.signal(t, syscall.SIGHUP)
		got := ""
		if !eventually(t, 5*time.Second, func() bool {
			for _, r := range console.show(t, "SHOW CONFIG") {
				if r["key"] == "log.slow_query" {
					got = r["value"]
				}
			}
			return got == "250ms"
		}) {
			t.Errorf("SHOW CONFIG log.slow_query = %q after SIGHUP, want 250ms", got)
		}
	})

	t.Run("invalid file", func(t *testing.T) {
		bad := cfg
		bad.extra = strings.Replace(cfg.extra, "size: 5", "size: -1", 1)
		p.rewrite(t, bad)
		_, err := console.run(t, "RELOAD")
		if opsCode(err) != "F0000" || !strings.Contains(err.Error(), "pool.size") {
			t.Errorf("RELOAD of pool.size -1: %v, want SQLSTATE F0000 naming pool.size", err)
		}
		if got := poolSizes(); fmt.Sprint(got) != fmt.Sprint(sizes) {
			t.Errorf("SHOW POOLS pool_size %v after a refused RELOAD, want %v still", got, sizes)
		}
	})

	t.Run("restart key", func(t *testing.T) {
		moved := cfg
		moved.addr = freeAddr(t)
		p.rewrite(t, moved)
		notices, err := console.run(t, "RELOAD")
		if err != nil {
			t.Fatalf("RELOAD: %v", err)
		}
		if n := strings.Join(notices, "\n"); !strings.Contains(n, "need a restart") || !strings.Contains(n, "listen.addr") {
			t.Errorf("RELOAD notices %q: want listen.addr reported as needing a restart", notices)
		}
		if _, err := idle[1].Exec(ctx, "select 1"); err != nil {
			t.Errorf("client after a RELOAD of listen.addr: %v", err)
		}
	})

	for _, c := range idle {
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Errorf("client disconnected by a reload: %v", err)
		}
	}
}

// TestOpsSigtermDrain sends SIGTERM to a binary under pgbench load with a
// transaction open: the listener closes at once, idle clients get
// 57P01, the open transaction commits, and the process exits 0 as soon as
// nothing runs. With a transaction open past the drain timeout, the
// process exits at the timeout and the transaction is not committed.
func TestOpsSigtermDrain(t *testing.T) {
	opsSkip(t)
	db := opsTable(t, "drop table if exists ops_drain", "create table ops_drain (id int, who text)")
	bin := buildShardgate(t)
	ctx := ctxT(t)
	rows := func(id int) int {
		var n int
		if err := db.QueryRow(ctx, "select count(*) from ops_drain where id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	openTx := func(p *opsProc, id int) pgx.Tx {
		tx, err := connectDSN(t, p.dsn("app")).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "insert into ops_drain values ($1, 'tx')", id); err != nil {
			t.Fatal(err)
		}
		return tx
	}

	t.Run("transactions finish", func(t *testing.T) {
		const drain = 5 * time.Second
		metricsAddr := freeAddr(t)
		p := opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
			extra: fmt.Sprintf("shutdown:\n  drain_timeout: %s\nmetrics:\n  listen: %s\n", drain, metricsAddr)})
		opsWaitHTTP(t, metricsAddr)
		bench, out := opsPgbench(t, p, `\set id random(1000, 2000)
begin;
insert into ops_drain values (:id, 'pgbench');
select count(*) from ops_drain where id = :id;
end;
`, "-T", "10", "-c", "3")
		// idle waits for a message from the proxy: the FATAL that ends
		// its session. The goroutine ends with it, or with ctx.
		idle := connectDSN(t, p.dsn("app"))
		if _, err := idle.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		idleErr := make(chan error, 1)
		go func() { idleErr <- idle.PgConn().WaitForNotification(ctx) }()
		idle2 := connectDSN(t, p.dsn("app"))
		if _, err := idle2.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		tx := openTx(p, 1)
		time.Sleep(time.Second) // pgbench is under way
		// A lone statement running at SIGTERM finishes too. Its goroutine
		// ends with it.
		slow := connectDSN(t, p.dsn("app"))
		slowErr := make(chan error, 1)
		go func() {
			_, err := slow.Exec(ctx, "select pg_sleep(0.5)")
			slowErr <- err
		}()
		time.Sleep(100 * time.Millisecond)

		start := time.Now()
		p.signal(t, syscall.SIGTERM)
		refused := eventually(t, time.Second, func() bool {
			c, err := net.Dial("tcp", p.addr)
			if err == nil {
				c.Close()
			}
			return errors.Is(err, syscall.ECONNREFUSED)
		})
		if !refused {
			t.Error("new connections still accepted 1s after SIGTERM")
		}
		if c, err := connectDSNErr(p.dsn("app")); err == nil {
			c.Close(ctx)
			t.Error("a client connected after SIGTERM")
		}
		// Out of the load balancer while it drains.
		if code, body := opsGet(t, "http://"+metricsAddr+"/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz while draining: %d %q, want 503", code, body)
		}
		time.Sleep(time.Until(start.Add(time.Second)))
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("COMMIT of the transaction open at SIGTERM: %v", err)
		}
		code := p.wait(t, drain+3*time.Second)
		took := time.Since(start)
		t.Logf("exit status %d, %s after SIGTERM (drain timeout %s)", code, took.Round(time.Millisecond), drain)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if took >= drain {
			t.Errorf("exit %s after SIGTERM: the drain waited for its timeout although every transaction had ended", took)
		}
		if !strings.Contains(p.log.String(), "shut down cleanly") {
			t.Errorf("the log does not say the shutdown was clean:\n%s", p.log)
		}
		if n := rows(1); n != 1 {
			t.Errorf("%d rows of the transaction committed during the drain, want 1", n)
		}
		if err := <-slowErr; err != nil {
			t.Errorf("statement running at SIGTERM: %v", err)
		}
		select {
		case err := <-idleErr:
			if opsCode(err) != "57P01" {
				t.Errorf("idle client ended with %v, want SQLSTATE 57P01", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("idle client not told its session ended")
		}
		if _, err := idle2.Exec(ctx, "select 1"); err == nil {
			t.Error("an idle client's query succeeded after the shutdown")
		} else {
			t.Logf("idle client's next query: %v", err)
		}
		bench.Wait()
		t.Logf("pgbench: %s", opsLastLine(out.String(), "aborted"))
	})

	t.Run("drain timeout", func(t *testing.T) {
		const drain = time.Second
		p := opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
			extra: fmt.Sprintf("shutdown:\n  drain_timeout: %s\n", drain)})
		tx := openTx(p, 2)
		start := time.Now()
		p.signal(t, syscall.SIGTERM)
		code := p.wait(t, drain+3*time.Second)
		took := time.Since(start)
		t.Logf("exit status %d, %s after SIGTERM (drain timeout %s)", code, took.Round(time.Millisecond), drain)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if took < drain {
			t.Errorf("exit %s after SIGTERM, before the drain timeout, with a transaction open", took)
		}
		if err := tx.Commit(ctx); err == nil {
			t.Error("COMMIT after the drain timeout succeeded")
		}
		if n := rows(2); n != 0 {
			t.Errorf("%d rows of the transaction cut by the drain timeout, want 0", n)
		}
	})

	t.Run("back-to-back transactions", func(t *testing.T) {
		// Clients that start their next transaction as soon as the last
		// one commits are between transactions too: the drain must end
		// them at the end of the transaction running at SIGTERM, not let
		// them run more until the drain timeout cuts one in the middle.
		const drain = 5 * time.Second
		p := opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
			extra: fmt.Sprintf("shutdown:\n  drain_timeout: %s\n", drain)})
		type ended struct {
			after time.Duration
			err   error
		}
		results := make(chan ended, 3)
		var sigterm atomic.Pointer[time.Time]
		// The clients: each loops until its session is ended, and
		// reports when and how.
		for range 3 {
			conn := connectDSN(t, p.dsn("app"))
			go func() {
				for {
					err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, "select pg_sleep(0.02)")
						return err
					})
					if err != nil {
						var after time.Duration
						if at := sigterm.Load(); at != nil {
							after = time.Since(*at)
						}
						results <- ended{after, err}
						return
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		sigterm.Store(&start)
		p.signal(t, syscall.SIGTERM)
		code := p.wait(t, drain+3*time.Second)
		took := time.Since(start)
		t.Logf("exit status %d, %s after SIGTERM (drain timeout %s)", code, took.Round(time.Millisecond), drain)
		for range 3 {
			r := <-results
			t.Logf("client ended %s after SIGTERM: %v", r.after.Round(time.Millisecond), r.err)
			// A client running transactions back to back is rarely idle
			// when the drain polls: it must be refused its next
			// transaction instead (the session's dispatch does that).
			if opsCode(r.err) != "57P01" || r.after > time.Second {
				t.Errorf("client ended %s after SIGTERM with %v; want 57P01 at the end of its running transaction", r.after, r.err)
			}
		}
		if code != 0 || took > 2*time.Second {
			t.Errorf("exit status %d %s after SIGTERM; want 0 as soon as the running transactions ended", code, took)
		}
	})

	t.Run("console SHUTDOWN", func(t *testing.T) {
		p := opsStart(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()}})
		console := opsConnectConsole(t, p)
		tx := openTx(p, 3)
		if _, err := console.run(t, "SHUTDOWN"); err != nil {
			t.Fatalf("SHUTDOWN: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("COMMIT of the transaction open at SHUTDOWN: %v", err)
		}
		if code := p.wait(t, 5*time.Second); code != 0 {
			t.Errorf("exit status %d after SHUTDOWN, want 0", code)
		}
		if n := rows(3); n != 1 {
			t.Errorf("%d rows of the transaction committed during the drain, want 1", n)
		}
	})
}

// TestOpsRollingRestart restarts two binaries sharing one address
// (listen.reuse_port), one after the other, under clients that insert in
// a loop and reconnect on errors: no transaction whose COMMIT succeeded
// is lost.
func TestOpsRollingRestart(t *testing.T) {
	opsSkip(t)
	db := opsTable(t, "drop table if exists ops_roll", "create table ops_roll (id bigint primary key)")
	bin := buildShardgate(t)
	cfg := opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()}, reusePort: true,
		extra: "shutdown:\n  drain_timeout: 5s\n"}
	a := opsStart(t, bin, cfg)
	b := opsStart(t, bin, cfg)
	dsn := a.dsn("app")

	var (
		next, attempts, failed, connFails atomic.Int64
		mu                                sync.Mutex
		committed                         []int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The clients: each runs until stop closes, counting its failures;
	// the ids whose COMMIT succeeded go to committed.
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil {
					c, err := connectDSNErr(dsn)
					if err != nil {
						connFails.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn = c
				}
				id := next.Add(1)
				attempts.Add(1)
				err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
					if _, err := tx.Exec(context.Background(), "insert into ops_roll values ($1)", id); err != nil {
						return err
					}
					// Long enough for a SIGTERM to find transactions open.
					_, err := tx.Exec(context.Background(), "select pg_sleep(0.01)")
					return err
				})
				if err != nil {
					failed.Add(1)
					conn.Close(context.Background())
					conn = nil
					continue
				}
				mu.Lock()
				committed = append(committed, id)
				mu.Unlock()
				// A new connection now and then, so that both instances
				// get clients and some connect while one of them stops.
				if id%10 == 0 {
					conn.Close(context.Background())
					conn = nil
				}
			}
		}()
	}
	progress := func(what string) {
		t.Helper()
		mu.Lock()
		before := len(committed)
		mu.Unlock()
		if !eventually(t, 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(committed) > before+50
		}) {
			t.Fatalf("no progress %s", what)
		}
	}
	restart := func(p *opsProc) *opsProc {
		t.Helper()
		if !eventually(t, 5*time.Second, func() bool { return strings.Contains(p.log.String(), `"client connected"`) }) {
			t.Fatalf("no client reached the instance on %s to be restarted", p.addr)
		}
		start := time.Now()
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		t.Logf("drained in %s", time.Since(start).Round(time.Millisecond))
		return opsStart(t, bin, cfg)
	}
	progress("with both instances")
	a = restart(a)
	progress("after restarting A")
	b = restart(b)
	progress("after restarting B")
	close(stop)
	wg.Wait()

	present := map[int64]bool{}
	rows, err := db.Query(ctxT(t), "select id from ops_roll")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		present[id] = true
	}
	lost := 0
	for _, id := range committed {
		if !present[id] {
			lost++
		}
	}
	t.Logf("%d transactions attempted, %d committed, %d failed, %d failed connection attempts, %d rows in the table",
		attempts.Load(), len(committed), failed.Load(), connFails.Load(), len(ids))
	if lost > 0 {
		t.Errorf("%d transactions whose COMMIT succeeded are missing from the table", lost)
	}
}

// TestOpsSighupDuringStartup sends SIGHUP (a reload, as `systemctl
// reload` sends it) while the binary waits for its catalog at start,
// which may last catalogWait (30s): it must not kill the process.
func TestOpsSighupDuringStartup(t *testing.T) {
	opsSkip(t)
	bin := buildShardgate(t)
	p := opsLaunch(t, bin, opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
		extra: fmt.Sprintf("catalog:\n  dsn: postgres://app:app@%s/catalog?sslmode=disable\n", freeAddr(t))})
	p.waitLog(t, "catalog not reachable yet")
	p.signal(t, syscall.SIGHUP)
	select {
	case <-p.exited:
		// Until signal.Notify runs, SIGHUP keeps its default action and
		// kills the process: serve must catch it from the start.
		t.Errorf("SIGHUP during startup killed shardgate (%v):\n%s", p.err, p.log)
		return
	case <-time.After(300 * time.Millisecond):
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t, 5*time.Second)
}

// TestOpsSlowQueryLog: a slow simple query is logged with its own text,
// not that of a prepared statement run before it in the same transaction
// (on the same server connection); constants are replaced unless
// log.parameters is on.
func TestOpsSlowQueryLog(t *testing.T) {
	opsSkip(t)
	bin := buildShardgate(t)
	for _, withParams := range []bool{false, true} {
		t.Run(fmt.Sprintf("parameters=%v", withParams), func(t *testing.T) {
			cfg := opsCfg{addr: freeAddr(t), hosts: []string{primary().Addr()},
				extra: fmt.Sprintf("log:\n  slow_query: 150ms\n  parameters: %v\n", withParams)}
			p := opsStart(t, bin, cfg)
			ctx := ctxT(t)
			tx, err := connectDSN(t, p.dsn("app")).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "select $1::int + 41", 1); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "select pg_sleep(0.3), 'marker'", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			p.waitLog(t, "slow query")
			var line string
			for _, l := range strings.Split(p.log.String(), "\n") {
				if strings.Contains(l, "slow query") {
					line = l
				}
			}
			want := "select pg_sleep($1), $2"
			if withParams {
				want = "select pg_sleep(0.3), 'marker'"
			}
			if !strings.Contains(line, want) {
				t.Errorf("slow query log line %q, want the query %q", line, want)
			}
		})
	}
}
