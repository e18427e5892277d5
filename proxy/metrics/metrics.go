package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is shardgate's Prometheus registry and HTTP endpoints. Create it
// with New; its methods are safe for concurrent use.
type Metrics struct {
	src     Source
	handler http.Handler

	queryDuration *prometheus.HistogramVec
	checkoutWait  *prometheus.HistogramVec

	// shards is read on every observation without a lock; shardsMu only
	// serialises SetShards calls with each other.
	shards   atomic.Pointer[shardSet]
	shardsMu sync.Mutex

	move atomic.Pointer[RebalanceSample]
}

// New returns the metrics of a proxy whose counters src reports; version
// is the build's version, exported as shardgate_build_info. src must not
// be nil.
//
// The registry is a fresh one rather than Prometheus's global default, so
// that two proxies in one process (as in tests) do not collide and
// nothing registered by a dependency shows up unasked. It holds the Go
// runtime and process collectors besides shardgate's own metrics.
//
// Until SetShards is called no shard is known and observations are
// ignored.
func New(src Source, version string) *Metrics {
	m := &Metrics{
		src: src,
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shardgate_query_duration_seconds",
			Help:    "Time to run a statement on a shard, by the role of the server that ran it (primary or replica).",
			Buckets: queryDurationBuckets,
		}, []string{"shard", "role"}),
		checkoutWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shardgate_checkout_wait_seconds",
			Help:    "Time a client waited for a server connection on a shard.",
			Buckets: checkoutWaitBuckets,
		}, []string{"shard"}),
	}
	m.shards.Store(&shardSet{})

	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "shardgate_build_info",
		Help:        "Always 1; the version label says which shardgate build is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.queryDuration,
		m.checkoutWait,
		newPulled(src, m.move.Load),
	)

	// ContinueOnError: one bad series (a label value that is not UTF-8,
	// two pools reported with the same labels) must not blank the whole
	// page and hide every other metric; the error is counted in
	// promhttp_metric_handler_errors_total instead.
	metricsHandler := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /readyz", m.serveReadyz)
	m.handler = mux
	return m
}

// Handler serves:
//
//   - /metrics: every metric, in Prometheus's text or OpenMetrics format;
//   - /healthz: 200 "ok" whenever the process can answer at all (liveness:
//     restarting the proxy would not help with anything else);
//   - /readyz: 200 "ready" when Source.Ready returns nil, else 503 with its
//     error text (readiness: take the proxy out of a load balancer while
//     some shard's primary cannot be reached).
func (m *Metrics) Handler() http.Handler { return m.handler }

// SetRebalance reports the progress of the online move running now, to be
// called as the move advances; a scrape shows the last value set. The
// zero RebalanceSample says no move is running.
func (m *Metrics) SetRebalance(p RebalanceSample) {
	if p == (RebalanceSample{}) {
		m.move.Store(nil)
		return
	}
	m.move.Store(&p)
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

func (m *Metrics) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if err := m.src.Ready(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready"))
}
