package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Label names shared by several metrics.
var (
	poolLabels = []string{"shard", "host", "role", "user", "database"}
	hostLabels = []string{"shard", "host"}
	moveLabels = []string{"table", "from_shard", "to_shard"}
)

// pulled turns what Source reports into constant metrics, calling each of
// Source's methods once per scrape. Collect holds mu for the whole scrape
// so that concurrent scrapes neither interleave the derived-counter state
// nor ask Source twice at the same moment for no gain.
type pulled struct {
	src  Source
	move func() *RebalanceSample

	mu      sync.Mutex
	derived derivedCounters

	clientConns, clientsAccepted, clientsRefused *prometheus.Desc

	serverConns, poolWaiting, poolXacts, poolQueries, poolBytes           *prometheus.Desc
	poolQueryTime, poolXactTime, poolWaitTime, poolTimeouts, poolConnErrs *prometheus.Desc

	hostUp, hostBanned, hostLagging, hostPrimary, hostLSN *prometheus.Desc
	hostLagBytes, hostLagSeconds, reads, fallbackReads    *prometheus.Desc

	cacheHits, cacheMisses, cacheEntries, fanOuts *prometheus.Desc

	moving, moveRowsCopied, moveRowsExpected, movePhase *prometheus.Desc
}

func newPulled(src Source, move func() *RebalanceSample) *pulled {
	d := prometheus.NewDesc
	return &pulled{
		src:  src,
		move: move,

		clientConns:     d("shardgate_client_connections", "Client connections by state: active (linked to a server connection), waiting (for one), idle (between transactions), paused.", []string{"state"}, nil),
		clientsAccepted: d("shardgate_client_connections_accepted_total", "Client connections accepted since start.", nil, nil),
		clientsRefused:  d("shardgate_client_connections_refused_total", "Client connections turned away before their session began.", nil, nil),

		serverConns:   d("shardgate_pool_server_connections", "Server connections of a pool by state: active (linked to a client), idle, login (connecting or authenticating).", append(poolLabels[:len(poolLabels):len(poolLabels)], "state"), nil),
		poolWaiting:   d("shardgate_pool_waiting_clients", "Clients waiting for a connection from the pool.", poolLabels, nil),
		poolXacts:     d("shardgate_pool_transactions_total", "Transactions run on the pool's connections.", poolLabels, nil),
		poolQueries:   d("shardgate_pool_queries_total", "Statements run on the pool's connections, by outcome (ok or error).", append(poolLabels[:len(poolLabels):len(poolLabels)], "outcome"), nil),
		poolBytes:     d("shardgate_pool_bytes_total", "Bytes relayed through the pool's connections, by direction (client_to_server or server_to_client).", append(poolLabels[:len(poolLabels):len(poolLabels)], "direction"), nil),
		poolQueryTime: d("shardgate_pool_query_seconds_total", "Time spent running statements on the pool's connections.", poolLabels, nil),
		poolXactTime:  d("shardgate_pool_transaction_seconds_total", "Time spent in transactions on the pool's connections.", poolLabels, nil),
		poolWaitTime:  d("shardgate_pool_wait_seconds_total", "Time clients spent waiting for one of the pool's connections.", poolLabels, nil),
		poolTimeouts:  d("shardgate_pool_checkout_timeouts_total", "Clients that gave up waiting for one of the pool's connections.", poolLabels, nil),
		poolConnErrs:  d("shardgate_pool_connect_errors_total", "Failed attempts to open a server connection for the pool.", poolLabels, nil),

		hostUp:         d("shardgate_host_up", "1 if the host answered its last health poll, else 0.", hostLabels, nil),
		hostBanned:     d("shardgate_host_banned", "1 if the host is banned (failed, or banned by the proxy, and not answered since), else 0.", hostLabels, nil),
		hostLagging:    d("shardgate_host_lagging", "1 if the host is an up replica too far behind its primary to take reads, else 0.", hostLabels, nil),
		hostPrimary:    d("shardgate_host_primary", "1 if the host is its shard's current primary, else 0.", hostLabels, nil),
		hostLSN:        d("shardgate_host_lsn", "The host's WAL position as a byte offset: a primary's current LSN, a replica's replay LSN.", hostLabels, nil),
		hostLagBytes:   d("shardgate_host_replication_lag_bytes", "WAL bytes the replica is behind its shard's primary at its last poll (0 for a primary, or while the shard has none).", hostLabels, nil),
		hostLagSeconds: d("shardgate_host_replication_lag_seconds", "Time the replica is behind its shard's primary at its last poll (0 for a primary, or while the shard has none).", hostLabels, nil),
		reads:          d("shardgate_reads_total", "Reads routed to the host, by the role it served them in (replica, or primary as a fallback).", append(hostLabels[:len(hostLabels):len(hostLabels)], "role"), nil),
		fallbackReads:  d("shardgate_primary_fallback_reads_total", "Reads the host served as its shard's primary because no replica could, by reason (read_your_writes, replica_lag, no_replica).", append(hostLabels[:len(hostLabels):len(hostLabels)], "reason"), nil),

		cacheHits:    d("shardgate_parse_cache_hits_total", "Statements found in the parse cache.", nil, nil),
		cacheMisses:  d("shardgate_parse_cache_misses_total", "Statements not found in the parse cache, and so parsed.", nil, nil),
		cacheEntries: d("shardgate_parse_cache_entries", "Statements in the parse cache.", nil, nil),
		fanOuts:      d("shardgate_fanouts_total", "Statements sent to more than one shard, by kind.", []string{"kind"}, nil),

		moving:           d("shardgate_rebalance_in_progress", "1 while an online move of rows between shards runs, else 0.", nil, nil),
		moveRowsCopied:   d("shardgate_rebalance_rows_copied", "Rows the running move has copied so far.", moveLabels, nil),
		moveRowsExpected: d("shardgate_rebalance_rows_expected", "Rows the running move expects to copy, estimated when it started.", moveLabels, nil),
		movePhase:        d("shardgate_rebalance_phase", "1 for the running move's current phase.", append(moveLabels[:len(moveLabels):len(moveLabels)], "phase"), nil),
	}
}

// Describe sends every descriptor, so the registry can check that names
// are unique and that Collect sends nothing undeclared.
func (c *pulled) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.clientConns, c.clientsAccepted, c.clientsRefused,
		c.serverConns, c.poolWaiting, c.poolXacts, c.poolQueries, c.poolBytes,
		c.poolQueryTime, c.poolXactTime, c.poolWaitTime, c.poolTimeouts, c.poolConnErrs,
		c.hostUp, c.hostBanned, c.hostLagging, c.hostPrimary, c.hostLSN,
		c.hostLagBytes, c.hostLagSeconds, c.reads, c.fallbackReads,
		c.cacheHits, c.cacheMisses, c.cacheEntries, c.fanOuts,
		c.moving, c.moveRowsCopied, c.moveRowsExpected, c.movePhase,
	} {
		ch <- d
	}
}

// Collect asks Source once for each kind of sample and sends them.
func (c *pulled) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.derived.begin()
	c.collectClients(metricSink{ch})
	c.collectPools(metricSink{ch})
	c.collectHosts(metricSink{ch})
	c.collectMisc(metricSink{ch})
}

func (c *pulled) collectClients(out metricSink) {
	cl := c.src.Clients()
	out.gauge(c.clientConns, float64(cl.Active), "active")
	out.gauge(c.clientConns, float64(cl.Waiting), "waiting")
	out.gauge(c.clientConns, float64(cl.Idle), "idle")
	out.gauge(c.clientConns, float64(cl.Paused), "paused")
	out.counter(c.clientsAccepted, float64(cl.Total))
	out.counter(c.clientsRefused, float64(cl.Refused))
}

func (c *pulled) collectPools(out metricSink) {
	for _, p := range c.src.Pools() {
		l := []string{p.Shard, p.Host, p.Role, p.User, p.Database}
		with := func(v string) []string { return append(l[:len(l):len(l)], v) }
		out.gauge(c.serverConns, float64(p.ServersActive), with("active")...)
		out.gauge(c.serverConns, float64(p.ServersIdle), with("idle")...)
		out.gauge(c.serverConns, float64(p.ServersLogin), with("login")...)
		out.gauge(c.poolWaiting, float64(p.ClientsWaiting), l...)
		out.counter(c.poolXacts, float64(p.Xacts), l...)
		ok := c.derived.value(seriesKey{"queries_ok", p.Shard, p.Host, p.Role, p.User, p.Database},
			float64(p.Queries), float64(max(p.Queries-p.Errors, 0)))
		out.counter(c.poolQueries, ok, with("ok")...)
		out.counter(c.poolQueries, float64(p.Errors), with("error")...)
		out.counter(c.poolBytes, float64(p.BytesIn), with("client_to_server")...)
		out.counter(c.poolBytes, float64(p.BytesOut), with("server_to_client")...)
		out.counter(c.poolQueryTime, p.QueryTime.Seconds(), l...)
		out.counter(c.poolXactTime, p.XactTime.Seconds(), l...)
		out.counter(c.poolWaitTime, p.WaitTime.Seconds(), l...)
		out.counter(c.poolTimeouts, float64(p.CheckoutTimeouts), l...)
		out.counter(c.poolConnErrs, float64(p.ConnectErrors), l...)
	}
}

func (c *pulled) collectHosts(out metricSink) {
	for _, h := range c.src.Hosts() {
		l := []string{h.Shard, h.Addr}
		with := func(v string) []string { return append(l[:len(l):len(l)], v) }
		out.gauge(c.hostUp, bool01(h.State == "up" || h.State == "lagging"), l...)
		out.gauge(c.hostBanned, bool01(h.State == "banned"), l...)
		out.gauge(c.hostLagging, bool01(h.State == "lagging"), l...)
		out.gauge(c.hostPrimary, bool01(h.Primary), l...)
		// A float64 holds byte offsets exactly up to 2^53 (8 PiB of WAL).
		out.gauge(c.hostLSN, float64(h.LSN), l...)
		out.gauge(c.hostLagBytes, float64(h.LagBytes), l...)
		out.gauge(c.hostLagSeconds, h.Lag.Seconds(), l...)

		// Reads counts every read routed to the host; the three fallback
		// counters only grow while it serves as primary, so the
		// difference is exactly the reads it served as a replica, and the
		// split survives failovers without the series changing labels.
		fallback := h.PrimaryReadsRYW + h.PrimaryReadsLag + h.PrimaryReadsNoReplica
		asReplica := c.derived.value(seriesKey{"replica_reads", h.Shard, h.Addr, "", "", ""},
			float64(h.Reads), float64(h.Reads-min(fallback, h.Reads)))
		out.counter(c.reads, asReplica, with("replica")...)
		out.counter(c.reads, float64(fallback), with("primary")...)
		out.counter(c.fallbackReads, float64(h.PrimaryReadsRYW), with("read_your_writes")...)
		out.counter(c.fallbackReads, float64(h.PrimaryReadsLag), with("replica_lag")...)
		out.counter(c.fallbackReads, float64(h.PrimaryReadsNoReplica), with("no_replica")...)
	}
}

func (c *pulled) collectMisc(out metricSink) {
	pc := c.src.ParseCache()
	out.counter(c.cacheHits, float64(pc.Hits))
	out.counter(c.cacheMisses, float64(pc.Misses))
	out.gauge(c.cacheEntries, float64(pc.Size))
	for _, f := range c.src.FanOuts() {
		out.counter(c.fanOuts, float64(f.Count), f.Kind)
	}

	mv := c.move()
	if mv == nil {
		out.gauge(c.moving, 0)
		return
	}
	l := []string{mv.Table, mv.FromShard, mv.ToShard}
	out.gauge(c.moving, 1)
	out.gauge(c.moveRowsCopied, float64(mv.RowsCopied), l...)
	out.gauge(c.moveRowsExpected, float64(mv.RowsTotal), l...)
	out.gauge(c.movePhase, 1, append(l, mv.Phase)...)
}

// metricSink sends constant metrics. A label value Prometheus refuses
// (one that is not UTF-8, say a user name in a SQL_ASCII cluster) makes
// an invalid metric rather than a panic: the scrape then reports the error
// and, with promhttp.ContinueOnError, still serves every other series.
type metricSink struct{ ch chan<- prometheus.Metric }

func (s metricSink) gauge(d *prometheus.Desc, v float64, labels ...string) {
	s.send(d, prometheus.GaugeValue, v, labels)
}

func (s metricSink) counter(d *prometheus.Desc, v float64, labels ...string) {
	s.send(d, prometheus.CounterValue, v, labels)
}

func (s metricSink) send(d *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	s.ch <- m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
