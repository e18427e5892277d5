// Package metrics exports shardgate's Prometheus metrics and its health
// endpoints.
//
// Most numbers are pulled: the proxy keeps its counters where it counts
// them (one atomic add on the hot path) and reports them through Source,
// which a custom collector calls once per scrape, so /metrics and the
// admin console's SHOW STATS read the same counters and always agree.
// Only the two histograms are pushed, through ObserveQuery and
// ObserveCheckoutWait, whose per-shard children SetShards resolves in
// advance so that an observation costs no allocation and no label lookup.
//
// Handler serves /metrics, /healthz (liveness) and /readyz (readiness:
// Source.Ready).
//
// # Metrics
//
// Pool labels are shard, host ("host:port"), role ("primary" or
// "replica"), user and database: a pool is the connections to one host as
// one user to one database. Host labels are shard and host.
//
// Clients:
//
//	shardgate_client_connections{state}            gauge    client connections; state is active (linked to a server connection), waiting (for one), idle or paused
//	shardgate_client_connections_accepted_total     counter  client connections accepted since start
//	shardgate_client_connections_refused_total      counter  client connections turned away before their session began
//
// Pools (pool labels):
//
//	shardgate_pool_server_connections{...,state}    gauge    server connections; state is active, idle or login (connecting or authenticating)
//	shardgate_pool_waiting_clients                  gauge    clients waiting for one of the pool's connections
//	shardgate_pool_transactions_total               counter  transactions run
//	shardgate_pool_queries_total{...,outcome}       counter  statements run; outcome is ok or error
//	shardgate_pool_bytes_total{...,direction}       counter  bytes relayed; direction is client_to_server or server_to_client
//	shardgate_pool_query_seconds_total              counter  time spent in statements
//	shardgate_pool_transaction_seconds_total        counter  time spent in transactions
//	shardgate_pool_wait_seconds_total               counter  time clients waited for a connection
//	shardgate_pool_checkout_timeouts_total          counter  clients that gave up waiting for a connection
//	shardgate_pool_connect_errors_total             counter  failed attempts to open a server connection
//
// Per shard, pushed by the proxy:
//
//	shardgate_checkout_wait_seconds{shard}          histogram  wait for a server connection, once per checkout; buckets 100µs to 10s
//	shardgate_query_duration_seconds{shard,role}    histogram  statement duration on the primary or a replica; buckets 100µs to 30s
//
// Hosts (host labels), from the topology monitor:
//
//	shardgate_host_up                               gauge    1 if the host answered its last poll
//	shardgate_host_banned                           gauge    1 if the host is banned (failed, or banned by the proxy, and not answered since)
//	shardgate_host_lagging                          gauge    1 if the host is an up replica too far behind to take reads
//	shardgate_host_primary                          gauge    1 if the host is its shard's current primary
//	shardgate_host_lsn                              gauge    a primary's current WAL position, a replica's replay position, as a byte offset
//	shardgate_host_replication_lag_bytes            gauge    WAL bytes a replica is behind its primary (0 for a primary, or while the shard has none)
//	shardgate_host_replication_lag_seconds          gauge    time a replica is behind its primary (0 likewise)
//	shardgate_reads_total{shard,host,role}          counter  reads routed to the host; role is replica or primary
//	shardgate_primary_fallback_reads_total{shard,host,reason}
//	                                                counter  reads the primary took because no replica could; reason is read_your_writes, replica_lag or no_replica
//
// A read goes to a replica when one qualifies, else to the primary for
// one of three reasons. The role label of shardgate_reads_total is the
// role the host served the read in, not its role now: the topology counts
// all reads per host plus, per reason, the reads it took as primary, and
// the replica series is the difference. So the series keep their labels
// across a failover, and per host
//
//	shardgate_reads_total{role="primary"} == sum by (shard, host) (shardgate_primary_fallback_reads_total)
//
// The share of a shard's reads that missed the replicas is
// sum(rate(shardgate_reads_total{role="primary"}[5m])) / sum(rate(shardgate_reads_total[5m])).
//
// Parse cache and fan-out:
//
//	shardgate_parse_cache_hits_total                counter  statements found in the parse cache
//	shardgate_parse_cache_misses_total              counter  statements parsed because they were not
//	shardgate_parse_cache_entries                   gauge    statements in the cache
//	shardgate_fanouts_total{kind}                   counter  statements sent to more than one shard; kind is read, write, ddl, copy, ...
//
// Online rebalancing (a move of a table's rows between shards):
//
//	shardgate_rebalance_in_progress                 gauge    1 while a move runs, else 0
//	shardgate_rebalance_rows_copied{table,from_shard,to_shard}
//	                                                gauge    rows copied so far (only while a move runs)
//	shardgate_rebalance_rows_expected{table,from_shard,to_shard}
//	                                                gauge    rows the move expects to copy (likewise)
//	shardgate_rebalance_phase{table,from_shard,to_shard,phase}
//	                                                gauge    1 for the move's current phase (likewise)
//
// Build and runtime:
//
//	shardgate_build_info{version}                   gauge    always 1
//	go_*, process_*                                 Go runtime and process metrics
//	promhttp_metric_handler_*                       scrapes served, and errors met while gathering
package metrics
