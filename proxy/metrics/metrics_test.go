package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/metrics"
)

// fakeSource is a Source whose samples a test sets directly.
type fakeSource struct {
	mu       sync.Mutex
	pools    []metrics.PoolSample
	clients  metrics.ClientSample
	hosts    []pool.HostStatus
	cache    metrics.CacheSample
	fanOuts  []metrics.FanOutSample
	readyErr error
}

func (f *fakeSource) Pools() []metrics.PoolSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metrics.PoolSample(nil), f.pools...)
}

func (f *fakeSource) Clients() metrics.ClientSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clients
}

func (f *fakeSource) Hosts() []pool.HostStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pool.HostStatus(nil), f.hosts...)
}

func (f *fakeSource) ParseCache() metrics.CacheSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cache
}

func (f *fakeSource) FanOuts() []metrics.FanOutSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metrics.FanOutSample(nil), f.fanOuts...)
}

func (f *fakeSource) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeSource) update(fn func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// newFake returns a source describing two shards: s0 with a primary and
// a lagging replica, s1 with a banned host.
func newFake() *fakeSource {
	return &fakeSource{
		pools: []metrics.PoolSample{{
			Shard: "s0", Host: "pg-a:5432", Role: "primary", User: "app", Database: "shop",
			ServersActive: 3, ServersIdle: 2, ServersLogin: 1, ClientsWaiting: 4,
			Xacts: 50, Queries: 100, Errors: 7, BytesIn: 1000, BytesOut: 5000,
			QueryTime: 1500 * time.Millisecond, XactTime: 3 * time.Second, WaitTime: 250 * time.Millisecond,
			CheckoutTimeouts: 2, ConnectErrors: 1,
		}, {
			Shard: "s0", Host: "pg-b:5432", Role: "replica", User: "app", Database: "shop",
			ServersIdle: 1, Queries: 20,
		}},
		clients: metrics.ClientSample{Active: 5, Waiting: 2, Idle: 8, Paused: 1, Total: 120, Refused: 3},
		hosts: []pool.HostStatus{{
			Shard: "s0", Addr: "pg-a:5432", Role: "primary", State: "up", Primary: true,
			LSN: 0x16B3748, Reads: 40, PrimaryReadsRYW: 10, PrimaryReadsLag: 3, PrimaryReadsNoReplica: 2,
		}, {
			Shard: "s0", Addr: "pg-b:5432", Role: "replica", State: "lagging",
			LSN: 0x16B0000, LagBytes: 2048, Lag: 1500 * time.Millisecond, Reads: 60,
		}, {
			Shard: "s1", ShardIndex: 1, Addr: "pg-c:5432", Role: "primary", State: "banned",
		}},
		cache:   metrics.CacheSample{Hits: 90, Misses: 10, Size: 42},
		fanOuts: []metrics.FanOutSample{{Kind: "read", Count: 7}, {Kind: "ddl", Count: 1}},
	}
}

func newServer(t *testing.T, src metrics.Source) (*metrics.Metrics, *httptest.Server) {
	t.Helper()
	m := metrics.New(src, "1.2.3")
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape returns every sample on /metrics, keyed as the text format
// prints it: name{label="value",...}, labels sorted by name (le last).
func scrape(t *testing.T, srv *httptest.Server) map[string]float64 {
	t.Helper()
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", code, body)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// expect checks samples by key; a negative want means the series must be
// absent.
func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		v, ok := got[key]
		switch {
		case w < 0 && ok:
			t.Errorf("%s = %v, want no such series", key, v)
		case w >= 0 && !ok:
			t.Errorf("%s missing", key)
		case ok && v != w:
			t.Errorf("%s = %v, want %v", key, v, w)
		}
	}
}

// key returns a series' key as scrape makes it, from label name-value
// pairs in any order.
func key(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	pairs := make([]string, 0, len(kv)/2)
	var le string
	for i := 0; i < len(kv); i += 2 {
		p := kv[i] + "=" + strconv.Quote(kv[i+1])
		if kv[i] == "le" {
			le = p // the text format prints le last
			continue
		}
		pairs = append(pairs, p)
	}
	slices.Sort(pairs)
	if le != "" {
		pairs = append(pairs, le)
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// Label pairs of the fake's two pools.
var (
	poolA = []string{"shard", "s0", "host", "pg-a:5432", "role", "primary", "user", "app", "database", "shop"}
	poolB = []string{"shard", "s0", "host", "pg-b:5432", "role", "replica", "user", "app", "database", "shop"}
)

// poolKey returns the key of a pool's series, with extra label pairs.
func poolKey(name string, pool []string, extra ...string) string {
	return key(name, append(slices.Clone(pool), extra...)...)
}

func TestScrapeShowsSourceValues(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, newFake())
	got := scrape(t, srv)

	tests := []struct {
		series string
		want   float64
	}{
		{`shardgate_build_info{version="1.2.3"}`, 1},

		{`shardgate_client_connections{state="active"}`, 5},
		{`shardgate_client_connections{state="waiting"}`, 2},
		{`shardgate_client_connections{state="idle"}`, 8},
		{`shardgate_client_connections{state="paused"}`, 1},
		{`shardgate_client_connections_accepted_total`, 120},
		{`shardgate_client_connections_refused_total`, 3},

		{poolKey("shardgate_pool_server_connections", poolA, "state", "active"), 3},
		{poolKey("shardgate_pool_server_connections", poolA, "state", "idle"), 2},
		{poolKey("shardgate_pool_server_connections", poolA, "state", "login"), 1},
		{poolKey("shardgate_pool_server_connections", poolB, "state", "idle"), 1},
		{poolKey("shardgate_pool_waiting_clients", poolA), 4},
		{poolKey("shardgate_pool_transactions_total", poolA), 50},
		{poolKey("shardgate_pool_queries_total", poolA, "outcome", "ok"), 93},
		{poolKey("shardgate_pool_queries_total", poolA, "outcome", "error"), 7},
		{poolKey("shardgate_pool_queries_total", poolB, "outcome", "ok"), 20},
		{poolKey("shardgate_pool_bytes_total", poolA, "direction", "client_to_server"), 1000},
		{poolKey("shardgate_pool_bytes_total", poolA, "direction", "server_to_client"), 5000},
		{poolKey("shardgate_pool_query_seconds_total", poolA), 1.5},
		{poolKey("shardgate_pool_transaction_seconds_total", poolA), 3},
		{poolKey("shardgate_pool_wait_seconds_total", poolA), 0.25},
		{poolKey("shardgate_pool_checkout_timeouts_total", poolA), 2},
		{poolKey("shardgate_pool_connect_errors_total", poolA), 1},

		{`shardgate_host_up{host="pg-a:5432",shard="s0"}`, 1},
		{`shardgate_host_up{host="pg-b:5432",shard="s0"}`, 1},
		{`shardgate_host_up{host="pg-c:5432",shard="s1"}`, 0},
		{`shardgate_host_banned{host="pg-c:5432",shard="s1"}`, 1},
		{`shardgate_host_banned{host="pg-a:5432",shard="s0"}`, 0},
		{`shardgate_host_lagging{host="pg-b:5432",shard="s0"}`, 1},
		{`shardgate_host_primary{host="pg-a:5432",shard="s0"}`, 1},
		{`shardgate_host_primary{host="pg-b:5432",shard="s0"}`, 0},
		{`shardgate_host_lsn{host="pg-a:5432",shard="s0"}`, 0x16B3748},
		{`shardgate_host_replication_lag_bytes{host="pg-b:5432",shard="s0"}`, 2048},
		{`shardgate_host_replication_lag_seconds{host="pg-b:5432",shard="s0"}`, 1.5},
		{`shardgate_reads_total{host="pg-a:5432",role="primary",shard="s0"}`, 15},
		{`shardgate_reads_total{host="pg-a:5432",role="replica",shard="s0"}`, 25},
		{`shardgate_reads_total{host="pg-b:5432",role="replica",shard="s0"}`, 60},
		{`shardgate_reads_total{host="pg-b:5432",role="primary",shard="s0"}`, 0},
		{`shardgate_primary_fallback_reads_total{host="pg-a:5432",reason="read_your_writes",shard="s0"}`, 10},
		{`shardgate_primary_fallback_reads_total{host="pg-a:5432",reason="replica_lag",shard="s0"}`, 3},
		{`shardgate_primary_fallback_reads_total{host="pg-a:5432",reason="no_replica",shard="s0"}`, 2},

		{`shardgate_parse_cache_hits_total`, 90},
		{`shardgate_parse_cache_misses_total`, 10},
		{`shardgate_parse_cache_entries`, 42},
		{`shardgate_fanouts_total{kind="read"}`, 7},
		{`shardgate_fanouts_total{kind="ddl"}`, 1},

		{`shardgate_rebalance_in_progress`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.series, func(t *testing.T) {
			expect(t, got, map[string]float64{tt.series: tt.want})
		})
	}

	t.Run("runtime and process collectors", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if _, ok := got[name]; !ok {
				t.Errorf("%s missing", name)
			}
		}
	})
}

func TestCountersMoveBetweenScrapes(t *testing.T) {
	t.Parallel()
	src := newFake()
	_, srv := newServer(t, src)
	scrape(t, srv)

	src.update(func(f *fakeSource) {
		f.pools[0].Xacts += 5
		f.pools[0].Queries += 10
		f.pools[0].Errors++
		f.pools[0].BytesIn += 24
		f.hosts[0].Reads += 3
		f.hosts[0].PrimaryReadsRYW++
		f.hosts[1].Reads += 100
		f.clients.Total++
		f.cache.Hits += 5
		f.fanOuts[0].Count++
	})
	expect(t, scrape(t, srv), map[string]float64{
		poolKey("shardgate_pool_transactions_total", poolA):                                             55,
		poolKey("shardgate_pool_queries_total", poolA, "outcome", "ok"):                                 102,
		poolKey("shardgate_pool_queries_total", poolA, "outcome", "error"):                              8,
		poolKey("shardgate_pool_bytes_total", poolA, "direction", "client_to_server"):                   1024,
		`shardgate_reads_total{host="pg-a:5432",role="primary",shard="s0"}`:                             16,
		`shardgate_reads_total{host="pg-a:5432",role="replica",shard="s0"}`:                             27,
		`shardgate_reads_total{host="pg-b:5432",role="replica",shard="s0"}`:                             160,
		`shardgate_primary_fallback_reads_total{host="pg-a:5432",reason="read_your_writes",shard="s0"}`: 11,
		`shardgate_client_connections_accepted_total`:                                                   121,
		`shardgate_parse_cache_hits_total`:                                                              95,
		`shardgate_fanouts_total{kind="read"}`:                                                          8,
	})
}

// Regression: the source loads Reads and the fallback counters one after
// the other, so a scrape can see a fallback read in one and not yet in
// the other; the derived replica counter must not drop by one and look
// like a reset to rate().
func TestDerivedCountersDoNotGoBackwards(t *testing.T) {
	t.Parallel()
	src := newFake()
	_, srv := newServer(t, src)
	replicaReads := key("shardgate_reads_total", "shard", "s0", "host", "pg-a:5432", "role", "replica")
	queriesOK := poolKey("shardgate_pool_queries_total", poolA, "outcome", "ok")
	expect(t, scrape(t, srv), map[string]float64{replicaReads: 25, queriesOK: 93})

	// A fallback read and a failed statement counted in only one of the
	// two counters each: the differences would drop to 24 and 92.
	src.update(func(f *fakeSource) {
		f.hosts[0].PrimaryReadsRYW++
		f.pools[0].Errors++
	})
	expect(t, scrape(t, srv), map[string]float64{replicaReads: 25, queriesOK: 93})

	// The other halves arrive.
	src.update(func(f *fakeSource) {
		f.hosts[0].Reads++
		f.pools[0].Queries++
	})
	expect(t, scrape(t, srv), map[string]float64{replicaReads: 25, queriesOK: 93})

	// A real reset (the pool recreated, the host's counters restarted)
	// lowers the larger counter too, and must show.
	src.update(func(f *fakeSource) {
		f.hosts[0].Reads, f.hosts[0].PrimaryReadsRYW, f.hosts[0].PrimaryReadsLag, f.hosts[0].PrimaryReadsNoReplica = 4, 0, 0, 0
		f.pools[0].Queries, f.pools[0].Errors = 3, 1
	})
	expect(t, scrape(t, srv), map[string]float64{replicaReads: 4, queriesOK: 2})
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	src := newFake()
	src.readyErr = errors.New(`shard "s1" has no primary right now`)
	_, srv := newServer(t, src)

	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `shard "s1" has no primary right now`) {
		t.Errorf("not ready: got %d %q, want 503 with the Ready error", code, body)
	}

	src.update(func(f *fakeSource) { f.readyErr = nil })
	code, body = get(t, srv.URL+"/readyz")
	if code != http.StatusOK || body != "ready" {
		t.Errorf("ready: got %d %q, want 200 \"ready\"", code, body)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	src := newFake()
	src.readyErr = errors.New("not ready") // liveness ignores readiness
	_, srv := newServer(t, src)
	code, body := get(t, srv.URL+"/healthz")
	if code != http.StatusOK || body != "ok" {
		t.Errorf("got %d %q, want 200 \"ok\"", code, body)
	}
}

func TestHistograms(t *testing.T) {
	t.Parallel()
	m, srv := newServer(t, newFake())
	m.SetShards([]string{"s0", "s1"})
	m.ObserveQuery(0, "primary", 2*time.Millisecond)
	m.ObserveQuery(1, "replica", 40*time.Millisecond)
	m.ObserveQuery(1, "replica", 60*time.Millisecond)
	m.ObserveCheckoutWait(1, 300*time.Microsecond)

	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_query_duration_seconds_count{role="primary",shard="s0"}`:              1,
		`shardgate_query_duration_seconds_sum{role="primary",shard="s0"}`:                0.002,
		`shardgate_query_duration_seconds_bucket{role="primary",shard="s0",le="0.001"}`:  0,
		`shardgate_query_duration_seconds_bucket{role="primary",shard="s0",le="0.0025"}`: 1,
		`shardgate_query_duration_seconds_bucket{role="primary",shard="s0",le="30"}`:     1,
		`shardgate_query_duration_seconds_count{role="replica",shard="s0"}`:              0,
		`shardgate_query_duration_seconds_count{role="replica",shard="s1"}`:              2,
		`shardgate_query_duration_seconds_bucket{role="replica",shard="s1",le="0.05"}`:   1,
		`shardgate_checkout_wait_seconds_count{shard="s0"}`:                              0,
		`shardgate_checkout_wait_seconds_count{shard="s1"}`:                              1,
		`shardgate_checkout_wait_seconds_bucket{shard="s1",le="0.0001"}`:                 0,
		`shardgate_checkout_wait_seconds_bucket{shard="s1",le="0.0005"}`:                 1,
		`shardgate_checkout_wait_seconds_bucket{shard="s1",le="10"}`:                     1,
		`shardgate_query_duration_seconds_bucket{role="primary",shard="s0",le="+Inf"}`:   1,
	})
}

func TestSetShardsKeepsSurvivorsAndDropsTheGone(t *testing.T) {
	t.Parallel()
	m, srv := newServer(t, newFake())
	m.SetShards([]string{"s0", "s1"})
	m.ObserveQuery(0, "primary", time.Millisecond)
	m.ObserveQuery(1, "primary", time.Millisecond)

	m.SetShards([]string{"s0", "s2", ""})
	m.ObserveQuery(1, "primary", time.Millisecond) // index 1 is s2 now
	m.ObserveQuery(2, "primary", time.Millisecond)
	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_query_duration_seconds_count{role="primary",shard="s0"}`: 1,
		`shardgate_query_duration_seconds_count{role="primary",shard="s1"}`: -1,
		`shardgate_checkout_wait_seconds_count{shard="s1"}`:                 -1,
		`shardgate_query_duration_seconds_count{role="primary",shard="s2"}`: 1,
		`shardgate_query_duration_seconds_count{role="primary",shard="2"}`:  1, // empty name: the index
	})
}

func TestObserveIgnoresUnknownShardOrRole(t *testing.T) {
	t.Parallel()
	m, srv := newServer(t, newFake())
	// Before SetShards no shard is known.
	m.ObserveQuery(0, "primary", time.Millisecond)
	m.ObserveCheckoutWait(0, time.Millisecond)

	m.SetShards([]string{"s0"})
	for _, shard := range []int{-1, 1, 1 << 40} {
		m.ObserveQuery(shard, "primary", time.Millisecond)
		m.ObserveCheckoutWait(shard, time.Millisecond)
	}
	m.ObserveQuery(0, "standby", time.Millisecond)
	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_query_duration_seconds_count{role="primary",shard="s0"}`: 0,
		`shardgate_query_duration_seconds_count{role="replica",shard="s0"}`: 0,
		`shardgate_checkout_wait_seconds_count{shard="s0"}`:                 0,
	})
}

func TestObserveConcurrentWithSetShards(t *testing.T) {
	t.Parallel()
	m, srv := newServer(t, newFake())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				m.ObserveQuery((g+i)%4, "replica", time.Duration(i)*time.Microsecond)
				m.ObserveCheckoutWait((g+i)%4, time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			n := i%4 + 1
			names := make([]string, n)
			for j := range names {
				names[j] = fmt.Sprintf("s%d", j)
			}
			m.SetShards(names)
		}
	})
	wg.Go(func() {
		for range 5 {
			scrape(t, srv)
		}
	})
	wg.Wait()
	if _, ok := scrape(t, srv)[`shardgate_query_duration_seconds_count{role="replica",shard="s0"}`]; !ok {
		t.Error("s0 missing after concurrent SetShards")
	}
}

func TestRebalance(t *testing.T) {
	t.Parallel()
	m, srv := newServer(t, newFake())
	const moveLabels = `from_shard="s0",table="orders",to_shard="s1"`
	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_rebalance_in_progress`:                     0,
		`shardgate_rebalance_rows_copied{` + moveLabels + `}`: -1,
	})

	m.SetRebalance(metrics.RebalanceSample{
		Table: "orders", FromShard: "s0", ToShard: "s1", RowsCopied: 1200, RowsTotal: 5000, Phase: "copy",
	})
	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_rebalance_in_progress`:                                                      1,
		`shardgate_rebalance_rows_copied{` + moveLabels + `}`:                                  1200,
		`shardgate_rebalance_rows_expected{` + moveLabels + `}`:                                5000,
		`shardgate_rebalance_phase{from_shard="s0",phase="copy",table="orders",to_shard="s1"}`: 1,
	})

	m.SetRebalance(metrics.RebalanceSample{})
	expect(t, scrape(t, srv), map[string]float64{
		`shardgate_rebalance_in_progress`:                     0,
		`shardgate_rebalance_rows_copied{` + moveLabels + `}`: -1,
	})
}

func TestNoGatherErrors(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, newFake())
	scrape(t, srv)
	if v := scrape(t, srv)[`promhttp_metric_handler_errors_total{cause="gathering"}`]; v != 0 {
		t.Errorf("gathering errors = %v, want 0", v)
	}
}

// A label value Prometheus refuses must cost only its own series, not
// the scrape (nor panic the process).
func TestBadLabelValueKeepsTheRest(t *testing.T) {
	t.Parallel()
	src := newFake()
	src.pools = append(src.pools, metrics.PoolSample{Shard: "s1", Host: "pg-c:5432", Role: "primary", User: "\xff", Database: "shop"})
	_, srv := newServer(t, src)
	got := scrape(t, srv)
	expect(t, got, map[string]float64{
		`shardgate_client_connections{state="active"}`:      5,
		poolKey("shardgate_pool_transactions_total", poolA): 50,
	})
	if v := scrape(t, srv)[`promhttp_metric_handler_errors_total{cause="gathering"}`]; v == 0 {
		t.Error("the bad series was not counted as a gathering error")
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := metrics.New(newFake(), "test")
	m.SetShards([]string{"s0", "s1"})
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveQuery(1, "replica", 3*time.Millisecond)
		m.ObserveCheckoutWait(1, 50*time.Microsecond)
	}); n != 0 {
		t.Errorf("ObserveQuery and ObserveCheckoutWait allocate %v times per call, want 0", n)
	}
}

func BenchmarkObserveQuery(b *testing.B) {
	m := metrics.New(newFake(), "bench")
	m.SetShards([]string{"s0", "s1", "s2", "s3"})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.ObserveQuery(i&3, "replica", 3*time.Millisecond)
		i++
	}
}

func BenchmarkObserveQueryParallel(b *testing.B) {
	m := metrics.New(newFake(), "bench")
	m.SetShards([]string{"s0", "s1", "s2", "s3"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.ObserveQuery(i&3, "primary", 3*time.Millisecond)
			i++
		}
	})
}
