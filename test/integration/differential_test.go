package integration

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
	"github.com/shardgate/shardgate/test/differential"
)

// Environment variables to replay or resize a run of TestDifferential.
const (
	diffSeedEnv = "SHARDGATE_DIFF_SEED" // the workload's seed (default: from the clock)
	diffNEnv    = "SHARDGATE_DIFF_N"    // statements per shard count (default 10000)
)

// pendingConstructs are the constructs over several shards that the
// proxy refused until two-phase commit, the split of multi-row INSERT and
// the split of COPY FROM came in; each pattern (path.Match syntax over
// tally labels) names one. A refusal of any of them fails
// TestDifferential: the report lists them apart from other refusals.
var pendingConstructs = []struct{ pattern, construct string }{
	{"insert.multi-row:cross-shard", "multi-row INSERT spanning shards"},
	{"insert.multi-row.on-conflict:cross-shard", "multi-row INSERT ... ON CONFLICT spanning shards"},
	{"copy.from.sharded.*", "COPY FROM STDIN into a sharded table"},
	{"update.scatter*", "UPDATE without a key (writes on every shard)"},
	{"delete.scatter*", "DELETE without a key (writes on every shard)"},
	{"update.key-list:cross-shard", "UPDATE of keys on several shards"},
	{"delete.key-list:cross-shard", "DELETE of keys on several shards"},
	{"reference.write*", "write to a reference table (every shard)"},
	{"copy.from.reference.*", "COPY FROM STDIN into a reference table (every shard)"},
	{"txn:cross-shard", "transaction touching more than one shard"},
}

// diffGiveUpAfter: a label the proxy refused this many times, and never
// ran, is not tried again in the run (and its steps are counted as
// skipped), so that constructs not supported yet cost little time.
const diffGiveUpAfter = 8

// mayBeRefused are labels the proxy may refuse for good (it cannot merge
// them correctly); when it answers, the answer must still be right. Any
// other refusal fails the test.
var mayBeRefused = []string{
	"maybe.refused*",
	// A query string of several statements runs in one place.
	"script:cross-shard",
	// Savepoints would have to be kept alike on every shard.
	"txn.savepoint:cross-shard",
}

func matchAny(label string, patterns ...string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, label); ok {
			return true
		}
	}
	return false
}

func pendingConstruct(label string) (string, bool) {
	for _, p := range pendingConstructs {
		if matchAny(label, p.pattern) {
			return p.construct, true
		}
	}
	return "", false
}

// diffSettings reads the seed and the statement count.
func diffSettings(t *testing.T) (seed uint64, n int) {
	seed, n = uint64(time.Now().UnixNano()), 10000
	if s := os.Getenv(diffSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", diffSeedEnv, err)
		}
		seed = v
	}
	if s := os.Getenv(diffNEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s: want a positive number, got %q", diffNEnv, s)
		}
		n = v
	}
	return seed, n
}

// TestDifferential runs one seeded workload against a single unsharded
// server and through the proxy over two shards, then over three, and
// requires identical answers; afterwards every row must be on the shard
// the map says, reference tables alike everywhere, and the shards
// together equal to the unsharded server.
func TestDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("differential workload: not in -short mode")
	}
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	seed, n := diffSettings(t)
	t.Logf("workload seed %d, %d statements per run; replay with %s=%d %s=%d", seed, n, diffSeedEnv, seed, diffNEnv, n)
	// One cluster of three primaries serves both runs, each in its own
	// database; the reference server has one database per run too.
	app := []cluster.User{{Name: "app", Password: "app"}}
	shards := cluster.ForTest(t, cluster.Options{Shards: 3, Users: app,
		Databases: []cluster.Database{{Name: "diff2", Owner: "app"}, {Name: "diff3", Owner: "app"}}})
	ref := cluster.ForTest(t, cluster.Options{Shards: 1, Users: app,
		Databases: []cluster.Database{{Name: "ref2", Owner: "app"}, {Name: "ref3", Owner: "app"}}})
	for _, count := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d shards", count), func(t *testing.T) {
			e := newDiffEnv(t, shards, ref, count)
			e.run(t, seed, n)
		})
	}
}

// diffEnv is one run: the proxy over count shards of one database, and
// the reference database.
type diffEnv struct {
	c      *cluster.Cluster
	ref    *cluster.Host
	count  int
	db     string
	refDB  string
	m      *shardmap.Map
	dir    *shardmap.MemDirectory
	proxy  *testProxy
	viaP   *pgx.Conn
	viaR   *pgx.Conn
	names  []string
	runner *differential.Runner
	// recent are the last steps run, for a report when one hangs.
	recent []string
	steps  int
}

func newDiffEnv(t *testing.T, c, ref *cluster.Cluster, count int) *diffEnv {
	e := &diffEnv{c: c, ref: ref.Shards[0].Primary, count: count,
		db: fmt.Sprintf("diff%d", count), refDB: fmt.Sprintf("ref%d", count), dir: shardmap.NewMemDirectory()}
	for i := range count {
		e.names = append(e.names, fmt.Sprintf("s%d", i))
	}
	spec := diffSpec(e.names)
	e.placeInDirectory(t, spec)
	m, err := shardmap.Build(spec, e.names, 1, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	t.Logf("shard map:\n%s", m.Describe())
	var shardList []proxy.Shard
	for i := range count {
		shardList = append(shardList, proxy.Shard{Name: e.names[i], Primary: c.Shards[i].Primary.Addr()})
	}
	e.proxy = startDiffProxy(t, shardList, m)
	host, port, _ := strings.Cut(e.proxy.addr, ":")
	e.viaP = connectDSN(t, fmt.Sprintf("host=%s port=%s user=app password=app dbname=%s sslmode=disable", host, port, e.db))
	e.viaR = connectDSN(t, e.ref.DSN("app", "app", e.refDB))
	e.runner = &differential.Runner{Proxy: e.viaP, Ref: e.viaR, Shards: count, Span: e.span, GiveUpAfter: diffGiveUpAfter}
	return e
}

// diffSpec is the map of a run: users and orders by hash of the user id
// (an even split over two shards, uneven explicit ranges over three),
// events by ranges of their id (owners out of order over three), tenants
// by a directory (new keys by hash over two shards, to one shard over
// three), countries on every shard, the rest on the default shard (s1
// over three).
func diffSpec(names []string) shardmap.Spec {
	users := shardmap.DistributionSpec{Name: differential.DistUsers, Method: shardmap.MethodHash, KeyType: "bigint",
		Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}, {Name: "orders", Key: "user_id"}}}
	events := shardmap.DistributionSpec{Name: differential.DistEvents, Method: shardmap.MethodRange, KeyType: "bigint",
		Tables: []shardmap.TableSpec{{Name: "events", Key: "id"}}}
	tenants := shardmap.DistributionSpec{Name: differential.DistTenants, Method: shardmap.MethodDirectory, KeyType: "text",
		Tables: []shardmap.TableSpec{{Name: "tenants", Key: "id"}}}
	spec := shardmap.Spec{ReferenceTables: []string{"countries"}}
	if len(names) == 2 {
		users.Shards = names
		events.Ranges = []shardmap.RangeSpec{{Hi: "1000", Shard: "s0"}, {Lo: "1000", Shard: "s1"}}
		tenants.Place, tenants.Shards = "hash", names
	} else {
		users.Ranges = []shardmap.RangeSpec{
			{Hi: "-3000000000000000000", Shard: "s2"},
			{Lo: "-3000000000000000000", Hi: "4000000000000000000", Shard: "s0"},
			{Lo: "4000000000000000000", Shard: "s1"},
		}
		events.Ranges = []shardmap.RangeSpec{{Hi: "600", Shard: "s1"}, {Lo: "600", Hi: "1300", Shard: "s2"}, {Lo: "1300", Shard: "s0"}}
		tenants.Place = "s1"
		spec.DefaultShard = "s1"
	}
	spec.Distributions = []shardmap.DistributionSpec{users, events, tenants}
	return spec
}

// placeInDirectory records some tenants in the directory before the run,
// on another shard than the placement rule would pick, so that the proxy
// must follow the directory, not the rule.
func (e *diffEnv) placeInDirectory(t *testing.T, spec shardmap.Spec) {
	m, err := shardmap.Build(spec, e.names, 1, shardmap.NewMemDirectory())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"acme", "t001", "über", "", "t007"} {
		k, _ := shardmap.ParseKey(shardmap.KindText, key)
		rule, err := m.Locate(context.Background(), m.Distribution(differential.DistTenants), k)
		if err != nil {
			t.Fatal(err)
		}
		e.dir.Put(context.Background(), differential.DistTenants, key, e.names[(rule+1)%len(e.names)])
	}
}

// startDiffProxy starts a proxy in transaction mode over shards with map
// m, with two-phase commit. Unlike startProxy, its cleanup gives up on
// sessions that do not end (a proxy stuck on a statement), so that a hang
// fails the test instead of stalling it.
func startDiffProxy(t *testing.T, shards []proxy.Shard, m *shardmap.Map) *testProxy {
	t.Helper()
	app := &proxy.User{Credential: auth.Credential{User: "app", Method: auth.MethodSCRAM, Password: "app"}, ServerUser: "app", ServerPassword: "app"}
	if err := app.Credential.Prepare(); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelError + 1
	if testing.Verbose() {
		level = slog.LevelWarn
	}
	po := pool.Options{Size: 10, CheckoutTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second}
	opts := proxy.Options{
		Mode:     proxy.TransactionMode,
		Users:    map[string]*proxy.User{"app": app},
		Shards:   shards,
		ShardMap: m,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Pools:    &pool.Set{Options: func(pool.Key) pool.Options { return po }},
		TwoPhase: &proxy.TwoPhase{Log: &memDecisions{}, Node: "differential"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(opts)
	go srv.Serve(ln)
	tp := &testProxy{addr: ln.Addr().String(), srv: srv, pools: opts.Pools}
	t.Cleanup(func() {
		closed := make(chan struct{})
		go func() {
			srv.Close()
			tp.pools.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Errorf("the proxy did not close within 10s: a session is stuck; goroutines in %s", dumpGoroutines(t))
		}
	})
	return tp
}

// dumpGoroutines writes every goroutine's stack to a file that outlives
// the test, and returns its name.
func dumpGoroutines(t *testing.T) string {
	f, err := os.CreateTemp("", "shardgate-differential-stacks-*.txt")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	pprof.Lookup("goroutine").WriteTo(f, 2)
	return f.Name()
}

// memDecisions is a two-phase commit decision log in memory: enough for
// one proxy that is never restarted.
type memDecisions struct {
	mu sync.Mutex
	m  map[string]bool
}

func (d *memDecisions) Decide(_ context.Context, gid string, commit bool) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]bool{}
	}
	if c, ok := d.m[gid]; ok {
		return c, nil
	}
	d.m[gid] = commit
	return commit, nil
}

func (d *memDecisions) ForgetDecision(_ context.Context, gid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, gid)
	return nil
}

// span counts the shards holding the rows of keys, as the map places
// them; directory keys not placed yet count where the rule would put
// them, without recording them.
func (e *diffEnv) span(keys []differential.Key) int {
	set := map[int]bool{}
	for _, k := range keys {
		i, err := e.shardOfKey(k)
		if err != nil {
			return -1
		}
		set[i] = true
	}
	return len(set)
}

func (e *diffEnv) shardOfKey(k differential.Key) (int, error) {
	if k == differential.OnDefault {
		return e.m.DefaultShard(), nil
	}
	d := e.m.Distribution(k.Dist)
	if d == nil {
		return 0, fmt.Errorf("no distribution %q", k.Dist)
	}
	key, err := shardmap.ParseKey(d.Kind, k.Value)
	if err != nil {
		return 0, err
	}
	if d.Method != shardmap.MethodDirectory {
		return e.m.Locate(context.Background(), d, key)
	}
	if name, ok, _ := e.dir.Get(context.Background(), d.Name, key.String()); ok {
		i, _ := e.m.ShardIndex(name)
		return i, nil
	}
	if e.count == 2 {
		return d.ShardOfHash(shardmap.HashText(k.Value))
	}
	i, _ := e.m.ShardIndex("s1")
	return i, nil
}

// run sets the schema up, seeds, runs n workload statements, reports,
// and checks placement.
func (e *diffEnv) run(t *testing.T, seed uint64, n int) {
	e.setup(t)
	w := differential.NewWorkload(seed)
	start := time.Now()
	for _, st := range w.Seed() {
		e.step(t, &st)
	}
	seeded := e.runner.Statements
	for i := 1; e.runner.Statements-seeded < n; i++ {
		st := w.Next()
		e.step(t, &st)
		if i%diffSnapshotEvery == 0 {
			e.snapshot(t)
		}
	}
	e.snapshot(t)
	t.Logf("%d seed statements, then %d workload statements in %v", seeded, e.runner.Statements-seeded, time.Since(start).Round(time.Millisecond))
	e.report(t)
	t.Run("placement", func(t *testing.T) {
		for _, p := range e.checkPlacement(t) {
			t.Error(p)
		}
	})
	t.Run("checks can fail", func(t *testing.T) { e.sabotage(t) })
}

// diffSnapshotEvery is how many workload steps pass between two
// comparisons of whole tables.
const diffSnapshotEvery = 1000

// snapshot compares every table whole through the proxy and on the
// reference; its statements do not count toward the workload's.
func (e *diffEnv) snapshot(t *testing.T) {
	n := e.runner.Statements
	for _, st := range differential.Snapshot() {
		e.step(t, &st)
	}
	e.runner.Statements = n
}

// setup creates the schema through the proxy and on the reference, and
// fills the reference table directly on every shard.
func (e *diffEnv) setup(t *testing.T) {
	ctx := ctxT(t)
	for _, ddl := range differential.Schema() {
		for _, c := range []*pgx.Conn{e.viaP, e.viaR} {
			if _, err := c.Exec(ctx, ddl, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("%s: %v", ddl, err)
			}
		}
	}
	rows := differential.ReferenceRows()
	for i := range e.count {
		e.execOn(t, i, rows)
	}
	if _, err := e.viaR.Exec(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// step runs one step; a lost connection ends the run.
func (e *diffEnv) step(t *testing.T, st *differential.Step) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.steps++
	if len(e.recent) == 6 {
		e.recent = e.recent[1:]
	}
	e.recent = append(e.recent, fmt.Sprintf("step %d: %s", e.steps, st.String()))
	e.runner.Step(ctx, st)
	for name, c := range map[string]*pgx.Conn{"proxy": e.viaP, "reference": e.viaR} {
		if c.IsClosed() {
			t.Fatalf("the %s connection closed at the last of these steps (goroutines in %s):\n%s", name, dumpGoroutines(t), strings.Join(e.recent, "\n"))
		}
	}
}

// maxMismatchesShown bounds the mismatches reported in full.
const maxMismatchesShown = 25

// reportMismatches fails the test with the mismatches, grouped by kind
// (the label and the first line of the difference, digits left out) so
// that a rare kind shows up beside a frequent one: one example of each
// kind first, then the rest in order up to maxMismatchesShown.
func (e *diffEnv) reportMismatches(t *testing.T) {
	ms := e.runner.Mismatches
	if len(ms) == 0 {
		return
	}
	kinds := map[string]int{}
	var order []string
	first := map[string]differential.Mismatch{}
	for _, m := range ms {
		k := mismatchKind(m)
		if kinds[k] == 0 {
			order = append(order, k)
			first[k] = m
		}
		kinds[k]++
	}
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "  %5d  %s\n", kinds[k], k)
	}
	t.Errorf("%d RESULT MISMATCHES, of %d kinds:\n%s", len(ms), len(order), b.String())
	shown := 0
	for i, k := range order {
		t.Errorf("RESULT MISMATCH, kind %d of %d (%d like it): %s", i+1, len(order), kinds[k], first[k])
		shown++
	}
	for _, m := range ms {
		if shown >= maxMismatchesShown {
			break
		}
		if first[mismatchKind(m)].Step == m.Step {
			continue
		}
		t.Errorf("RESULT MISMATCH: %s", m)
		shown++
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

func mismatchKind(m differential.Mismatch) string {
	line, _, _ := strings.Cut(m.Diff, "\n")
	return m.Label + " | " + digits.ReplaceAllString(line, "#")
}

// report logs the tallies and the refusals, and fails on mismatches,
// unexpected refusals and refusals of pending constructs.
func (e *diffEnv) report(t *testing.T) {
	r := e.runner
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label\tcompared\tsame error\trefused\tskipped\tmismatched\tproxy ms/stmt\t")
	var sum differential.Tally
	for _, l := range r.Labels() {
		c := r.Tallies[l]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", l, c.Run, c.Errors, c.Refused, c.Skipped, c.Mismatched,
			float64(c.ProxyTime.Microseconds())/1000/float64(max(1, c.Run+c.Refused)))
		sum.Run += c.Run
		sum.Errors += c.Errors
		sum.Refused += c.Refused
		sum.Mismatched += c.Mismatched
		sum.Skipped += c.Skipped
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\t\n", sum.Run, sum.Errors, sum.Refused, sum.Skipped, sum.Mismatched)
	tw.Flush()
	t.Logf("results per label (%d shards; transactions count once under txn, their statements under txn>...):\n%s", e.count, b.String())

	e.reportMismatches(t)

	var pending, unexpected, allowed strings.Builder
	for _, l := range r.Labels() {
		c := r.Tallies[l]
		if c.Refused == 0 {
			continue
		}
		skipped := ""
		if c.Skipped > 0 {
			skipped = fmt.Sprintf(" (and %d not sent after that)", c.Skipped)
		}
		line := fmt.Sprintf("  %-45s %5d%s  e.g. %s\n", l, c.Refused, skipped, c.Example)
		switch construct, ok := pendingConstruct(l); {
		case ok:
			fmt.Fprintf(&pending, "  %-45s %5d%s  %s\n      e.g. %s\n", l, c.Refused, skipped, construct, c.Example)
		case matchAny(l, mayBeRefused...):
			allowed.WriteString(line)
		default:
			unexpected.WriteString(line)
		}
	}
	if allowed.Len() > 0 {
		t.Logf("REFUSALS ALLOWED (constructs the proxy may refuse over several shards):\n%s", allowed.String())
	}
	if unexpected.Len() > 0 {
		t.Errorf("UNEXPECTED REFUSALS (the proxy refused what it claims to run):\n%s", unexpected.String())
	}
	if pending.Len() > 0 {
		t.Errorf("REFUSALS OF CONSTRUCTS THE PROXY MUST RUN (with two-phase commit on):\n%s", pending.String())
	}
}

// execOn runs sql directly on shard i's primary, in the run's database.
func (e *diffEnv) execOn(t *testing.T, i int, sql string, args ...any) {
	t.Helper()
	conn := connectDSN(t, e.c.Shards[i].Primary.DSN("app", "app", e.db))
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), sql, args...); err != nil {
		t.Fatalf("shard %d: %s: %v", i, sql, err)
	}
}

// rowsOn returns the rows of sql on shard i (-1: the reference), each
// row's columns as text.
func (e *diffEnv) rowsOn(t *testing.T, i int, sql string) [][]string {
	t.Helper()
	dsn := e.ref.DSN("app", "app", e.refDB)
	if i >= 0 {
		dsn = e.c.Shards[i].Primary.DSN("app", "app", e.db)
	}
	conn := connectDSN(t, dsn)
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctxT(t), sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("shard %d: %s: %v", i, sql, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var row []string
		for _, v := range rows.RawValues() {
			row = append(row, string(v))
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("shard %d: %s: %v", i, sql, err)
	}
	return out
}

// shardedTables are the tables spread by the map, with their key column
// and the server's hash function of its type.
var shardedTables = []struct{ table, key, dist string }{
	{"users", "id", differential.DistUsers},
	{"orders", "user_id", differential.DistUsers},
	{"events", "id", differential.DistEvents},
	{"tenants", "id", differential.DistTenants},
}

// checkPlacement returns every problem with where rows are: each row of a
// sharded table must be on the shard the map gives its key (by the
// server's own hash for hash keys, by value for ranges, by the directory
// for directory keys), the reference table identical on every shard and
// on the reference server, the unsharded table only on the default shard,
// and each table's rows over all shards the reference server's rows.
func (e *diffEnv) checkPlacement(t *testing.T) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, st := range shardedTables {
		d := e.m.Distribution(st.dist)
		hashFn := "hashint8extended"
		if d.Kind == shardmap.KindText {
			hashFn = "hashtextextended"
		}
		var union [][]string
		for i := range e.count {
			sql := fmt.Sprintf("select %s, %s(%s, 0), (x.*)::text from %s x", st.key, hashFn, st.key, st.table)
			for _, row := range e.rowsOn(t, i, sql) {
				e.checkRow(st.table, d, i, row[0], row[1], bad)
				union = append(union, row[2:])
			}
		}
		e.compareUnion(t, st.table, union, bad)
	}
	// The unsharded table: on the default shard only.
	var union [][]string
	for i := range e.count {
		rows := e.rowsOn(t, i, "select (x.*)::text from audit x")
		if i != e.m.DefaultShard() && len(rows) > 0 {
			bad("audit (unsharded) has %d rows on %s, which is not the default shard %s: %v", len(rows), e.names[i], e.names[e.m.DefaultShard()], firstRows(rows))
		}
		union = append(union, rows...)
	}
	e.compareUnion(t, "audit", union, bad)
	// The reference table: the same rows everywhere.
	want := sortTextRows(e.rowsOn(t, -1, "select (x.*)::text from countries x"))
	for i := range e.count {
		got := sortTextRows(e.rowsOn(t, i, "select (x.*)::text from countries x"))
		if missing, extra := multisetDiff(got, want); len(missing)+len(extra) > 0 {
			bad("reference table countries on %s differs from the reference server: missing %v, extra %v", e.names[i], firstRows(missing), firstRows(extra))
		}
	}
	return problems
}

// checkRow checks one row's key, found on shard i with the server's hash
// h of it.
func (e *diffEnv) checkRow(table string, d *shardmap.Distribution, i int, key, h string, bad func(string, ...any)) {
	server, err := strconv.ParseInt(h, 10, 64)
	if err != nil {
		bad("%s: hash %q of key %q: %v", table, h, key, err)
		return
	}
	var owner int
	switch {
	case d.Kind == shardmap.KindInt:
		v, _ := strconv.ParseInt(key, 10, 64)
		if ours := shardmap.HashInt(v); ours != server {
			bad("%s key %s: the server hashes it to %d, shardgate to %d", table, key, server, ours)
		}
	default:
		if ours := shardmap.HashText(key); ours != server {
			bad("%s key %q: the server hashes it to %d, shardgate to %d", table, key, server, ours)
		}
	}
	switch d.Method {
	case shardmap.MethodHash:
		owner, err = d.ShardOfHash(server)
	case shardmap.MethodRange:
		k, perr := shardmap.ParseKey(d.Kind, key)
		if perr != nil {
			bad("%s key %q: %v", table, key, perr)
			return
		}
		owner, err = e.m.Locate(context.Background(), d, k)
	default:
		name, ok, _ := e.dir.Get(context.Background(), d.Name, key)
		if !ok {
			bad("%s key %q is on %s but not in the directory", table, key, e.names[i])
			return
		}
		owner, _ = e.m.ShardIndex(name)
	}
	if err != nil {
		bad("%s key %q: %v", table, key, err)
		return
	}
	if owner != i {
		bad("MISPLACED: %s row with key %q is on %s; the map puts it on %s", table, key, e.names[i], e.names[owner])
	}
}

// compareUnion compares a table's rows over all shards with the
// reference server's.
func (e *diffEnv) compareUnion(t *testing.T, table string, union [][]string, bad func(string, ...any)) {
	want := sortTextRows(e.rowsOn(t, -1, fmt.Sprintf("select (x.*)::text from %s x", table)))
	missing, extra := multisetDiff(sortTextRows(union), want)
	if len(missing)+len(extra) > 0 {
		bad("%s: the shards together hold %d rows, the reference %d: missing on the shards %v, extra on the shards %v",
			table, len(union), len(want), firstRows(missing), firstRows(extra))
	}
}

func sortTextRows(rows [][]string) [][]string {
	slices.SortFunc(rows, func(a, b []string) int { return slices.Compare(a, b) })
	return rows
}

// multisetDiff returns the rows of want missing from got, and those of
// got not in want; both must be sorted.
func multisetDiff(got, want [][]string) (missing, extra [][]string) {
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want):
			extra, i = append(extra, got[i]), i+1
		case i == len(got):
			missing, j = append(missing, want[j]), j+1
		default:
			switch c := slices.Compare(got[i], want[j]); {
			case c == 0:
				i, j = i+1, j+1
			case c < 0:
				extra, i = append(extra, got[i]), i+1
			default:
				missing, j = append(missing, want[j]), j+1
			}
		}
	}
	return missing, extra
}

func firstRows(rows [][]string) string {
	if len(rows) > 5 {
		return fmt.Sprintf("%v ... (%d in all)", rows[:5], len(rows))
	}
	return fmt.Sprint(rows)
}

// sabotage shows the checks fail when they must: it puts a row on the
// wrong shard, a row on the shards only, a stray row of an unsharded
// table and a changed copy of a reference row, checking that
// checkPlacement reports each and is clean again after each repair; and
// it shows Compare reports a wrong answer.
func (e *diffEnv) sabotage(t *testing.T) {
	clean := len(e.checkPlacement(t)) == 0
	expect := func(what, want string) {
		t.Helper()
		problems := e.checkPlacement(t)
		for _, p := range problems {
			if strings.Contains(p, want) {
				t.Logf("%s: reported: %s", what, p)
				return
			}
		}
		t.Errorf("%s: checkPlacement did not report %q; it reported %v", what, want, problems)
	}
	d := e.m.Distribution(differential.DistUsers)
	const id = 7_777_777_777
	owner, _ := d.ShardOfHash(shardmap.HashInt(id))
	wrong := (owner + 1) % e.count
	insert := "insert into users (id, name, score, country, created) values ($1, 'sabotage', 1, 'DE', '2024-01-01')"
	remove := "delete from users where id = $1"

	// A row on the wrong shard (and on the reference, so only its place
	// is wrong).
	e.execOn(t, wrong, insert, int64(id))
	if _, err := e.viaR.Exec(ctxT(t), insert, int64(id)); err != nil {
		t.Fatal(err)
	}
	expect("row on the wrong shard", fmt.Sprintf("MISPLACED: users row with key %q is on %s", strconv.Itoa(id), e.names[wrong]))
	e.execOn(t, wrong, remove, int64(id))

	// The row on its shard but not on the reference.
	if _, err := e.viaR.Exec(ctxT(t), remove, int64(id)); err != nil {
		t.Fatal(err)
	}
	e.execOn(t, owner, insert, int64(id))
	expect("row missing from the reference", "users: the shards together hold")
	e.execOn(t, owner, remove, int64(id))

	// A row of the unsharded table off the default shard.
	other := (e.m.DefaultShard() + 1) % e.count
	e.execOn(t, other, "insert into audit (id, note) values (-1, 'stray')")
	expect("unsharded row off the default shard", "audit (unsharded) has 1 rows on "+e.names[other])
	e.execOn(t, other, "delete from audit where id = -1")

	// One shard's copy of a reference row changed.
	last := e.count - 1
	name := e.rowsOn(t, last, "select name from countries where code = 'DE'")[0][0]
	e.execOn(t, last, "update countries set name = 'drifted' where code = 'DE'")
	expect("reference copy drifted", "reference table countries on "+e.names[last]+" differs")
	e.execOn(t, last, "update countries set name = $1 where code = 'DE'", name)

	if clean {
		if p := e.checkPlacement(t); len(p) > 0 {
			t.Errorf("repairs left problems: %v", p)
		}
	}

	// A wrong answer is caught: the reference is asked for the next rows.
	ctx := ctxT(t)
	q := differential.Step{Category: "sabotage", Kind: differential.KindQuery, SQL: "select id, name from users order by id limit 5",
		Mode: pgx.QueryExecModeCacheStatement, Order: differential.Order{Total: true}}
	wrongQ := q
	wrongQ.SQL += " offset 1"
	got, want := differential.Run(ctx, e.viaP, &q), differential.Run(ctx, e.viaR, &wrongQ)
	if err := differential.Compare(&q, got, want); err == nil {
		t.Errorf("Compare found no difference between %q and %q", q.SQL, wrongQ.SQL)
	} else {
		t.Logf("wrong answer: reported: %v", err)
	}
	// And the same question agrees.
	want = differential.Run(ctx, e.viaR, &q)
	if err := differential.Compare(&q, got, want); err != nil {
		t.Errorf("the same query disagrees: %v", err)
	}
}
